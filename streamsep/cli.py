"""The ``streamsep`` command line.

Commands: ``demo``, ``process``, ``eval``, ``models`` (list / ``pull``), ``bench``, ``tune``,
``live``, ``devices``, ``gui``, ``presets``.  Every failure the user can cause ends with one line
``streamsep: error: …`` on stderr and exit status 2; no output file is left half-written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


class CLIError(Exception):
    """A user error that the command line reports in one line."""


# ------------------------------------------------------------------------------------------------
# shared option groups
# ------------------------------------------------------------------------------------------------
def add_engine_options(p: argparse.ArgumentParser, policy_help: str = "") -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--preset", help="preset name (low-latency, balanced, quality) or path to a .toml file")
    g.add_argument("--model", help="separator name (see `streamsep models`) or a model card .toml")
    g.add_argument("--model-path", help="file or directory holding the model card's files")
    g.add_argument("--steps", type=int, help="K refinement steps after the one-step pass (0 = one-step)")
    g.add_argument("--candidates", type=int, help="candidate ratios per step")
    g.add_argument("--policy", help=policy_help or "ratio policy")
    g.add_argument("--ratios", help="fixed ratio schedule, comma-separated (policy fixed)")
    g.add_argument("--proxy", help="proxy for policy proxy (default floor-match; noise-gated, calibrated, energy, "
                   "speech-preserving, residual-flatness)")
    g.add_argument("--engine-block", type=int, help="decision block in samples at the model rate (multiple of hop)")
    g.add_argument("--mix", type=float, help="wet/dry mix, 1 = fully processed")
    g.add_argument("--atten-db", type=float, help="attenuation limit in dB")
    g.add_argument("--bypass", action="store_true", help="pass the delay-aligned input through")
    g.add_argument("--device", choices=["cpu", "cuda"], help="torch device for the separator")
    g.add_argument("--threads", type=int, help="torch/onnxruntime CPU threads")


LIVE_MARGIN_MS = 10.0  # streamsep.live.DEFAULT_MARGIN_MS


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``streamsep live`` (also used by ``python -m streamsep.live``)."""
    p.add_argument("--input", default=None, help="capture device (index or part of its name; default: system default)")
    p.add_argument("--output", default=None, help="playback device (index or name; 'null' = none)")
    add_engine_options(p, "fixed, heuristic, proxy")
    p.add_argument("--block", type=int, default=None, help="host block size in samples at the device rate (default: JACK's period, else 10 ms)")
    p.add_argument("--samplerate", type=int, default=None, help="device rate in Hz (default: the device's / the model's)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--stats", default=None, help="write statistics as JSON here at the end")
    p.add_argument("--input-file", default=None, help="feed this audio file in real time instead of a capture device")
    p.add_argument("--no-loop", action="store_true", help="with --input-file: stop at the end of the file")
    p.add_argument("--margin-ms", type=float, default=LIVE_MARGIN_MS, help="jitter allowance in ms (part of the latency)")
    p.add_argument("--no-adapt", action="store_true", help="disable deadline control (steps never reduced)")
    p.add_argument("--no-realtime", action="store_true", help="do not raise the worker thread's priority")
    p.add_argument("--quiet", action="store_true", help="no status line")


def engine_config(args: argparse.Namespace, **overrides):
    """Preset (if any) overridden by explicit options → an :class:`~streamsep.engine.EngineConfig`."""
    from streamsep.engine import EngineConfig
    from streamsep.presets import load_preset

    cfg = load_preset(args.preset) if getattr(args, "preset", None) else EngineConfig()
    changes = {}
    for key in ("model", "steps", "candidates", "policy", "mix", "atten_db", "device", "proxy"):
        val = getattr(args, key, None)
        if key == "policy" and val is not None and not is_engine_policy(val):
            from streamsep.offline import ALL_POLICIES

            if val not in ALL_POLICIES:
                raise CLIError(f"unknown policy '{val}' (known: {', '.join(ALL_POLICIES)})")
            continue  # offline-only policies (oracle, dnsmos) are not part of an engine config
        if val is not None:
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
    if changes.get("model", cfg.model) != cfg.model and "block" not in changes:
        changes["block"] = 0  # a preset's block belongs to its own model's hop
    return replace(cfg, **changes).validate()


def is_engine_policy(name: str) -> bool:
    """True for the live, reference-free policies the streaming engine runs."""
    return name in ("fixed", "heuristic", "proxy") or name.startswith("proxy:")


