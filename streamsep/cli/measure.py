"""The measurement commands: ``eval`` (steps × metrics on clean/noisy pairs), ``bench`` (real-time factor
and latency), ``tune`` (quality against load) and ``proxies`` (how often a proxy agrees with the oracle)."""

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
    DEVICES,
    ORACLE_POLICIES,
    SCOPES,
)
from streamsep.cli.options import (
    add_engine_options,
    engine_config,
    policy_list,
    search_candidates,
)
from streamsep.config import ms_block
from streamsep.pairs import find_pairs, read_pair
from streamsep.reporting import step_metrics, summarize_ratio, write_json
from streamsep.runtime import make_separator, set_threads


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
    for noisy, clean in tqdm(
        pairs, desc=f"eval {sep.name} {policy} K={cfg.steps}", unit="file", file=sys.stderr, disable=args.quiet
    ):
        xm, sm = read_pair(noisy, clean, sr)
        res = refine_signal(
            sep,
            xm,
            cfg.steps,
            policy,
            search_candidates(args, cfg, policy),
            sm,
            args.scope,
            args.block_ms,
            args.blend,
            cfg.ratios,
            config=engine_cfg,
        )
        mets = step_metrics(res.estimates, sr, sm, which)
        noisy_m = step_metrics([xm], sr, sm, which)[0]
        for k, m in enumerate(mets):
            mean_r, kept = summarize_ratio(res.ratios[k]) if k else (None, None)
            rows.append(
                {"file": noisy.name, "clean": clean.name, "step": k, "ratio": mean_r, "kept_fraction": kept, **m}
            )
        rows.append({"file": noisy.name, "clean": clean.name, "step": -1, **noisy_m})
    keys = [
        k for k in ("si_sdr", "pesq", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak") if any(k in r for r in rows)
    ]
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
    print(
        f"{sep.name}  policy={policy}  K={cfg.steps}  C={search_candidates(args, cfg, policy)}  files={len(pairs)}  ({args.directory})"
    )
    print(header)
    fmt = lambda v: f"{v:12.3f}" if v is not None else f"{'-':>12}"
    print(f"{'noisy':>5} " + " ".join(fmt(noisy_entry.get(k)) for k in keys))
    for e in per_step:
        r = f"{e['ratio']:7.2f}" if e.get("ratio") is not None else f"{'-':>7}"
        kf = f"{e['kept_fraction']:6.2f}" if e.get("kept_fraction") is not None else f"{'-':>6}"
        print(f"{e['step']:>5} " + " ".join(fmt(e.get(k)) for k in keys) + f" {r} {kf}")
    if args.json:
        write_json(
            args.json,
            {
                "model": sep.name,
                "policy": policy,
                "steps": cfg.steps,
                "candidates": search_candidates(args, cfg, policy),
                "scope": args.scope,
                "blend": args.blend,
                "directory": str(args.directory),
                "files": len(pairs),
                "noisy": noisy_entry,
                "per_step": per_step,
                "rows": rows,
            },
        )
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
        print(
            f"{name:<28} {row['agreement']:9.3f} {row['keep_rate']:9.3f} {row['mean_gain_db']:+8.3f} {row['decisions']:9d}"
        )
    if args.json:
        write_json(args.json, {"model": sep.name, "files": len(pairs), "block": block, "selectors": res})
    return 0


def add_eval_parser(sub) -> None:
    """The ``eval`` subcommand."""
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
    ev.add_argument(
        "--dnsmos-windows",
        type=int,
        default=2,
        help="score at most N evenly spread 9.01 s DNSMOS windows per clip (0 = all, as speechmos)",
    )
    ev.set_defaults(func=cmd_eval)


def add_bench_parser(sub) -> None:
    """The ``bench`` subcommand."""
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
    be.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="time each configuration N times, report the best (the reference is measured N times too, interleaved)",
    )
    be.add_argument("--input", help="audio file to stream (default: a generated noisy speech-like clip)")
    be.add_argument(
        "--all-candidates",
        action="store_true",
        help="run every candidate of every searching step, even where the policy keeps the "
        "previous estimate without them (the worst-case cost of a block)",
    )
    be.add_argument("--json", help="write {machine, configs} here")
    be.set_defaults(func=cmd_bench)


def add_tune_parser(sub) -> None:
    """The ``tune`` subcommand."""
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


def add_proxies_parser(sub) -> None:
    """The ``proxies`` subcommand."""
    px = sub.add_parser("proxies", help="how often each reference-free proxy picks what the oracle would")
    px.add_argument("directory")
    add_engine_options(px)
    px.add_argument("--limit", type=int, default=16)
    px.add_argument("--block-ms", type=float, default=200.0)
    px.add_argument("--json")
    px.set_defaults(func=cmd_proxies)
