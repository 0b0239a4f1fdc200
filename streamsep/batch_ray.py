"""The Ray engine of :mod:`streamsep.batch`: actors that each hold a loaded model, on a private
single-machine cluster (``address="local"``) or an existing cluster (``auto``, ``HOST:PORT``,
``ray://HOST:PORT``).

Actors are created with ``max_restarts`` and ``max_task_retries`` = ``retries``, so a killed actor is
restarted (it loads its model again) and its file is retried; a file whose actor dies more often
than that is recorded as an error.  Every ``ray.get`` / ``ray.wait`` has a timeout.  A cluster this
module started is shut down at the end (``ray.shutdown()``; never ``ray stop``, which ends every Ray
process on the machine by name).  Ray is an optional dependency: ``pip install 'streamsep[ray]'``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from streamsep.batch_jobs import (
    BatchError,
    BatchJob,
    BatchOptions,
    default_workers,
    error_record,
    one_line,
    remove_stale_parts,
)
from streamsep.enhance import FileOptions

RAY_EXTRA = "--engine ray needs Ray, an optional extra: pip install 'streamsep[ray]'"
WAIT_S = 1.0  #: ray.wait poll interval (seconds)
GET_TIMEOUT_S = 60.0  #: ray.get of a finished reference
START_TIMEOUT_S = 300.0  #: an actor loading its model


def require_ray():
    """The ``ray`` module, or :class:`BatchError` naming the extra that provides it."""
    try:
        import ray
    except ImportError:
        raise BatchError(RAY_EXTRA) from None
    return ray


class _FileWorker:
    """A Ray actor: one model, one thread, files in, report records out."""

    def __init__(self, config, model_path: str | None) -> None:
        from streamsep.batch_jobs import pin_threads
        from streamsep.enhance import load_separator

        pin_threads()
        self.sep = load_separator(config, model_path)

    def ready(self) -> int:
        return os.getpid()

    def run(self, job: BatchJob, config, options: FileOptions) -> dict:
        from streamsep.batch_jobs import run_job

        return run_job(job, config, options, self.sep)


def _init_ray(ray, bopts: BatchOptions, workers: int) -> str | None:
    """Connect (or start a private cluster).  Returns None when Ray was already initialised (the
    caller's), else the temp folder this call created ("" when none), and the caller shuts Ray down."""
    if ray.is_initialized():
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kw = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if bopts.address == "local":
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        temp = bopts.ray_temp_dir or tempfile.mkdtemp(prefix="ssray")  # short: Ray's socket paths are limited
        cpus = max(workers * bopts.cpus_per_worker, 1)
        ray.init(address="local", num_cpus=math.ceil(cpus), _temp_dir=temp, **kw)
        return "" if bopts.ray_temp_dir else temp
    else:
        try:
            ray.init(address=bopts.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BatchError(f"--address {bopts.address}: cannot join the Ray cluster ({one_line(exc)})") from None
    return ""


def run_ray(
    jobs: list[BatchJob], config, fopts: FileOptions, bopts: BatchOptions, done: Callable[[dict], None]
) -> None:
    """Run ``jobs`` on Ray actors, one file in flight per actor; ``done`` gets each record.

    ``workers`` = ``None``: the local cores for a private cluster, the whole cluster's CPUs (and
    GPUs, with ``gpus_per_worker``) when joining one."""
    ray = require_ray()
    workers = max(1, int(bopts.workers or default_workers()))
    owned = _init_ray(ray, bopts, workers)
    if bopts.workers is None and bopts.address != "local":  # default: the whole cluster
        res = ray.cluster_resources()
        workers = max(1, int(res.get("CPU", 1) // max(bopts.cpus_per_worker, 1e-3)))
        if bopts.gpus_per_worker:
            workers = min(workers, max(1, int(res.get("GPU", 0) // bopts.gpus_per_worker)))
    actor_cls = ray.remote(_FileWorker)
    opts = {"num_cpus": bopts.cpus_per_worker, "max_restarts": bopts.retries, "max_task_retries": bopts.retries}
    if bopts.gpus_per_worker:
        opts["num_gpus"] = bopts.gpus_per_worker
    actors = []
    inflight: dict = {}
    try:
        actors = [actor_cls.options(**opts).remote(config, fopts.model_path) for _ in range(min(workers, len(jobs)))]
        try:
            ray.get([a.ready.remote() for a in actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise BatchError(
                f"{len(actors)} Ray actors ({bopts.cpus_per_worker:g} CPU, {bopts.gpus_per_worker:g} GPU "
                f"each) did not start within {START_TIMEOUT_S:g} s; the cluster has "
                f"{ray.available_resources()} free: ask for fewer --workers"
            ) from None
        pending = list(reversed(jobs))
        idle = list(actors)
        while pending or inflight:
            while pending and idle:
                actor, job = idle.pop(), pending.pop()
                inflight[actor.run.remote(job, config, fopts)] = (actor, job, time.monotonic())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                actor, job, _t = inflight.pop(ref)
                try:
                    done(ray.get(ref, timeout=GET_TIMEOUT_S))
                except Exception as exc:  # noqa: BLE001 - actor died beyond its restarts, or similar
                    remove_stale_parts(job.output)
                    done(error_record(job, config, fopts, f"worker failed: {one_line(exc)}"))
                    actor = _replace_actor(ray, actors, actor, actor_cls, opts, config, fopts)
                idle.append(actor)
            if bopts.timeout_s:
                now = time.monotonic()
                for ref, (actor, job, t) in list(inflight.items()):
                    if now - t > bopts.timeout_s:
                        inflight.pop(ref)
                        ray.kill(actor, no_restart=True)
                        remove_stale_parts(job.output)
                        done(error_record(job, config, fopts, f"timed out after {bopts.timeout_s:g} s"))
                        idle.append(_replace_actor(ray, actors, actor, actor_cls, opts, config, fopts))
    finally:
        for ref in inflight:
            ray.cancel(ref, force=True)
        for a in actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(a, no_restart=True)
        for _a, job, _t in inflight.values():
            remove_stale_parts(job.output)
        if owned is not None:
            ray.shutdown()
            if owned:
                shutil.rmtree(owned, ignore_errors=True)


def _replace_actor(ray, actors: list, dead, actor_cls, opts: dict, config, fopts: FileOptions):
    """A fresh actor in place of ``dead`` (killed for good)."""
    with contextlib.suppress(Exception):  # already gone
        ray.kill(dead, no_restart=True)
    new = actor_cls.options(**opts).remote(config, fopts.model_path)
    actors[actors.index(dead)] = new
    return new
