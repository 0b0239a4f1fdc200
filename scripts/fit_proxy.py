#!/usr/bin/env python3
"""Fit the calibrated proxy's ridge weights (streamsep.policies.CALIBRATED_WEIGHTS) and check them.

    python scripts/fit_proxy.py TRAIN_DIR TEST_DIR [--model nsnet2] [--limit 32]

Collects per-candidate block features and the oracle block-SDR gain over keep-previous on the
training pairs (following the oracle's trajectory), fits ridge regression on the basis
``calibrated_basis``, and reports realised gain / take rate / agreement for several margins on the
training and held-out test pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from streamsep.audio_io import read_audio
from streamsep.pairs import find_pairs
from streamsep.policies import calibrated_basis
from streamsep.proxy_eval import collect_features
from streamsep.separators.registry import create


def load_pairs(directory: str, rate: int, limit: int):
    pairs = find_pairs(Path(directory))
    pairs = pairs[:: max(1, len(pairs) // limit)][:limit]
    out = []
    for n, c in pairs:
        x, _ = read_audio(n, rate=rate)
        s, _ = read_audio(c, rate=rate)
        m = min(len(x), len(s))
        out.append((x[:m], s[:m]))
    return out


def evaluate(D: np.ndarray, w: np.ndarray, tau: float) -> tuple[float, float, float, float]:
    pred = calibrated_basis(D[..., :9]) @ w
    g = D[..., 9]
    idx = np.arange(len(D))
    best = pred.argmax(1)
    take = pred[idx, best] > tau
    realised = np.where(take, g[idx, best], 0.0)
    oracle_keep = g.max(1) <= 0
    agree = np.where(take, (~oracle_keep) & (best == g.argmax(1)), oracle_keep)
    return realised.mean(), take.mean(), agree.mean(), np.maximum(g.max(1), 0).mean()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--model", default="nsnet2")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--lam", type=float, default=1.0)
    a = ap.parse_args()
    sep = create(a.model)
    tr = collect_features(load_pairs(a.train, sep.sample_rate, a.limit), sep)
    te = collect_features(load_pairs(a.test, sep.sample_rate, a.limit), sep)
    X = calibrated_basis(tr[..., :9]).reshape(-1, 15)
    y = np.clip(tr[..., 9].reshape(-1), -6, 6)
    w = np.linalg.solve(X.T @ X + a.lam * np.eye(X.shape[1]), X.T @ y)
    print("weights", np.array2string(w, precision=3, separator=", "))
    for tau in (0.0, 0.25, 0.5, 1.0):
        r1, r2 = evaluate(tr, w, tau), evaluate(te, w, tau)
        print(
            f"margin {tau:4.2f}  train gain {r1[0]:+.3f} take {r1[1]:.3f} agree {r1[2]:.3f} (oracle {r1[3]:+.3f})"
            f"  | test gain {r2[0]:+.3f} take {r2[1]:.3f} agree {r2[2]:.3f} (oracle {r2[3]:+.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
