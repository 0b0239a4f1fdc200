"""Enhance one audio file: the single function behind ``streamsep process``, ``streamsep batch`` and the
desktop app's file mode.

What is kept: every channel (each one denoised on its own; ``mono=True`` averages them first), the
sample rate and the sample format (subtype) of the input, unless ``rate`` / ``subtype`` say
otherwise.  Float inputs give float outputs (samples above 0 dBFS stay as they are).  When an
integer output (PCM_16, PCM_24, ...) would clip, the whole file is scaled down so that its peak sits
at -0.1 dBFS (``clip="limit"``, the default; the gain is reported and a warning names it) or, with
``clip="clip"``, the samples are hard-clipped and the number of clipped samples is reported.

Paths: the output is written atomically (a temporary file in the output folder, anonymous on Linux,
then an :func:`os.replace`), so a crash or kill never leaves a half-written file under the output
name, nor (on Linux) a temporary file.
Writing over the input is refused unless ``in_place=True``.  :func:`check_file_job` checks every
argument (formats, folders, reference, metrics) before any model loads; :func:`enhance_file` calls it
first.

Two ways through the engine give the same samples (to float rounding, ≤ 1e-5): the whole file in
memory (used when per-step metrics are wanted) and streamed from disk in host blocks (constant
memory, a progress bar; used otherwise and for ``stream=True``).  Resampling to the model rate and
back is done outside the engine with soxr 'HQ' in both (the streamed soxr output equals the
one-shot output exactly).  The offline search refiner (policies ``oracle-sisdr``, ``oracle-pesq``,
``oracle-block``, ``dnsmos``, or an explicit ``blend``) works on whole signals only.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from streamsep.audio_io import (
    AtomicStreamWriter,
    AudioFileError,
    FileStreamReader,
    StreamingResampler,
    anonymous_scratch,
    audio_info,
    output_format,
    read_audio,
    resample,
    write_audio,
)
from streamsep.catalogue import (
    BLENDS,
    BLOCK_ORACLE,
    CLIP_MODES,
    ENGINE_POLICIES,
    INTRUSIVE_METRICS,
    NEEDS_REFERENCE,
    ORACLE_POLICIES,
    SCOPES,
)
from streamsep.reporting import clean_float, summarize_ratio

__all__ = [
    "BLENDS",
    "CLIP_MODES",
    "OFFLINE_POLICIES",
    "FileJobError",
    "FileOptions",
    "FileResult",
    "check_file_job",
    "enhance_file",
]

#: policies that only the offline search refiner runs (whole signals, no streaming)
OFFLINE_POLICIES = ORACLE_POLICIES + (BLOCK_ORACLE,)
LIMIT_PEAK = 10 ** (-0.1 / 20)  #: peak (linear) that ``clip="limit"`` scales an overshooting file to (-0.1 dBFS)
DEFAULT_HOST_BLOCK_S = 1.0  #: host block (seconds) of the streamed path when ``stream`` is not asked for
PROGRESS_MIN_S = 60.0  #: files at least this long (seconds of audio) get a progress bar


class FileJobError(ValueError):
    """A file job that cannot run as asked; the message is one line naming the problem."""


@dataclass
class FileOptions:
    """How one file is processed (besides the :class:`~streamsep.engine.EngineConfig`).

    ``policy``: ``None`` = the config's engine policy; an offline-only policy (``oracle-*``,
    ``dnsmos``) runs the search refiner.  ``candidates``: ``None`` = 9 for the search policies, else
    the config's.  ``block``: host block in samples at the file rate for ``stream`` (``None`` = one
    model hop).  ``block_ms``: decision block (ms) when the config gives none.  ``blend``: ``None``
    = the engine (fixed/heuristic/proxy; the same samples as ``stream``) or ``"time"`` for the search
    policies; ``"time"`` / ``"frame"`` explicitly run the search refiner with that blending.
    ``rate`` (Hz) / ``subtype``: output format overrides (``None`` = the input's).  ``metrics``:
    names from ``si_sdr, pesq, stoi, dnsmos`` (empty = none; the first three need ``reference``).
    ``dnsmos``: DNSMOS OVRL of the input and the output in the result.  ``progress``: a tqdm bar on
    stderr for files of at least a minute.
    """

    reference: str | os.PathLike | None = None
    metrics: tuple[str, ...] = ()
    policy: str | None = None
    candidates: int | None = None
    stream: bool = False
    block: int | None = None
    block_ms: float = 200.0
    scope: str = "utterance"
    blend: str | None = None
    mono: bool = False
    rate: int | None = None
    subtype: str | None = None
    in_place: bool = False
    clip: str = "limit"
    model_path: str | None = None
    dnsmos: bool = False
    progress: bool = False


@dataclass
class FileResult:
    """What :func:`enhance_file` did.  Seconds are audio seconds (``seconds``) or wall-clock."""

    input: str
    output: str
    model: str
    steps: int
    candidates: int
    policy: str
    rate: int  #: output rate, Hz
    input_rate: int
    model_rate: int
    channels: int  #: output channels
    frames: int  #: output samples per channel
    seconds: float  #: audio seconds of the input
    subtype: str  #: output subtype
    compute_seconds: float  #: wall seconds of the processing (model, resampling, writing)
    wall_seconds: float  #: wall seconds of the whole call (checks, model load, metrics included)
    rtf: float  #: compute_seconds / seconds
    gain_db: float = 0.0  #: gain applied to keep an integer output from clipping (0 = none)
    clipped_samples: int = 0  #: samples hard-clipped (``clip="clip"`` only)
    stream: bool = False
    host_block: int | None = None
    engine_block: int | None = None
    latency_samples: int | None = None
    latency_ms: float | None = None
    per_step: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dnsmos_before: float | None = None
    dnsmos_after: float | None = None
    stream_vs_offline_max_abs: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Everything resolved by the checks (no model loaded yet)."""

    input: Path
    output: Path
    config: object
    options: FileOptions
    policy: str
    search: bool  # offline search refiner (whole signal) instead of the engine
    in_rate: int
    in_frames: int
    in_channels: int
    out_rate: int
    out_channels: int
    out_format: str
    out_subtype: str
    ref_frames: int | None


def _same_file(a: Path, b: Path) -> bool:
    if b.exists():
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False
    return a.resolve() == b.resolve()


def _default_subtype(fmt: str, in_subtype: str, default: str) -> str:
    import soundfile as sf

    if sf.check_format(fmt, in_subtype):
        return in_subtype
    if in_subtype in ("FLOAT", "DOUBLE") and sf.check_format(fmt, "FLOAT"):
        return "FLOAT"
    return default


def is_integer_subtype(subtype: str) -> bool:
    """True for subtypes that store integers (clipping at full scale)."""
    return subtype.startswith("PCM_") or subtype in (
        "ULAW",
        "ALAW",
        "DWVW_12",
        "DWVW_16",
        "DWVW_24",
        "DPCM_8",
        "DPCM_16",
    )


def _job_policy(config, o: FileOptions) -> str:
    """The job's policy (``o.policy`` or the config's); raises :class:`FileJobError` for an unknown model
    or policy."""
    from streamsep.separators.registry import model_names

    if not (config.model in model_names() or str(config.model).endswith(".toml")):
        raise FileJobError(f"unknown model '{config.model}' (known: {', '.join(model_names())})")
    policy = o.policy or config.policy
    known = ENGINE_POLICIES + OFFLINE_POLICIES
    if policy not in known and not policy.startswith("proxy:"):
        raise FileJobError(f"unknown policy '{policy}' (known: {', '.join(known)})")
    return policy


def _check_option_values(o: FileOptions) -> None:
    """Each option on its own: blend, scope, clip, ``block_ms`` (ms) > 0, host block (samples) ≥ 1,
    candidates in 1..64, output rate in 1..768000 Hz."""
    if o.blend is not None and o.blend not in BLENDS:
        raise FileJobError(f"blend must be one of {', '.join(BLENDS)}, not {o.blend!r}")
    if o.scope not in SCOPES:
        raise FileJobError(f"scope must be one of {', '.join(SCOPES)}, not {o.scope!r}")
    if o.clip not in CLIP_MODES:
        raise FileJobError(f"clip must be one of {', '.join(CLIP_MODES)}, not {o.clip!r}")
    if not o.block_ms > 0:
        raise FileJobError(f"block_ms must be positive, got {o.block_ms}")
    if o.block is not None and int(o.block) < 1:
        raise FileJobError(f"host block must be a positive number of samples, got {o.block}")
    if o.candidates is not None and not 1 <= int(o.candidates) <= 64:
        raise FileJobError(f"candidates must be in 1..64, got {o.candidates}")
    if o.rate is not None and (int(o.rate) < 1 or int(o.rate) > 768000):
        raise FileJobError(f"output rate must be a positive number of Hz, got {o.rate}")


def _check_policy_options(o: FileOptions, policy: str) -> bool:
    """Check that blend, streaming and scope fit ``policy``; returns whether the job searches offline."""
    if o.blend is not None and policy not in ("fixed", "oracle-sisdr", "oracle-pesq", "dnsmos"):
        raise FileJobError(
            f"blend applies to policy fixed and the search policies (oracle-sisdr, oracle-pesq, "
            f"dnsmos); {policy} always runs the engine"
        )
    search = policy in ("oracle-sisdr", "oracle-pesq", "dnsmos") or (policy == "fixed" and o.blend is not None)
    if o.stream and (policy in OFFLINE_POLICIES or o.blend is not None):
        raise FileJobError(
            f"streaming runs the engine: policy must be fixed, heuristic or proxy and no blend "
            f"given, not policy {policy}" + (f" with blend {o.blend}" if o.blend else "")
        )
    if o.scope == "block" and not (policy in ("oracle-sisdr", "fixed") and search):
        raise FileJobError("scope 'block' needs policy oracle-sisdr (or fixed with a blend)")
    return search


def _check_metrics(o: FileOptions, policy: str) -> None:
    """Known metrics, and a clean reference where the policy or an intrusive metric needs one."""
    from streamsep.metrics import METRICS

    for m in o.metrics:
        if m not in METRICS:
            raise FileJobError(f"unknown metric {m!r} (known: {', '.join(METRICS)})")
    need_ref = [m for m in o.metrics if m in INTRUSIVE_METRICS]
    if policy in NEEDS_REFERENCE and not o.reference:
        raise FileJobError(f"policy {policy} needs a clean reference (--reference CLEAN.wav)")
    if need_ref and not o.reference:
        raise FileJobError(f"metric {need_ref[0]} needs a clean reference (--reference CLEAN.wav)")


def _check_output_path(inp: Path, out: Path, o: FileOptions, folder_must_exist: bool) -> None:
    """The output is not a folder, its folder exists and is writable (when asked), and it is not the
    input unless in-place writing is allowed."""
    if out.is_dir():
        raise FileJobError(f"{out}: is a directory, not an output file")
    folder = out.parent if str(out.parent) else Path(".")
    if folder_must_exist and not folder.is_dir():
        raise FileJobError(f"{out}: output folder {folder} does not exist")
    if folder_must_exist and not os.access(folder, os.W_OK):
        raise FileJobError(f"{out}: output folder {folder} is not writable")
    if _same_file(inp, out) and not o.in_place:
        raise FileJobError(
            f"{out}: output is the input file; choose another output or allow in-place writing (--in-place)"
        )


def _reference_frames(o: FileOptions, info) -> int | None:
    """Length (samples) of the reference, None without one; ``info``: the input's soundfile info.  The
    reference's rate must equal the input's and its length be within max(1 sample, 10 ms) of the input's."""
    if not o.reference:
        return None
    rinfo = audio_info(o.reference)
    if rinfo.samplerate != info.samplerate:
        raise FileJobError(
            f"{o.reference}: reference rate {rinfo.samplerate} Hz differs from input rate {info.samplerate} Hz"
        )
    if abs(rinfo.frames - info.frames) > max(1, int(0.01 * info.samplerate)):
        raise FileJobError(
            f"{o.reference}: reference length {rinfo.frames} samples differs from input length {info.frames}"
        )
    return int(rinfo.frames)


def check_file_job(
    input: str | os.PathLike, output: str | os.PathLike, config, options: FileOptions, *, folder_must_exist: bool = True
) -> _Plan:
    """Check every argument of a file job without loading a model or writing anything.

    ``folder_must_exist=False`` skips the output folder's checks (a batch creates its folders after
    checking every file).

    Raises :class:`FileJobError` (or :class:`~streamsep.audio_io.AudioFileError`,
    :class:`~streamsep.engine.ConfigError`) with a one-line message.
    """
    inp, out = Path(input), Path(output)
    o = options
    config = config.validate()
    policy = _job_policy(config, o)
    _check_option_values(o)
    search = _check_policy_options(o, policy)
    _check_metrics(o, policy)
    # input
    info = audio_info(inp)
    # output
    _check_output_path(inp, out, o, folder_must_exist)
    fmt, default_sub = output_format(out)
    subtype = o.subtype.upper() if o.subtype else _default_subtype(fmt, info.subtype, default_sub)
    fmt, subtype = output_format(out, subtype)
    out_channels = 1 if o.mono else int(info.channels)
    ref_frames = _reference_frames(o, info)
    return _Plan(
        inp,
        out,
        config,
        o,
        policy,
        bool(search),
        int(info.samplerate),
        int(info.frames),
        int(info.channels),
        int(o.rate or info.samplerate),
        out_channels,
        fmt,
        subtype,
        ref_frames,
    )


# ------------------------------------------------------------------------------------------------
# the engine per channel, streamed
# ------------------------------------------------------------------------------------------------
class _ChannelChain:
    """One channel: file rate → soxr HQ → engine at the model rate (latency removed) → soxr HQ → out rate.

    :meth:`push` takes any number of input samples and returns whatever output is ready (variable
    length, the same for every channel of a file); :meth:`finish` returns the rest.
    """

    def __init__(self, config, sep, in_rate: int, out_rate: int, n_in: int) -> None:
        from streamsep.engine import Engine

        sr = sep.sample_rate
        self.rs_in = StreamingResampler(in_rate, sr) if in_rate != sr else None
        self.rs_out = StreamingResampler(sr, out_rate) if out_rate != sr else None
        self.eng = Engine(config, separator=sep)
        self.skip = self.eng.latency
        self.n_model = n_in if in_rate == sr else _resampled_length(n_in, in_rate, sr)
        self.got = 0

    def _model(self, xm: np.ndarray) -> np.ndarray:
        if not len(xm):
            return np.zeros(0, np.float32)
        y = self.eng.process(xm)
        if self.skip:
            cut = min(self.skip, len(y))
            y, self.skip = y[cut:], self.skip - cut
        y = y[: self.n_model - self.got]
        self.got += len(y)
        return self.rs_out.process(y) if self.rs_out is not None and len(y) else y

    def push(self, x: np.ndarray) -> np.ndarray:
        return self._model(self.rs_in.process(x) if self.rs_in is not None else x)

    def finish(self) -> np.ndarray:
        outs = [self._model(self.rs_in.flush())] if self.rs_in is not None else []
        pad = np.zeros(self.eng.block, np.float32)
        while self.got < self.n_model:
            outs.append(self._model(pad))
        if self.rs_out is not None:
            outs.append(self.rs_out.flush())
        return np.concatenate(outs) if outs else np.zeros(0, np.float32)


def _resampled_length(n: int, a: int, b: int) -> int:
    """soxr's output length for ``n`` samples from ``a`` to ``b`` Hz: ``n · b / a``, halves rounded up."""
    return (2 * n * b + a) // (2 * a)


class _Sink:
    """Collects equal-length channel outputs, cuts/pads to ``n_out`` frames and writes float blocks.

    For an integer subtype with ``clip="limit"`` the float data go to a FLOAT scratch file in the
    output folder first (anonymous where the filesystem allows); :meth:`close` then copies it with the gain that keeps the peak at -0.1 dBFS.
    """

    def __init__(self, plan: _Plan, n_out: int) -> None:
        self.plan, self.n_out = plan, n_out
        self.written = 0
        self.peak = 0.0
        self.clipped = 0
        self.two_pass = is_integer_subtype(plan.out_subtype) and plan.options.clip == "limit"
        self.pending: list[list[np.ndarray]] = [[] for _ in range(plan.out_channels)]
        self._tmp = None
        if self.two_pass:
            self._tmp = anonymous_scratch(plan.output.parent if str(plan.output.parent) else ".")
            self.writer = _RawFloatWriter(self._tmp.name, plan.out_rate, plan.out_channels)
        else:
            self.writer = AtomicStreamWriter(plan.output, plan.out_rate, plan.out_subtype, plan.out_channels)
        self.writer.__enter__()

    def add(self, per_channel: list[np.ndarray]) -> None:
        for buf, y in zip(self.pending, per_channel):
            if len(y):
                buf.append(y)
        ready = min(sum(len(a) for a in buf) for buf in self.pending)
        if not ready:
            return
        cols = []
        for i, buf in enumerate(self.pending):
            cat = np.concatenate(buf) if len(buf) > 1 else buf[0]
            cols.append(cat[:ready])
            self.pending[i] = [cat[ready:]] if len(cat) > ready else []
        self._write(np.stack(cols, axis=1) if len(cols) > 1 else cols[0])

    def _write(self, y: np.ndarray) -> None:
        y = y[: self.n_out - self.written]
        if not len(y):
            return
        self.peak = max(self.peak, float(np.abs(y).max()))
        if not self.two_pass and is_integer_subtype(self.plan.out_subtype):
            self.clipped += int(np.count_nonzero(np.abs(y) > 1.0))
        self.writer.write(y)
        self.written += len(y)

    def close(self, ok: bool) -> float:
        """Finish (``ok``) or discard; returns the gain applied (1.0 = none)."""
        gain = 1.0
        try:
            if ok and self.written < self.n_out:
                shape = (self.n_out - self.written,) + (
                    () if self.plan.out_channels == 1 else (self.plan.out_channels,)
                )
                self._write(np.zeros(shape, np.float32))
            self.writer.__exit__(None if ok else RuntimeError, None, None)
            if ok and self.two_pass:
                gain = LIMIT_PEAK / self.peak if self.peak > 1.0 else 1.0
                p = self.plan
                with AtomicStreamWriter(p.output, p.out_rate, p.out_subtype, p.out_channels) as w:
                    for blk in FileStreamReader(self._tmp.name, 65536, mono=p.out_channels == 1):
                        w.write(blk * np.float32(gain) if gain != 1.0 else blk)
        finally:
            if self._tmp is not None:
                self._tmp.close()
        return gain


class _RawFloatWriter:
    """A FLOAT WAV scratch file (not atomic: it is a temporary file itself)."""

    def __init__(self, path: str, rate: int, channels: int) -> None:
        import soundfile as sf

        self._sf = sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype="FLOAT", format="WAV")

    def __enter__(self):
        return self

    def write(self, y: np.ndarray) -> None:
        self._sf.write(y)

    def __exit__(self, *exc) -> None:
        self._sf.close()


