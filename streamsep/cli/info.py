"""What is there: ``models``, ``presets``, ``devices``, and the ``demo`` that shows the product on its own clip."""

from __future__ import annotations

from streamsep.cli.options import (
    CLIError,
)


def cmd_models(args) -> int:
    """List the models (from the registry's table and the cards, no weights loaded) or pull a card's files."""
    from streamsep.separators.registry import describe, model_names

    if args.action == "pull":
        if not args.name:
            raise CLIError("models pull needs a model NAME")
        from streamsep.separators.cards import pull

        paths = pull(args.name, args.dir)
        for p in paths:
            print(p)
        return 0
    print(f"{'name':<14} {'rate':>6} {'hop':>5} {'latency':>8} {'ms':>6}  {'domain':<8} description")
    for name in model_names():
        try:
            i = describe(name)
        except Exception as exc:  # a card that cannot be read: say so, keep listing
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"{name:<14} {'-':>6} {'-':>5} {'-':>8} {'-':>6}  {'-':<8} unavailable: {msg}")
            continue
        dom = "frame" if i["frame_domain"] else "waveform"
        note = f" (not installed: run `streamsep models pull {name}`)" if i["missing"] else ""
        print(
            f"{name:<14} {i['sample_rate']:>6} {i['hop']:>5} {i['latency']:>8} {i['latency_ms']:>6.1f}  {dom:<8} "
            f"{i['description']}{note}"
        )
    return 0


def cmd_presets(args) -> int:
    """Each preset with its live latency budget at 16 and 48 kHz (10 ms periods, default margin)."""
    from streamsep.host.budget import latency_budget
    from streamsep.presets import builtin_presets, load_preset

    for name, path in builtin_presets().items():
        c = load_preset(path)
        print(
            f"{name:<12} model={c.model} steps={c.steps} candidates={c.candidates} policy={c.policy} block={c.block}  ({path})"
        )
        for rate in (16000, 48000):
            try:
                b = latency_budget(c, rate)
            except Exception as exc:  # a model that cannot load here: say so, list the rest
                print(f"{'':<12} live latency at {rate // 1000} kHz: unavailable ({str(exc).splitlines()[0]})")
                continue
            buf = f" + buffering {b.buffer_ms:g}" if b.buffer_ms else ""
            print(
                f"{'':<12} live latency at {rate // 1000} kHz, 10 ms periods: {b.total_ms:g} ms = model {b.model_ms:g}"
                f"{buf} + resampler {b.resampler_ms:g} + host {b.host_ms:g}"
            )
    return 0


def cmd_devices(args) -> int:
    from streamsep.host.devices import list_devices
    from streamsep.host.virtual_mic import prefer_pipewire_jack

    prefer_pipewire_jack()  # on PipeWire: also list its microphones by the names --virtual-mic's --input takes
    devs = list_devices()
    if not devs:
        print("no audio devices found")
    for d in devs:
        print(
            f"{d['index']:>3}  {d['name']:<40} in={d['max_input_channels']} out={d['max_output_channels']} "
            f"rate={d['default_samplerate']:.0f}" + (f"  [{d.get('hostapi', '')}]" if d.get("hostapi") else "")
        )
    return 0


def cmd_demo(args) -> int:
    from streamsep.demo import run_demo

    return run_demo(args.out, args.steps)


def add_demo_parser(sub) -> None:
    """The ``demo`` subcommand."""
    d = sub.add_parser(
        "demo", help="make a noisy demo clip, denoise it in one step and in several, print what happened"
    )
    d.add_argument("--out", default="streamsep-demo", help="directory for the demo files")
    d.add_argument("--steps", type=int, default=2)
    d.set_defaults(func=cmd_demo)


def add_models_parser(sub) -> None:
    """The ``models`` subcommand."""
    mo = sub.add_parser("models", help="list separators (rate, hop, latency) or pull a model card's files")
    mo.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    mo.add_argument("name", nargs="?")
    mo.add_argument("--dir", help="destination directory for pull")
    mo.set_defaults(func=cmd_models)


def add_presets_parser(sub) -> None:
    """The ``presets`` subcommand."""
    ps = sub.add_parser("presets", help="list the built-in presets")
    ps.set_defaults(func=cmd_presets)


def add_devices_parser(sub) -> None:
    """The ``devices`` subcommand."""
    de = sub.add_parser("devices", help="list audio devices")
    de.set_defaults(func=cmd_devices)
