"""Option groups shared by several commands, and the one place a ``Namespace`` becomes an
:class:`~streamsep.config.EngineConfig`.  Imports nothing heavy (``--help`` stays fast)."""

from __future__ import annotations

import argparse

from streamsep.catalogue import (
    ALL_POLICIES,
    BUILTIN_PRESETS,
    CHAINS,
    DEFAULT_PROXY,
    DEVICES,
    ENGINE_POLICIES,
    LIVE_MARGIN_MS,
    ORACLE_POLICIES,
    PROXY_NAMES,
    is_engine_policy,
)
from streamsep.host.options import DEFAULT_JACK_NAME, DEFAULT_VIRTUAL_MIC

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


class CLIError(Exception):
    """A user error that the command line reports in one line."""


def policy_list(*names: str) -> str:
    """Comma list of policy names for help texts."""
    return ", ".join(names)


def add_engine_options(p: argparse.ArgumentParser, policy_help: str = "") -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--preset", help=f"preset name ({', '.join(BUILTIN_PRESETS)}) or path to a .toml file")
    g.add_argument("--model", help="separator name (see `streamsep models`) or a model card .toml")
    g.add_argument("--model-path", help="file or directory holding the model card's files")
    g.add_argument("--steps", type=int, help="K refinement steps after the one-step pass (0 = one-step)")
    g.add_argument("--candidates", type=int, help="candidate ratios per step")
    g.add_argument("--policy", help=policy_help or "ratio policy")
    g.add_argument("--ratios", help="fixed ratio schedule, comma-separated (policy fixed)")
    others = ", ".join(n for n in PROXY_NAMES if n != DEFAULT_PROXY)
    g.add_argument("--proxy", help=f"proxy for policy proxy (default {DEFAULT_PROXY}; {others})")
    g.add_argument(
        "--chain",
        choices=CHAINS,
        help="steps on a model whose output lags (dfn3): exact (default; each "
        "step adds the lag, 20 ms) or fast (no added latency, approximate)",
    )
    g.add_argument("--engine-block", type=int, help="decision block in samples at the model rate (multiple of hop)")
    g.add_argument("--mix", type=float, help="wet/dry mix, 1 = fully processed")
    g.add_argument("--atten-db", type=float, help="attenuation limit in dB")
    g.add_argument("--bypass", action="store_true", help="pass the delay-aligned input through")
    g.add_argument("--device", choices=list(DEVICES), help="torch device for the separator")
    g.add_argument("--threads", type=int, help="torch/onnxruntime CPU threads")


