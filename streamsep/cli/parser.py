"""The ``streamsep`` argument parser: one subcommand per command, in the order ``--help`` lists them;
each command module adds its own (``add_X_parser``)."""

from __future__ import annotations

import argparse

from streamsep.cli import files, info, live, measure


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``streamsep`` command (no heavy imports)."""
    p = argparse.ArgumentParser(prog="streamsep", description="Real-time multi-step speech enhancement host.")
    sub = p.add_subparsers(dest="command", required=True)
    info.add_demo_parser(sub)
    files.add_process_parser(sub)
    files.add_batch_parser(sub)
    measure.add_eval_parser(sub)
    info.add_models_parser(sub)
    info.add_presets_parser(sub)
    measure.add_bench_parser(sub)
    measure.add_tune_parser(sub)
    live.add_live_parser(sub)
    measure.add_proxies_parser(sub)
    info.add_devices_parser(sub)
    live.add_gui_parser(sub)
    return p
