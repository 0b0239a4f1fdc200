#!/usr/bin/env python3
"""Regenerate the ``--help`` blocks of docs/CLI.md from the CLI itself.

docs/CLI.md holds, for each command, a block between ``<!-- help:CMD -->`` and ``<!-- /help:CMD -->``
(``CMD`` empty for the top-level ``streamsep --help``).  This script replaces each block's body with the
output of ``python3 -m streamsep.cli CMD --help`` (100 columns, this tree first on ``PYTHONPATH``).
A command the CLI does not have yet keeps its block as it is, with a warning on stderr; a command the
CLI has but the file has no block for is reported too (and fails ``--check``).

Usage: ``python3 scripts/cli_reference.py [--check] [FILE]`` — ``--check`` writes nothing and exits 1
when a block is out of date.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- help:(?P<cmd>[a-z-]*) -->\n)(?P<body>.*?)(<!-- /help:(?P=cmd) -->)", re.DOTALL)


def help_text(cmd: str) -> str | None:
    """The CLI's help for ``cmd`` ('' = top level), or None when the command does not exist."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    argv = [sys.executable, "-m", "streamsep.cli", *([cmd] if cmd else []), "--help"]
    res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    return res.stdout if res.returncode == 0 else None


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every help block regenerated, and the commands whose block changed."""
    changed: list[str] = []

    def repl(m: re.Match) -> str:
        cmd = m.group("cmd")
        out = help_text(cmd)
        if out is None:
            print(f"cli_reference: `streamsep {cmd}` does not exist (yet): block kept", file=sys.stderr)
            return m.group(0)
        body = "```text\n" + out.rstrip() + "\n```\n"
        if body != m.group("body"):
            changed.append(cmd or "streamsep")
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(repl, text), changed


def missing_blocks(text: str) -> list[str]:
    """Commands listed by ``streamsep --help`` that have no ``<!-- help:CMD -->`` block in ``text``."""
    top = help_text("") or ""
    m = re.search(r"\{([a-z,-]+)\}", top)
    commands = m.group(1).split(",") if m else []
    have = {b.group("cmd") for b in BLOCK.finditer(text)}
    return [c for c in commands if c not in have]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=ROOT / "docs" / "CLI.md")
    ap.add_argument("--check", action="store_true", help="exit 1 if a block is out of date; write nothing")
    a = ap.parse_args(argv)
    new, changed = render(a.file.read_text(encoding="utf-8"))
    missing = missing_blocks(new)
    if missing:
        print(f"cli_reference: no help block for: {', '.join(missing)} (add <!-- help:CMD --> blocks)", file=sys.stderr)
    if a.check:
        if changed:
            print(f"cli_reference: out of date: {', '.join(changed)}", file=sys.stderr)
        return 1 if changed or missing else 0
    a.file.write_text(new, encoding="utf-8")
    print(f"cli_reference: {len(changed)} block(s) updated" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
