#!/usr/bin/env python3
"""Render docs/lab/data/results/*.json (from `streamsep eval --json`) as Markdown tables for the results notes
in docs/lab/ (see scripts/make_results.sh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = [
    ("si_sdr", "SI-SDR dB"),
    ("pesq", "PESQ"),
    ("stoi", "STOI"),
    ("dnsmos_ovrl", "OVRL"),
    ("dnsmos_sig", "SIG"),
    ("dnsmos_bak", "BAK"),
]


def fmt(v, nd=2):
    return "–" if v is None else f"{v:.{nd}f}"


def table(path: Path) -> str:
    d = json.loads(path.read_text())
    keys = [(k, h) for k, h in KEYS if d["noisy"].get(k) is not None]
    head = "| step | " + " | ".join(h for _, h in keys) + " | ratio | kept |"
    sep = "|" + "---|" * (len(keys) + 3)
    lines = [
        f"**{d['model']} · {Path(d['directory']).name} · policy `{d['policy']}` · {d['files']} files**",
        "",
        head,
        sep,
        "| noisy | " + " | ".join(fmt(d["noisy"].get(k)) for k, _ in keys) + " | | |",
    ]
    base = d["per_step"][0]
    for e in d["per_step"]:
        cells = []
        for k, _ in keys:
            v = e.get(k)
            cell = fmt(v)
            if e["step"] > 0 and v is not None and base.get(k) is not None:
                cell += f" ({v - base[k]:+.2f})"
            cells.append(cell)
        lines.append(
            f"| {e['step']} | " + " | ".join(cells) + f" | {fmt(e.get('ratio'))} | {fmt(e.get('kept_fraction'))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(Path("docs/lab/data/results").glob("*.json"))
    for f in files:
        if "noisy" not in json.loads(f.read_text()):  # proxies_*.json, bar_*.json: not eval reports
            continue
        print(table(f))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
