"""What a measurement ran on: CPU, cores, threads, library versions and a machine-speed probe."""

from __future__ import annotations

import os
import platform
import time


def python_loop_ns(n: int = 200_000) -> float:
    """Nanoseconds per iteration of a trivial Python loop (best of 3).

    A machine-speed probe stored with every benchmark: per-block glue is interpreted Python, and a
    shared virtual machine can run at very different speeds from one day to the next.
    """
    best = float("inf")
    for _ in range(3):
        acc = 0
        t0 = time.perf_counter()
        for i in range(n):
            acc += i
        best = min(best, time.perf_counter() - t0)
    return 1e9 * best / n


def machine_info(threads: int, device: str) -> dict:
    """CPU model, cores, ``threads`` used, Python/torch versions, platform, ``device`` (GPU name on CUDA)."""
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        "python_loop_ns": round(python_loop_ns(), 1),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
