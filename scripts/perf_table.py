#!/usr/bin/env python3
"""Render the docs/PERFORMANCE.md table from `streamsep bench --json` files (default docs/lab/data/perf/*.json)."""

import json
import sys
from pathlib import Path

ORDER = ["nsnet2_fixed", "nsnet2_proxy", "nsnet2_proxy_all_candidates", "rnnoise", "spectral", "gtcrn", "dtln"]


def main() -> None:
    files = [Path(p) for p in sys.argv[1:]] or sorted(
        Path("docs/lab/data/perf").glob("*.json"), key=lambda p: ORDER.index(p.stem) if p.stem in ORDER else 99
    )
    rows = [c for f in files for c in json.loads(f.read_text())["configs"]]
    alone = any("blockwise_rtf" in c for c in rows)  # sixth session on: the separator alone, block-wise
    print(
        "| model | steps K | candidates | passes | policy | host block | decision block | rtf | cpu_rtf "
        "| latency ms | reference_rtf | cpu_rtf / reference |"
        + (" model alone, block-wise / reference |" if alone else "")
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if alone else ""))
    for c in rows:
        passes = c.get("passes", 1 + c["steps"] * (c["candidates"] if c["policy"] == "proxy" else 1))
        if "passes_run" in c and abs(c["passes_run"] - passes) > 0.005:  # fifth session on: measured
            passes = f"{passes} ({c['passes_run']:g} run)"
        policy = c["policy"] + (", all candidates" if c.get("all_candidates") else "")
        print(
            f"| {c['model']} | {c['steps']} | {c['candidates']} | {passes} | {policy} | {c['block']} "
            f"| {c['engine_block']} | {c['rtf']:.4f} | {c['cpu_rtf']:.4f} | {c['latency_ms']:.1f} "
            f"| {c['reference_rtf']:.4f} | {c['cpu_rtf'] / c['reference_rtf']:.2f}× |"
            + (f" {alone_cell(c)} |" if alone else "")
        )


def alone_cell(c: dict) -> str:
    """The model-alone cell of a row; rows from before the sixth session have none."""
    if "blockwise_rtf" not in c:
        return "—"
    return f"{c['blockwise_rtf']:.4f} = {c['blockwise_rtf'] / c['reference_rtf']:.2f}×"


if __name__ == "__main__":
    main()
