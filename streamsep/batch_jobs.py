"""The parts of a batch run that every engine shares: the job plan (inputs → outputs), completeness,
stale temporary files, one-thread workers, running one job and the per-file report record.

:mod:`streamsep.batch` runs the plan on a local process pool and :mod:`streamsep.batch_ray` on a Ray
cluster; both import this module, neither imports the other's engine.
"""

from __future__ import annotations

import csv
import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamsep.catalogue import BATCH_ENGINES
from streamsep.enhance import FileOptions

#: extensions libsndfile reads (folder scans pick these up)
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".voc",
        ".sd2",
        ".nist",
        ".sph",
        ".htk",
        ".mat",
        ".paf",
        ".pvf",
        ".xi",
        ".avr",
        ".wve",
        ".sds",
        ".mpc",
        ".iff",
        ".svx",
        ".sf",
        ".ircam",
    }
)
MANIFEST_EXTENSIONS = frozenset({".txt", ".lst", ".csv", ".tsv"})
#: environment that pins a worker to one BLAS/OpenMP/onnxruntime thread (set before torch loads)
ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "STREAMSEP_ORT_THREADS": "1",
}
ENGINES = BATCH_ENGINES


class BatchError(ValueError):
    """A batch that cannot start as asked; one line naming the problem."""


@dataclass
class BatchJob:
    """One file: ``input`` → ``output``; ``rel`` is the output's path relative to the output folder."""

    input: Path
    output: Path
    rel: str


@dataclass
class BatchOptions:
    """How the batch runs.

    ``workers``: processes (local) or actors (ray); ``None`` = the CPU cores this process may use.
    ``address`` (ray): ``local`` starts a private single-machine cluster for the run; ``auto``,
    ``HOST:PORT`` or ``ray://HOST:PORT`` join an existing one.  ``cpus_per_worker`` /
    ``gpus_per_worker``: Ray resources per actor.  ``retries``: times a file is retried after its
    worker died.  ``timeout_s``: wall seconds one file may take, from when a worker starts it,
    before it is recorded as an error (ray: the actor is replaced; ``None`` = no limit).  ``ext``: output extension (``None`` = the
    input's when writable, else ``.wav``).  ``report``: JSON-lines file, one line per file.
    """

    engine: str = "local"
    workers: int | None = None
    address: str = "local"
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    retries: int = 2
    timeout_s: float | None = None
    overwrite: bool = False
    ext: str | None = None
    report: str | os.PathLike | None = None
    progress: bool = True
    ray_temp_dir: str | None = None


@dataclass
class BatchSummary:
    """Counts and totals of a batch run (seconds of audio, wall seconds)."""

    files: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0  #: audio processed (ok files)
    wall_seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    def line(self) -> str:
        rate = self.ok / self.wall_seconds if self.wall_seconds > 0 else 0.0
        hph = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return (
            f"batch: {self.files} files: {self.ok} ok, {self.skipped} skipped, {self.failed} failed; "
            f"{self.audio_seconds / 3600:.3f} h audio in {self.wall_seconds:.1f} s "
            f"({rate:.2f} files/s, {hph:.1f} audio-hours per hour)"
        )


def default_workers() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------
# planning
# ------------------------------------------------------------------------------------------------
def _output_for(rel: Path, out_dir: Path, ext: str | None) -> Path:
    from streamsep.audio_io import writable_extensions

    if ext:
        suffix = ext if ext.startswith(".") else "." + ext
    else:
        suffix = rel.suffix.lower() if rel.suffix.lower() in writable_extensions() else ".wav"
    return out_dir / rel.with_suffix(suffix)


