"""Clean a whole corpus: every file of a folder, a glob or a manifest through :func:`enhance_file`, on
all local cores (a process pool) or on a Ray cluster (:mod:`streamsep.batch_ray`).

* Inputs (:func:`plan_batch`): a folder (recursive; every extension libsndfile reads), a glob
  (``"corpus/**/*.flac"``), or a manifest (``.txt`` / ``.lst``: one path a line; ``.csv`` / ``.tsv``:
  a column ``input`` or ``path``, else the first column, and an optional ``output`` column relative
  to the output folder).  Relative paths in a manifest are relative to the manifest's folder.
* Outputs mirror the inputs' paths relative to the folder (the glob's fixed prefix, the manifest's
  folder) under the output folder, with the input's extension when it can be written (else
  ``.wav``), or ``ext``.
* Complete = present under its final name: outputs are only ever renamed into place once fully
  written (:mod:`streamsep.enhance`), so a rerun skips every output that exists and opens as audio,
  and processes the rest (a killed run leaves at most hidden ``.NAME.*.part`` files, which the
  rerun removes before writing that output).  ``overwrite=True`` redoes everything.
* A file that fails (corrupt, empty, NaN, a worker that died more than ``retries`` times) is
  recorded with its error and the run goes on; :class:`BatchSummary` counts them.
* Each worker loads the model once and runs with one BLAS/OpenMP/torch/onnxruntime thread.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from streamsep.batch_jobs import (  # noqa: F401  (re-exported: the batch API in one place)
    AUDIO_EXTENSIONS,
    ENGINES,
    MANIFEST_EXTENSIONS,
    ONE_THREAD_ENV,
    BatchError,
    BatchJob,
    BatchOptions,
    BatchSummary,
    default_workers,
    error_record,
    is_complete,
    one_line,
    pin_threads,
    plan_batch,
    remove_stale_parts,
    run_job,
)
from streamsep.catalogue import INTRUSIVE_METRICS
from streamsep.enhance import FileOptions

# ------------------------------------------------------------------------------------------------
# the local engine: a process pool
# ------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_local_worker(config, model_path: str | None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    pin_threads()
    from streamsep.enhance import load_separator

    _WORKER["sep"] = load_separator(config, model_path)


class FileTimeout(Exception):
    """One file took longer than the batch's ``timeout_s``."""


