"""The streaming engine: host blocks of any size in, the same number of samples out, delayed by a
fixed latency that it reports exactly.

Data path for one :meth:`Engine.process` call (worker thread, never the audio callback)::

    host block ─▶ [resample host→model] ─▶ input FIFO ─▶ whole engine blocks ─▶ StepChains
      (K steps, C candidates, policy) ─▶ synthesis ─▶ output controls (attenuation limit, wet/dry,
      bypass; all delay-aligned) ─▶ [resample model→host] ─▶ output FIFO ─▶ host block

Latency (host samples) = output-FIFO prefill + resampler delay + separator latency (+ ``(K_max)·latency``
for waveform separators, whose steps each add their latency, and ``K_max·step_delay·hop`` for
frame-domain separators whose steps lag by ``step_delay`` frames, DeepFilterNet3; fewer steps in use
are padded to keep it constant).  The prefill is the least that keeps calls of the construction
``host_block`` fed: 0 when the host block is a whole number of engine blocks and no resampling or the
integer-ratio FIR (:mod:`streamsep.resample`) runs, up to one engine block otherwise, more for soxr's
bursty output (simulated once at construction).  A call of another size that finds too little output
is completed with the input delayed by the latency (counted in ``stats.fallback_samples``); the
latency never moves.

Decision blocks (``config.block`` samples at the model rate) are independent of the host block size,
so a deterministic policy gives the same output for any host block size (the parity property).
"""

from __future__ import annotations

import math
import queue
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from streamsep.config import LIVE_KEYS, ConfigError, EngineConfig, config_fields  # noqa: F401 (re-exported)
from streamsep.policies import OracleBlock, PolicyError, make_policy
from streamsep.refine import DelayLine, StepChains, StepRecord
from streamsep.separators.base import FrameSeparator, Separator

MAX_HOST_BLOCK = 8192


@dataclass
class EngineStats:
    """Counters and levels updated by :meth:`Engine.process` (read them from any thread)."""

    steps_in_use: int = 0
    candidates_in_use: int = 1
    ratios: np.ndarray = field(default_factory=lambda: np.zeros(0))
    input_peak_db: float = -120.0
    output_peak_db: float = -120.0
    input_rms_db: float = -120.0
    output_rms_db: float = -120.0
    blocks: int = 0
    resets: int = 0
    dry_blocks: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    #: output samples taken from the latency-delayed input because a call was shorter than the
    #: prefill allows (a host block size other than the one given at construction)
    fallback_samples: int = 0


SAMPLE_LIMIT = 4.0  # |sample| bound inside the engine (12 dB over full scale)


def _level(x: np.ndarray) -> tuple[float, float]:
    """(peak |x|, sum of squares) of a float32 block; NaN/Inf propagate into both."""
    return float(np.abs(x).max()), float(np.dot(x, x))  # the method: ~1 µs less than np.max's wrapper


def db(v: float) -> float:
    """Amplitude to dB, floored at −120 dB."""
    return 20.0 * math.log10(max(float(v), 1e-6))


class _Fifo:
    """A growable float32 FIFO (worker-side only; the audio callback uses lock-free rings)."""

    def __init__(self, prefill: int = 0) -> None:
        self.buf = np.zeros(max(1024, 2 * prefill), dtype=np.float32)
        self.start, self.end = 0, prefill

    def __len__(self) -> int:
        return self.end - self.start

    def push(self, x: np.ndarray) -> None:
        n = len(x)
        if self.end + n > len(self.buf):
            live = self.buf[self.start : self.end].copy()
            size = max(len(self.buf), 2 * (len(live) + n))
            self.buf = np.zeros(size, dtype=np.float32)
            self.buf[: len(live)] = live
            self.start, self.end = 0, len(live)
        self.buf[self.end : self.end + n] = x
        self.end += n

    def pop(self, n: int) -> np.ndarray:
        out = self.buf[self.start : self.start + n].copy()
        self.start += n
        if self.start == self.end:
            self.start = self.end = 0
        return out


