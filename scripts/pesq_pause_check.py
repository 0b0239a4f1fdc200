#!/usr/bin/env python3
"""Does PESQ reward removing residual noise in pauses?  A model-free check (docs/lab/2026-11-25-proxies.md).

NSNet2's one-step output of each pair is attenuated by a constant gain over its first 1.2 s (the
leading pause: no speech in the noisy file there), with a 50 ms ramp back to unity, and PESQ is
measured against the clean reference.  Nothing else changes, so any PESQ change is PESQ's view of
quieter residual noise in a pause.  Also printed: the clean reference's own level in that pause
relative to the whole clip (a truly silent reference would sit far below −40 dB).

    python scripts/pesq_pause_check.py [DATASET] [FILES]      (default: leventure 6)
"""

import os
import sys
from pathlib import Path

import numpy as np
import torch

from streamsep.engine import Engine, EngineConfig
from streamsep.metrics import pesq_wb
from streamsep.pairs import find_pairs, read_pair
from streamsep.separators.registry import create

torch.set_num_threads(1)
SHARED = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
GAINS = (1.0, 0.7, 0.5, 0.25, 0.0)


def main() -> None:
    ds = sys.argv[1] if len(sys.argv) > 1 else "leventure"
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    pairs = find_pairs(SHARED / "data" / "pairs" / ds)
    pairs = pairs[:: max(1, len(pairs) // limit)][:limit]
    sep, sr = create("nsnet2"), 16000
    m, ramp = int(1.2 * sr), int(0.05 * sr)
    print(f"{'file':42s} " + " ".join(f"g={g:<5}" for g in GAINS) + "  clean pause level (dB re clip)")
    for noisy, clean in pairs:
        x, s = read_pair(noisy, clean, sr)
        n = len(x)
        y, _, _ = Engine(EngineConfig(), separator=sep).run_offline(x)
        row = []
        for g in GAINS:
            w = np.ones(n, np.float32)
            w[:m] = g
            w[m : m + ramp] = np.linspace(g, 1.0, ramp)
            row.append(pesq_wb(y * w, s, sr))
        lev = 10 * np.log10(np.mean(s[:m] ** 2) + 1e-12) - 10 * np.log10(np.mean(s**2) + 1e-12)
        print(f"{noisy.name[:42]:42s} " + " ".join(f"{v:<7.3f}" for v in row) + f"  {lev:6.1f}")


if __name__ == "__main__":
    main()
