"""``streamsep process`` and ``streamsep batch``: options → :class:`~streamsep.enhance.FileOptions` /
:class:`~streamsep.batch.BatchOptions` → :func:`~streamsep.enhance.enhance_file` / :func:`~streamsep.batch.run_batch`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamsep.catalogue import (
    ALL_POLICIES,
    BATCH_ENGINES,
    BLENDS,
    CLIP_MODES,
    ENGINE_POLICIES,
    ORACLE_POLICIES,
    SCOPES,
    is_engine_policy,
)
from streamsep.cli.options import (
    CLIError,
    add_engine_options,
    engine_config,
    policy_list,
)
from streamsep.reporting import write_json
from streamsep.runtime import set_threads


def add_file_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``process`` and ``batch``: how a file is refined and written."""
    g = p.add_argument_group("file")
    g.add_argument(
        "--block-ms",
        type=float,
        default=200.0,
        help="decision block in ms when the preset/--engine-block gives none; also the selection "
        "block of --scope block (default 200)",
    )
    g.add_argument(
        "--blend",
        choices=BLENDS,
        default=None,
        help="run the offline search refiner (policy fixed or oracle-*/dnsmos) mixing input and "
        "previous estimate as waveforms (time, the published procedure) or as STFT frames (frame, as "
        "the engine does). Default: the engine for fixed/heuristic/proxy (the same samples as "
        "--stream), time for oracle-*/dnsmos",
    )
    g.add_argument(
        "--mono",
        action="store_true",
        help="average the channels and write mono (default: keep and denoise every channel)",
    )
    g.add_argument("--rate", type=int, help="output sample rate in Hz (default: the input's)")
    g.add_argument(
        "--subtype",
        help="output subtype, e.g. PCM_16, PCM_24, FLOAT (default: the input's where the output format allows it)",
    )
    g.add_argument(
        "--clip",
        choices=CLIP_MODES,
        default="limit",
        help="integer output that would clip: limit = scale the whole file to a -0.1 dBFS peak "
        "(default), clip = hard-clip; both are reported",
    )
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
    return FileOptions(
        reference=getattr(args, "reference", None),
        metrics=metrics,
        policy=policy,
        candidates=args.candidates,
        stream=getattr(args, "stream", False),
        block=getattr(args, "block", None),
        block_ms=args.block_ms,
        scope=getattr(args, "scope", "utterance"),
        blend=args.blend,
        mono=args.mono,
        rate=args.rate,
        subtype=args.subtype,
        in_place=getattr(args, "in_place", False),
        clip=args.clip,
        model_path=args.model_path,
        dnsmos=args.dnsmos,
        **extra,
    )


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
        vals = "  ".join(
            f"{k}={v:.3f}" for k, v in e.items() if k not in ("step", "ratio", "kept_fraction") and v is not None
        )
        r = f"ratio={e['ratio']:.2f}" if e.get("ratio") is not None else ("ratio=keep" if e["step"] else "one-step")
        print(f"step {e['step']}{' (streamed)' if res.stream else ''}: {r}  {vals}")
    if res.dnsmos_before is not None:
        print(f"DNSMOS OVRL {res.dnsmos_before:.3f} -> {res.dnsmos_after:.3f}")
    print(describe(res))
    return 0


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``streamsep batch``."""
    p.add_argument(
        "source",
        help="a folder (recursive), a glob in quotes ('corpus/**/*.flac') or a manifest "
        "(.txt/.lst: one path a line; .csv/.tsv: column input or path, optional column output)",
    )
    p.add_argument("out", help="output folder; mirrors the inputs' relative paths (created if missing)")
    add_engine_options(p, "fixed, heuristic, proxy, dnsmos")
    add_file_arguments(p)
    b = p.add_argument_group("batch")
    b.add_argument(
        "--engine",
        choices=BATCH_ENGINES,
        default="local",
        help="local = a process pool on this machine (default); ray = Ray actors (extra [ray])",
    )
    b.add_argument("--workers", type=int, help="worker processes / Ray actors (default: the CPU cores)")
    b.add_argument(
        "--address",
        default="local",
        help="ray: local (a private cluster for this run), auto, "
        "HOST:PORT or ray://HOST:PORT (join an existing cluster)",
    )
    b.add_argument("--cpus-per-worker", type=float, default=1.0, help="ray: CPUs reserved per actor")
    b.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per actor (use with --device cuda)")
    b.add_argument("--retries", type=int, default=2, help="retries of a file whose worker died (default 2)")
    b.add_argument("--timeout", type=float, help="seconds one file may take before it is recorded as failed")
    b.add_argument("--overwrite", action="store_true", help="redo outputs that already exist (default: skip them)")
    b.add_argument("--ext", help="output extension, e.g. flac (default: the input's when writable, else wav)")
    b.add_argument(
        "--report",
        help="JSON lines, one per file: input, output, status, error, seconds, "
        "wall_seconds, rtf, model, steps, policy (+ dnsmos_before/after)",
    )
    b.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_batch(args) -> int:
    """``streamsep batch IN OUT``: options → :func:`streamsep.batch.run_batch`; exit 1 if a file failed."""
    from streamsep.batch import BatchOptions, run_batch

    cfg = engine_config(args)
    if args.threads not in (None, 1):
        raise CLIError("--threads: batch workers run one thread each; use --workers")
    check_json_path(args.report, "--report")
    bopts = BatchOptions(
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        retries=args.retries,
        timeout_s=args.timeout,
        overwrite=args.overwrite,
        ext=args.ext,
        report=args.report,
        progress=not args.quiet,
    )
    summary = run_batch(args.source, args.out, cfg, file_options(args), bopts)
    for path, err in summary.errors[:20]:
        print(
            f"streamsep: failed: {path}: {err}" if not err.startswith(path) else f"streamsep: failed: {err}",
            file=sys.stderr,
        )
    if len(summary.errors) > 20:
        print(f"streamsep: ... and {len(summary.errors) - 20} more failures (see --report)", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0


def add_process_parser(sub) -> None:
    """The ``process`` subcommand."""
    pr = sub.add_parser("process", help="denoise a file (one step or several)")
    pr.add_argument("input", help="noisy input audio file")
    pr.add_argument(
        "output",
        help="output audio file (written atomically; keeps the input's channels, rate and "
        "subtype unless told otherwise)",
    )
    add_engine_options(pr, policy_list(*ORACLE_POLICIES, *ENGINE_POLICIES) + " (oracle-* need --reference)")
    pr.add_argument("--reference", help="clean reference for oracle policies and intrusive metrics")
    pr.add_argument("--json", help="write a report with per-step metrics here (its folder must exist)")
    pr.add_argument(
        "--stream",
        action="store_true",
        help="run through the streaming engine in host blocks (the same samples as without it)",
    )
    pr.add_argument("--block", type=int, help="host block size in samples at the file rate for --stream")
    pr.add_argument(
        "--scope",
        choices=SCOPES,
        default="utterance",
        help="search policies: one ratio per step for the whole file (utterance, default) or one per "
        "--block-ms block (block; oracle-sisdr, or fixed with --blend)",
    )
    add_file_arguments(pr)
    pr.add_argument(
        "--metrics", help="comma list of si_sdr,pesq,stoi (need --reference),dnsmos, per step (default: none)"
    )
    pr.add_argument(
        "--in-place", action="store_true", help="allow the output to be the input file (replaced atomically)"
    )
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_process)


def add_batch_parser(sub) -> None:
    """The ``batch`` subcommand."""
    ba = sub.add_parser("batch", help="denoise every file of a folder, glob or manifest (all cores or Ray)")
    add_batch_arguments(ba)
    ba.set_defaults(func=cmd_batch)
