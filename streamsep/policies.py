"""Ratio policies: which blend ratio r each refinement step uses, block by block.

A step blends the mixture with the previous estimate, ``Z = r·X + (1−r)·Y(k−1)``, and runs the
separator again.  A policy proposes candidate ratios for a block and, when there are several, picks
the survivor (or ``KEEP`` = keep the previous estimate, which costs no pass and is always allowed).

All policies here are *reference-free* (usable live) except :class:`OracleBlock`, which scores
candidates against a clean reference and exists to measure how often the proxies agree with it.

Scores work on complex STFT frames of shape (B, T, F) (``T`` frames of one decision block).  For
waveform separators the engine hands over a short-time spectrum of each block, so one code path
serves both.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from streamsep.catalogue import DEFAULT_PROXY, ENGINE_POLICIES, PROXY_NAMES

KEEP = -1  # "keep the previous estimate"
EPS = 1e-10

#: ratio grid used when a policy searches (C candidates are spread over it)
DEFAULT_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: default fixed schedule: mixture weight decreasing with the step index (the bridge view)
DEFAULT_SCHEDULE = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.1)


class PolicyError(ValueError):
    """Unknown policy or bad policy parameters."""


def power(frames: torch.Tensor) -> torch.Tensor:
    """|frames|² as a real tensor."""
    return frames.real**2 + frames.imag**2


def frame_power(frames: torch.Tensor) -> np.ndarray:
    """Σ_f |frames|² per frame: (B, T, F) complex → (B, T) float.  On the CPU one ``einsum`` over
    a float view of the complex64 data (no temporaries); elsewhere torch."""
    if frames.device.type == "cpu" and frames.dtype == torch.complex64:
        f = frames.numpy()
        if not f.flags.c_contiguous:
            f = np.ascontiguousarray(f)
        v = f.view(np.float32)
        return np.einsum("btj,btj->bt", v, v)
    return power(frames).sum(dim=-1).cpu().numpy()


@functools.lru_cache(maxsize=64)
def _spread(grid: tuple[float, ...], count: int) -> np.ndarray:
    if count >= len(grid):
        out = np.asarray(grid, dtype=np.float32)
    else:
        idx = np.round(np.linspace(0, len(grid) - 1, count)).astype(int)
        if count == 1:
            idx = np.array([len(grid) // 2])
        out = np.asarray([grid[i] for i in idx], dtype=np.float32)
    out.flags.writeable = False
    return out


def spread(grid: tuple[float, ...], count: int) -> np.ndarray:
    """``count`` ratios spread evenly over ``grid`` (count ≥ len(grid) returns the whole grid);
    read-only, computed once per (grid, count)."""
    return _spread(tuple(grid), int(count))


@dataclass
class Choice:
    """What a policy decided for one block and step."""

    index: int  # candidate index, or KEEP
    ratio: float  # the ratio of the survivor (nan when KEEP)
    scores: np.ndarray | None = None  # per-candidate scores (KEEP score last), for diagnostics


class Policy(ABC):
    """Base class.  ``searches`` is True when the policy runs several candidates and selects."""

    name = "policy"
    searches = False
    deterministic = True

    @abstractmethod
    def ratios(self, k: int, candidates: int, X: torch.Tensor, Yprev: torch.Tensor) -> np.ndarray:
        """Candidate ratios for step ``k`` (1-based) of one block: shape (C,) or (C, T) per frame."""

    def choose(
        self,
        k: int,
        X: torch.Tensor,
        Yprev: torch.Tensor,
        Ycand: torch.Tensor,
        ratios: np.ndarray,
        ctx: dict | None = None,
    ) -> Choice:
        """Pick the survivor among ``Ycand`` (C, T, F) or KEEP.  Non-searching policies take 0."""
        return Choice(0, float(np.mean(ratios[0])))

    def precheck(self, k: int, candidates: int, X: torch.Tensor, Yprev: torch.Tensor) -> Choice | None:
        """A KEEP decided from the mixture and the previous estimate alone, before any candidate is
        run, or None.  When it returns None, the next :meth:`choose` for step ``k`` completes the
        decision of the same block.  The engine then runs only the candidate whose state survives
        a KEEP (the best-scoring one, by the returned scores).  Default: never decided early."""
        return None


class FixedPolicy(Policy):
    """A ratio schedule per step; no search, cheapest.  Step k uses ``schedule[k−1]``."""

    name = "fixed"

    def __init__(self, schedule: tuple[float, ...] | list[float] | None = None) -> None:
        self.schedule = tuple(schedule) if schedule else DEFAULT_SCHEDULE
        for r in self.schedule:
            if not 0.0 <= float(r) <= 1.0:
                raise PolicyError(f"fixed ratio {r} outside [0, 1]")

    def ratios(self, k, candidates, X, Yprev):
        r = self.schedule[min(k - 1, len(self.schedule) - 1)]
        return np.asarray([r], dtype=np.float32)


class HeuristicPolicy(Policy):
    """Closed-form ratio per block from an SNR estimate of the previous estimate.

    ``snr = Σ|Y|² / Σ|X − Y|²`` over the block (what the model kept against what it removed).  When
    the block is clean the model should be left alone (large r: much mixture), when it is noisy the
    estimate is refined harder (small r).  ``r = r_lo + (r_hi − r_lo)·σ((snr_dB − mid)/width)``.
    """

    name = "heuristic"

    def __init__(self, r_lo: float = 0.2, r_hi: float = 0.8, mid_db: float = 5.0, width_db: float = 5.0) -> None:
        self.r_lo, self.r_hi, self.mid_db, self.width_db = r_lo, r_hi, mid_db, width_db

    def ratios(self, k, candidates, X, Yprev):
        ps = float(power(Yprev).sum())
        pn = float(power(X - Yprev).sum())
        snr_db = 10.0 * np.log10((ps + EPS) / (pn + EPS))
        w = 1.0 / (1.0 + np.exp(-(snr_db - self.mid_db) / self.width_db))
        return np.asarray([self.r_lo + (self.r_hi - self.r_lo) * w], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# proxy scores: higher is better; each returns (C+1,) with the KEEP candidate last
# ---------------------------------------------------------------------------------------------
def _stack_keep(Ycand: torch.Tensor, Yprev: torch.Tensor) -> torch.Tensor:
    return torch.cat([Ycand, Yprev.expand(1, *Yprev.shape[1:])], dim=0)


def score_energy(X, Yprev, Ycand, ctx=None) -> np.ndarray:
    """Naive proxy: lower output energy is better (rewards over-suppression; a baseline)."""
    Y = _stack_keep(Ycand, Yprev)
    e = power(Y).sum(dim=(1, 2)) / (power(X).sum() + EPS)
    return (-10.0 * torch.log10(e + EPS)).cpu().numpy()


def score_speech_preserving(X, Yprev, Ycand, ctx=None, lam: float = 4.0, thresh: float = 0.5) -> np.ndarray:
    """Noise removed where the previous estimate says noise, minus speech distortion where it says speech.

    Speech-dominant bins: ``|Yprev|²/|X|² > thresh``.  Score = noise reduction (dB) in the other bins
    − ``lam`` × relative magnitude change (dB-like) in speech bins against the previous estimate.
    """
    Y = _stack_keep(Ycand, Yprev)
    px, pp = power(X)[0], power(Yprev)[0]
    speech = (pp / (px + EPS)) > thresh
    noise = ~speech
    py = power(Y)
    nr = -10.0 * torch.log10((py * noise).sum(dim=(1, 2)) + EPS) + 10.0 * torch.log10((px * noise).sum() + EPS)
    mag_y, mag_p = py.sqrt(), pp.sqrt()
    dist = ((mag_y - mag_p) ** 2 * speech).sum(dim=(1, 2)) / ((pp * speech).sum() + EPS)
    score = nr - lam * 10.0 * torch.log10(1.0 + dist)
    if not bool(noise.any()):
        score = -lam * 10.0 * torch.log10(1.0 + dist)
    return score.cpu().numpy()


def score_residual_flatness(X, Yprev, Ycand, ctx=None, lam: float = 10.0) -> np.ndarray:
    """Residual noise-likeness: the removed part ``X − Y`` should be spectrally flat (noise-like).

    Score = noise removed in dB + ``lam`` × spectral flatness (0..1) of the mean residual spectrum.
    Over-suppression leaves speech harmonics in the residual, which lowers its flatness.
    """
    Y = _stack_keep(Ycand, Yprev)
    res = power(X - Y).mean(dim=1) + EPS  # (C+1, F)
    flat = torch.exp(torch.log(res).mean(dim=-1)) / res.mean(dim=-1)
    removed = 10.0 * torch.log10(power(X).sum() + EPS) - 10.0 * torch.log10(power(Y).sum(dim=(1, 2)) + EPS)
    return (removed + lam * flat).cpu().numpy()


def score_oracle_sdr(X, Yprev, Ycand, ctx=None) -> np.ndarray:
    """Oracle: the block's SDR against the clean reference frames ``ctx['S']`` (STFT domain).

    Not scale-invariant on purpose: SI-SDR of a block whose reference is (nearly) silent is
    undefined, while the block's error energy ``‖Y − S‖²`` is exactly its contribution to the
    utterance-level error, which is what utterance SI-SDR / SDR measure.
    """
    S = ctx["S"]
    Y = _stack_keep(Ycand, Yprev)
    dims = tuple(range(1, Y.dim()))
    err = power(Y - S).sum(dim=dims)
    return (10.0 * torch.log10((power(S).sum() + EPS) / (err + EPS))).cpu().numpy()


def candidate_features(k: int, ratios: np.ndarray, X, Yprev, Ycand) -> np.ndarray:
    """Block features of each candidate against the previous estimate, shape (C, 9).

    Columns: step k, ratio r, SNR of the previous estimate (dB, kept/removed), energy change (dB),
    change in noise-dominant bins (dB), change in speech-dominant bins (dB), log10 speech-bin
    magnitude distortion, speech-bin fraction, mixture level (dB per bin).  Speech-dominant bins are
    those where the previous estimate kept more than half the mixture power.
    """
    px, pp = power(X)[0], power(Yprev)[0]
    speech = (pp / (px + EPS)) > 0.5
    noise = ~speech
    snr_prev = 10.0 * np.log10((float(pp.sum()) + EPS) / (float(power(X - Yprev).sum()) + EPS))
    level = 10.0 * np.log10((float(px.sum()) + EPS) / px.numel())
    py = power(Ycand)
    dims = (1, 2)
    e_ratio = 10.0 * torch.log10((py.sum(dim=dims) + EPS) / (pp.sum() + EPS))
    nr = 10.0 * torch.log10(((py * noise).sum(dim=dims) + EPS) / ((pp * noise).sum() + EPS))
    spc = 10.0 * torch.log10(((py * speech).sum(dim=dims) + EPS) / ((pp * speech).sum() + EPS))
    dist = (((py.sqrt() - pp.sqrt()) ** 2) * speech).sum(dim=dims) / ((pp * speech).sum() + EPS)
    C = py.shape[0]
    r = np.asarray(ratios, dtype=np.float64).reshape(C, -1).mean(axis=1)
    out = np.empty((C, 9))
    out[:, 0] = k
    out[:, 1] = r
    out[:, 2] = snr_prev
    out[:, 3] = e_ratio.cpu().double().numpy()
    out[:, 4] = nr.cpu().double().numpy()
    out[:, 5] = spc.cpu().double().numpy()
    out[:, 6] = np.log10(dist.cpu().double().numpy() + 1e-6)
    out[:, 7] = float(speech.float().mean())
    out[:, 8] = level
    return out


def calibrated_basis(f: np.ndarray) -> np.ndarray:
    """The regression basis of the calibrated proxy from :func:`candidate_features` rows (…, 9)."""
    k, r, snr, er, nr, spc, ld, sf, lvl = (f[..., i] for i in range(9))
    snr = np.clip(snr, -40.0, 40.0)
    return np.stack(
        [
            np.ones_like(r),
            r,
            r * r,
            snr / 10,
            r * snr / 10,
            er,
            nr,
            spc,
            ld,
            sf,
            sf * r,
            (k == 1).astype(float),
            er * sf,
            spc * sf,
            np.clip(lvl, -100.0, 0.0) / 10,
        ],
        axis=-1,
    )


#: Ridge weights predicting the block-SDR gain (dB) of a candidate over keeping the previous
#: estimate.  Fitted with ``scripts/fit_proxy.py`` on NSNet2 / NOIZEUS (32 files, 3 steps, 9 ratios,
#: 200 ms blocks); validated on the held-out leventure set (docs/PROXIES.md).
CALIBRATED_WEIGHTS = np.array(
    [-1.098, 0.674, 0.424, -0.283, 0.326, -0.311, 0.266, 0.243, 0.031, 2.473, -2.05, 0.224, 0.762, 3.724, -0.124]
)


def score_calibrated(X, Yprev, Ycand, ctx=None, k: int = 1, ratios=None) -> np.ndarray:
    """Predicted block-SDR gain over keep (dB) from block features; KEEP scores 0 (last)."""
    if ratios is None:
        ratios = np.full(Ycand.shape[0], 0.5)
    pred = calibrated_basis(candidate_features(k, ratios, X, Yprev, Ycand)) @ CALIBRATED_WEIGHTS
    return np.concatenate([pred, [0.0]])


def score_noise_gated(X, Yprev, Ycand, ctx=None, gate_db: float = -25.0) -> np.ndarray:
    """Act only where the previous estimate says the block is noise: there, less energy is better.

    When the previous estimate kept little of the block (``Σ|Y|² / Σ|X − Y|²`` below ``gate_db``),
    the clean reference is (nearly) silent and any residual is noise, so a candidate scores the dB of
    energy it removes beyond the previous estimate (the default margin asks for 3 dB).  Elsewhere
    (speech present) no reference-free score was found that predicts the oracle (docs/PROXIES.md),
    so every candidate scores −inf and the previous estimate is kept.  Measured: raises DNSMOS a
    little and still costs PESQ (on/off modulation of the residual noise) — see docs/RESULTS.md.
    """
    pp = power(Yprev).sum()
    snr_prev = 10.0 * torch.log10((pp + EPS) / (power(X - Yprev).sum() + EPS))
    C = Ycand.shape[0]
    if float(snr_prev) >= gate_db:
        return np.concatenate([np.full(C, -np.inf), [0.0]])
    removed = 10.0 * torch.log10((pp + EPS) / (power(Ycand).sum(dim=(1, 2)) + EPS))
    return np.concatenate([removed.cpu().numpy(), [0.0]])


def score_floor_match(X, Yprev, Ycand, ctx=None) -> np.ndarray:
    """Stateless view of the ``floor-match`` proxy (for listings): dB each candidate removes beyond
    the previous estimate, KEEP last.  The decision itself needs history: :class:`FloorMatchPolicy`."""
    pp = power(Yprev).sum()
    removed = 10.0 * torch.log10((pp + EPS) / (power(Ycand).sum(dim=(1, 2)) + EPS))
    return np.concatenate([removed.cpu().numpy(), [0.0]])


PROXIES = {
    "floor-match": score_floor_match,
    "noise-gated": score_noise_gated,
    "calibrated": score_calibrated,
    "energy": score_energy,
    "speech-preserving": score_speech_preserving,
    "residual-flatness": score_residual_flatness,
}
assert tuple(PROXIES) == PROXY_NAMES, "policies.PROXIES and catalogue.PROXY_NAMES disagree"


class ProxyPolicy(Policy):
    """Run C candidate ratios, score each (and the previous estimate) with a reference-free proxy.

    A candidate replaces the previous estimate only if it beats it by ``margin`` (score units):
    where the proxy cannot tell, the previous estimate is kept.
    """

    name = "proxy"
    searches = True

    def __init__(
        self, proxy: str = "noise-gated", margin: float | None = None, grid: tuple[float, ...] = DEFAULT_GRID
    ) -> None:
        if proxy not in PROXIES:
            raise PolicyError(f"unknown proxy '{proxy}' (known: {', '.join(PROXIES)})")
        if proxy == "floor-match":
            raise PolicyError("proxy 'floor-match' decides with history: build it with proxy_policy('floor-match')")
        if margin is None:  # calibrated scores are dB of predicted gain; the others are heuristic units
            margin = {"calibrated": 0.25, "noise-gated": 3.0}.get(proxy, 0.5)
        self.proxy, self.margin, self.grid = proxy, float(margin), tuple(grid)
        self.score = PROXIES[proxy]

    def ratios(self, k, candidates, X, Yprev):
        return spread(self.grid, max(1, candidates))

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        if self.score is score_calibrated:
            s = score_calibrated(X, Yprev, Ycand, ctx, k=k, ratios=ratios)
        else:
            s = self.score(X, Yprev, Ycand, ctx)
        best = int(np.argmax(s[:-1]))
        if s[best] > s[-1] + self.margin:
            return Choice(best, float(ratios[best]), s)
        return Choice(KEEP, float("nan"), s)


def _unscored_keep(candidates: int) -> Choice:
    """KEEP decided before any candidate was scored (every candidate scores −inf)."""
    return Choice(KEEP, float("nan"), np.concatenate([np.full(candidates, -np.inf), [0.0]]))


class FloorMatchPolicy(ProxyPolicy):
    """The default proxy: remove impulsive noise that leaked into pauses, down to the residual floor.

    Acts on a decision block only when reference-free tests agree that it holds no speech and that
    something impulsive happened in it:

    1. the previous estimate kept little of the block — ``Σ|Y|² / Σ|X − Y|²`` below ``gate_db`` — and
       so did every frame of it (an onset at the end of a block keeps the block), for at least the
       last ``quiet_s`` seconds (with blocks shorter than that, the preceding blocks too: five
       frames alone are a weak "no speech here" test);
    2. the mixture holds an impulsive event: the block's loudest frame is at least ``transient_db``
       above the median frame level of the mixture over the last ``transient_s`` seconds (this block
       included; with 200 ms blocks, the block's own median) — a key click, a knock, a clap.  Steady
       noise never qualifies, which is the point: lowering the *steady* residual in pauses costs PESQ
       wherever the clean reference has room tone there (docs/PROXIES.md), and at low SNR a block at
       the mixture's floor can be speech the model removed (NOIZEUS at 0 dB).  ``mix_db`` (off by default; the second-session rule)
       instead asks that the mixture's block level be within ``mix_db`` of its floor;
    3. the previous estimate's level is more than ``excess_db`` above the *residual floor* (a low
       percentile of its level over the blocks that passed test 1 in the last ``history_s``
       seconds): the event leaked;
    4. at least ``warmup_s`` seconds of history exist.

    Defaults chosen on every ../shared pair (scripts/proxy_bar.py, docs/PROXIES.md).

    It then picks the candidate whose level lands closest to the residual floor, among those that
    remove at least ``margin`` dB (4 dB: small removals were where the rule cost PESQ — on every
    leventure pair the mean PESQ change went −0.0003 / −0.0001 / +0.00002 / +0.00005 for margins of
    1 / 2 / 3 / 4 dB, docs/PROXIES.md) and stay no more than ``under_db`` below the floor.  Otherwise it
    keeps the previous estimate.  State: per step, short level histories (reset with the policy; the
    engine makes a new policy when the configuration changes).
    """

    def __init__(
        self,
        gate_db: float = -25.0,
        transient_db: float | None = 12.0,
        mix_db: float | None = None,
        excess_db: float = 3.0,
        under_db: float = 1.0,
        margin: float = 4.0,
        history_s: float = 3.0,
        transient_s: float = 0.2,
        quiet_s: float = 0.2,
        warmup_s: float = 1.0,
        quantile: float = 0.1,
        grid: tuple[float, ...] = DEFAULT_GRID,
    ) -> None:
        self.proxy, self.margin, self.grid = "floor-match", float(margin), tuple(grid)
        self.score = score_floor_match
        self.gate_db, self.transient_db, self.mix_db = gate_db, transient_db, mix_db
        self.excess_db, self.under_db = excess_db, under_db
        self.history_s, self.transient_s, self.quiet_s = history_s, transient_s, quiet_s
        self.warmup_s, self.quantile = warmup_s, quantile
        self.block_s = 0.01
        self.reset()

    def configure(self, block_s: float) -> None:
        """Decision-block length in seconds (sets the history lengths)."""
        self.block_s = max(1e-4, float(block_s))

    def reset(self) -> None:
        self._mix: dict[int, list[float]] = {}  # mixture block level (dB), every block
        self._mixf: dict[int, list[float]] = {}  # mixture frame levels (dB), the last transient_s
        self._res: dict[int, list[float]] = {}  # previous estimate's level (dB), gated blocks
        self._quiet: dict[int, float] = {}  # seconds the previous estimate has been gated
        self._pending: dict[int, tuple] = {}  # per step: a precheck's result awaiting choose

    def _push(self, hist: dict, k: int, v: float) -> float:
        """Append ``v`` to step ``k``'s history and return its low quantile."""
        h = hist.setdefault(k, [])
        h.append(v)
        n = max(1, int(round(self.history_s / self.block_s)))
        if len(h) > n:
            del h[: len(h) - n]
        if len(h) == 1:
            return v
        i = int(self.quantile * (len(h) - 1))
        return float(np.partition(h, i)[i])

    def precheck(self, k, candidates, X, Yprev):
        """Every test that needs no candidate (1, 2, 4 and the residual floor); the histories are
        updated here, once per block.  Most blocks (speech, steady noise) end here with a KEEP."""
        self._pending.pop(k, None)  # a block whose candidates failed to run left one behind
        res = self._block_tests(k, X, Yprev)
        if res is None:
            return _unscored_keep(int(candidates))
        self._pending[k] = res
        return None

    def _block_tests(self, k, X, Yprev) -> tuple[float, float, int] | None:
        """Update step ``k``'s histories with this block; None = keep (no candidate can change it),
        else (previous estimate's level dB, residual floor dB, frames) for the candidate tests."""
        T = max(1, X.shape[1])
        # per-frame powers of the mixture, the previous estimate and what it removed
        pf = frame_power(X)[0].astype(np.float64)  # the mixture's histories need every block
        fr = 10.0 * np.log10(pf + EPS)  # per frame, dB
        e_mix = 10.0 * np.log10(float(pf.sum()) / T + EPS)
        mix_floor = self._push(self._mix, k, e_mix)
        recent = self._mixf.setdefault(k, [])  # the mixture's frame levels over the last transient_s
        recent.extend(fr.tolist())
        n_recent = max(len(fr), int(round(self.transient_s / self.block_s * len(fr))))
        if len(recent) > n_recent:
            del recent[: len(recent) - n_recent]
        ppf, prf = frame_power(Yprev)[0], frame_power(X - Yprev)[0]
        pp_sum = float(ppf.sum())
        block_db = 10.0 * np.log10((pp_sum + EPS) / (float(prf.sum()) + EPS))
        gated = block_db < self.gate_db
        if gated:  # and every frame of it
            kept_db = 10.0 * np.log10((ppf + EPS) / (prf + EPS))
            gated = float(kept_db.max()) < self.gate_db
        self._quiet[k] = self._quiet.get(k, 0.0) + self.block_s if gated else 0.0
        if not gated or len(self._mix[k]) * self.block_s < self.warmup_s - 1e-9:
            return None
        if self._quiet[k] < self.quiet_s - 0.5 * self.block_s:  # to the nearest block
            return None
        if self.mix_db is not None and e_mix > mix_floor + self.mix_db:
            return None
        e_prev = 10.0 * np.log10(pp_sum / T + EPS)
        floor = self._push(self._res, k, e_prev)  # every pause block: the residual floor needs them
        if self.transient_db is not None and float(fr.max()) < float(np.median(recent)) + self.transient_db:
            return None
        return e_prev, floor, T

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        C = Ycand.shape[0]
        res = self._pending.pop(k, None)
        if res is None:  # no precheck for this block: run the block tests now
            res = self._block_tests(k, X, Yprev)
            if res is None:
                return _unscored_keep(C)
        e_prev, floor, T = res
        e_c = 10.0 * np.log10(frame_power(Ycand).sum(axis=1, dtype=np.float64) / T + EPS)
        scores = np.concatenate([e_prev - e_c, [0.0]])
        if e_prev <= floor + self.excess_db:
            return Choice(KEEP, float("nan"), scores)
        ok = np.where((e_c >= floor - self.under_db) & (e_c <= e_prev - self.margin))[0]
        if len(ok) == 0:
            return Choice(KEEP, float("nan"), scores)
        best = int(ok[np.argmin(np.abs(e_c[ok] - floor))])
        return Choice(best, float(ratios[best]), scores)