def _progress(plan: _Plan):
    seconds = plan.in_frames / plan.in_rate
    if not plan.options.progress or seconds < PROGRESS_MIN_S:
        return None
    from tqdm import tqdm

    return tqdm(
        total=round(seconds, 1),
        unit="s",
        desc=plan.input.name,
        leave=False,
        disable=None,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]",
    )


def _engine_config(plan: _Plan, sep):
    from streamsep.engine import ConfigError

    cfg = plan.config
    block = cfg.block or max(1, round(plan.options.block_ms * 1e-3 * sep.sample_rate / sep.hop)) * sep.hop
    if block % sep.hop:
        raise ConfigError(f"block: {block} samples is not a multiple of the {sep.name} hop ({sep.hop})")
    return replace(cfg, policy=plan.policy, block=block)


def _run_streamed(plan: _Plan, sep, cfg, host_block: int) -> tuple[float, int, int]:
    """Disk → per-channel chains → disk.  Returns (gain, clipped samples, latency in model samples)."""
    n_out = _out_frames(plan)
    chans = plan.out_channels
    reader = FileStreamReader(plan.input, host_block, mono=plan.options.mono)
    chains = [_ChannelChain(cfg, sep, plan.in_rate, plan.out_rate, plan.in_frames) for _ in range(chans)]
    bar = _progress(plan)
    sink = _Sink(plan, n_out)
    ok = False
    try:
        for blk in reader:
            cols = [blk] if blk.ndim == 1 else [blk[:, c] for c in range(chans)]
            sink.add([ch.push(np.ascontiguousarray(c)) for ch, c in zip(chains, cols)])
            if bar is not None:
                bar.update(len(blk) / plan.in_rate)
        if reader.frames_read != plan.in_frames:  # a header that claimed more than the file holds
            for ch in chains:
                ch.n_model = _model_len(reader.frames_read, plan.in_rate, sep.sample_rate)
            sink.n_out = _out_len(reader.frames_read, plan)
        sink.add([ch.finish() for ch in chains])
        ok = True
    finally:
        if bar is not None:
            bar.close()
        gain = sink.close(ok)
    return gain, sink.clipped, chains[0].eng.latency