def set_threads(n: int | None) -> None:
    """Torch and onnxruntime CPU threads (``--threads``); must be a positive integer."""
    import torch

    if n is not None and int(n) < 1:
        raise CLIError(f"--threads: must be a positive integer, got {n}")
    if n:
        torch.set_num_threads(int(n))
        os.environ["STREAMSEP_ORT_THREADS"] = str(int(n))


def make_separator(cfg, model_path: str | None = None):
    """The configured separator; a decision block that is not a whole number of hops is an error."""
    from streamsep.separators.registry import create

    kwargs = {"model_path": model_path} if model_path else {}
    sep = create(cfg.model, device=cfg.device, **kwargs)
    if cfg.block and cfg.block % sep.hop:
        raise CLIError(f"--engine-block/block: {cfg.block} samples is not a multiple of the {sep.name} hop ({sep.hop})")
    return sep


def search_candidates(args, cfg, policy: str) -> int:
    """Candidates per step: explicit option, else 9 for the offline oracle/blind search, else the preset's."""
    from streamsep.offline import ORACLE_POLICIES

    if getattr(args, "candidates", None) is not None:
        return int(args.candidates)
    return 9 if policy in ORACLE_POLICIES else cfg.candidates


def write_json(path: str, data: dict) -> None:
    """Write JSON atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=_json_default)
            fh.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def clean_float(v) -> float | None:
    """NaN/inf → None for JSON."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def ms_block(block_ms: float, hop: int, rate: int) -> int:
    """A decision block of about ``block_ms`` milliseconds, in whole hops (at least one)."""
    return max(1, int(round(block_ms * 1e-3 * rate / hop))) * hop