def _manifest_rows(path: Path) -> list[tuple[str, str | None]]:
    """(input, output or None) per row of a text or CSV/TSV manifest."""
    text = path.read_text()
    if path.suffix.lower() in (".txt", ".lst"):
        return [(ln.strip(), None) for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    rows = [
        r for r in csv.reader(text.splitlines(), dialect=dialect) if r and r[0].strip() and not r[0].startswith("#")
    ]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    col = next((head.index(k) for k in ("input", "path", "file") if k in head), None)
    if col is None:
        return [(r[0].strip(), None) for r in rows]
    out_col = head.index("output") if "output" in head else None
    return [
        (
            r[col].strip(),
            r[out_col].strip() if out_col is not None and len(r) > out_col and r[out_col].strip() else None,
        )
        for r in rows[1:]
        if len(r) > col
    ]


def plan_batch(source: str | os.PathLike, out_dir: str | os.PathLike, ext: str | None = None) -> list[BatchJob]:
    """The jobs for ``source`` (folder, glob or manifest; see the module docstring), sorted by input.

    Raises :class:`BatchError` when the source does not exist, matches no file, or two inputs would
    write the same output.
    """
    src, out = str(source), Path(out_dir)
    pairs: list[tuple[Path, Path]] = []  # (input, rel)
    p = Path(src)
    if glob.has_magic(src) and not p.exists():
        parts = Path(src).parts
        fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
        base = Path(*parts[:fixed]) if fixed else Path(".")
        for m in sorted(glob.glob(src, recursive=True)):
            f = Path(m)
            if f.is_file():
                pairs.append((f, f.relative_to(base)))
        if not pairs:
            raise BatchError(f"{src}: the pattern matches no file")
    elif p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."):
                pairs.append((f, f.relative_to(p)))
        if not pairs:
            raise BatchError(
                f"{src}: no audio files in this folder (looked for {', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)"
            )
    elif p.is_file() and p.suffix.lower() in MANIFEST_EXTENSIONS:
        base = p.parent
        explicit: dict[Path, str] = {}
        for name, target in _manifest_rows(p):
            f = Path(name) if Path(name).is_absolute() else base / name
            try:
                rel = f.resolve().relative_to(base.resolve())
            except ValueError:
                rel = Path(f.name)
            pairs.append((f, rel))
            if target:
                explicit[f] = target
        if not pairs:
            raise BatchError(f"{src}: the manifest lists no file")
        jobs = [
            BatchJob(f, out / explicit[f] if f in explicit else _output_for(rel, out, ext), str(rel))
            for f, rel in pairs
        ]
        return _unique(jobs)
    elif p.is_file():
        raise BatchError(
            f"{src}: not a folder, a glob or a manifest (.txt, .lst, .csv, .tsv); for one file use `streamsep process`"
        )
    else:
        raise BatchError(f"{src}: no such folder, file or matching pattern")
    return _unique([BatchJob(f, _output_for(rel, out, ext), str(rel)) for f, rel in pairs])


def _unique(jobs: list[BatchJob]) -> list[BatchJob]:
    seen: dict[Path, Path] = {}
    for j in jobs:
        if j.output in seen:
            raise BatchError(f"{j.input} and {seen[j.output]} would both write {j.output}")
        seen[j.output] = j.input
    return jobs


def is_complete(path: Path) -> bool:
    """True when ``path`` is a finished output: it exists (only a complete file is ever renamed to
    its final name) and opens as audio with at least one sample."""
    if not path.is_file():
        return False
    try:
        import soundfile as sf

        return sf.info(str(path)).frames > 0
    except Exception:  # noqa: BLE001 - anything unreadable is not complete
        return False


def remove_stale_parts(output: Path) -> int:
    """Delete temporary ``.NAME.*.part`` files that a killed writer of ``output`` left behind."""
    n = 0
    folder = output.parent
    if folder.is_dir():
        for f in folder.glob(f".{glob.escape(output.name)}.*.part*"):
            if f.name.endswith(".part") or f.name.endswith(".part.wav"):
                f.unlink(missing_ok=True)
                n += 1
    return n


# ------------------------------------------------------------------------------------------------
# one file, in a worker
# ------------------------------------------------------------------------------------------------
def pin_threads() -> None:
    """One thread for BLAS/OpenMP/torch/onnxruntime in this process (call before heavy work)."""
    os.environ.update(ONE_THREAD_ENV)
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__


def run_job(job: BatchJob, config, options: FileOptions, separator) -> dict:
    """Enhance one file in this process; returns its report record (never raises for a bad file)."""
    from streamsep.enhance import enhance_file

    t0 = time.perf_counter()
    rec = {
        "input": str(job.input),
        "output": str(job.output),
        "status": "ok",
        "error": None,
        "seconds": None,
        "wall_seconds": None,
        "rtf": None,
        "model": config.model,
        "steps": config.steps,
        "policy": options.policy or config.policy,
        "worker": os.getpid(),
    }
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(job.output)
        res = enhance_file(job.input, job.output, config, options, separator=separator)
        rec.update(seconds=res.seconds, rtf=res.rtf, model=res.model, steps=res.steps, policy=res.policy)
        if res.warnings:
            rec["warnings"] = res.warnings
        if options.dnsmos:
            rec.update(dnsmos_before=res.dnsmos_before, dnsmos_after=res.dnsmos_after)
    except Exception as exc:  # noqa: BLE001 - a bad file is recorded and the run goes on
        rec.update(status="error", error=one_line(exc))
    rec["wall_seconds"] = time.perf_counter() - t0
    return rec


def error_record(job: BatchJob, config, fopts: FileOptions, error: str) -> dict:
    return {
        "input": str(job.input),
        "output": str(job.output),
        "status": "error",
        "error": error,
        "seconds": None,
        "wall_seconds": None,
        "rtf": None,
        "model": config.model,
        "steps": config.steps,
        "policy": fopts.policy or config.policy,
        "worker": None,
    }
