#!/usr/bin/env python3
"""onnxruntime's NSNet2 call cost against the work done between calls (one thread).

Streams the benchmark clip through ``NSNet2Ort.enhance`` in 6-frame calls (1024-sample host blocks)
and times only the calls, with nothing, 10 or 40 small numpy FFT round trips (the size of the
engine's own per-block glue) between them, and with a 16 MB array scaled between them (memory
traffic from another job).  Prints microseconds per frame, three rounds.  Used in
docs/lab/2026-12-01-performance.md to show that block-wise calls pay for what runs between them.
Usage: python scripts/ort_between_calls.py [frames_per_call]
"""

import sys
import time

import numpy as np
import torch

from streamsep.bench import bench_input
from streamsep.runtime import set_threads


def main() -> None:
    per = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    set_threads(1)
    from streamsep.separators.registry import create

    sep = create("nsnet2")
    x = bench_input(10, 16000, None)
    X, _ = sep.stft.analyze(torch.as_tensor(x)[None], sep.stft.new_analysis_state(1))
    X = X.contiguous()
    T = X.shape[1]
    small = np.random.default_rng(0).random((1, 6, 320)).astype(np.float32)
    big = np.ones(4_000_000, np.float32)

    def between(mode: str) -> None:
        if mode == "16MB":
            big.__imul__(1.0000001)
        else:
            for _ in range(int(mode)):
                np.fft.irfft(np.fft.rfft(small, axis=-1), axis=-1)

    for _ in range(3):
        cells = []
        for mode in ("0", "10", "40", "16MB"):
            h = torch.zeros(2, 1, sep.hidden)
            spent = 0.0
            for i in range(0, T, per):
                between(mode)
                t = time.perf_counter()
                _, h = sep.net.enhance(X[:, i : i + per].contiguous(), h)
                spent += time.perf_counter() - t
            cells.append(f"{mode:>4} between: {spent / T * 1e6:4.0f} µs/frame")
        print("; ".join(cells))


if __name__ == "__main__":
    main()
