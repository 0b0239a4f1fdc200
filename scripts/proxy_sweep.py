#!/usr/bin/env python3
"""Proxy-policy sweep: per-step change of SI-SDR, PESQ and DNSMOS OVRL against one-step, on a subset of
a clean/noisy pair directory (the exploration behind docs/lab/2026-11-25-proxies.md, "Searching for a safe default").

    python scripts/proxy_sweep.py DATASET MODEL FILES K C BLOCK_MS VARIANT[,VARIANT...]
    e.g. python scripts/proxy_sweep.py leventure nsnet2 16 3 4 200 default,noise-gated,g35,fmv

DATASET is a folder under $SHARED/data/pairs (default ../shared).  Variants: ``default`` (the product's
default proxy policy), any product proxy name, or one of the exploratory variants in VARIANTS below
(the ablations reported in docs/lab/2026-11-25-proxies.md).  One line per variant: k1..kK deltas (dB, PESQ, OVRL),
the fraction of decisions that kept the previous estimate, the one-step means, seconds.
DNSMOS scores one 9.01 s window per clip here (STREAMSEP_DNSMOS_WINDOWS=1) to keep sweeps fast.
"""

import collections
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
os.environ.setdefault("STREAMSEP_DNSMOS_WINDOWS", "1")

from streamsep.config import ms_block  # noqa: E402
from streamsep.engine import Engine, EngineConfig  # noqa: E402
from streamsep.metrics import dnsmos, pesq_wb, si_sdr  # noqa: E402
from streamsep.pairs import find_pairs, read_pair  # noqa: E402
from streamsep.policies import (  # noqa: E402
    EPS,
    KEEP,
    PROXIES,
    Choice,
    FloorMatchPolicy,
    ProxyPolicy,
    make_policy,
    power,
    proxy_policy,
)
from streamsep.separators.registry import create  # noqa: E402

SHARED = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared"))

# -- exploratory variants (ablations; the product's FloorMatchPolicy is the one that survived) ---------


class Gated(ProxyPolicy):
    def __init__(
        self, gate_db=-25.0, frame_gate=False, hold=0, floor_db=None, floor_s=2.0, margin=3.0, frame_db=None, pick="max"
    ):
        super().__init__("noise-gated", margin=margin)
        self.gate_db, self.frame_gate, self.hold, self.floor_db, self.floor_s = (
            gate_db,
            frame_gate,
            hold,
            floor_db,
            floor_s,
        )
        self.frame_db = gate_db if frame_db is None else frame_db
        self.pick = pick
        self.run = collections.defaultdict(int)
        self.hist = collections.defaultdict(collections.deque)
        self.block_s = 0.2

    def configure(self, block_s):
        self.block_s = block_s

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        C = Ycand.shape[0]
        px = power(X)
        pp = power(Yprev)
        pr = power(X - Yprev)
        snr = 10 * math.log10((float(pp.sum()) + EPS) / (float(pr.sum()) + EPS))
        gated = snr < self.gate_db
        if gated and self.frame_gate:
            fs = 10 * torch.log10((pp.sum(-1) + EPS) / (pr.sum(-1) + EPS))
            gated = float(fs.max()) < self.frame_db
        if self.floor_db is not None:
            e = 10 * math.log10(float(px.sum()) / px.shape[1] + EPS)
            h = self.hist[k]
            h.append(e)
            n = max(1, int(round(self.floor_s / self.block_s)))
            while len(h) > n:
                h.popleft()
            gated = gated and e < min(h) + self.floor_db
        self.run[k] = self.run[k] + 1 if gated else 0
        s_keep = np.concatenate([np.full(C, -np.inf), [0.0]])
        if not gated or self.run[k] <= self.hold:
            return Choice(KEEP, float("nan"), s_keep)
        removed = (10 * torch.log10((pp.sum() + EPS) / (power(Ycand).sum(dim=(1, 2)) + EPS))).numpy()
        s = np.concatenate([removed, [0.0]])
        ok = np.where(removed > self.margin)[0]
        if len(ok) == 0:
            return Choice(KEEP, float("nan"), s)
        best = int(ok[np.argmax(removed[ok])]) if self.pick == "max" else int(ok[np.argmin(removed[ok])])
        return Choice(best, float(ratios[best]), s)


VARIANTS = {
    "ng": lambda: make_policy("proxy", proxy="noise-gated"),
    "g25": lambda: Gated(),
    "g35": lambda: Gated(gate_db=-35),
    "g25f": lambda: Gated(frame_gate=True),
    "g25f15": lambda: Gated(frame_gate=True, frame_db=-15),
    "g25h1": lambda: Gated(hold=1),
    "g25fl3": lambda: Gated(floor_db=3.0),
    "g25fl3f": lambda: Gated(floor_db=3.0, frame_gate=True),
    "g25fl3fh1": lambda: Gated(floor_db=3.0, frame_gate=True, hold=1),
    "g25min": lambda: Gated(pick="min"),
}