class OracleBlock(ProxyPolicy):
    """Per-block oracle (block SDR against the clean reference); offline measurement only."""

    name = "oracle-block"

    def __init__(self, grid: tuple[float, ...] = DEFAULT_GRID) -> None:
        self.proxy, self.margin, self.grid = "oracle", 0.0, tuple(grid)
        self.score = score_oracle_sdr


def proxy_policy(proxy: str, margin: float | None = None) -> ProxyPolicy:
    """The ``proxy`` policy for a proxy name (``floor-match`` has its own, stateful, rule)."""
    if proxy == "floor-match":
        return FloorMatchPolicy() if margin is None else FloorMatchPolicy(margin=margin)
    return ProxyPolicy(proxy, margin=margin)


def make_policy(name: str, ratios: list[float] | None = None, proxy: str | None = None) -> Policy:
    """Build an engine policy by name (``fixed``, ``heuristic``, ``proxy``, ``oracle-block``)."""
    if name == "fixed":
        return FixedPolicy(ratios)
    if name == "heuristic":
        return HeuristicPolicy()
    if name == "proxy":
        return proxy_policy(proxy or DEFAULT_PROXY)
    if name.startswith("proxy:"):
        return proxy_policy(name.split(":", 1)[1])
    if name == "oracle-block":
        return OracleBlock()
    raise PolicyError(f"unknown engine policy '{name}' (known: {', '.join(ENGINE_POLICIES)})")
