#!/usr/bin/env python3
"""CPU cost and engine latency of each preset's configuration: the figures of docs/PERFORMANCE.md.

For every preset named (default: every built-in preset) this runs ``streamsep bench`` on the preset's
model, steps, candidates, policy and decision block (as the host block), one thread, and for searching
policies a second time with ``--all-candidates`` (the cost of a block where the policy acts).  JSON goes
to ``OUT/<preset>.json`` and ``OUT/<preset>_all_candidates.json``; a Markdown table is printed.

Usage: ``PYTHONPATH=$PWD python3 scripts/perf_presets.py [--out DIR] [--seconds S] [PRESET ...]``
(default DIR: ``docs/lab/data/perf/<today>-presets``).  ``bench`` takes no ratio schedule: a ``fixed``
preset runs with the default schedule (0.5, 0.4, 0.3, ...), which is what the built-in presets use.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_args(name: str) -> list[str]:
    """``streamsep bench`` arguments for preset ``name`` (its decision block is the host block)."""
    sys.path.insert(0, str(ROOT))
    from streamsep.presets import load_preset

    cfg = load_preset(name)
    args = [
        "--model",
        cfg.model,
        "--steps",
        str(cfg.steps),
        "--candidates",
        str(cfg.candidates),
        "--policy",
        cfg.policy,
        "--device",
        cfg.device,
    ]
    if cfg.block:
        args += ["--block", str(cfg.block)]
    return args


def run(name: str, out: Path, seconds: float, all_candidates: bool) -> dict:
    """Run one bench and return its first config row."""
    suffix = "_all_candidates" if all_candidates else ""
    path = out / f"{name}{suffix}.json"
    cmd = [
        sys.executable,
        "-m",
        "streamsep.cli",
        "bench",
        *bench_args(name),
        "--threads",
        "1",
        "--seconds",
        str(seconds),
        "--json",
        str(path),
    ] + (["--all-candidates"] if all_candidates else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())["configs"][0]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presets", nargs="*", help="preset names or .toml paths (default: the built-in presets)")
    ap.add_argument("--out", type=Path, default=None, help="directory for the JSON files")
    ap.add_argument("--seconds", type=float, default=10.0, help="audio seconds per configuration")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from streamsep.presets import PRESET_DIRS

    names = a.presets or sorted({p.stem for d in PRESET_DIRS if d.is_dir() for p in d.glob("*.toml")})
    out = a.out or ROOT / "docs/lab/data/perf" / f"{datetime.date.today():%Y-%m-%d}-presets"
    out.mkdir(parents=True, exist_ok=True)
    print(
        "| preset | model | steps × candidates | policy | decision block | engine latency ms "
        "| cpu_rtf (one core) | worst block (all candidates) | whole-file reference |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        row = run(name, out, a.seconds, False)
        worst = "—"
        if row["policy"] != "fixed" and row["candidates"] > 1:
            worst = f"{run(name, out, a.seconds, True)['cpu_rtf']:.3f}"
        print(
            f"| `{name}` | {row['model']} | {row['steps']} × {row['candidates']} | {row['policy']} "
            f"| {row['engine_block']} | {row['latency_ms']:.1f} | {row['cpu_rtf']:.3f} | {worst} "
            f"| {row['reference_rtf']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
