"""``streamsep bench``: real-time factor and latency of the streaming engine per configuration.

For each (steps, candidates, host block) the input is streamed through :class:`Engine` in host blocks
exactly as the live host does; ``rtf`` = compute seconds / audio seconds.  ``steps`` counts refinement
steps after the one-step pass (``steps`` 0 = the plain model, as in ``eval``'s step 0); ``passes`` =
separator passes per block (1 + steps × candidates for a searching policy, else 1 + steps);
``passes_run`` = the passes per block that actually ran (fewer where the policy kept the previous
estimate without needing to see the candidates: :meth:`Policy.precheck`).  In the same run the raw
reference runtime of the model is measured as ``reference_rtf``: onnxruntime on the NSNet2 ONNX over
the whole file (features, network, synthesis) for nsnet2; pyrnnoise's own frame loop for rnnoise;
libDF's C runtime (``libdeepfilter.so`` through ctypes, hop by hop; ``reference``: ``"libdf"``) for
dfn3; one whole-file ``process`` call of the separator itself for other models.  The reference runs once
before every timed repeat of every configuration (interleaved with the engine, best of N on each
side), so that ``cpu_rtf / reference_rtf`` compares two timings made within seconds of each other;
``reference_rtf_at_start`` is the best of N measured once before the first configuration.

``blockwise_rtf`` is the separator alone — its own ``process()``, the reference's work (analysis,
network, synthesis) — streamed in the configuration's engine blocks with carried state, timed the
same interleaved way: ``blockwise_rtf / reference_rtf`` is what calling the model block by block
costs by itself, and ``cpu_rtf − blockwise_rtf`` at ``steps`` 0 is what the engine adds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from streamsep.catalogue import ENGINE_POLICIES
from streamsep.config import block_for
from streamsep.engine import Engine, EngineConfig
from streamsep.machine import machine_info, python_loop_ns  # noqa: F401 (re-exported)
from streamsep.reporting import write_json


@dataclass
class BenchOptions:
    """What ``streamsep bench`` measures.  Lists are sequences or comma-separated strings.

    ``block``: host block sizes in samples at the model rate; ``seconds``: audio per configuration;
    ``repeat``: timings per configuration (the best is reported); ``input``: audio file to stream
    (None = a generated noisy speech-like clip); ``json``: where to write {machine, configs} (None = nowhere).
    """

    model: str = "nsnet2"
    model_path: str | None = None
    steps: Sequence[int] | str = (0, 1, 2, 4)
    candidates: Sequence[int] | str = (1,)
    policy: str = ENGINE_POLICIES[0]
    block: Sequence[int] | str = (160, 1024)
    device: str = "cpu"
    threads: int | None = 1
    seconds: float = 10.0
    repeat: int = 3
    input: str | None = None
    all_candidates: bool = False
    json: str | None = None


def bench_input(seconds: float, rate: int, path: str | None) -> np.ndarray:
    """The file (resampled, looped to length) or a generated noisy speech-like clip."""
    from streamsep.audio_io import read_audio
    from streamsep.synth import coloured_noise, mix_at_snr, synthetic_speech

    if path:
        x, _ = read_audio(path, rate=rate)
    else:
        x = mix_at_snr(
            synthetic_speech(min(seconds, 10.0), rate), coloured_noise(int(min(seconds, 10.0) * rate), rate), 5.0
        )
    reps = int(np.ceil(seconds * rate / len(x)))
    return np.tile(x, reps)[: int(seconds * rate)].astype(np.float32)


def reference_timer(sep, x: np.ndarray) -> tuple[Callable[[], float], str]:
    """One timing of the raw reference runtime of the model over the whole signal ``x``.

    Returns (a function that runs the reference once and returns its seconds, what it measures).
    """
    if sep.name.startswith("nsnet2"):
        import onnxruntime as ort

        from streamsep.separators.nsnet2 import log_power

        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(sep.onnx_path), so, providers=["CPUExecutionProvider"])
        n = len(x) // sep.hop * sep.hop
        name = sess.get_inputs()[0].name

        def once() -> float:
            t0 = time.process_time()
            xt = torch.as_tensor(x[:n])[None]
            X, _ = sep.stft.analyze(xt, sep.stft.new_analysis_state(1))
            g = sess.run(None, {name: log_power(X).numpy()})[0]
            sep.stft.synthesize(X * torch.as_tensor(np.clip(g, 1e-4, 1.0)), sep.stft.new_synthesis_state(1))
            return time.process_time() - t0

        return once, "onnxruntime on the NSNet2 ONNX, whole file (process CPU time, best of N)"
    if sep.name == "dfn3":  # libDF's own C runtime (ctypes), hop by hop over the whole file
        from streamsep.separators.libdf_reference import LibDF

        n = len(x) // sep.hop * sep.hop

        def once_libdf() -> float:
            df = LibDF(sep.tarball)
            try:
                t0 = time.process_time()
                df.process(x[:n])
                return time.process_time() - t0
            finally:
                df.close()

        return once_libdf, "libdf"
    if sep.name == "rnnoise":
        from streamsep.separators import rnnoise

        return (lambda: float(rnnoise.reference_rtf(x)) * len(x) / sep.sample_rate), "pyrnnoise's own frame loop"
    n = len(x) // sep.hop * sep.hop

    def once_process() -> float:
        t0 = time.perf_counter()
        sep.process(x[None, :n], sep.new_state(1))
        return time.perf_counter() - t0

    return once_process, f"{sep.name} process() over the whole file"


def blockwise_timer(sep, x: np.ndarray, block: int) -> Callable[[], float]:
    """One timing of the separator alone streamed through ``x`` in blocks of ``block`` samples
    (a multiple of its hop) with carried state: its own ``process()``, no engine around it.

    Returns a function that runs it once (fresh state, 20 untimed blocks first) and returns its
    process CPU seconds, scaled to the whole of ``x``.
    """
    n = len(x) // block * block
    blocks = [x[None, i : i + block] for i in range(0, n, block)]

    def once() -> float:
        state = sep.new_state(1)
        for b in blocks[:20]:
            _, state = sep.process(b, state)
        state = sep.new_state(1)
        t0 = time.process_time()
        for b in blocks:
            _, state = sep.process(b, state)
        return (time.process_time() - t0) * len(x) / max(1, n)

    return once


class Timing(NamedTuple):
    """Best seconds per audio second over the repeats of :func:`stream_rtf`."""

    wall: float  #: the engine, wall clock
    cpu: float  #: the engine, process CPU time
    reference: float | None  #: the reference timer (None without one)
    alongside: dict[str, float]  #: each ``alongside`` timer by name


def stream_rtf(
    engine: Engine,
    x: np.ndarray,
    host_block: int,
    repeat: int = 3,
    reference: Callable[[], float] | None = None,
    alongside: dict[str, Callable[[], float]] | None = None,
) -> Timing:
    """Stream ``x`` in host blocks after a short warm-up, ``repeat`` times (the stream continues).

    Returns the best (wall-clock seconds, process CPU seconds) per audio second over the repeats —
    best of N, like the reference, so that both sides are timed the same way.  The CPU figure is what
    the engine costs even when other jobs share the machine (with one thread it is the better measure).
    With ``reference`` (see :func:`reference_timer`) the reference runs once before each repeat and
    its best per audio second is the third value: the two sides are timed interleaved, minutes
    apart at most, because this VM's speed drifts by ×2 within a session (docs/PERFORMANCE.md).
    Each timer of ``alongside`` (name → seconds of one run over ``x``) runs the same way, after the
    reference; its best per audio second comes back under its name.
    """
    warm = min(len(x), 20 * host_block)
    for i in range(0, warm, host_block):
        engine.process(x[i : i + host_block])
    dur = len(x) / engine.rate
    best_wall = best_cpu = best_ref = float("inf")
    timers = dict(alongside or {})
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(max(1, int(repeat))):
        if reference is not None:
            best_ref = min(best_ref, reference() / dur)
        for name, once in timers.items():
            best[name] = min(best[name], once() / dur)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(x), host_block):
            engine.process(x[i : i + host_block])
        best_wall = min(best_wall, (time.perf_counter() - t0) / dur)
        best_cpu = min(best_cpu, (time.process_time() - c0) / dur)
    return Timing(best_wall, best_cpu, best_ref if reference is not None else None, best)


def parse_list(s: str | Sequence, kind=int) -> list:
    """``"0,1,2"`` (or a sequence) → a list of ``kind``; ``ValueError`` otherwise."""
    if not isinstance(s, str):
        return [kind(v) for v in s]
    try:
        return [kind(v) for v in str(s).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"not a comma-separated list: {s!r}") from None


def run_bench(args: BenchOptions) -> int:
    """Stream the input through every configuration, print a table, write JSON; the exit status."""
    from streamsep.runtime import set_threads
    from streamsep.separators.registry import create

    if args.repeat < 1:
        raise ValueError(f"--repeat: must be a positive integer, got {args.repeat}")

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to torch here")
    set_threads(args.threads)
    kwargs = {"model_path": args.model_path} if args.model_path else {}
    sep = create(args.model, device=args.device, **kwargs)
    x = bench_input(args.seconds, sep.sample_rate, args.input)
    ref_once, ref_what = reference_timer(sep, x)
    ref_first = min(ref_once() for _ in range(args.repeat)) / (len(x) / sep.sample_rate)
    configs = []
    print(
        f"{args.model}: reference_rtf {ref_first:.4f} at the start ({ref_what}; measured again before each "
        f"repeat of every config, interleaved); {args.seconds:.0f} s per config, best of {args.repeat}, "
        f"{args.threads} thread(s), {args.device}"
    )
    print(
        f"{'steps':>5} {'cands':>5} {'passes':>6} {'block':>6} {'eblock':>6} {'policy':>10} {'rtf':>8} {'cpu_rtf':>8} "
        f"{'latency_ms':>10} {'ref':>7} {'×ref':>6} {'alone':>7} {'×ref':>6}"
    )
    for block in parse_list(args.block):
        for steps in parse_list(args.steps):
            for cands in parse_list(args.candidates):
                cfg = EngineConfig(
                    model=args.model,
                    steps=steps,
                    candidates=cands,
                    policy=args.policy,
                    block=block_for(block, sep.hop),
                    device=args.device,
                )
                eng = Engine(cfg, separator=sep)
                eng.chains.lazy_keep = not args.all_candidates
                t = stream_rtf(
                    eng,
                    x,
                    block,
                    args.repeat,
                    reference=ref_once,
                    alongside={"blockwise": blockwise_timer(sep, x, eng.block)},
                )
                rtf, cpu_rtf, ref, bw = t.wall, t.cpu, t.reference, t.alongside["blockwise"]
                passes = 1 + steps * (cands if eng.policy.searches else 1)  # separator passes per block
                row = {
                    "model": args.model,
                    "steps": steps,
                    "candidates": cands,
                    "policy": args.policy,
                    "passes": passes,
                    # measured: separator passes per decision block that actually ran (a searching
                    # policy's precheck skips the candidates of blocks it keeps anyway)
                    "passes_run": round(eng.chains.passes / max(1, eng.stats.blocks), 2),
                    "all_candidates": bool(args.all_candidates),
                    "block": block,
                    "engine_block": eng.block,
                    "device": args.device,
                    "threads": args.threads,
                    "rtf": rtf,
                    "cpu_rtf": cpu_rtf,
                    "latency_ms": eng.latency_ms,
                    "latency_samples": eng.latency,
                    "reference_rtf": ref,
                    "reference": ref_what,
                    "reference_rtf_at_start": ref_first,
                    "cpu_rtf_over_reference": cpu_rtf / ref if ref > 0 else None,
                    # the separator alone in the same blocks (its process(), no engine), interleaved
                    "blockwise_rtf": bw,
                    "blockwise_over_reference": bw / ref if ref > 0 else None,
                    "seconds": args.seconds,
                    "repeat": args.repeat,
                }
                configs.append(row)
                print(
                    f"{steps:>5} {cands:>5} {passes:>6} {block:>6} {eng.block:>6} {args.policy:>10} {rtf:>8.4f} "
                    f"{cpu_rtf:>8.4f} {eng.latency_ms:>10.1f} {ref:>7.4f} {cpu_rtf / ref if ref > 0 else float('nan'):>6.2f} "
                    f"{bw:>7.4f} {bw / ref if ref > 0 else float('nan'):>6.2f}"
                )
    if args.json:
        write_json(args.json, {"machine": machine_info(args.threads, args.device), "configs": configs})
    return 0