def block_for(host_block: int, hop: int) -> int:
    """Decision block for a host block: the largest multiple of the hop not above it (≥ one hop)."""
    return max(hop, (int(host_block) // hop) * hop)


# ------------------------------------------------------------------------------------------------
# metrics per step
# ------------------------------------------------------------------------------------------------
def step_metrics(estimates: list[np.ndarray], rate: int, reference: np.ndarray | None,
                 which: tuple[str, ...]) -> list[dict]:
    from streamsep.metrics import evaluate

    rows = []
    for y in estimates:
        m = evaluate(y, rate, reference, which=which)
        rows.append({k: clean_float(v) for k, v in m.items()})
    return rows


def summarize_ratio(r) -> tuple[float | None, float | None]:
    """(mean chosen ratio, fraction of blocks that kept the previous estimate) for one step."""
    if r is None:
        return None, None
    arr = np.atleast_1d(np.asarray(r, dtype=float))
    if arr.size == 0:
        return None, None
    kept = float(np.mean(np.isnan(arr)))
    chosen = arr[~np.isnan(arr)]
    return (float(np.mean(chosen)) if chosen.size else None), kept


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------
def add_file_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``process`` and ``batch``: how a file is refined and written."""
    g = p.add_argument_group("file")
    g.add_argument("--block-ms", type=float, default=200.0,
                   help="decision block in ms when the preset/--engine-block gives none; also the selection "
                   "block of --scope block (default 200)")
    g.add_argument("--blend", choices=["time", "frame"], default=None,
                   help="run the offline search refiner (policy fixed or oracle-*/dnsmos) mixing input and "
                   "previous estimate as waveforms (time, the published procedure) or as STFT frames (frame, as "
                   "the engine does). Default: the engine for fixed/heuristic/proxy (the same samples as "
                   "--stream), time for oracle-*/dnsmos")
    g.add_argument("--mono", action="store_true", help="average the channels and write mono (default: keep and "
                   "denoise every channel)")
    g.add_argument("--rate", type=int, help="output sample rate in Hz (default: the input's)")
    g.add_argument("--subtype", help="output subtype, e.g. PCM_16, PCM_24, FLOAT (default: the input's where the "
                   "output format allows it)")
    g.add_argument("--clip", choices=["limit", "clip"], default="limit",
                   help="integer output that would clip: limit = scale the whole file to a -0.1 dBFS peak "
                   "(default), clip = hard-clip; both are reported")
    g.add_argument("--dnsmos", action="store_true", help="score DNSMOS OVRL of input and output (slow)")


def file_options(args, **extra):
    """argparse → :class:`~streamsep.enhance.FileOptions`."""
    from streamsep.enhance import FileOptions
    from streamsep.offline import ALL_POLICIES

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


def read_pair(noisy: Path, clean: Path, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A (noisy, clean) pair read, resampled to ``rate`` and cut to the shorter length."""
    from streamsep.audio_io import read_audio, resample

    x, xr = read_audio(noisy)
    s, sr = read_audio(clean)
    x = resample(x, xr, rate) if xr != rate else x
    s = resample(s, sr, rate) if sr != rate else s
    n = min(len(x), len(s))
    return x[:n], s[:n]


def find_pairs(directory: Path) -> list[tuple[Path, Path]]:
    """(noisy, clean) pairs: a noisy file maps to the clean file whose stem it starts with + '_'."""
    clean_dir, noisy_dir = directory / "clean", directory / "noisy"
    if not clean_dir.is_dir() or not noisy_dir.is_dir():
        raise CLIError(f"{directory}: needs clean/ and noisy/ subdirectories")
    exts = {".wav", ".flac", ".ogg"}
    cleans = {p.stem: p for p in sorted(clean_dir.iterdir()) if p.suffix.lower() in exts}
    pairs = []
    for noisy in sorted(noisy_dir.iterdir()):
        if noisy.suffix.lower() not in exts:
            continue
        match = cleans.get(noisy.stem)
        if match is None:
            cands = [s for s in cleans if noisy.stem.startswith(s + "_")]
            if cands:
                match = cleans[max(cands, key=len)]
        if match is not None:
            pairs.append((noisy, match))
    if not pairs:
        raise CLIError(f"{directory}: no noisy file matches a clean file")
    return pairs


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
    if policy not in ("oracle-sisdr", "oracle-pesq", "dnsmos"):
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
    from streamsep.separators.registry import create, model_names

    if args.action == "pull":
        if not args.name:
            raise CLIError("models pull needs a model NAME")
        from streamsep.modelfiles import pull

        paths = pull(args.name, args.dir)
        for p in paths:
            print(p)
        return 0
    print(f"{'name':<14} {'rate':>6} {'hop':>5} {'latency':>8} {'ms':>6}  {'domain':<8} description")
    for name in model_names():
        try:
            sep = create(name)
            i = sep.info()
            dom = "frame" if i["frame_domain"] else "waveform"
            print(f"{name:<14} {i['sample_rate']:>6} {i['hop']:>5} {i['latency']:>8} {i['latency_ms']:>6.1f}  {dom:<8} {i['description']}")
        except Exception as exc:  # a card whose files are not installed: say so, keep listing
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"{name:<14} {'-':>6} {'-':>5} {'-':>8} {'-':>6}  {'-':<8} unavailable: {msg}")
    return 0


def cmd_presets(args) -> int:
    from streamsep.presets import builtin_presets, load_preset

    for name, path in builtin_presets().items():
        c = load_preset(path)
        print(f"{name:<12} model={c.model} steps={c.steps} candidates={c.candidates} policy={c.policy} block={c.block}  ({path})")
    return 0


def cmd_bench(args) -> int:
    from streamsep.bench import run_bench

    return run_bench(args)


def cmd_tune(args) -> int:
    from streamsep.tune import run_tune

    return run_tune(args)


def cmd_live(args) -> int:
    from streamsep.live import run_live

    return int(run_live(args) or 0)


def cmd_devices(args) -> int:
    from streamsep.live import list_devices

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

    return run_demo(args)


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
    add_engine_options(pr, "oracle-sisdr, oracle-pesq (need --reference), dnsmos, fixed, heuristic, proxy")
    pr.add_argument("--reference", help="clean reference for oracle policies and intrusive metrics")
    pr.add_argument("--json", help="write a report with per-step metrics here (its folder must exist)")
    pr.add_argument("--stream", action="store_true", help="run through the streaming engine in host blocks "
                    "(the same samples as without it)")
    pr.add_argument("--block", type=int, help="host block size in samples at the file rate for --stream")
    pr.add_argument("--scope", choices=["utterance", "block"], default="utterance",
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
    add_engine_options(ev, "oracle-sisdr, oracle-pesq, dnsmos, fixed, heuristic, proxy, oracle-block")
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
    be.add_argument("--soak", type=float, help="soak test through the JACK dummy server for N minutes")
    be.add_argument("--preset", default="balanced", help="preset for --soak")
    be.add_argument("--period", type=int, default=160,
                    help="JACK period in frames at 16 kHz for --soak (default 160 = 10 ms)")
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

    li = sub.add_parser("live", help="denoise a live input device to an output device")
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
            return cmd_gui(None, argv[1:])
        except ImportError as exc:
            print(f"streamsep: error: the GUI needs PyQt6 and pyqtgraph ({exc})", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    from streamsep.engine import ConfigError  # torch loads here, after `gui` has been handed off

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


if __name__ == "__main__":
    # run the module's canonical copy, so exceptions raised elsewhere (streamsep.cli.CLIError) are
    # the same classes that main() catches
    from streamsep.cli import main as _main

    sys.exit(_main())