def _model_len(n: int, a: int, b: int) -> int:
    return n if a == b else _resampled_length(n, a, b)


def _out_len(n_in: int, plan: _Plan) -> int:
    return n_in if plan.out_rate == plan.in_rate else _resampled_length(n_in, plan.in_rate, plan.out_rate)


def _out_frames(plan: _Plan) -> int:
    return _out_len(plan.in_frames, plan)


# ------------------------------------------------------------------------------------------------
# whole signals (per-step estimates for metrics, the offline search refiner)
# ------------------------------------------------------------------------------------------------
def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return np.pad(y, (0, max(0, n - len(y))))[:n]


def _run_whole(
    plan: _Plan, sep, cfg, x: np.ndarray, refm: np.ndarray | None, per_step: bool
) -> tuple[np.ndarray, list[np.ndarray], list]:
    """All channels of ``x`` ((n,) or (n, ch)) → (output (n_out[, ch]) at the out rate, per-step
    estimates at the model rate averaged over channels, ratios per step)."""
    from streamsep.engine import Engine
    from streamsep.offline import refine_signal

    sr = sep.sample_rate
    cols = [x] if x.ndim == 1 else [x[:, c] for c in range(x.shape[1])]
    n_out = _out_len(len(cols[0]), plan)
    outs, steps_sum, ratios = [], None, []
    o = plan.options
    for xc in cols:
        xm = resample(xc, plan.in_rate, sr) if plan.in_rate != sr else np.asarray(xc, np.float32)
        if plan.search:
            cands = (
                o.candidates if o.candidates is not None else (9 if plan.policy in OFFLINE_POLICIES else cfg.candidates)
            )
            res = refine_signal(
                sep,
                xm,
                cfg.steps,
                plan.policy,
                cands,
                refm,
                o.scope,
                o.block_ms,
                o.blend or "time",
                cfg.ratios,
                config=None if plan.policy != "oracle-block" else cfg,
            )
            per, final, ratios = res.estimates, res.estimates[-1], res.ratios
        elif plan.policy == "oracle-block":
            res = refine_signal(sep, xm, cfg.steps, plan.policy, cfg.candidates, refm, config=cfg)
            per, final, ratios = res.estimates, res.estimates[-1], res.ratios
        else:
            eng = Engine(cfg, separator=sep)
            final, per, diag = eng.run_offline(xm, per_step=per_step)
            ratios = [None] + [list(map(float, r)) for r in diag["ratios"][: max(0, len(per) - 1)]]
        y = resample(final, sr, plan.out_rate) if plan.out_rate != sr else final
        outs.append(_fit(y, n_out))
        if per_step:
            steps_sum = per if steps_sum is None else [a + b for a, b in zip(steps_sum, per)]
    out = outs[0] if len(outs) == 1 else np.stack(outs, axis=1)
    per_avg = [s / len(cols) for s in steps_sum] if steps_sum else []
    return out.astype(np.float32), per_avg, ratios