LIVE_EPILOG = f"""\
use it in Zoom, Discord, OBS or a browser:
  PipeWire (most desktops):  streamsep live --virtual-mic
      then pick "{DEFAULT_VIRTUAL_MIC}" as the microphone in the app
      (--input NAME chooses the physical microphone; see `streamsep devices`)
  JACK:  streamsep live --input system --connect-output obs:in_1
      ports are {DEFAULT_JACK_NAME}:in_0 and {DEFAULT_JACK_NAME}:out_0 (--name changes the client name)
latency = model latency (+ resampler) + host margin (period + 3/4 decision block + --margin-ms);
see `streamsep presets` and docs/LIVE.md"""


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``streamsep live``."""
    p.add_argument("--input", default=None, help="capture device (index or part of its name; default: system default)")
    p.add_argument("--output", default=None, help="playback device (index or name; 'null' = none)")
    add_engine_options(p, policy_list(*ENGINE_POLICIES))
    p.add_argument(
        "--block",
        type=int,
        default=None,
        help="host block size in samples at the device rate (default: the JACK/PipeWire period, else 10 ms)",
    )
    p.add_argument(
        "--samplerate", type=int, default=None, help="device rate in Hz (default: the device's / the model's)"
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--stats", default=None, help="write statistics as JSON here at the end")
    p.add_argument("--input-file", default=None, help="feed this audio file in real time instead of a capture device")
    p.add_argument("--no-loop", action="store_true", help="with --input-file: stop at the end of the file")
    p.add_argument(
        "--margin-ms",
        type=float,
        default=LIVE_MARGIN_MS,
        help=f"jitter allowance in ms, part of the latency (default {LIVE_MARGIN_MS:g}; 0-1000)",
    )
    p.add_argument("--no-adapt", action="store_true", help="disable deadline control (steps never reduced)")
    p.add_argument("--no-realtime", action="store_true", help="do not raise the worker thread's priority")
    p.add_argument("--quiet", action="store_true", help="no status line")
    r = p.add_argument_group("routing")
    r.add_argument(
        "--virtual-mic",
        nargs="?",
        const=DEFAULT_VIRTUAL_MIC,
        default=None,
        metavar="NAME",
        help=f"publish the output as a PipeWire virtual microphone called NAME (default "
        f'"{DEFAULT_VIRTUAL_MIC}", node streamsep_mic); apps list it as a microphone',
    )
    r.add_argument(
        "--name", default=DEFAULT_JACK_NAME, help=f"JACK client name (default {DEFAULT_JACK_NAME}; an error if taken)"
    )
    r.add_argument(
        "--connect-input",
        action="append",
        default=[],
        metavar="PORT",
        help="JACK: take the input from PORT (client:port, or a client's first output); repeatable",
    )
    r.add_argument(
        "--connect-output",
        action="append",
        default=[],
        metavar="PORT",
        help="JACK: also send the output to PORT (client:port, or every input of a client, so a "
        "stereo destination hears both channels); repeatable",
    )


def live_options(args: argparse.Namespace):
    """``streamsep live``'s parsed options → :class:`~streamsep.host.options.LiveOptions` (unvalidated)."""
    from streamsep.host.options import LiveOptions

    margin = getattr(args, "margin_ms", None)
    threads = getattr(args, "threads", None)
    return LiveOptions(
        input_device=getattr(args, "input", None),
        output_device=getattr(args, "output", None),
        input_file=getattr(args, "input_file", None),
        loop_file=not getattr(args, "no_loop", False),
        samplerate=getattr(args, "samplerate", None),
        block=getattr(args, "block", None) or 0,
        margin_ms=LIVE_MARGIN_MS if margin is None else margin,
        duration=getattr(args, "duration", None),
        stats_path=getattr(args, "stats", None),
        adapt=not getattr(args, "no_adapt", False),
        realtime=not getattr(args, "no_realtime", False),
        threads=1 if threads is None else threads,
        quiet=bool(getattr(args, "quiet", False)),
        model_path=getattr(args, "model_path", None),
        jack_name=getattr(args, "name", None) or DEFAULT_JACK_NAME,
        connect_input=list(getattr(args, "connect_input", None) or []),
        connect_output=list(getattr(args, "connect_output", None) or []),
        virtual_mic=getattr(args, "virtual_mic", None),
    )


def engine_config(args: argparse.Namespace, **overrides):
    """Preset (if any) overridden by explicit options → a validated :class:`~streamsep.config.EngineConfig`.

    The one place the command line's engine options are checked; offline-only policies (oracles,
    dnsmos) are accepted but are not part of an engine configuration.
    """
    from streamsep.presets import build_config

    changes = {}
    for key in (
        "model",
        "steps",
        "candidates",
        "policy",
        "mix",
        "atten_db",
        "device",
        "proxy",
        "chain",
    ):  # same-named options
        val = getattr(args, key, None)
        if key == "policy" and val is not None and not is_engine_policy(val):
            if val not in ALL_POLICIES:
                raise CLIError(f"unknown policy '{val}' (known: {', '.join(ALL_POLICIES)})")
            continue  # offline-only policies (oracle, dnsmos) are not part of an engine config
        changes[key] = val
    if getattr(args, "ratios", None):
        try:
            changes["ratios"] = [float(r) for r in args.ratios.split(",")]
        except ValueError:
            raise CLIError(f"--ratios: not a comma-separated list of numbers: {args.ratios!r}") from None
    if getattr(args, "engine_block", None) is not None:
        changes["block"] = args.engine_block
    if getattr(args, "bypass", False):
        changes["bypass"] = True
    changes.update(overrides)
    return build_config(getattr(args, "preset", None), **changes)


def search_candidates(args, cfg, policy: str) -> int:
    """Candidates per step: explicit option, else 9 for the offline oracle/blind search, else the preset's."""
    if getattr(args, "candidates", None) is not None:
        return int(args.candidates)
    return 9 if policy in ORACLE_POLICIES else cfg.candidates
