"""The commands of ``streamsep``: one ``cmd_X(args)`` each (parse → typed config → library call),
and :func:`build_parser`.  Heavy modules (torch, onnxruntime) are imported inside the commands only.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from streamsep.catalogue import (
    ALL_POLICIES,
    BLENDS,
    CLIP_MODES,
    DEVICES,
    ENGINE_POLICIES,
    ORACLE_POLICIES,
    SCOPES,
    is_engine_policy,
)
from streamsep.cli.options import (
    LIVE_EPILOG,
    USER_ERRORS,
    CLIError,
    add_engine_options,
    add_live_arguments,
    engine_config,
    live_options,
    policy_list,
    search_candidates,
)
from streamsep.config import ms_block
from streamsep.pairs import find_pairs, read_pair
from streamsep.reporting import step_metrics, summarize_ratio, write_json
from streamsep.runtime import make_separator, set_threads


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------
def add_file_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``process`` and ``batch``: how a file is refined and written."""
    g = p.add_argument_group("file")
    g.add_argument("--block-ms", type=float, default=200.0,
                   help="decision block in ms when the preset/--engine-block gives none; also the selection "
                   "block of --scope block (default 200)")
    g.add_argument("--blend", choices=BLENDS, default=None,
                   help="run the offline search refiner (policy fixed or oracle-*/dnsmos) mixing input and "
                   "previous estimate as waveforms (time, the published procedure) or as STFT frames (frame, as "
                   "the engine does). Default: the engine for fixed/heuristic/proxy (the same samples as "
                   "--stream), time for oracle-*/dnsmos")
    g.add_argument("--mono", action="store_true", help="average the channels and write mono (default: keep and "
                   "denoise every channel)")
    g.add_argument("--rate", type=int, help="output sample rate in Hz (default: the input's)")
    g.add_argument("--subtype", help="output subtype, e.g. PCM_16, PCM_24, FLOAT (default: the input's where the "
                   "output format allows it)")
    g.add_argument("--clip", choices=CLIP_MODES, default="limit",
                   help="integer output that would clip: limit = scale the whole file to a -0.1 dBFS peak "
                   "(default), clip = hard-clip; both are reported")
    g.add_argument("--dnsmos", action="store_true", help="score DNSMOS OVRL of input and output (slow)")


def file_options(args, **extra):
    """argparse → :class:`~streamsep.enhance.FileOptions`."""
    from streamsep.enhance import FileOptions

    metrics = tuple(m for m in (getattr(args, "metrics", None) or "").split(",") if m)
    policy = args.policy if args.policy is not None and not is_engine_policy(args.policy) else None
    if policy is not None and policy not in ALL_POLICIES:
        raise CLIError(f"unknown policy '{policy}' (known: {', '.join(ALL_POLICIES)})")
    if args.policy is not None and is_engine_policy(args.policy):
        policy = args.policy
    return FileOptions(reference=getattr(args, "reference", None), metrics=metrics, policy=policy,
                       candidates=args.candidates, stream=getattr(args, "stream", False),
                       block=getattr(args, "block", None), block_ms=args.block_ms, scope=getattr(args, "scope", "utterance"),
                       blend=args.blend, mono=args.mono, rate=args.rate, subtype=args.subtype,
                       in_place=getattr(args, "in_place", False), clip=args.clip, model_path=args.model_path,
                       dnsmos=args.dnsmos, **extra)


def check_json_path(path: str | None, what: str = "--json") -> None:
    """A report path whose folder does not exist is refused before any work."""
    if path and not Path(path).absolute().parent.is_dir():
        raise CLIError(f"{what} {path}: folder {Path(path).absolute().parent} does not exist")


