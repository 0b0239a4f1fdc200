"""Offline multi-step refinement on a whole signal, with oracle or blind selection.

The published procedure: ``y0 = f(x)``; for k = 1..K, candidates ``z = r·x + (1−r)·y(k−1)`` over a
ratio grid plus ``y(k−1)`` itself; each candidate is a full pass of ``f`` over the utterance (fresh
state); keep the best by the metric.  Metrics: ``oracle-sisdr`` / ``oracle-pesq`` (need the clean
reference) and ``dnsmos`` (blind, DNSMOS OVRL).  ``fixed`` applies a ratio schedule without search.

Scope: ``utterance`` (one ratio per step for the whole signal, as published) or ``block`` (a ratio
per block of ``block_ms``; each block takes the best candidate's segment, stitched with short
crossfades; SI-SDR only, since PESQ and DNSMOS are not defined on short blocks).

Blend: ``time`` (waveforms, as published) or ``frame`` (STFT frames of frame-domain separators; the
streaming engine blends there, which is what makes K steps free of extra latency).

The engine policies (``heuristic``, ``proxy``) run through :meth:`Engine.run_offline` instead —
see :func:`refine_signal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from streamsep.catalogue import ALL_POLICIES, ENGINE_POLICIES, NEEDS_REFERENCE, ORACLE_POLICIES  # noqa: F401
from streamsep.engine import Engine, EngineConfig
from streamsep.policies import DEFAULT_GRID, DEFAULT_SCHEDULE, PolicyError, spread
from streamsep.separators.base import FrameSeparator, Separator


@dataclass
class RefineResult:
    """Estimates per step (step 0 = one-step) and the chosen ratio per step (nan = kept previous)."""

    estimates: list[np.ndarray]
    ratios: list[float | list[float] | None]
    scores: list[float | None] = field(default_factory=list)


def run_separator(sep: Separator, x: np.ndarray, batch: int = 1) -> np.ndarray:
    """Run ``sep`` over whole signals ``x`` (B, N) at its rate, fresh state, latency removed."""
    x = np.atleast_2d(np.asarray(x, np.float32))
    B, n = x.shape
    total = int(np.ceil((n + sep.latency) / sep.hop) * sep.hop)
    xp = np.zeros((B, total), np.float32)
    xp[:, :n] = x
    y, _ = sep.process(xp, sep.new_state(B))
    return y[:, sep.latency : sep.latency + n]


class _FrameRunner:
    """Whole-signal passes of a frame-domain separator on STFT frames (frame blending)."""

    def __init__(self, sep: FrameSeparator, n: int) -> None:
        self.sep, self.n = sep, n
        self.total = int(np.ceil((n + sep.latency) / sep.hop) * sep.hop)

    def analyze(self, x: np.ndarray) -> torch.Tensor:
        xp = np.zeros((1, self.total), np.float32)
        xp[0, : len(x)] = x
        X, _ = self.sep.analyze(torch.as_tensor(xp, device=self.sep.device), self.sep.stft.new_analysis_state(1))
        return X

    @torch.inference_mode()
    def step(self, Z: torch.Tensor) -> torch.Tensor:
        Y, _ = self.sep.step(Z, self.sep.new_model_state(Z.shape[0]))
        d = int(getattr(self.sep, "step_delay", 0) or 0)
        if d:  # whole signals: undo the step's lag so every pass stays aligned with the mixture frames
            Y = torch.cat([Y[:, d:], torch.zeros_like(Y[:, :d])], dim=1)
        return Y

    def synth(self, Y: torch.Tensor) -> np.ndarray:
        y, _ = self.sep.synthesize(Y, self.sep.stft.new_synthesis_state(Y.shape[0]))
        # steps were realigned in step(): the separator's latency less its step lag
        L = self.sep.latency - int(getattr(self.sep, "step_delay", 0) or 0) * self.sep.hop
        return y[:, L : L + self.n].cpu().numpy()


def _metric_fn(policy: str, rate: int, reference: np.ndarray | None):
    from streamsep import metrics

    if policy == "oracle-sisdr":
        return lambda y: metrics.si_sdr(y, reference)
    if policy == "oracle-pesq":
        return lambda y: metrics.pesq_wb(y, reference, rate)
    if policy == "dnsmos":
        return lambda y: metrics.dnsmos(y, rate)["ovrl"]
    raise PolicyError(f"not an offline metric policy: {policy}")


def _stitch(cands: np.ndarray, choice: np.ndarray, block: int, fade: int) -> np.ndarray:
    """Per-block selection from candidate signals (C, N) with linear crossfades of ``fade`` samples."""
    C, n = cands.shape
    weights = np.zeros((C, n), np.float32)
    for b, c in enumerate(choice):
        weights[c, b * block : (b + 1) * block] = 1.0
    if fade > 1:
        kernel = np.ones(fade, np.float32) / fade
        weights = np.stack([np.convolve(w, kernel, mode="same") for w in weights])
        weights /= np.maximum(weights.sum(axis=0, keepdims=True), 1e-9)
    return (weights * cands).sum(axis=0)


def refine_search(
    sep: Separator,
    x: np.ndarray,
    steps: int,
    policy: str,
    candidates: int = 9,
    reference: np.ndarray | None = None,
    scope: str = "utterance",
    block_ms: float = 200.0,
    blend: str = "time",
    ratios: list[float] | None = None,
) -> RefineResult:
    """The offline refiner with oracle/blind metric selection or a fixed schedule (see module doc).

    ``x`` and ``reference`` are at the separator's rate and of equal length.
    """
    rate = sep.sample_rate
    n = len(x)
    if policy in NEEDS_REFERENCE and reference is None:
        raise PolicyError(f"policy {policy} needs a clean reference (--reference)")
    if blend not in ("time", "frame"):
        raise PolicyError(f"blend must be 'time' or 'frame', not {blend!r}")
    if blend == "frame" and not (isinstance(sep, FrameSeparator) and sep.frame_domain):
        raise PolicyError(f"blend 'frame' needs a frame-domain separator; {sep.name} is waveform")
    if scope == "block" and policy not in ("oracle-sisdr", "fixed"):
        raise PolicyError("per-block scope supports oracle-sisdr (PESQ/DNSMOS need whole utterances)")
    fr = _FrameRunner(sep, n) if blend == "frame" else None
    if fr is not None:
        X = fr.analyze(x)
        Y = fr.step(X)
        y = fr.synth(Y)[0]
    else:
        y = run_separator(sep, x)[0]
    result = RefineResult([y], [None], [None])
    if policy == "fixed":
        sched = tuple(ratios) if ratios else DEFAULT_SCHEDULE
        for k in range(1, steps + 1):
            r = float(sched[min(k - 1, len(sched) - 1)])
            if fr is not None:
                Y = fr.step(r * X + (1 - r) * Y)
                y = fr.synth(Y)[0]
            else:
                y = run_separator(sep, r * x + (1 - r) * y)[0]
            result.estimates.append(y)
            result.ratios.append(r)
            result.scores.append(None)
        return result
    score = _metric_fn(policy, rate, reference)
    grid = spread(DEFAULT_GRID, candidates)
    block = max(1, int(round(block_ms * 1e-3 * rate)))
    for _k in range(1, steps + 1):
        if fr is not None:
            rv = torch.tensor(grid, device=X.device).view(-1, 1, 1)
            Yc = fr.step(rv * X + (1 - rv) * Y)
            cands = fr.synth(Yc)
        else:
            Z = grid[:, None] * x[None] + (1 - grid[:, None]) * y[None]
            cands = run_separator(sep, Z, batch=len(grid))
        if scope == "utterance":
            vals = [score(c) for c in cands] + [score(y)]
            best = int(np.nanargmax(vals))
            if best < len(grid):
                y = cands[best]
                if fr is not None:
                    Y = Yc[best : best + 1]
                result.ratios.append(float(grid[best]))
            else:
                result.ratios.append(float("nan"))
            result.scores.append(float(vals[best]))
        else:
            from streamsep.metrics import si_sdr

            allc = np.concatenate([cands, y[None]], axis=0)
            nb = int(np.ceil(n / block))
            choice = np.zeros(nb, int)
            for b in range(nb):
                sl = slice(b * block, min(n, (b + 1) * block))
                if np.sum(reference[sl] ** 2) < 1e-8:
                    choice[b] = len(grid)  # silent reference block: keep previous
                    continue
                vals = [si_sdr(c[sl], reference[sl]) for c in allc]
                choice[b] = int(np.nanargmax(vals))
            y = _stitch(allc, choice, block, fade=min(block, int(0.005 * rate)))
            if fr is not None:
                Y = fr.analyze(y)  # continue from the stitched estimate's frames
            result.ratios.append([float(grid[c]) if c < len(grid) else float("nan") for c in choice])
            result.scores.append(None)
        result.estimates.append(y.astype(np.float32))
    return result


def refine_signal(
    sep: Separator,
    x: np.ndarray,
    steps: int,
    policy: str,
    candidates: int = 9,
    reference: np.ndarray | None = None,
    scope: str = "utterance",
    block_ms: float = 200.0,
    blend: str = "time",
    ratios: list[float] | None = None,
    config: EngineConfig | None = None,
) -> RefineResult:
    """Dispatch: metric policies → :func:`refine_search`; engine policies → the engine offline.

    For engine policies (``heuristic``, ``proxy``, and ``fixed`` when ``config`` is given) the
    whole signal goes through :meth:`Engine.run_offline` — the same code as streaming.
    """
    if policy not in ALL_POLICIES and not policy.startswith("proxy:"):
        raise PolicyError(f"unknown policy '{policy}' (known: {', '.join(ALL_POLICIES)})")
    if policy in ORACLE_POLICIES or (policy == "fixed" and config is None):
        return refine_search(sep, x, steps, policy, candidates, reference, scope, block_ms, blend, ratios)
    if policy == "oracle-block" and reference is None:
        raise PolicyError("policy oracle-block needs a clean reference (--reference)")
    cfg = config or EngineConfig(
        model=sep.name,
        steps=steps,
        candidates=candidates,
        policy=policy,
        ratios=ratios,
        block=int(round(block_ms * 1e-3 * sep.sample_rate / sep.hop)) * sep.hop,
    )
    eng = Engine(cfg, separator=sep)
    final, per, diag = eng.run_offline(x, reference=reference if policy == "oracle-block" else None, per_step=True)
    rec_ratios: list = [None] + [list(map(float, r)) for r in diag["ratios"][: len(per) - 1]]
    return RefineResult(per, rec_ratios, [None] * len(per))