def _local_job(job: BatchJob, config, options: FileOptions, timeout_s: float | None = None) -> dict:
    """One file in a pool worker; ``timeout_s`` is enforced here, from when the worker starts the file
    (SIGALRM in the worker's main thread: the file's writer discards its temporary output)."""
    import signal

    if not timeout_s:
        return run_job(job, config, options, _WORKER.get("sep"))

    def expire(signum, frame):
        raise FileTimeout(f"timed out after {timeout_s:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(timeout_s))
    try:
        return run_job(job, config, options, _WORKER.get("sep"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_local(
    jobs: list[BatchJob], config, fopts: FileOptions, bopts: BatchOptions, done: Callable[[dict], None]
) -> None:
    """Run ``jobs`` on a spawn process pool; a pool broken by a dying worker is rebuilt and the
    files that were in flight are retried (at most ``retries`` times each)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = max(1, int(bopts.workers or default_workers()))
    pending = deque(jobs)
    attempts: dict[str, int] = {}
    saved = {k: os.environ.get(k) for k in ONE_THREAD_ENV}
    os.environ.update(ONE_THREAD_ENV)  # spawned workers inherit it before they import numpy/torch
    try:
        while pending:
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_local_worker,
                initargs=(config, fopts.model_path),
            )
            inflight: dict = {}
            broken = False
            try:
                while pending or inflight:
                    while pending and len(inflight) < 2 * workers and not broken:
                        job = pending.popleft()
                        inflight[pool.submit(_local_job, job, config, fopts, bopts.timeout_s)] = job
                    finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        job = inflight.pop(fut)
                        try:
                            rec = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            n = attempts[str(job.input)] = attempts.get(str(job.input), 0) + 1
                            if n > bopts.retries:
                                done(
                                    error_record(
                                        job, config, fopts, f"worker died {n} times on this file (killed or crashed)"
                                    )
                                )
                            else:
                                pending.appendleft(job)
                            continue
                        except Exception as exc:  # noqa: BLE001 - e.g. a timeout that fired on the way out
                            rec = error_record(job, config, fopts, one_line(exc))
                        done(rec)
                    if broken and not inflight:
                        break
            except BaseException:
                _kill_pool(pool)
                for job in inflight.values():
                    remove_stale_parts(job.output)
                raise
            if broken:
                _kill_pool(pool)
                for job in pending:
                    remove_stale_parts(job.output)
            else:
                pool.shutdown(wait=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kill_pool(pool) -> None:
    """Stop a pool now: its workers are terminated (their partial outputs stay hidden ``.part`` files)."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
def _audio_seconds(path: Path) -> float | None:
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001
        return None


def check_batch(jobs: list[BatchJob], config, fopts: FileOptions) -> tuple[list[BatchJob], list[dict]]:
    """Check every job's arguments before any work (headers only).  Returns (runnable jobs, error
    records for inputs that cannot be read); any other problem raises (the whole batch is wrong)."""
    from streamsep.audio_io import AudioFileError
    from streamsep.enhance import check_file_job

    ok, bad = [], []
    for j in jobs:
        try:
            check_file_job(j.input, j.output, config, replace(fopts, progress=False), folder_must_exist=False)
        except AudioFileError as exc:
            if not str(exc).startswith(str(j.input)):
                raise
            bad.append(error_record(j, config, fopts, one_line(exc)))
            continue
        ok.append(j)
    return ok, bad


def _check_options(config, fopts: FileOptions, bopts: BatchOptions, out: Path) -> None:
    """The batch-wide checks (before any file is looked at); raises :class:`BatchError`."""
    if bopts.engine not in ENGINES:
        raise BatchError(f"engine must be one of {', '.join(ENGINES)}, not {bopts.engine!r}")
    if bopts.workers is not None and int(bopts.workers) < 1:
        raise BatchError(f"workers must be a positive integer, got {bopts.workers}")
    if bopts.retries < 0:
        raise BatchError(f"retries must be >= 0, got {bopts.retries}")
    if fopts.reference or any(m in INTRUSIVE_METRICS for m in fopts.metrics):
        raise BatchError(
            "batch has no clean references: intrusive metrics (si_sdr, pesq, stoi) and oracle "
            "policies are for `streamsep process --reference`"
        )
    if fopts.in_place:
        raise BatchError("batch never writes over its inputs (no --in-place); give another output folder")
    if bopts.report is not None and not Path(bopts.report).absolute().parent.is_dir():
        raise BatchError(f"{bopts.report}: report folder {Path(bopts.report).absolute().parent} does not exist")
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out}: output exists and is not a folder")
    if not out.absolute().parent.is_dir():
        raise BatchError(f"{out}: parent folder {out.absolute().parent} does not exist")
    if bopts.engine == "ray":
        from streamsep.batch_ray import require_ray

        require_ray()
    elif str(config.device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BatchError(f"device {config.device}: torch sees no CUDA device on this machine; use --device cpu")


class _Recorder:
    """Counts each file's record into the summary, appends it to the report, moves the progress bar."""

    def __init__(
        self, summary: BatchSummary, bopts: BatchOptions, total_audio: float, on_record: Callable[[dict], None] | None
    ) -> None:
        self.summary, self.total_audio, self.on_record = summary, total_audio, on_record
        self.report = open(bopts.report, "w") if bopts.report is not None else None  # noqa: SIM115 - line by line
        self.bar = None
        if bopts.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=summary.files, unit="file", desc="batch", disable=None, file=sys.stderr)

    def __call__(self, rec: dict) -> None:
        s = self.summary
        s.records.append(rec)
        if rec["status"] == "ok":
            s.ok += 1
            s.audio_seconds += rec.get("seconds") or 0.0
        elif rec["status"] == "skipped":
            s.skipped += 1
        else:
            s.failed += 1
            s.errors.append((rec["input"], rec["error"]))
        if self.report is not None:
            self.report.write(json.dumps(rec) + "\n")
            self.report.flush()
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"{s.audio_seconds / 3600:.2f}/{self.total_audio / 3600:.2f} h audio")
        if self.on_record is not None:
            self.on_record(rec)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.report is not None:
            self.report.close()


def run_batch(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    config,
    fopts: FileOptions | None = None,
    bopts: BatchOptions | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> BatchSummary:
    """Enhance every file of ``source`` into ``out_dir`` (see the module docstring).

    Everything is checked before the first file is processed or any folder created: the options, the
    report's folder, the engine (``ray`` needs the ``[ray]`` extra), and every input's header and
    output format; then the output folder and its subfolders are created as needed.  ``on_record``
    gets each file's report record as it is done (in this process).

    The local engine starts its workers with ``spawn``: a script that calls this must guard its
    entry point with ``if __name__ == "__main__":`` (as for any multiprocessing code).
    """
    fopts = fopts or FileOptions()
    bopts = bopts or BatchOptions()
    t0 = time.perf_counter()
    out = Path(out_dir)
    _check_options(config, fopts, bopts, out)
    jobs = plan_batch(source, out, bopts.ext)
    skipped, rest = [], []
    for j in jobs:
        (skipped if not bopts.overwrite and is_complete(j.output) else rest).append(j)
    todo, failed = check_batch(rest, config, fopts)
    for j in jobs:
        j.output.parent.mkdir(parents=True, exist_ok=True)
    fopts = replace(fopts, progress=False)
    summary = BatchSummary(files=len(jobs))
    record = _Recorder(summary, bopts, sum(_audio_seconds(j.input) or 0.0 for j in todo), on_record)
    try:
        for j in skipped:
            record(
                {
                    "input": str(j.input),
                    "output": str(j.output),
                    "status": "skipped",
                    "error": None,
                    "seconds": _audio_seconds(j.output),
                    "wall_seconds": 0.0,
                    "rtf": None,
                    "model": config.model,
                    "steps": config.steps,
                    "policy": fopts.policy or config.policy,
                    "worker": None,
                }
            )
        for rec in failed:
            record(rec)
        if todo and bopts.engine == "ray":
            from streamsep.batch_ray import run_ray

            run_ray(todo, config, fopts, bopts, record)
        elif todo:
            _run_local(todo, config, fopts, bopts, record)
    finally:
        record.close()
        summary.wall_seconds = time.perf_counter() - t0
    return summary


def iter_report(path: str | os.PathLike) -> Iterable[dict]:
    """The records of a ``--report`` JSON-lines file."""
    with open(path) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
