"""``streamsep live`` (a microphone, to speakers, JACK ports or a virtual microphone) and ``streamsep gui``."""

from __future__ import annotations

import argparse
import sys

from streamsep.cli.options import (
    LIVE_EPILOG,
    USER_ERRORS,
    CLIError,
    add_live_arguments,
    engine_config,
    live_options,
)


def cmd_live(args) -> int:
    """``streamsep live``: parse → typed options → :func:`streamsep.host.run.run_live`."""
    from streamsep.host.options import OptionsError
    from streamsep.host.run import run_live, write_error_stats

    try:
        opts = live_options(args).validate()
        config = engine_config(args)
    except (OptionsError, *USER_ERRORS, CLIError) as exc:  # PresetError, ConfigError: one line
        print(f"streamsep live: error: {exc}", file=sys.stderr)
        write_error_stats(getattr(args, "stats", None), str(exc))
        return 2
    return int(run_live(config, opts) or 0)


def cmd_gui(args, rest: list[str]) -> int:
    from gui.app import main as gui_main

    return int(gui_main(rest) or 0)


def add_live_parser(sub) -> None:
    """The ``live`` subcommand."""
    li = sub.add_parser(
        "live",
        help="denoise a live microphone: to an output device, JACK ports or a virtual mic",
        epilog=LIVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_live_arguments(li)
    li.set_defaults(func=cmd_live)


def add_gui_parser(sub) -> None:
    """The ``gui`` subcommand."""
    gu = sub.add_parser("gui", help="open the desktop app", add_help=False)
    gu.set_defaults(func=None)
