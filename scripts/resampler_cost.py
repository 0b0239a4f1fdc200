#!/usr/bin/env python3
"""CPU per 10 ms block of the FIR converters and of the engine at 48 kHz (FIR vs soxr LQ).

Run: PYTHONPATH=$PWD python3 scripts/resampler_cost.py (timings: best and median of 5 runs, µs)."""

import time

import numpy as np

from streamsep.engine import Engine
from streamsep.presets import load_preset
from streamsep.resample import PolyphaseFIR, SoxrStream, fir_response
from streamsep.separators.registry import create


def per_call(f, x, reps=3000):
    for _ in range(200):
        f(x)
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            f(x)
        best.append((time.perf_counter() - t) / reps * 1e6)
    return min(best), float(np.median(best))


rng = np.random.default_rng(0)
for m in (2, 3, 6):
    print(f"design M={m}", fir_response(m))
for src, dst, n in [(48000, 16000, 480), (16000, 48000, 160), (48000, 8000, 480), (8000, 48000, 80)]:
    x = rng.standard_normal(n).astype(np.float32)
    print(f"FIR {src}->{dst} per 10 ms ({n} in): min/median us", per_call(PolyphaseFIR(src, dst), x))
    print(f"soxr LQ {src}->{dst} per 10 ms: min/median us", per_call(SoxrStream(src, dst, "LQ"), x))
sep = create("nsnet2")
x = rng.standard_normal(480).astype(np.float32) * 0.1
for q in ("fir", "LQ"):
    from dataclasses import replace

    e = Engine(replace(load_preset("low-latency"), resample_quality=q), rate=48000, host_block=480, separator=sep)
    print(
        f"engine low-latency 48k {q}: latency {e.latency} samples = {e.latency_ms} ms; per 480-sample call min/median us",
        per_call(e.process, x, reps=300),
    )
