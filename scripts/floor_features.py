#!/usr/bin/env python3
"""Dump, for every decision block that floor-match's speech gate lets through, the reference-free
features a rule could use and the block oracle's verdict on each candidate (the analysis behind the
``floor-match`` rules in docs/lab/2026-11-25-proxies.md).

    python scripts/floor_features.py OUT.npz [--sets leventure,noizeus] [--model nsnet2] [--workers 2]

Per gated (file, step, block): features (dB) — kept-ratio of the block, the mixture's level above its
10th / below its 90th percentile over the last 3 s, the mixture's within-block transient (loudest
frame minus median frame), its rise over the previous block, the estimate's excess over its residual
floor; per candidate its level change and oracle gain (block SDR against clean, candidate − keep).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
SHARED = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FEATURES = (
    "set",
    "step",
    "block_db",
    "mix_over_floor",
    "mix_below_q90",
    "mix_transient",
    "mix_rise",
    "res_excess",
    "res_minus_mix",
)


def run(job):
    import torch

    torch.set_num_threads(1)
    from streamsep.config import ms_block
    from streamsep.engine import Engine, EngineConfig
    from streamsep.pairs import read_pair
    from streamsep.policies import EPS, FloorMatchPolicy, power, score_oracle_sdr
    from streamsep.separators.registry import create

    noisy, clean, model, K, C, block_ms, set_id = job
    sep = create(model)
    sr, hop = sep.sample_rate, sep.hop
    block = ms_block(block_ms, hop, sr)
    rows = []

    class Logger(FloorMatchPolicy):
        def choose(self, k, X, Yprev, Ycand, ratios, ctx=None):
            choice = super().choose(k, X, Yprev, Ycand, ratios, ctx)
            T = max(1, X.shape[1])
            px, pp, pr = power(X), power(Yprev), power(X - Yprev)
            block_db = 10 * math.log10((float(pp.sum()) + EPS) / (float(pr.sum()) + EPS))
            kept_db = 10.0 * torch.log10((pp.sum(dim=-1) + EPS) / (pr.sum(dim=-1) + EPS))
            mh = self._mix.get(k, [])
            if block_db >= self.gate_db or float(kept_db.max()) >= self.gate_db or len(mh) < 2:
                return choice
            e_mix = mh[-1]
            q10, q90 = np.percentile(mh, 10), np.percentile(mh, 90)
            fr = 10 * torch.log10(px.sum(dim=-1)[0] / px.shape[-1] + EPS).cpu().numpy()
            e_prev = 10 * math.log10(float(pp.sum()) / T + EPS)
            rh = self._res.get(k, [e_prev])
            res_floor = float(np.partition(rh, int(0.1 * (len(rh) - 1)))[int(0.1 * (len(rh) - 1))])
            e_c = (10 * torch.log10(power(Ycand).sum(dim=(1, 2)) / T + EPS)).cpu().numpy()
            orc = score_oracle_sdr(X, Yprev, Ycand, ctx)
            rows.append(
                (
                    set_id,
                    k,
                    block_db,
                    e_mix - q10,
                    q90 - e_mix,
                    float(fr.max() - np.median(fr)),
                    e_mix - mh[-2],
                    e_prev - res_floor,
                    e_prev - e_mix,
                    *(e_c - e_prev),
                    *(orc[:-1] - orc[-1]),
                    choice.index,
                )
            )
            return choice

    eng = Engine(EngineConfig(model=model, steps=K, candidates=C, policy="proxy", block=block), separator=sep)
    eng.policy = Logger()
    eng.policy.configure(block / sr)
    x, s = read_pair(Path(noisy), Path(clean), sr)
    eng.run_offline(x, reference=s)
    return [(Path(noisy).name,) + r for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sets", default="leventure,noizeus")
    ap.add_argument("--model", default="nsnet2")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    from streamsep.pairs import find_pairs

    jobs = []
    for i, ds in enumerate(a.sets.split(",")):
        jobs += [(str(n), str(c), a.model, 1, 4, 200.0, i) for n, c in find_pairs(SHARED / "data" / "pairs" / ds)]
    with ProcessPoolExecutor(a.workers) as pool:
        rows = [r for rs in pool.map(run, jobs, chunksize=4) for r in rs]
    names = np.array([r[0] for r in rows])
    arr = np.array([r[1:] for r in rows], dtype=np.float64)
    np.savez(a.out, names=names, data=arr, features=np.array(FEATURES))
    print(f"{len(rows)} gated decisions from {len(jobs)} files -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
