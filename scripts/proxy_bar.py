#!/usr/bin/env python3
"""The issue-8 bar on *every* pair: does a proxy policy lower mean SI-SDR or PESQ against one-step,
and does it raise DNSMOS OVRL?

    python scripts/proxy_bar.py [--sets leventure,noizeus,/path/to/pairs] [--model nsnet2] [--steps 2]
        [--candidates 4] [--block-ms 200] [--variants default,...] [--workers 2] [--json OUT]

Cheap because the default proxies act rarely: each file runs through the engine once (per-step
outputs kept), and metrics are computed only for files whose K-step output differs from the one-step
output — an unchanged file contributes exactly 0 to every mean.  Means are over *all* files of a set.
For each acting decision the block-level change of error energy against the clean reference is kept
(``block_err_db``: 10·log10 of ‖y_K − s‖² / ‖y_0 − s‖² over that block; negative = closer to the clean
reference) so that a harmful decision can be traced.  Variants: ``default``, any product proxy name,
or a name in ``scripts/proxy_sweep.py``'s VARIANTS, or ``fm:key=value;key=value`` for FloorMatchPolicy
keyword arguments (e.g. ``fm:range_db=12``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("STREAMSEP_DNSMOS_WINDOWS", "1")

SHARED = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def make(name: str):
    from streamsep.policies import PROXIES, FloorMatchPolicy, make_policy, proxy_policy

    if name == "default":
        return make_policy("proxy")
    if name.startswith("fm:"):
        kw = {}
        for item in name[3:].split(";"):
            k, v = item.split("=")
            kw[k] = float(v)
        return FloorMatchPolicy(**kw)
    if name in PROXIES:
        return proxy_policy(name)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from proxy_sweep import VARIANTS  # noqa: E402

    return VARIANTS[name]()


_SEPS: dict = {}


def one_file(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    from streamsep.config import ms_block
    from streamsep.engine import Engine, EngineConfig
    from streamsep.metrics import dnsmos, pesq_wb, si_sdr
    from streamsep.pairs import read_pair

    noisy, clean, model, K, C, block_ms, variant = job
    from streamsep.separators.registry import create

    sep = _SEPS.get(model) or _SEPS.setdefault(model, create(model))
    sr, hop = sep.sample_rate, sep.hop
    block = ms_block(block_ms, hop, sr)
    eng = Engine(EngineConfig(model=model, steps=K, candidates=C, policy="proxy", block=block), separator=sep)
    eng.policy = make(variant)
    if hasattr(eng.policy, "configure"):
        eng.policy.configure(block / sr)
    x, s = read_pair(Path(noisy), Path(clean), sr)
    _, per, diag = eng.run_offline(x, per_step=True)
    y0, yk = per[0], per[K]
    row = {"file": Path(noisy).name, "changed": bool(np.max(np.abs(yk - y0)) > 1e-7), "acts": []}
    for k, rr in enumerate(diag["ratios"][:K]):
        for b, r in enumerate(rr):
            if not math.isnan(r):
                row["acts"].append({"step": k + 1, "block": b, "ratio": r})
    if not row["changed"]:
        return row
    # block-level change of error energy (model-latency-free outputs are aligned with s)
    for a in row["acts"]:
        lo, hi = a["block"] * block - eng.model_latency, (a["block"] + 1) * block - eng.model_latency
        lo, hi = max(0, lo), max(0, min(len(s), hi))
        e0 = float(np.sum((y0[lo:hi] - s[lo:hi]) ** 2)) + 1e-12
        e1 = float(np.sum((yk[lo:hi] - s[lo:hi]) ** 2)) + 1e-12
        a["block_err_db"] = 10 * math.log10(e1 / e0)
        a["clean_db_re_file"] = 10 * math.log10(
            (float(np.mean(s[lo:hi] ** 2)) + 1e-12) / (float(np.mean(s**2)) + 1e-12)
        )
    for tag, y in (("0", y0), ("k", yk)):
        row["si_sdr_" + tag] = si_sdr(y, s)
        row["pesq_" + tag] = pesq_wb(y, s, sr)
        row["ovrl_" + tag] = dnsmos(y, sr)["ovrl"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="leventure,noizeus")
    ap.add_argument("--model", default="nsnet2")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--block-ms", type=float, default=200.0)
    ap.add_argument("--variants", default="default")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="at most this many pairs per set, evenly spread (0 = all)")
    ap.add_argument("--json")
    a = ap.parse_args()
    from streamsep.pairs import find_pairs

    out = {"model": a.model, "steps": a.steps, "candidates": a.candidates, "block_ms": a.block_ms, "results": []}
    with ProcessPoolExecutor(a.workers) as pool:
        for variant in a.variants.split(","):
            for ds in a.sets.split(","):
                pairs = find_pairs(Path(ds) if os.sep in ds else SHARED / "data" / "pairs" / ds)
                if a.limit:
                    pairs = [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, a.limit)]
                t0 = time.time()
                jobs = [(str(n), str(c), a.model, a.steps, a.candidates, a.block_ms, variant) for n, c in pairs]
                rows = list(pool.map(one_file, jobs, chunksize=4))
                ch = [r for r in rows if r["changed"]]
                N = len(rows)

                def mean_delta(key: str) -> float:
                    v = [r[key + "_k"] - r[key + "_0"] for r in ch if np.isfinite(r[key + "_k"] - r[key + "_0"])]
                    return float(np.sum(v) / N) if N else float("nan")

                acts = [x for r in rows for x in r["acts"]]
                res = {
                    "variant": variant,
                    "set": ds,
                    "files": N,
                    "changed": len(ch),
                    "decisions_acted": len(acts),
                    "d_si_sdr": mean_delta("si_sdr"),
                    "d_pesq": mean_delta("pesq"),
                    "d_ovrl": mean_delta("ovrl"),
                    "block_err_db_mean": float(np.mean([x["block_err_db"] for x in acts if "block_err_db" in x]))
                    if any("block_err_db" in x for x in acts)
                    else None,
                    "seconds": round(time.time() - t0, 1),
                    "rows": ch,
                }
                out["results"].append(res)
                print(
                    f"{variant:28s} {ds:10s} files {N:4d} changed {len(ch):3d} acts {len(acts):4d} "
                    f"dSI-SDR {res['d_si_sdr']:+.4f} dPESQ {res['d_pesq']:+.5f} dOVRL {res['d_ovrl']:+.4f} "
                    f"blockerr {res['block_err_db_mean'] if res['block_err_db_mean'] is not None else float('nan'):+.2f} "
                    f"({res['seconds']:.0f}s)",
                    flush=True,
                )
                if a.json:
                    Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
