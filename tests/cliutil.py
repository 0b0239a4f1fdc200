"""Running the ``streamsep`` command line in-process from tests."""

from __future__ import annotations

from streamsep.cli import main


def run(argv: list, capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; argparse's own exits count as exit codes.  Returns (rc, stdout, stderr)."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err
