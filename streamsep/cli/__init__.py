"""The ``streamsep`` command line (the app layer; the library never imports it).

Commands: ``demo``, ``process``, ``batch``, ``eval``, ``models`` (list / ``pull``), ``bench``, ``tune``,
``live``, ``devices``, ``gui``, ``presets``, ``proxies``.  Every failure the user can cause ends with
one line ``streamsep: error: …`` on stderr and exit status 2; no output file is left half-written.

Layout: :mod:`.options` (shared option groups, Namespace → EngineConfig); one module per group of
commands — :mod:`.files` (process, batch), :mod:`.live` (live, gui), :mod:`.measure` (eval, bench,
tune, proxies), :mod:`.info` (demo, models, presets, devices) — each with its ``cmd_X(args)`` (parse →
typed config → library call) and ``add_X_parser``; :mod:`.parser` puts them together.
Importing this package loads neither torch nor onnxruntime.
"""

from __future__ import annotations

import os
import sys

from streamsep.cli.options import USER_ERRORS, CLIError, engine_config
from streamsep.cli.parser import build_parser

__all__ = ["CLIError", "build_parser", "engine_config", "main"]


def _terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so atomic writers discard their temporary files."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():

        def _raise(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _raise)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "gui":
        try:
            from streamsep.cli.live import cmd_gui

            return cmd_gui(None, argv[1:])
        except ImportError as exc:
            print(f"streamsep: error: the GUI needs PyQt6 and pyqtgraph ({exc})", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    from streamsep.config import ConfigError

    _terminate_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("streamsep: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ConfigError) as exc:
        print(f"streamsep: error: {exc}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"streamsep: error: {msg}", file=sys.stderr)
        if os.environ.get("STREAMSEP_DEBUG"):
            raise
        return 2