class FloorMatch(ProxyPolicy):
    """Gated blocks only; bring residual bursts down to the running residual floor, never below."""

    def __init__(self, gate_db=-25.0, excess_db=3.0, hist_s=3.0, under_db=1.0, margin=1.0, frame_gate=False):
        super().__init__("noise-gated", margin=margin)
        self.gate_db, self.excess_db, self.hist_s, self.under_db, self.frame_gate = (
            gate_db,
            excess_db,
            hist_s,
            under_db,
            frame_gate,
        )
        self.hist = collections.defaultdict(collections.deque)
        self.block_s = 0.2

    def configure(self, block_s):
        self.block_s = block_s

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        C = Ycand.shape[0]
        pp = power(Yprev)
        pr = power(X - Yprev)
        snr = 10 * math.log10((float(pp.sum()) + EPS) / (float(pr.sum()) + EPS))
        keep = Choice(KEEP, float("nan"), np.concatenate([np.full(C, -np.inf), [0.0]]))
        gated = snr < self.gate_db
        if gated and self.frame_gate:
            fs = 10 * torch.log10((pp.sum(-1) + EPS) / (pr.sum(-1) + EPS))
            gated = float(fs.max()) < self.gate_db
        if not gated:
            return keep
        T = pp.shape[1]
        e_prev = 10 * math.log10(float(pp.sum()) / T + EPS)
        h = self.hist[k]
        h.append(e_prev)
        n = max(1, int(round(self.hist_s / self.block_s)))
        while len(h) > n:
            h.popleft()
        floor = min(h)
        if e_prev <= floor + self.excess_db:
            return keep
        e_c = (10 * torch.log10(power(Ycand).sum(dim=(1, 2)) / T + EPS)).numpy()
        ok = np.where((e_c >= floor - self.under_db) & (e_c <= e_prev - self.margin))[0]
        s = np.concatenate([e_prev - e_c, [0.0]])
        if len(ok) == 0:
            return keep
        best = int(ok[np.argmin(np.abs(e_c[ok] - floor))])
        return Choice(best, float(ratios[best]), s)


VARIANTS.update(
    {
        "fm": lambda: FloorMatch(),
        "fm35": lambda: FloorMatch(gate_db=-35),
        "fmf": lambda: FloorMatch(frame_gate=True),
        "fm6": lambda: FloorMatch(excess_db=6.0),
        "fmu0": lambda: FloorMatch(under_db=0.0),
    }
)


class FloorMatchV(FloorMatch):
    """FloorMatch that also asks the mixture: its block level near its own running minimum."""

    def __init__(self, mix_db=3.0, mix_s=3.0, **kw):
        super().__init__(**kw)
        self.mix_db, self.mix_s = mix_db, mix_s
        self.mh = collections.defaultdict(collections.deque)

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        px = power(X)
        T = px.shape[1]
        e = 10 * math.log10(float(px.sum()) / T + EPS)
        h = self.mh[k]
        h.append(e)
        n = max(1, int(round(self.mix_s / self.block_s)))
        while len(h) > n:
            h.popleft()
        if e > min(h) + self.mix_db:
            C = Ycand.shape[0]
            return Choice(KEEP, float("nan"), np.concatenate([np.full(C, -np.inf), [0.0]]))
        return super().choose(k, X, Yprev, Ycand, ratios, ctx)


VARIANTS.update(
    {
        "fmv": lambda: FloorMatchV(),
        "fmvf": lambda: FloorMatchV(frame_gate=True),
        "fmv6": lambda: FloorMatchV(mix_db=6.0),
        "gv": lambda: Gated(floor_db=6.0, frame_gate=True),
    }
)

# parameter variants of the product's floor-match policy (second-session rule: mixture-floor test)
VARIANTS.update(
    {
        "fm-second": lambda: FloorMatchPolicy(**SECOND),
        "fm-g30": lambda: FloorMatchPolicy(**{**SECOND, "gate_db": -30.0}),
        "fm-x6": lambda: FloorMatchPolicy(**{**SECOND, "excess_db": 6.0}),
        "fm-u0": lambda: FloorMatchPolicy(**{**SECOND, "under_db": 0.0}),
        "fm-mix2": lambda: FloorMatchPolicy(**{**SECOND, "mix_db": 2.0}),
        "fm-m2": lambda: FloorMatchPolicy(**{**SECOND, "margin": 2.0}),
        "fm-h6": lambda: FloorMatchPolicy(**{**SECOND, "history_s": 6.0}),
    }
)


# the second-session floor-match rule as FloorMatchPolicy arguments: mixture-floor test, no impulse
# test, no quiet time, no warm-up, 1 dB removal margin
SECOND = {"mix_db": 3.0, "transient_db": None, "quiet_s": 0.0, "warmup_s": 0.0, "margin": 1.0}
# the third-session default: the impulse test with a 1 dB removal margin (the fourth session asks 4 dB)
THIRD = {"margin": 1.0}
VARIANTS["fm-third"] = lambda: FloorMatchPolicy(**THIRD)