def cmd_process(args) -> int:
    """``streamsep process IN OUT``: options → :func:`streamsep.enhance.enhance_file` → report."""
    from streamsep.enhance import check_file_job, describe, enhance_file

    cfg = engine_config(args)
    opts = file_options(args, progress=not args.quiet)
    check_json_path(args.json)
    check_file_job(args.input, args.output, cfg, opts)  # every check before torch threads / the model
    set_threads(args.threads)
    res = enhance_file(args.input, args.output, cfg, opts)
    for w in res.warnings:
        print(f"streamsep: warning: {w}", file=sys.stderr)
    if args.json:
        write_json(args.json, res.to_dict())
    for e in res.per_step:
        vals = "  ".join(f"{k}={v:.3f}" for k, v in e.items() if k not in ("step", "ratio", "kept_fraction") and v is not None)
        r = f"ratio={e['ratio']:.2f}" if e.get("ratio") is not None else ("ratio=keep" if e["step"] else "one-step")
        print(f"step {e['step']}{' (streamed)' if res.stream else ''}: {r}  {vals}")
    if res.dnsmos_before is not None:
        print(f"DNSMOS OVRL {res.dnsmos_before:.3f} -> {res.dnsmos_after:.3f}")
    print(describe(res))
    return 0


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``streamsep batch``."""
    p.add_argument("source", help="a folder (recursive), a glob in quotes ('corpus/**/*.flac') or a manifest "
                   "(.txt/.lst: one path a line; .csv/.tsv: column input or path, optional column output)")
    p.add_argument("out", help="output folder; mirrors the inputs' relative paths (created if missing)")
    add_engine_options(p, "fixed, heuristic, proxy, dnsmos")
    add_file_arguments(p)
    b = p.add_argument_group("batch")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local = a process pool on this machine (default); ray = Ray actors (extra [ray])")
    b.add_argument("--workers", type=int, help="worker processes / Ray actors (default: the CPU cores)")
    b.add_argument("--address", default="local", help="ray: local (a private cluster for this run), auto, "
                   "HOST:PORT or ray://HOST:PORT (join an existing cluster)")
    b.add_argument("--cpus-per-worker", type=float, default=1.0, help="ray: CPUs reserved per actor")
    b.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per actor (use with --device cuda)")
    b.add_argument("--retries", type=int, default=2, help="retries of a file whose worker died (default 2)")
    b.add_argument("--timeout", type=float, help="seconds one file may take before it is recorded as failed")
    b.add_argument("--overwrite", action="store_true", help="redo outputs that already exist (default: skip them)")
    b.add_argument("--ext", help="output extension, e.g. flac (default: the input's when writable, else wav)")
    b.add_argument("--report", help="JSON lines, one per file: input, output, status, error, seconds, "
                   "wall_seconds, rtf, model, steps, policy (+ dnsmos_before/after)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_batch(args) -> int:
    """``streamsep batch IN OUT``: options → :func:`streamsep.batch.run_batch`; exit 1 if a file failed."""
    from streamsep.batch import BatchOptions, run_batch

    cfg = engine_config(args)
    if args.threads not in (None, 1):
        raise CLIError("--threads: batch workers run one thread each; use --workers")
    check_json_path(args.report, "--report")
    bopts = BatchOptions(engine=args.engine, workers=args.workers, address=args.address,
                         cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
                         retries=args.retries, timeout_s=args.timeout, overwrite=args.overwrite, ext=args.ext,
                         report=args.report, progress=not args.quiet)
    summary = run_batch(args.source, args.out, cfg, file_options(args), bopts)
    for path, err in summary.errors[:20]:
        print(f"streamsep: failed: {path}: {err}" if not err.startswith(path) else f"streamsep: failed: {err}",
              file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"streamsep: ... and {len(summary.errors) - 20} more failures (see --report)", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_eval(args) -> int:
    from tqdm import tqdm

    from streamsep.offline import refine_signal

    cfg = engine_config(args)
    set_threads(args.threads)
    policy = cfg.policy if args.policy is None else args.policy
    if args.dnsmos_windows:
        os.environ["STREAMSEP_DNSMOS_WINDOWS"] = str(args.dnsmos_windows)
    pairs = find_pairs(Path(args.directory))
    if args.filter:
        pairs = [p for p in pairs if args.filter in p[0].name]
    if args.limit:
        step = max(1, len(pairs) // args.limit)
        pairs = pairs[::step][: args.limit]
    sep = make_separator(cfg, args.model_path)
    sr = sep.sample_rate
    which = tuple(m for m in args.metrics.split(",") if m)
    engine_cfg = None
    if policy not in ORACLE_POLICIES:
        # live policies run through the engine: the same code (and blending domain) as live
        engine_cfg = replace(cfg, policy=policy, block=cfg.block or ms_block(args.block_ms, sep.hop, sr))
    rows = []
    for noisy, clean in tqdm(pairs, desc=f"eval {sep.name} {policy} K={cfg.steps}", unit="file", file=sys.stderr,
                             disable=args.quiet):
        xm, sm = read_pair(noisy, clean, sr)
        res = refine_signal(sep, xm, cfg.steps, policy, search_candidates(args, cfg, policy), sm, args.scope, args.block_ms,
                            args.blend, cfg.ratios, config=engine_cfg)
        mets = step_metrics(res.estimates, sr, sm, which)
        noisy_m = step_metrics([xm], sr, sm, which)[0]
        for k, m in enumerate(mets):
            mean_r, kept = summarize_ratio(res.ratios[k]) if k else (None, None)
            rows.append({"file": noisy.name, "clean": clean.name, "step": k, "ratio": mean_r,
                         "kept_fraction": kept, **m})
        rows.append({"file": noisy.name, "clean": clean.name, "step": -1, **noisy_m})
    keys = [k for k in ("si_sdr", "pesq", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak") if any(k in r for r in rows)]
    per_step = []
    for k in [-1] + list(range(cfg.steps + 1)):
        sub = [r for r in rows if r["step"] == k]
        entry = {"step": k, "files": len(sub)}
        for key in keys:
            vals = [r[key] for r in sub if r.get(key) is not None]
            entry[key] = float(np.mean(vals)) if vals else None
        if k > 0:
            rs = [r["ratio"] for r in sub if r.get("ratio") is not None]
            kept = [r["kept_fraction"] for r in sub if r.get("kept_fraction") is not None]
            entry["ratio"] = float(np.mean(rs)) if rs else None
            entry["kept_fraction"] = float(np.mean(kept)) if kept else None
        per_step.append(entry)
    noisy_entry, per_step = per_step[0], per_step[1:]
    header = f"{'step':>5} " + " ".join(f"{k:>12}" for k in keys) + f" {'ratio':>7} {'kept':>6}"
    print(f"{sep.name}  policy={policy}  K={cfg.steps}  C={search_candidates(args, cfg, policy)}  files={len(pairs)}  ({args.directory})")
    print(header)
    fmt = lambda v: f"{v:12.3f}" if v is not None else f"{'-':>12}"
    print(f"{'noisy':>5} " + " ".join(fmt(noisy_entry.get(k)) for k in keys))
    for e in per_step:
        r = f"{e['ratio']:7.2f}" if e.get("ratio") is not None else f"{'-':>7}"
        kf = f"{e['kept_fraction']:6.2f}" if e.get("kept_fraction") is not None else f"{'-':>6}"
        print(f"{e['step']:>5} " + " ".join(fmt(e.get(k)) for k in keys) + f" {r} {kf}")
    if args.json:
        write_json(args.json, {"model": sep.name, "policy": policy, "steps": cfg.steps,
                               "candidates": search_candidates(args, cfg, policy), "scope": args.scope, "blend": args.blend,
                               "directory": str(args.directory), "files": len(pairs), "noisy": noisy_entry,
                               "per_step": per_step, "rows": rows})
    return 0


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
        print(f"{name:<14} {i['sample_rate']:>6} {i['hop']:>5} {i['latency']:>8} {i['latency_ms']:>6.1f}  {dom:<8} "
              f"{i['description']}{note}")
    return 0


def cmd_presets(args) -> int:
    """Each preset with its live latency budget at 16 and 48 kHz (10 ms periods, default margin)."""
    from streamsep.host.budget import latency_budget
    from streamsep.presets import builtin_presets, load_preset

    for name, path in builtin_presets().items():
        c = load_preset(path)
        print(f"{name:<12} model={c.model} steps={c.steps} candidates={c.candidates} policy={c.policy} block={c.block}  ({path})")
        for rate in (16000, 48000):
            try:
                b = latency_budget(c, rate)
            except Exception as exc:  # a model that cannot load here: say so, list the rest
                print(f"{'':<12} live latency at {rate // 1000} kHz: unavailable ({str(exc).splitlines()[0]})")
                continue
            print(f"{'':<12} live latency at {rate // 1000} kHz, 10 ms periods: {b.total_ms:.1f} ms = model {b.model_ms:g}"
                  f" + resampler {b.resampler_ms:g} + host {b.host_ms:g}")
    return 0


def options_from(cls, args: argparse.Namespace):
    """A typed options dataclass ``cls`` filled from the same-named attributes of ``args``."""
    from dataclasses import fields

    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def cmd_bench(args) -> int:
    from streamsep.bench import BenchOptions, run_bench

    return run_bench(options_from(BenchOptions, args))


def cmd_tune(args) -> int:
    from streamsep.tune import TuneOptions, run_tune

    return run_tune(options_from(TuneOptions, args))


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


def cmd_devices(args) -> int:
    from streamsep.host.devices import list_devices
    from streamsep.host.virtual_mic import prefer_pipewire_jack

    prefer_pipewire_jack()  # on PipeWire: also list its microphones by the names --virtual-mic's --input takes
    devs = list_devices()
    if not devs:
        print("no audio devices found")
    for d in devs:
        print(f"{d['index']:>3}  {d['name']:<40} in={d['max_input_channels']} out={d['max_output_channels']} "
              f"rate={d['default_samplerate']:.0f}" + (f"  [{d.get('hostapi', '')}]" if d.get("hostapi") else ""))
    return 0


def cmd_gui(args, rest: list[str]) -> int:
    from gui.app import main as gui_main

    return int(gui_main(rest) or 0)


def cmd_proxies(args) -> int:
    """Agreement of each reference-free proxy with the per-block oracle on real pairs."""
    from streamsep.audio_io import read_audio
    from streamsep.proxy_eval import measure

    set_threads(args.threads)
    cfg = engine_config(args)
    sep = make_separator(cfg, args.model_path)
    pairs = find_pairs(Path(args.directory))
    if args.limit:
        pairs = pairs[:: max(1, len(pairs) // args.limit)][: args.limit]
    data = []
    for noisy, clean in pairs:
        x, _ = read_audio(noisy, rate=sep.sample_rate)
        s, _ = read_audio(clean, rate=sep.sample_rate)
        n = min(len(x), len(s))
        data.append((x[:n], s[:n]))
    block = cfg.block or ms_block(args.block_ms, sep.hop, sep.sample_rate)
    res = measure(data, sep, steps=cfg.steps or 3, candidates=cfg.candidates if cfg.candidates > 1 else 9, block=block)
    print(f"{sep.name}: {len(pairs)} files, decision block {block} samples, steps {cfg.steps or 3}")
    print(f"{'selector':<28} {'agreement':>9} {'keep rate':>9} {'gain dB':>8} {'decisions':>9}")
    for name, row in res.items():
        print(f"{name:<28} {row['agreement']:9.3f} {row['keep_rate']:9.3f} {row['mean_gain_db']:+8.3f} {row['decisions']:9d}")
    if args.json:
        write_json(args.json, {"model": sep.name, "files": len(pairs), "block": block, "selectors": res})
    return 0


def cmd_demo(args) -> int:
    from streamsep.demo import run_demo

    return run_demo(args.out, args.steps)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamsep", description="Real-time multi-step speech enhancement host.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="make a noisy demo clip, denoise it in one step and in several, print what happened")
    d.add_argument("--out", default="streamsep-demo", help="directory for the demo files")
    d.add_argument("--steps", type=int, default=2)
    d.set_defaults(func=cmd_demo)

    pr = sub.add_parser("process", help="denoise a file (one step or several)")
    pr.add_argument("input", help="noisy input audio file")
    pr.add_argument("output", help="output audio file (written atomically; keeps the input's channels, rate and "
                    "subtype unless told otherwise)")
    add_engine_options(pr, policy_list(*ORACLE_POLICIES, *ENGINE_POLICIES) + " (oracle-* need --reference)")
    pr.add_argument("--reference", help="clean reference for oracle policies and intrusive metrics")
    pr.add_argument("--json", help="write a report with per-step metrics here (its folder must exist)")
    pr.add_argument("--stream", action="store_true", help="run through the streaming engine in host blocks "
                    "(the same samples as without it)")
    pr.add_argument("--block", type=int, help="host block size in samples at the file rate for --stream")
    pr.add_argument("--scope", choices=SCOPES, default="utterance",
                    help="search policies: one ratio per step for the whole file (utterance, default) or one per "
                    "--block-ms block (block; oracle-sisdr, or fixed with --blend)")
    add_file_arguments(pr)
    pr.add_argument("--metrics", help="comma list of si_sdr,pesq,stoi (need --reference),dnsmos, per step "
                    "(default: none)")
    pr.add_argument("--in-place", action="store_true", help="allow the output to be the input file (replaced "
                    "atomically)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_process)

    ba = sub.add_parser("batch", help="denoise every file of a folder, glob or manifest (all cores or Ray)")
    add_batch_arguments(ba)
    ba.set_defaults(func=cmd_batch)

    ev = sub.add_parser("eval", help="steps × metrics table on a directory of clean/noisy pairs")
    ev.add_argument("directory")
    add_engine_options(ev, policy_list(*ALL_POLICIES))
    ev.add_argument("--json", help="write per-step means and per-file rows here")
    ev.add_argument("--limit", type=int, help="evaluate an evenly spread subset of N files")
    ev.add_argument("--filter", help="only noisy files whose name contains this")
    ev.add_argument("--scope", choices=SCOPES, default="utterance")
    ev.add_argument("--block-ms", type=float, default=200.0)
    ev.add_argument("--blend", choices=BLENDS, default="time")
    ev.add_argument("--metrics", default="si_sdr,pesq,stoi,dnsmos")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.add_argument("--dnsmos-windows", type=int, default=2,
                    help="score at most N evenly spread 9.01 s DNSMOS windows per clip (0 = all, as speechmos)")
    ev.set_defaults(func=cmd_eval)

    mo = sub.add_parser("models", help="list separators (rate, hop, latency) or pull a model card's files")
    mo.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    mo.add_argument("name", nargs="?")
    mo.add_argument("--dir", help="destination directory for pull")
    mo.set_defaults(func=cmd_models)

    ps = sub.add_parser("presets", help="list the built-in presets")
    ps.set_defaults(func=cmd_presets)

    be = sub.add_parser("bench", help="real-time factor and latency per configuration (JSON out)")
    be.add_argument("--model", default="nsnet2")
    be.add_argument("--model-path")
    be.add_argument("--steps", default="0,1,2,4", help="comma list")
    be.add_argument("--candidates", default="1", help="comma list")
    be.add_argument("--policy", default="fixed")
    be.add_argument("--block", default="160,1024", help="host block sizes in samples at the model rate, comma list")
    be.add_argument("--device", choices=DEVICES, default="cpu")
    be.add_argument("--threads", type=int, default=1)
    be.add_argument("--seconds", type=float, default=10.0, help="audio seconds per configuration")
    be.add_argument("--repeat", type=int, default=3, help="time each configuration N times, report the best "
                    "(the reference is measured N times too, interleaved)")
    be.add_argument("--input", help="audio file to stream (default: a generated noisy speech-like clip)")
    be.add_argument("--all-candidates", action="store_true",
                    help="run every candidate of every searching step, even where the policy keeps the "
                    "previous estimate without them (the worst-case cost of a block)")
    be.add_argument("--json", help="write {machine, configs} here")
    be.set_defaults(func=cmd_bench)

    tu = sub.add_parser("tune", help="sweep steps/candidates/policy/block: quality vs load and latency")
    tu.add_argument("input")
    tu.add_argument("--reference")
    tu.add_argument("--model", default="nsnet2")
    tu.add_argument("--model-path")
    tu.add_argument("--steps", default="0,1,2,3", help="refinement steps K to try (comma list)")
    tu.add_argument("--candidates", default="1,4", help="candidates per step to try (comma list)")
    tu.add_argument("--policy", default="fixed,heuristic,proxy", help="engine policies to try (comma list)")
    tu.add_argument("--block", default="160,800", help="host block sizes, samples at the model rate (comma list)")
    tu.add_argument("--device", choices=DEVICES, default="cpu")
    tu.add_argument("--threads", type=int, default=1)
    tu.add_argument("--budget-rtf", type=float, default=0.5, help="real-time budget for the recommendation")
    tu.add_argument("--json")
    tu.add_argument("--plot")
    tu.add_argument("--save-preset")
    tu.set_defaults(func=cmd_tune)

    li = sub.add_parser("live", help="denoise a live microphone: to an output device, JACK ports or a virtual mic",
                        epilog=LIVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_live_arguments(li)
    li.set_defaults(func=cmd_live)

    px = sub.add_parser("proxies", help="how often each reference-free proxy picks what the oracle would")
    px.add_argument("directory")
    add_engine_options(px)
    px.add_argument("--limit", type=int, default=16)
    px.add_argument("--block-ms", type=float, default=200.0)
    px.add_argument("--json")
    px.set_defaults(func=cmd_proxies)

    de = sub.add_parser("devices", help="list audio devices")
    de.set_defaults(func=cmd_devices)

    gu = sub.add_parser("gui", help="open the desktop app", add_help=False)
    gu.set_defaults(func=None)
    return p