class Engine:
    """Block-by-block multi-step refinement with a constant, exactly reported latency."""

    def __init__(
        self,
        config: EngineConfig,
        rate: int | None = None,
        separator: Separator | None = None,
        host_block: int | None = None,
        max_steps: int | None = None,
    ) -> None:
        self.config = replace(config).validate()
        if separator is None:
            from streamsep.separators.registry import create

            separator = create(config.model, device=config.device)
        self.sep = separator
        self.sr = separator.sample_rate
        self.rate = int(rate or self.sr)
        hop = separator.hop
        block = config.block or hop
        if block % hop:
            raise ConfigError(f"block: {block} samples is not a multiple of the {separator.name} hop ({hop})")
        self.block = block
        self.max_steps = int(max(config.steps, max_steps or 0))
        self.frame = isinstance(separator, FrameSeparator) and separator.frame_domain
        self.chains = StepChains(separator, self.max_steps, block // hop, chain=self.config.chain)
        self._apply_policy()
        self.stats = EngineStats(ratios=np.full(self.max_steps, np.nan))
        self._mailbox: queue.SimpleQueue = queue.SimpleQueue()
        self._limit_steps: int | None = None
        self._limit_cands: int | None = None
        # model-domain latency (samples at model rate) of the processed path.  Frame-domain steps
        # add none, except for separators whose step() lags by ``step_delay`` frames (DFN3): exact
        # chaining then adds step_delay hops per step (see StepChains)
        self.step_delay = 0 if self.chains.fast else self.chains.delay
        if self.frame:
            sep_lat = separator.latency + self.max_steps * self.step_delay * hop
        else:
            sep_lat = separator.latency * (self.max_steps + 1)
        self.model_latency = sep_lat
        self.dry_delay = DelayLine(sep_lat)
        # waveform separators: step k's output is (k+1)·L late; out_delays[k] pads it to the
        # latency of max_steps.  Every active step feeds its line, so fewer steps never drop out.
        L = separator.latency
        self.out_delays = [] if self.frame else [DelayLine((self.max_steps - k) * L) for k in range(self.max_steps + 1)]
        self._steps_prev = config.steps
        self._fade: list | None = None
        if self.frame:
            self.ana = separator.stft.new_analysis_state(1)
            self.syn = separator.stft.new_synthesis_state(1)
        self._gain_prev = self._target_gains()
        self.in_fifo = _Fifo()
        self._setup_resampling(config.resample_quality, host_block, block, sep_lat)
        self._was_dry = False

    # -- configuration ------------------------------------------------------------------------
    def _apply_policy(self) -> None:
        c = self.config
        self.policy = make_policy(c.policy, c.ratios, c.proxy)
        if hasattr(self.policy, "configure"):  # stateful proxies measure history in seconds
            self.policy.configure(self.block / self.sr)

    def _setup_resampling(self, quality: str, host_block: int | None, block: int, sep_lat: int) -> None:
        """Resamplers, output-FIFO prefill and the latency (host samples).

        The prefill is the least that keeps every call of ``host_block`` samples fed: 0 when each
        such call yields exactly its own length (no resampling or the integer-ratio FIR, and a host
        block of whole engine blocks).  ``host_block`` None: any call size, one engine block.  A
        call that finds too little output anyway (another size) is completed with the input
        delayed by the latency (:meth:`process`), so the timeline never moves."""
        from streamsep.resample import plan

        self.host_block = host_block
        self.resample = self.rate != self.sr
        try:
            p = plan(self.rate, self.sr, block, host_block, quality, sep_lat)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.rs_in, self.rs_out, self.resampler = p.rs_in, p.rs_out, p.kind
        prefill, rs_delay = p.prefill, p.delay
        self.prefill = int(prefill)
        self.resampler_delay = rs_delay
        self.out_fifo = _Fifo(self.prefill)
        #: latency in host samples (exact when not resampling or with the FIR; soxr is
        #: delay-compensated otherwise, to about a sample)
        self.latency = int(round(p.latency))
        self.latency_ms = 1000.0 * p.latency / self.rate
        self._late = DelayLine(self.latency)  # input delayed by the latency: the short-call fill
        self._owed = 0  # output positions already filled from the input, whose model output is due

    def set_params(self, **kw) -> None:
        """Queue live parameter changes (thread-safe); applied at the start of the next process()."""
        bad = [k for k in kw if k not in LIVE_KEYS]
        if bad:
            raise ConfigError(f"{bad[0]}: not a live parameter (live: {', '.join(LIVE_KEYS)})")
        replace(self.config, **kw).validate()  # fail fast in the caller's thread
        self._mailbox.put(dict(kw))

    @property
    def grows_steps_live(self) -> bool:
        """True when more steps can start without a new engine: frame-domain steps that add no latency.
        Waveform separators and delayed-frame ones (dfn3, exact chaining) fix their latency, and so
        their most steps, when the engine is built."""
        return bool(self.frame and not self.step_delay)

    def set_load_limit(self, steps: int | None, candidates: int | None) -> None:
        """Caps from the deadline controller (None = no cap).  Never changes the latency."""
        self._limit_steps, self._limit_cands = steps, candidates

    def _drain_mailbox(self) -> None:
        if self._mailbox.empty():
            return
        changed = {}
        while True:
            try:
                changed.update(self._mailbox.get_nowait())
            except queue.Empty:
                break
        if not changed:
            return
        if "steps" in changed and changed["steps"] > self.max_steps:
            if self.grows_steps_live:  # frame-domain steps add no latency: grow the chains
                self.chains.grow(int(changed["steps"]))
                self.max_steps = self.chains.max_steps
                self.stats.ratios = np.full(self.max_steps, np.nan)
            else:  # waveform (and delayed-frame) steps add latency, fixed at construction (max_steps=)
                changed["steps"] = self.max_steps
        self.config = replace(self.config, **changed).validate()
        if {"policy", "ratios", "proxy"} & changed.keys():
            self._apply_policy()

    def effective(self) -> tuple[int, int]:
        """(steps, candidates) in use after the deadline caps."""
        s, c = self.config.steps, self.config.candidates
        if self._limit_steps is not None:
            s = min(s, self._limit_steps)
        if self._limit_cands is not None:
            c = min(c, self._limit_cands)
        return max(0, min(s, self.max_steps)), max(1, c)

    def _target_gains(self) -> tuple[float, float]:
        """(wet weight, attenuation floor) targets from mix/bypass/atten_db."""
        c = self.config
        wet = 0.0 if c.bypass else float(c.mix)
        floor = 0.0 if c.atten_db is None else 10.0 ** (-float(c.atten_db) / 20.0)
        return wet, floor

    # -- processing ---------------------------------------------------------------------------
    def process(self, block: np.ndarray, dry: bool = False) -> np.ndarray:
        """Process one host block (1-D, any length ≥ 1) and return as many output samples."""
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        t0 = time.perf_counter()
        self._drain_mailbox()
        xin = self.rs_in(x) if self.resample else x
        if len(xin):
            self.in_fifo.push(xin)
        n_blocks = len(self.in_fifo) // self.block
        if n_blocks:
            xm = self.in_fifo.pop(n_blocks * self.block)
            ym = self._process_model(xm, dry)
            out = self.rs_out(ym) if self.resample else ym
            if self._owed:  # positions already played from the input: drop their model output
                cut = min(self._owed, len(out))
                out, self._owed = out[cut:], self._owed - cut
            if len(out):
                self.out_fifo.push(out)
        n = len(x)
        x_late = self._late(x)
        have = len(self.out_fifo)
        if have < n:  # a call size the prefill was not made for: fill from the delayed input
            y = np.empty(n, np.float32)
            y[:have] = self.out_fifo.pop(have)
            y[have:] = self._sanitize(x_late[have:])
            self._owed += n - have
            self.stats.fallback_samples += n - have
        else:
            y = self.out_fifo.pop(n)
        st = self.stats
        st.seconds += n / self.rate
        st.compute_seconds += time.perf_counter() - t0
        if n:
            pk_in, ss_in = _level(x)
            if not (math.isfinite(pk_in) and math.isfinite(ss_in)):  # meters never show NaN
                pk_in, ss_in = _level(self._sanitize(x))
            pk_out, ss_out = _level(y)
            st.input_peak_db, st.output_peak_db = db(pk_in), db(pk_out)
            st.input_rms_db = db(math.sqrt(ss_in / n))
            st.output_rms_db = db(math.sqrt(ss_out / n))
        return y

    def process_dry(self, block: np.ndarray) -> np.ndarray:
        """Same latency as :meth:`process`, no model: the delay-aligned input (deadline fallback)."""
        return self.process(block, dry=True)

    def _sanitize(self, x: np.ndarray) -> np.ndarray:
        """NaN → 0, ±Inf → ±1, then clipped to ±4 (12 dB over full scale); ``x`` itself when clean."""
        pk, ss = _level(x)
        if math.isfinite(ss) and pk <= SAMPLE_LIMIT:  # NaN fails both tests; the common case
            return x
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(x, -SAMPLE_LIMIT, SAMPLE_LIMIT)

    def _process_model(
        self, xm: np.ndarray, dry: bool, ctx: dict | None = None, keep_steps: list | None = None
    ) -> np.ndarray:
        """Whole engine blocks at the model rate → the same number of output samples."""
        xm = self._sanitize(xm)
        steps, cands = self.effective()
        st = self.stats
        st.steps_in_use, st.candidates_in_use = steps, cands
        st.blocks += len(xm) // self.block
        x_d = self.dry_delay(xm)
        if dry:
            st.dry_blocks += len(xm) // self.block
            if self.frame:  # keep the analysis buffer current; the model chains pause
                _, self.ana = self.sep.analyze(torch.as_tensor(xm, device=self.sep.device)[None], self.ana)
            else:
                for d in self.chains.mix_delays:
                    d(xm)
            self._was_dry = True
            return x_d
        record = StepRecord(ratios=[[] for _ in range(self.max_steps)])
        with torch.inference_mode():
            if self.frame:
                X, self.ana = self.sep.analyze(torch.as_tensor(xm, device=self.sep.device)[None], self.ana)
                if self._was_dry:
                    self.syn = self.sep.stft.new_synthesis_state(1)
                Y = self.chains.run(X, steps, cands, self.policy, ctx=ctx, record=record, keep_steps=keep_steps)
                y, self.syn = self.sep.synthesize(Y, self.syn)
                y = y[0].cpu().numpy()
            else:
                per = keep_steps if keep_steps is not None else []
                start = len(per)
                self.chains.run(
                    torch.as_tensor(xm)[None], steps, cands, self.policy, ctx=ctx, record=record, keep_steps=per
                )
                L = self.sep.latency
                if steps > self._steps_prev:
                    # freshly enabled chains emit their own latency of silence and then settle: keep
                    # playing the lower step (still running, so continuous), then crossfade over 2·L
                    hold = (self.max_steps - self._steps_prev + 1) * L
                    self._fade = [self._steps_prev, hold, 2 * L, 0]
                outs = [self.out_delays[k](per[start + k][0].cpu().numpy()) for k in range(steps + 1)]
                for k in range(steps + 1, self.max_steps + 1):  # inactive lines keep time with silence
                    self.out_delays[k](np.zeros_like(xm))
                y = outs[steps]
                if self._fade is not None:
                    y = self._fade_up(y, outs)
                self._steps_prev = steps
        st.resets = self.chains.resets
        self.last_record = record
        for k in range(self.max_steps):
            r = record.ratios[k]
            st.ratios[k] = (r[-1] if r else np.nan) if k < steps else np.nan
        y = self._sanitize(y.astype(np.float32, copy=False))
        out = self._output_controls(y, x_d)
        self._was_dry = False
        return out

    def _fade_up(self, y: np.ndarray, outs: list[np.ndarray]) -> np.ndarray:
        """After more steps are enabled (waveform models): hold the lower step, then crossfade."""
        src, hold, fade, done = self._fade
        if src >= len(outs):
            self._fade = None
            return y
        t = done + np.arange(len(y))
        w = np.clip((t - hold) / float(max(1, fade)), 0.0, 1.0).astype(np.float32)
        self._fade[3] = done + len(y)
        if self._fade[3] >= hold + fade:
            self._fade = None
        return w * y + (1.0 - w) * outs[src]

    def _output_controls(self, y: np.ndarray, x_d: np.ndarray) -> np.ndarray:
        """Attenuation limit then wet/dry (bypass = dry), ramped over the chunk to avoid clicks."""
        wet1, floor1 = self._target_gains()
        wet0, floor0 = self._gain_prev
        if self._was_dry:
            wet0 = 0.0
        self._gain_prev = (wet1, floor1)
        if wet0 == wet1 == 1.0 and floor0 == floor1 == 0.0:
            return y
        n = len(y)
        ramp_n = min(n, self.block)

        def ramp(a: float, b: float) -> np.ndarray | float:
            if a == b:
                return b
            r = np.full(n, b, dtype=np.float32)
            r[:ramp_n] = np.linspace(a, b, ramp_n, dtype=np.float32)
            return r

        floor, wet = ramp(floor0, floor1), ramp(wet0, wet1)
        limited = y + floor * (x_d - y)
        return (wet * limited + (1.0 - wet) * x_d).astype(np.float32)

    # -- whole signals ------------------------------------------------------------------------
    def run_offline(
        self, x: np.ndarray, reference: np.ndarray | None = None, per_step: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray], dict]:
        """Whole signal at the model rate, in one pass, latency removed; same code as streaming.

        Returns (final estimate, per-step estimates when ``per_step``, diagnostics).  ``reference``
        (clean, model rate) enables the ``oracle-block`` policy.
        """
        if self.resample:
            raise ConfigError("run_offline works at the model rate; resample first")
        n = len(x)
        total = int(math.ceil((n + self.model_latency) / self.block) * self.block)
        xp = np.zeros(total, np.float32)
        xp[:n] = x
        ctx: dict | None = None
        if reference is not None:
            rp = np.zeros(total, np.float32)
            m = min(n, len(reference))
            rp[:m] = reference[:m]
            if self.frame:
                S, _ = self.sep.analyze(
                    torch.as_tensor(rp, device=self.sep.device)[None], self.sep.stft.new_analysis_state(1)
                )
            else:
                S = torch.as_tensor(rp)[None]
            ctx = {"S": S, "scores": []}
        elif isinstance(self.policy, OracleBlock):
            raise PolicyError("policy oracle-block needs a reference")
        steps_out: list | None = [] if per_step else None
        y = self._process_model(xp, False, ctx=ctx, keep_steps=steps_out)
        L = self.model_latency
        final = y[L : L + n]
        per: list[np.ndarray] = []
        if per_step and steps_out is not None:
            for k, Yk in enumerate(steps_out):
                if self.frame:
                    yk, _ = self.sep.synthesize(Yk, self.sep.stft.new_synthesis_state(1))
                    yk = yk[0].cpu().numpy()
                    lk = self.sep.latency + k * self.step_delay * self.sep.hop
                else:
                    yk = Yk[0].cpu().numpy()
                    lk = self.sep.latency * (k + 1)
                per.append(yk[lk : lk + n].astype(np.float32))
        return final, per, {"scores": ctx["scores"] if ctx else None, "ratios": self.last_record.ratios}


def enhance_array(x: np.ndarray, rate: int, config: EngineConfig, separator: Separator | None = None) -> np.ndarray:
    """Run a whole signal through the engine (resampled to the model rate and back if needed).

    Returns an array of the same length as ``x`` with the latency removed.
    """
    from streamsep.audio_io import resample

    eng = Engine(config, separator=separator)
    xm = resample(x, rate, eng.sr) if rate != eng.sr else np.asarray(x, np.float32)
    y, _, _ = eng.run_offline(xm)
    if rate != eng.sr:
        y = resample(y, eng.sr, rate)
        y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    return y.astype(np.float32)
