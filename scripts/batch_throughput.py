"""Throughput of ``streamsep batch`` on real files: files/s and audio-hours per hour, with and without
the start-up (worker spawn + model load; Ray: cluster start), for the local pool and a local Ray
cluster.

    PYTHONPATH=$PWD python3 scripts/batch_throughput.py ../shared/data/pairs/noizeus/noisy \\
        --files 240 --runs local:1 local:2 ray:2 --repeat 2 --json /tmp/batch.json

Inputs are linked (not copied) into a scratch folder; outputs are removed after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def one_run(src: Path, engine: str, workers: int) -> dict:
    from streamsep.batch import BatchOptions, run_batch
    from streamsep.engine import EngineConfig
    from streamsep.enhance import FileOptions

    out = Path(tempfile.mkdtemp(prefix="bt-out"))
    stamps: list[float] = []
    t0 = time.perf_counter()
    s = run_batch(
        src,
        out,
        EngineConfig(),
        FileOptions(),
        BatchOptions(engine=engine, workers=workers, progress=False),
        on_record=lambda r: stamps.append(time.perf_counter() - t0),
    )
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    first, last = stamps[0], stamps[-1]
    steady_files = len(stamps) - 1
    audio = s.audio_seconds
    return {
        "engine": engine,
        "workers": workers,
        "files": s.ok,
        "failed": s.failed,
        "audio_s": audio,
        "wall_s": wall,
        "first_file_s": first,
        "files_per_s": s.ok / wall,
        "audio_h_per_h": audio / wall,
        "steady_files_per_s": steady_files / (last - first) if last > first else None,
        "steady_audio_h_per_h": audio * steady_files / len(stamps) / (last - first) if last > first else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--files", type=int, default=240)
    ap.add_argument("--runs", nargs="+", default=["local:1", "local:2", "ray:2"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    files = sorted(Path(a.folder).glob("*.wav"))[: a.files]
    src = Path(tempfile.mkdtemp(prefix="bt-in"))
    for f in files:
        (src / f.name).symlink_to(f.resolve())
    rows = []
    try:
        for rep in range(a.repeat):
            for spec in a.runs:
                engine, workers = spec.split(":")
                row = one_run(src, engine, int(workers))
                row["repeat"] = rep
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "load_before": os.getloadavg(),
                    },
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
