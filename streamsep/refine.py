"""The multi-step refinement core, independent of streaming: one state chain per step.

``y0 = f(x)``; step ``k``: ``z = r·x + (1−r)·y(k−1)``, ``y(k) = f(z)``.  Every step has its own
recurrent state chain.  For a decision block, a searching policy forks the chain's state ``C`` ways,
runs the ``C`` candidate inputs as one batch, scores them and keeps the survivor's state.  Keeping the
previous estimate is always allowed; the chain's state then follows the best-scoring candidate that
was run (the chain must advance on *some* input to stay continuous).

Frame-domain separators are refined on STFT frames (``X``, ``Y`` complex (1, T, F)): every step sees
the same frames, so K steps add no latency.  Waveform separators are refined on samples: step ``k``
blends with the mixture delayed by ``k·latency`` so that both signals are aligned, and each step
adds ``latency`` samples.

Used by :mod:`streamsep.engine` (streaming and whole-file) — the same code on both paths is what
makes streamed output equal offline output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from streamsep.policies import KEEP, Policy
from streamsep.separators.base import FrameSeparator, Separator

CROSSFADE = 64  # samples, for candidate switches of waveform separators


class FrameDelay:
    """A delay of ``delay`` frames for complex frames (1, T, F) (frame-domain separators whose
    :meth:`step` output lags its input, see ``step_delay``)."""

    def __init__(self, delay: int) -> None:
        self.delay = int(delay)
        self.buf: torch.Tensor | None = None

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        if self.delay == 0:
            return X
        if self.buf is None:
            self.buf = torch.zeros(X.shape[0], self.delay, *X.shape[2:], dtype=X.dtype, device=X.device)
        joined = torch.cat([self.buf, X], dim=1)
        self.buf = joined[:, joined.shape[1] - self.delay :]
        return joined[:, : X.shape[1]]


class DelayLine:
    """A delay of ``delay`` samples for a 1-D float32 stream (``delay`` may be changed; it resets)."""

    def __init__(self, delay: int) -> None:
        self.delay = int(delay)
        self.buf = np.zeros(self.delay, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.delay == 0:
            return x
        joined = np.concatenate([self.buf, x])
        self.buf = joined[len(x) :].copy()
        return joined[: len(x)]


def block_spectra(x: torch.Tensor, n_fft: int = 256) -> torch.Tensor:
    """Short-time spectra (B, T, F) of waveform blocks (B, N) for policy scoring (Hann, 50 % hop)."""
    n = min(n_fft, x.shape[-1])
    win = torch.hann_window(n, device=x.device, dtype=x.dtype)
    frames = x.unfold(-1, n, max(1, n // 2)) * win
    return torch.fft.rfft(frames, dim=-1)


def _blend(ratios: np.ndarray, X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Candidate inputs ``r·X + (1−r)·P`` for C ratios (C,): (C, …) from X, P of batch 1."""
    rv = torch.tensor(ratios, device=X.device).view(len(ratios), *([1] * (X.dim() - 1)))
    return rv * X + (1.0 - rv) * P


def _keep_survivor(choice, candidates: int) -> int:
    """The candidate whose state a KEEP carries on: the best-scoring one (0 when none was scored)."""
    scores = choice.scores[:-1] if choice.scores is not None else np.zeros(candidates)
    return int(np.argmax(scores))


@dataclass
class StepRecord:
    """Diagnostics of one call: per step, the chosen ratio of each decision block (nan = kept)."""

    ratios: list[list[float]] = field(default_factory=list)
    proxy_scores: list = field(default_factory=list)


