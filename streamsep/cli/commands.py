"""The commands of ``streamsep``: one ``cmd_X(args)`` each (parse → typed config → library call),
and :func:`build_parser`.  Heavy modules (torch, onnxruntime) are imported inside the commands only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from streamsep.catalogue import ALL_POLICIES, ENGINE_POLICIES, ORACLE_POLICIES, is_engine_policy
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
from streamsep.config import block_for, ms_block
from streamsep.pairs import find_pairs, read_pair
from streamsep.reporting import step_metrics, summarize_ratio, write_json
from streamsep.runtime import make_separator, set_threads


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------
def cmd_process(args) -> int:
    from streamsep.audio_io import read_audio, resample, write_audio
    from streamsep.offline import NEEDS_REFERENCE, refine_signal

    cfg = engine_config(args)
    set_threads(args.threads)
    policy = cfg.policy if args.policy is None else args.policy
    if policy in NEEDS_REFERENCE and not args.reference:
        raise CLIError(f"policy {policy} needs --reference CLEAN.wav")
    if args.stream:
        return process_stream(args, cfg, policy)
    x, rate = read_audio(args.input)
    ref = None
    if args.reference:
        ref, ref_rate = read_audio(args.reference)
        if ref_rate != rate:
            raise CLIError(f"{args.reference}: reference rate {ref_rate} Hz differs from input rate {rate} Hz")
        if abs(len(ref) - len(x)) > max(1, int(0.01 * rate)):
            raise CLIError(f"{args.reference}: reference length {len(ref)} samples differs from input length {len(x)}")
    sep = make_separator(cfg, args.model_path)
    sr = sep.sample_rate
    xm = resample(x, rate, sr) if rate != sr else x
    refm = None
    if ref is not None:
        refm = resample(ref, rate, sr) if rate != sr else ref
        refm = np.pad(refm, (0, max(0, len(xm) - len(refm))))[: len(xm)]
    engine_cfg = replace(cfg, policy=policy if policy in ("fixed", "heuristic", "proxy", "oracle-block") or policy.startswith("proxy:") else "fixed")
    if not engine_cfg.block:
        engine_cfg = replace(engine_cfg, block=ms_block(args.block_ms, sep.hop, sr))
    t0 = time.perf_counter()
    cands = search_candidates(args, cfg, policy)
    result = refine_signal(sep, xm, cfg.steps, policy, cands, refm, args.scope, args.block_ms,
                           args.blend, cfg.ratios,
                           config=engine_cfg if policy not in ("oracle-sisdr", "oracle-pesq", "dnsmos", "fixed") else None)
    final = result.estimates[-1]
    out = resample(final, sr, rate) if rate != sr else final
    out = np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)]
    elapsed = time.perf_counter() - t0
    write_audio(args.output, out, rate, subtype=args.subtype)
    which = tuple(m for m in args.metrics.split(",") if m) if args.metrics else ("si_sdr", "pesq", "stoi", "dnsmos")
    rows = step_metrics(result.estimates, sr, refm, which)
    per_step = []
    for k, row in enumerate(rows):
        mean_r, kept = summarize_ratio(result.ratios[k]) if k else (None, None)
        entry = {"step": k, "ratio": mean_r, **row}
        if k:
            entry["kept_fraction"] = kept
        per_step.append(entry)
    report = {"model": sep.name, "steps": cfg.steps, "candidates": cands, "policy": policy,
              "input": str(args.input), "output": str(args.output), "rate": rate, "model_rate": sr,
              "seconds": len(x) / rate, "compute_seconds": elapsed, "per_step": per_step}
    if args.json:
        write_json(args.json, report)
    for e in per_step:
        vals = "  ".join(f"{k}={v:.3f}" for k, v in e.items() if k not in ("step", "ratio", "kept_fraction") and v is not None)
        r = f"ratio={e['ratio']:.2f}" if e.get("ratio") is not None else ("ratio=keep" if e["step"] else "one-step")
        print(f"step {e['step']}: {r}  {vals}")
    print(f"wrote {args.output} ({len(x) / rate:.2f} s, {sep.name}, K={cfg.steps}, policy {policy}, {elapsed:.2f} s compute)")
    return 0


def process_stream(args, cfg, policy: str) -> int:
    """``process --stream``: disk → engine (host blocks of ``--block``) → disk, in constant memory.

    The whole signal is loaded only for what needs it: the metrics that can be computed (SI-SDR,
    PESQ, STOI need ``--reference``; DNSMOS does not) and, with a reference, a check of the streamed
    output against the engine's whole-file output (``stream_vs_offline_max_abs``).
    """
    import soundfile as sf

    from streamsep.audio_io import AtomicStreamWriter, FileStreamReader, read_audio, resample
    from streamsep.engine import Engine

    if not is_engine_policy(policy):
        raise CLIError(f"--stream runs the live engine: policy must be fixed, heuristic or proxy, not {policy}")
    sep = make_separator(cfg, args.model_path)
    host_block = int(args.block or sep.hop)
    if host_block < 1:
        raise CLIError(f"--block: host block must be a positive number of samples, got {host_block}")
    engine_cfg = replace(cfg, policy=policy, block=cfg.block or block_for(host_block, sep.hop))
    reader = FileStreamReader(args.input, host_block)
    rate, n = reader.rate, reader.frames
    if args.reference:
        info = sf.info(str(args.reference))
        if info.samplerate != rate:
            raise CLIError(f"{args.reference}: reference rate {info.samplerate} Hz differs from input rate {rate} Hz")
        if abs(info.frames - n) > max(1, int(0.01 * rate)):
            raise CLIError(f"{args.reference}: reference length {info.frames} samples differs from input length {n}")
    eng = Engine(engine_cfg, rate=rate, separator=sep, host_block=host_block)
    L = eng.latency
    t0 = time.perf_counter()
    written, skip = 0, L
    with AtomicStreamWriter(args.output, rate, subtype=args.subtype) as out:
        def emit(y: np.ndarray) -> None:
            nonlocal written, skip
            if skip:
                cut = min(skip, len(y))
                y, skip = y[cut:], skip - cut
            y = y[: n - written]
            if len(y):
                out.write(y)
                written += len(y)
        for blk in reader:
            emit(eng.process(blk))
        n = reader.frames_read  # what the file really held (a header may claim more)
        tail = np.zeros(host_block, np.float32)
        while written < n:
            emit(eng.process(tail))
    elapsed = time.perf_counter() - t0
    which = tuple(m for m in args.metrics.split(",") if m) if args.metrics else ("si_sdr", "pesq", "stoi", "dnsmos")
    computable = tuple(m for m in which if m == "dnsmos" or args.reference)
    report = {"model": sep.name, "steps": cfg.steps, "candidates": cfg.candidates, "policy": policy,
              "input": str(args.input), "output": str(args.output), "rate": rate, "model_rate": sep.sample_rate,
              "seconds": n / rate, "compute_seconds": elapsed, "stream": True, "host_block": host_block,
              "engine_block": eng.block, "latency_samples": L, "latency_ms": eng.latency_ms, "per_step": []}
    if computable:
        y, _ = read_audio(args.output)
        ref = read_audio(args.reference)[0] if args.reference else None
        if ref is not None:
            ref = np.pad(ref, (0, max(0, n - len(ref))))[:n]
            x = read_audio(args.input)[0]
            xm = resample(x, rate, sep.sample_rate) if rate != sep.sample_rate else x
            off, _, _ = Engine(engine_cfg, separator=sep).run_offline(xm)
            off = resample(off, sep.sample_rate, rate) if rate != sep.sample_rate else off
            off = np.pad(off, (0, max(0, n - len(off))))[:n]
            report["stream_vs_offline_max_abs"] = float(np.max(np.abs(y - off)))
        row = step_metrics([y], rate, ref, computable)[0]
        report["per_step"] = [{"step": cfg.steps, "ratio": None, **row}]
    if args.json:
        write_json(args.json, report)
    for e in report["per_step"]:
        vals = "  ".join(f"{k}={v:.3f}" for k, v in e.items() if k not in ("step", "ratio") and v is not None)
        print(f"step {e['step']} (streamed): {vals}")
    print(f"wrote {args.output} ({n / rate:.2f} s streamed in {host_block}-sample blocks, {sep.name}, "
          f"K={cfg.steps}, policy {policy}, latency {eng.latency_ms:.1f} ms, {elapsed:.2f} s compute)")
    return 0


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
    pr.add_argument("output", help="output audio file (written atomically)")
    add_engine_options(pr, policy_list(*ORACLE_POLICIES, *ENGINE_POLICIES) + " (oracle-* need --reference)")
    pr.add_argument("--reference", help="clean reference for oracle policies and intrusive metrics")
    pr.add_argument("--json", help="write a report with per-step metrics here")
    pr.add_argument("--stream", action="store_true", help="run through the streaming engine in host blocks")
    pr.add_argument("--block", type=int, help="host block size in samples for --stream")
    pr.add_argument("--scope", choices=["utterance", "block"], default="utterance")
    pr.add_argument("--block-ms", type=float, default=200.0, help="selection block for --scope block / engine policies (ms)")
    pr.add_argument("--blend", choices=["time", "frame"], default="time")
    pr.add_argument("--metrics", help="comma list of si_sdr,pesq,stoi,dnsmos (default all)")
    pr.add_argument("--subtype", help="output subtype, e.g. PCM_16, FLOAT")
    pr.set_defaults(func=cmd_process)

    ev = sub.add_parser("eval", help="steps × metrics table on a directory of clean/noisy pairs")
    ev.add_argument("directory")
    add_engine_options(ev, policy_list(*ALL_POLICIES))
    ev.add_argument("--json", help="write per-step means and per-file rows here")
    ev.add_argument("--limit", type=int, help="evaluate an evenly spread subset of N files")
    ev.add_argument("--filter", help="only noisy files whose name contains this")
    ev.add_argument("--scope", choices=["utterance", "block"], default="utterance")
    ev.add_argument("--block-ms", type=float, default=200.0)
    ev.add_argument("--blend", choices=["time", "frame"], default="time")
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
    be.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
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
    tu.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
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