def _write_whole(plan: _Plan, y: np.ndarray) -> tuple[float, int]:
    """Write the whole output; limit or clip integer outputs.  Returns (gain, clipped samples)."""
    gain, clipped = 1.0, 0
    peak = float(np.abs(y).max()) if y.size else 0.0
    if is_integer_subtype(plan.out_subtype) and peak > 1.0:
        if plan.options.clip == "limit":
            gain = LIMIT_PEAK / peak
            y = y * np.float32(gain)
        else:
            clipped = int(np.count_nonzero(np.abs(y) > 1.0))
    write_audio(plan.output, y, plan.out_rate, subtype=plan.out_subtype)
    return gain, clipped


def _metric_rows(
    estimates: list[np.ndarray], rate: int, ref: np.ndarray | None, which: tuple[str, ...], ratios: list
) -> list[dict]:
    from streamsep.metrics import evaluate

    rows = []
    for k, y in enumerate(estimates):
        m = {key: clean_float(v) for key, v in evaluate(y, rate, ref, which=which).items()}
        mean_r, kept = summarize_ratio(ratios[k]) if k and k < len(ratios) else (None, None)
        row = {"step": k, "ratio": mean_r, **m}
        if k:
            row["kept_fraction"] = kept
        rows.append(row)
    return rows