class StepChains:
    """Per-step separator state chains and the block-wise multi-step loop."""

    def __init__(self, sep: Separator, max_steps: int, block_frames: int, chain: str = "exact") -> None:
        self.sep = sep
        self.max_steps = int(max_steps)
        self.block_frames = int(block_frames)  # frames (hops) per decision block
        self.frame = isinstance(sep, FrameSeparator) and sep.frame_domain
        #: one decision block in the chains' input layout: frames, or samples for waveform models
        self.unit = self.block_frames if self.frame else self.block_frames * sep.hop
        self.states = [self._fresh() for _ in range(self.max_steps + 1)]
        self.active = self.max_steps  # chains 1..active have been advanced continuously
        self.prev_choice = [0] * (self.max_steps + 1)
        self.resets = 0
        #: searching steps ask the policy for a KEEP before running the candidates (precheck); off
        #: = always run all C (the decisions are the same; tests compare the two)
        self.lazy_keep = True
        #: separator passes run so far, in decision blocks (batch items × blocks per call)
        self.passes = 0.0
        # waveform separators: mixture delayed by k·latency for step k (blending with y(k−1)), and
        # y(k−1) / the mixture delayed by one more latency to line up with step k's candidates
        L = sep.latency
        self.mix_delays = [DelayLine(k * L) for k in range(self.max_steps + 1)] if not self.frame else []
        self.keep_delays = [DelayLine(L) for _ in range(self.max_steps + 1)] if not self.frame else []
        self.score_delays = [DelayLine((k + 1) * L) for k in range(self.max_steps + 1)] if not self.frame else []
        # Frame-domain separators whose step() output lags its input by ``step_delay`` frames
        # (DeepFilterNet3's lookahead): exact chaining, the same scheme as waveform separators in
        # frames — step k blends with X delayed k·d frames, scores against X delayed (k+1)·d and
        # keeps y(k−1) delayed d; every step's output is padded to the latency of max_steps.
        self.delay = int(getattr(sep, "step_delay", 0) or 0) if self.frame else 0
        # chain "fast" (delayed-frame separators only): no added latency — step k blends the current
        # mixture frames with the newest gains of step k−1 (its complex gain on the frame d older),
        # so every step lags d frames like the first; approximate, see docs/lab
        self.fast = bool(self.delay) and chain == "fast"
        if self.fast:
            self.mix_delays = []
            self.keep_delays = []
            self.score_delays = [FrameDelay(self.delay) for _ in range(self.max_steps + 1)]
            self.out_delays = []
        elif self.delay:
            d = self.delay
            self.mix_delays = [FrameDelay(k * d) for k in range(self.max_steps + 1)]
            self.keep_delays = [FrameDelay(d) for _ in range(self.max_steps + 1)]
            self.score_delays = [FrameDelay((k + 1) * d) for k in range(self.max_steps + 1)]
            self.out_delays = [FrameDelay((self.max_steps - k) * d) for k in range(self.max_steps + 1)]
        #: frames each chain still skips at the start of the stream: step k's first k·d input frames
        #: are the delay lines' silence, not audio, and feeding them to the model would move its
        #: normalisation and recurrent state away from where the whole-file frame blend starts (its
        #: output there is zeros, as it would be for silence); 0 for every other separator
        self.lead = [k * self.delay if self.delay and not self.fast else 0 for k in range(self.max_steps + 1)]

    def grow(self, max_steps: int) -> None:
        """Add chains up to ``max_steps`` (frame-domain only: no latency change)."""
        if (not self.frame or (self.delay and not self.fast)) and max_steps > self.max_steps:
            raise ValueError("waveform and delayed-frame separators cannot grow steps (each step adds latency)")
        while self.max_steps < max_steps:
            self.max_steps += 1
            self.states.append(self._fresh())
            self.prev_choice.append(0)
            self.lead.append(0)
            if self.fast:
                self.score_delays.append(FrameDelay(self.delay))

    def _fresh(self):
        return self.sep.new_model_state(1) if self.frame else self.sep.new_state(1)

    def reset_chain(self, k: int) -> None:
        """Restart chain ``k`` from a fresh state (after a poisoned state or re-enabling a step)."""
        self.states[k] = self._fresh()
        self.prev_choice[k] = 0

    def _check(self, k: int) -> None:
        if not self.sep.state_is_finite(self.states[k]):
            self.reset_chain(k)
            self.resets += 1

    # -- the separator call, in its own domain --------------------------------------------------
    def _run(self, inp, state, k: int = 0):
        self.passes += int(inp.shape[0]) * int(inp.shape[1]) / self.unit  # batch × decision blocks covered
        if self.frame and self.lead[k]:  # chain k's stream has not reached audio yet (see self.lead)
            m = min(self.lead[k], int(inp.shape[1]))
            self.lead[k] -= m
            head = torch.zeros_like(inp[:, :m])
            if m == inp.shape[1]:
                return head, state
            Y, state = self.sep.step(inp[:, m:], state)
            return torch.cat([head, Y], dim=1), state
        if self.frame:
            return self.sep.step(inp, state)
        y, st = self.sep.process(inp.cpu().numpy() if isinstance(inp, torch.Tensor) else inp, state)
        return torch.as_tensor(y), st

    def _scoring_view(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.frame else block_spectra(t)

    def run(
        self,
        X: torch.Tensor,
        steps: int,
        candidates: int,
        policy: Policy,
        ctx: dict | None = None,
        record: StepRecord | None = None,
        keep_steps: list | None = None,
    ) -> torch.Tensor:
        """Refine one chunk.

        ``X``: frame domain: complex (1, T, F) with T a multiple of ``block_frames``; waveform: float
        (1, N) with N a multiple of ``block_frames·hop``.  Returns the final estimate (same shape;
        for waveform separators delayed by ``(steps+1)·latency`` relative to ``X``).  ``ctx`` may hold
        ``S`` (clean reference, same layout as ``X``) for the oracle policy.  ``keep_steps``, when a
        list, receives every step's estimate (for per-step reports).
        """
        steps = min(int(steps), self.max_steps)
        if steps > self.active:  # re-enabled steps restart from fresh states
            for k in range(self.active + 1, steps + 1):
                self.reset_chain(k)
        self.active = steps
        if self.frame and not self.delay:  # a delayed step's output spans blocks: no per-block hold
            zero = self._zero_units(X)
            if zero is not None:
                return self._run_with_silence(X, zero, steps, candidates, policy, ctx, record, keep_steps)
        return self._run_chunk(X, steps, candidates, policy, ctx, record, keep_steps)

    def _zero_units(self, X: torch.Tensor) -> np.ndarray | None:
        """Per decision block, True where every frame is exactly zero (digital silence); None when
        no block is (the common case, one reduction)."""
        n_units = X.shape[1] // self.block_frames
        if n_units == 0:
            return None
        Xr = torch.view_as_real(X)
        if X.device.type == "cpu" and X.shape[0] == 1 and X.shape[-1] > 1:
            # a unit is all zero only if every element is: one nonzero element per unit (bin 1 of
            # its first frame; exactly zero only in silence) rules it out at the cost of one read
            if Xr.numpy()[0, :: self.block_frames, 1, 0].all():
                return None
        nz = Xr.reshape(n_units, -1).any(dim=1)
        if bool(nz.all()):
            return None
        return ~nz.cpu().numpy()

    def _run_with_silence(self, X, zero, steps, candidates, policy, ctx, record, keep_steps):
        """Digital silence holds the chains: an all-zero decision block is not run through the model
        (its output is zero — every separator's gains times a zero spectrum), so no chain state drifts
        on input the network never saw (NSNet2's GRU did, over long silence, and mangled the next
        onset).  Decided per decision block, so streamed and whole-file runs stay identical."""
        unit = self.block_frames
        outs: list[torch.Tensor] = []
        per: list[list[torch.Tensor]] = []
        b = 0
        while b < len(zero):
            e = b
            while e < len(zero) and zero[e] == zero[b]:
                e += 1
            sl = slice(b * unit, e * unit)
            sub_keep: list | None = [] if keep_steps is not None else None
            if zero[b]:
                Y = torch.zeros_like(X[:, sl])
                if sub_keep is not None:
                    sub_keep.extend([Y] * (steps + 1))
                if record is not None:
                    for k in range(1, steps + 1):
                        if len(record.ratios) >= k:
                            record.ratios[k - 1].extend([float("nan")] * (e - b))
            else:
                sub_ctx = ctx
                if ctx is not None and "S" in ctx:
                    sub_ctx = {**ctx, "S": ctx["S"][:, sl]}
                    if "scores" in ctx:
                        sub_ctx["scores"] = ctx["scores"]
                Y = self._run_chunk(X[:, sl], steps, candidates, policy, sub_ctx, record, sub_keep)
            outs.append(Y)
            if sub_keep is not None:
                per.append(sub_keep)
            b = e
        if keep_steps is not None:
            for k in range(steps + 1):
                keep_steps.append(torch.cat([p[k] for p in per], dim=1))
        return torch.cat(outs, dim=1)

    def _run_chunk(self, X, steps, candidates, policy, ctx, record, keep_steps):
        """Whole decision blocks through every step (the body of :meth:`run`)."""
        self._check(0)
        Y, self.states[0] = self._run(X, self.states[0])
        if keep_steps is not None:
            keep_steps.append(Y)
        outs = [Y]
        unit = self.unit
        n_units = X.shape[1] // unit
        xnp = None if self.frame else X[0].cpu().numpy()
        for k in range(1, steps + 1):
            self._check(k)
            if self.fast:  # blend X(t) with step k−1's gains G = Y(t)/X(t−d) applied to X(t)
                Xs = self.score_delays[k](X)
                G = Y * Xs.conj() / (Xs.real**2 + Xs.imag**2 + 1e-20)
                G = G / G.abs().clamp_min(1.0)  # |G| ≤ 1: never amplify where X(t−d) was near zero
                Xk, Pk, Y = X, Y, G * X
            elif self.frame and self.delay:
                Xk, Xs, Pk = self.mix_delays[k](X), self.score_delays[k](X), self.keep_delays[k](Y)
            elif self.frame:
                Xk, Xs, Pk = X, X, Y
            else:  # blend with x delayed k·L; score and keep aligned with the candidates ((k+1)·L)
                Xk = torch.as_tensor(self.mix_delays[k](xnp))[None]
                Xs = torch.as_tensor(self.score_delays[k](xnp))[None]
                Pk = torch.as_tensor(self.keep_delays[k](Y[0].cpu().numpy()))[None]
            if not policy.searches or candidates < 1:
                Y = self._deterministic_step(k, Xk, Y, policy, unit, n_units, record)
            else:
                Y = self._search_step(k, Xk, Y, Xs, Pk, candidates, policy, unit, n_units, ctx, record)
            if keep_steps is not None:
                keep_steps.append(Y)
            outs.append(Y)
        if self.fast:
            for k in range(steps + 1, self.max_steps + 1):
                self.score_delays[k](X)
            return outs[steps]
        if self.delay:
            for k in range(steps + 1, self.max_steps + 1):  # unused lines keep time (silence)
                self.mix_delays[k](X)
                self.score_delays[k](X)
                self.keep_delays[k](torch.zeros_like(X))
            padded = [
                self.out_delays[k](outs[k] if k <= steps else torch.zeros_like(X)) for k in range(self.max_steps + 1)
            ]
            return padded[steps]
        # keep the unused delay lines flowing so a re-enabled step is aligned
        if not self.frame:
            for k in range(steps + 1, self.max_steps + 1):
                self.mix_delays[k](xnp)
                self.score_delays[k](xnp)
                self.keep_delays[k](np.zeros_like(xnp))
        return Y

    def _deterministic_step(self, k, Xk, Yprev, policy, unit, n_units, record):
        ratios = []
        for b in range(n_units):
            sl = slice(b * unit, (b + 1) * unit)
            r = policy.ratios(k, 1, self._scoring_view(Xk[:, sl]), self._scoring_view(Yprev[:, sl]))
            ratios.append(float(r[0]))
        if ratios and all(r == ratios[0] for r in ratios):  # one ratio for the chunk (fixed schedules): one op
            Z = torch.lerp(Yprev, Xk, ratios[0])
        else:
            rv = torch.tensor(np.repeat(np.asarray(ratios, dtype=np.float32), unit), device=Xk.device)
            rv = rv.view(1, -1, 1) if self.frame else rv.view(1, -1)
            Z = rv * Xk + (1.0 - rv) * Yprev
        Y, self.states[k] = self._run(Z, self.states[k], k)
        if record is not None and len(record.ratios) >= k:
            record.ratios[k - 1].extend(ratios)
        return Y

    def _search_step(self, k, Xk, Yprev, Xs, Pk, candidates, policy, unit, n_units, ctx, record):
        """Searching step.  ``Xk``/``Yprev``: what is blended; ``Xs``/``Pk``: the mixture and the
        keep-previous candidate aligned with this step's output (differ for waveform models)."""
        outs = []
        for b in range(n_units):
            sl = slice(b * unit, (b + 1) * unit)
            Xb, Pb = Xk[:, sl], Yprev[:, sl]
            Xsb, Kb = Xs[:, sl], Pk[:, sl]
            Xs_v, K_v = self._scoring_view(Xsb), self._scoring_view(Kb)
            rat = policy.ratios(k, candidates, self._scoring_view(Xb), self._scoring_view(Pb))
            C = len(rat)
            choice = None
            if self.lazy_keep and (self.frame or self.prev_choice[k] == KEEP):  # no crossfade pending
                choice = policy.precheck(k, C, Xs_v, K_v)
            if choice is not None:
                # a KEEP that no candidate could change: run only the one whose state survives a
                # KEEP (row i of the full batch, the same arithmetic), so the chain advances on the
                # same input as if all C had run
                i = _keep_survivor(choice, C)
                _, self.states[k] = self._run(_blend(rat[i : i + 1], Xb, Pb), self.states[k], k)
                Yb = Kb
            else:
                st = self.sep.fork(self.states[k], C)
                Yc, st = self._run(_blend(rat, Xb, Pb), st, k)
                sub_ctx = None
                if ctx is not None and "S" in ctx:
                    if self.frame and self.delay:  # the clean frames lined up with this step's output
                        lag = self.delay if self.fast else (k + 1) * self.delay
                        S0 = ctx["S"]
                        S = torch.cat([S0.new_zeros(S0.shape[0], lag, *S0.shape[2:]), S0], dim=1)[:, : S0.shape[1]]
                        sub_ctx = {"S": S[:, sl]}
                    elif self.frame:
                        sub_ctx = {"S": ctx["S"][:, sl]}
                    else:  # the clean reference lined up with this step's output ((k+1)·latency late)
                        lag = (k + 1) * self.sep.latency
                        S = torch.nn.functional.pad(ctx["S"], (lag, 0))[:, : ctx["S"].shape[1]]
                        sub_ctx = {"S": block_spectra(S[:, sl])}
                choice = policy.choose(k, Xs_v, K_v, self._scoring_view(Yc), rat, sub_ctx)
                if choice.index == KEEP:
                    self.states[k] = self.sep.select(st, [_keep_survivor(choice, C)])
                    Yb = Kb
                else:
                    self.states[k] = self.sep.select(st, [choice.index])
                    Yb = Yc[choice.index : choice.index + 1]
                if not self.frame:
                    Yb = self._crossfade(k, Yb, Yc, Kb, choice.index)
            self.prev_choice[k] = choice.index
            outs.append(Yb)
            if record is not None and len(record.ratios) >= k:
                record.ratios[k - 1].append(choice.ratio)
                if ctx is not None and "scores" in ctx:
                    ctx["scores"].append((k, choice.scores))
        return torch.cat(outs, dim=1)

    def _crossfade(self, k, Yb, Yc, Pb, index):
        """Waveform separators: fade from the previous survivor's continuation to the new one."""
        prev = self.prev_choice[k]
        if prev == index:
            return Yb
        old = Pb if prev == KEEP or prev >= Yc.shape[0] else Yc[prev : prev + 1]
        n = min(CROSSFADE, Yb.shape[-1])
        ramp = torch.linspace(0.0, 1.0, n + 2, device=Yb.device)[1:-1]
        Yb = Yb.clone()
        Yb[:, :n] = ramp * Yb[:, :n] + (1.0 - ramp) * old[:, :n]
        return Yb