class FloorMatchRange(FloorMatchPolicy):
    """floor-match that also asks for a clear input dynamic range: the mixture's recent 90th minus 10th
    percentile block level at least ``range_db`` (at 0 dB SNR speech barely lifts the mixture above its
    floor, so 'at its floor' stops meaning 'no speech'); optionally an impulsive mixture block
    (loudest frame minus median frame at least ``transient_db``) instead of the mixture-floor test."""

    def __init__(self, range_db=10.0, transient_db=None, **kw):
        kw = {**SECOND, **kw}
        if transient_db is not None:
            kw["mix_db"] = None  # the within-block transient test replaces the mixture-floor test
        super().__init__(**kw)
        self.range_db, self.block_transient_db = range_db, transient_db

    def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
        C = Ycand.shape[0]
        keep = Choice(KEEP, float("nan"), np.concatenate([np.full(C, -np.inf), [0.0]]))
        px = power(X)
        if self.block_transient_db is not None:
            fr = 10 * torch.log10(px.sum(dim=-1)[0] / px.shape[-1] + EPS).cpu().numpy()
            if fr.max() - np.median(fr) < self.block_transient_db:
                self._push(self._mix, k, 10.0 * np.log10(float(px.sum()) / max(1, X.shape[1]) + EPS))
                return keep
        c = super().choose(k, X, Yprev, Ycand, ratios, ctx)
        h = self._mix.get(k, [])
        if c.index != KEEP and (len(h) < 5 or np.percentile(h, 90) - np.percentile(h, 10) < self.range_db):
            return keep
        return c


VARIANTS.update(
    {
        "fmr8": lambda: FloorMatchRange(range_db=8.0),
        "fmr10": lambda: FloorMatchRange(range_db=10.0),
        "fmr12": lambda: FloorMatchRange(range_db=12.0),
        "fmr15": lambda: FloorMatchRange(range_db=15.0),
        "fmr12x6": lambda: FloorMatchRange(range_db=12.0, excess_db=6.0),
        "fmt12": lambda: FloorMatchRange(range_db=0.0, transient_db=12.0),
        "fmt12r12": lambda: FloorMatchRange(range_db=12.0, transient_db=12.0),
        "fmt9": lambda: FloorMatchRange(range_db=0.0, transient_db=9.0),
        "fmt15": lambda: FloorMatchRange(range_db=0.0, transient_db=15.0),
        "fmt12x6": lambda: FloorMatchRange(range_db=0.0, transient_db=12.0, excess_db=6.0),
        "fmt12u3": lambda: FloorMatchRange(range_db=0.0, transient_db=12.0, under_db=-3.0),
    }
)


def make(name: str):
    if name == "default":
        return make_policy("proxy")
    if name in PROXIES:
        return proxy_policy(name)
    return VARIANTS[name]()


def main() -> None:
    ds, model, limit, K, C, block_ms = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
        float(sys.argv[6]),
    )
    names = sys.argv[7].split(",")
    pairs = find_pairs(SHARED / "data" / "pairs" / ds)
    step = max(1, len(pairs) // limit)
    pairs = pairs[::step][:limit]
    sep = create(model)
    sr = sep.sample_rate
    block = ms_block(block_ms, sep.hop, sr)
    data = []
    for noisy, clean in pairs:
        x, s = read_pair(noisy, clean, sr)
        data.append((noisy.name, x, s))
    base: dict[str, np.ndarray] = {}
    for name in names:
        t0 = time.time()
        res = np.zeros((len(data), K + 1, 3))
        kept = []
        for i, (fn, x, s) in enumerate(data):
            eng = Engine(EngineConfig(model=model, steps=K, candidates=C, policy="proxy", block=block), separator=sep)
            eng.policy = make(name)
            if hasattr(eng.policy, "configure"):
                eng.policy.configure(block / sr)
            _, per, diag = eng.run_offline(x, per_step=True)
            for k in range(K + 1):
                if k == 0 and fn in base:
                    res[i, 0] = base[fn]
                    continue
                res[i, k] = si_sdr(per[k], s), pesq_wb(per[k], s, sr), dnsmos(per[k], sr)["ovrl"]
                if k == 0:
                    base[fn] = res[i, 0]
            flat = [v for rr in diag["ratios"][:K] for v in rr]
            kept.append(np.mean([np.isnan(v) for v in flat]) if flat else 1.0)
        d = res - res[:, :1]
        print(
            f"{ds} {model} {name:12s} "
            + " | ".join(
                f"k{k}: {d[:, k, 0].mean():+.3f} {d[:, k, 1].mean():+.3f} {d[:, k, 2].mean():+.3f}"
                for k in range(1, K + 1)
            )
            + f" | kept {np.mean(kept):.2f} | one-step {res[:, 0].mean(0).round(3).tolist()} | {time.time() - t0:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