def _mono(y: np.ndarray) -> np.ndarray:
    return y if y.ndim == 1 else y.mean(axis=1, dtype=np.float64).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# the one entry point
# ------------------------------------------------------------------------------------------------
def load_separator(config, model_path: str | None = None):
    """The separator named by ``config`` (``model_path``: where its files are); load it once and pass
    it to :func:`enhance_file` for many files."""
    from streamsep.separators.registry import create

    kwargs = {"model_path": model_path} if model_path else {}
    return create(config.model, device=config.device, **kwargs)


def enhance_file(
    input: str | os.PathLike, output: str | os.PathLike, config, options: FileOptions | None = None, *, separator=None
) -> FileResult:
    """Denoise the audio file ``input`` into ``output`` with the engine configured by ``config``
    (an :class:`~streamsep.engine.EngineConfig`); see the module docstring for what is kept.

    ``separator``: an already loaded separator for ``config.model`` (batch workers load theirs once);
    ``None`` loads it here.  Every argument is checked before the model loads; errors raise
    :class:`FileJobError`, :class:`~streamsep.audio_io.AudioFileError` or
    :class:`~streamsep.engine.ConfigError` with a one-line message, and nothing is written.
    """
    t_start = time.perf_counter()
    options = options or FileOptions()
    plan = check_file_job(input, output, config, options)
    o = plan.options
    sep = separator if separator is not None else load_separator(plan.config, o.model_path)
    if separator is not None and separator.name != plan.config.model and not str(plan.config.model).endswith(".toml"):
        raise FileJobError(f"separator {separator.name} given for model {plan.config.model}")
    cfg = _engine_config(plan, sep)
    if o.blend == "frame" and not getattr(sep, "frame_domain", False):
        raise FileJobError(f"blend 'frame' needs a frame-domain separator; {sep.name} is waveform")
    sr = sep.sample_rate
    cands = (
        o.candidates
        if o.candidates is not None
        else (9 if plan.policy in OFFLINE_POLICIES and plan.search else cfg.candidates)
    )
    result = FileResult(
        str(plan.input),
        str(plan.output),
        sep.name,
        cfg.steps,
        cands,
        plan.policy,
        plan.out_rate,
        plan.in_rate,
        sr,
        plan.out_channels,
        _out_frames(plan),
        plan.in_frames / plan.in_rate,
        plan.out_subtype,
        0.0,
        0.0,
        0.0,
        stream=o.stream,
        engine_block=None if plan.search else cfg.block,
    )
    whole = plan.search or plan.policy == "oracle-block" or (bool(o.metrics) and not o.stream)
    refm = None
    t0 = time.perf_counter()
    if whole:
        x, _ = read_audio(plan.input, mono=o.mono)
        if plan.ref_frames is not None:
            ref, _ = read_audio(o.reference)
            refm = resample(ref, plan.in_rate, sr) if plan.in_rate != sr else ref
            refm = _fit(refm, _model_len(len(x), plan.in_rate, sr))
        y, per, ratios = _run_whole(plan, sep, cfg, x, refm, per_step=bool(o.metrics))
        gain, clipped = _write_whole(plan, y)
    else:
        host = int(o.block or (sep.hop if o.stream else max(1, int(DEFAULT_HOST_BLOCK_S * plan.in_rate))))
        gain, clipped, latency = _run_streamed(plan, sep, cfg, host)
        if o.stream:
            result.host_block = host
            result.latency_samples = int(latency)
            result.latency_ms = 1000.0 * latency / sr
    result.compute_seconds = time.perf_counter() - t0
    result.gain_db = float(20 * np.log10(gain)) if gain != 1.0 else 0.0
    result.clipped_samples = clipped
    if gain != 1.0:
        result.warnings.append(
            f"{plan.output}: output would clip as {plan.out_subtype}; scaled by "
            f"{result.gain_db:.2f} dB to a -0.1 dBFS peak (use a FLOAT subtype to keep the level)"
        )
    if clipped:
        result.warnings.append(f"{plan.output}: {clipped} samples clipped at full scale ({plan.out_subtype})")
    if o.metrics and whole:
        result.per_step = _metric_rows(per, sr, refm, tuple(o.metrics), ratios)
    elif o.metrics:  # streamed: the final output as written, at the file rate
        y, _ = read_audio(plan.output)
        ref = _fit(read_audio(o.reference)[0], len(y)) if o.reference else None
        result.per_step = _metric_rows([y], plan.out_rate, ref, tuple(o.metrics), [None])
        result.per_step[0]["step"] = cfg.steps
        if ref is not None and plan.out_rate == plan.in_rate:
            x, _ = read_audio(plan.input, mono=o.mono)
            off, _, _ = _run_whole(plan, sep, cfg, x, None, per_step=False)
            result.stream_vs_offline_max_abs = float(np.max(np.abs(_mono(off * np.float32(gain)) - y)))
    if o.dnsmos:
        from streamsep.metrics import dnsmos

        x, _ = read_audio(plan.input)
        y, yr = read_audio(plan.output)
        result.dnsmos_before = clean_float(dnsmos(x, plan.in_rate)["ovrl"])
        result.dnsmos_after = clean_float(dnsmos(y, yr)["ovrl"])
    result.wall_seconds = time.perf_counter() - t_start
    result.rtf = result.compute_seconds / max(result.seconds, 1e-9)
    return result


def describe(result: FileResult) -> str:
    """One line saying what :func:`enhance_file` wrote."""
    ch = "mono" if result.channels == 1 else f"{result.channels} ch"
    how = f"streamed in {result.host_block}-sample blocks, " if result.stream else ""
    lat = f", latency {result.latency_ms:.1f} ms" if result.latency_ms is not None else ""
    return (
        f"wrote {result.output} ({result.seconds:.2f} s, {ch}, {result.rate} Hz {result.subtype}, {how}"
        f"{result.model}, K={result.steps}, policy {result.policy}{lat}, {result.compute_seconds:.2f} s compute)"
    )


__all__ += ["AudioFileError", "describe", "is_integer_subtype", "load_separator"]
