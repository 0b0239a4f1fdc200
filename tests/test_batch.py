"""``streamsep batch``: 24 real NOIZEUS files through the local process pool and a Ray cluster the
test starts itself; outputs equal ``process`` file by file; a killed worker or actor still finishes
the job with no temporary file left; an interrupted run resumes with only the missing files; a
corrupt file is reported and the rest done; inputs from a folder, a glob or a manifest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cliutil import run
from conftest import shared

from streamsep.batch import BatchError, BatchOptions, iter_report, plan_batch, run_batch
from streamsep.catalogue import DEFAULT_MODEL
from streamsep.cli import main
from streamsep.engine import EngineConfig
from streamsep.enhance import FileOptions

REPO = Path(__file__).resolve().parents[1]
N_FILES = 24
REPORT_FIELDS = {"input", "output", "status", "error", "seconds", "wall_seconds", "rtf", "model", "steps", "policy"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """24 real NOIZEUS recordings (8 kHz PCM_16, 2.8 s each) in two subfolders."""
    src = shared("data", "pairs", "noizeus", "noisy")
    files = sorted(src.glob("*_sn5.wav"))[:N_FILES]
    assert len(files) == N_FILES, "NOIZEUS set smaller than expected"
    root = tmp_path_factory.mktemp("corpus")
    for i, f in enumerate(files):
        d = root / ("a" if i % 2 else "b")
        d.mkdir(exist_ok=True)
        shutil.copy(f, d / f.name)
    return root


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*")]


@pytest.fixture(scope="module")
def local_out(corpus, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The corpus through ``streamsep batch`` with the local engine and two workers."""
    out = tmp_path_factory.mktemp("local") / "out"
    rep = out.parent / "r.jsonl"
    rc = main(["batch", str(corpus), str(out), "--workers", "2", "--report", str(rep), "--quiet"])
    assert rc == 0
    return out, list(iter_report(rep))


# ------------------------------------------------------------------------------------------------
# local engine
# ------------------------------------------------------------------------------------------------
def test_batch_local_mirrors_paths_and_equals_process_file_by_file(corpus, local_out, tmp_path, capsys):
    out, _ = local_out
    got = outputs(out)
    assert sorted(got) == sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.wav"))
    for rel in got:
        rc, _, err = run(["process", corpus / rel, tmp_path / "p.wav", "--threads", 1, "--quiet"], capsys)
        assert rc == 0, err
        assert (tmp_path / "p.wav").read_bytes() == got[rel], rel
    assert no_temporaries(out) == []


def test_batch_report_has_one_line_per_file_with_the_fields(corpus, local_out):
    _, records = local_out
    assert len(records) == N_FILES and all(r["status"] == "ok" for r in records)
    for r in records:
        assert REPORT_FIELDS <= set(r), set(r)
        assert (r["model"], r["steps"], r["policy"], r["error"]) == (DEFAULT_MODEL, 0, "fixed", None)
        assert r["seconds"] == pytest.approx(sf.info(r["input"]).duration) and r["rtf"] > 0 and r["wall_seconds"] > 0
    assert len({r["worker"] for r in records}) == 2  # both workers did files


def test_batch_rerun_skips_complete_outputs(corpus, local_out, tmp_path, capsys):
    out, _ = local_out
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    rep = tmp_path / "r.jsonl"
    rc, stdout, err = run(["batch", corpus, out, "--workers", 1, "--report", rep, "--quiet"], capsys)
    assert rc == 0, err
    assert f"{N_FILES} skipped" in stdout
    assert [r["status"] for r in iter_report(rep)] == ["skipped"] * N_FILES
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before


def test_batch_corrupt_empty_and_nan_files_are_reported_and_the_rest_done(corpus, tmp_path, capsys):
    src = tmp_path / "in"
    shutil.copytree(corpus / "a", src)
    (src / "corrupt.wav").write_bytes(b"RIFF\x00\x01\x00\x00WAVEfmt " + os.urandom(300))
    sf.write(src / "empty.wav", np.zeros(0, np.float32), 8000)
    nan = np.zeros(8000, np.float32)
    nan[4000] = np.nan
    sf.write(src / "nan.wav", nan, 8000, subtype="FLOAT")
    rep = tmp_path / "r.jsonl"
    rc, stdout, err = run(["batch", src, tmp_path / "out", "--workers", 2, "--report", rep, "--quiet"], capsys)
    assert rc == 1
    n_good = len(list((corpus / "a").glob("*.wav")))
    assert f"{n_good} ok, 0 skipped, 3 failed" in stdout
    recs = {Path(r["input"]).name: r for r in iter_report(rep)}
    for name, needle in (("corrupt.wav", "corrupt.wav"), ("empty.wav", "empty"), ("nan.wav", "non-finite")):
        assert recs[name]["status"] == "error" and needle in recs[name]["error"], recs[name]
        assert f"streamsep: failed: {src / name}" in err
        assert not (tmp_path / "out" / name).exists()
    assert sum(r["status"] == "ok" for r in recs.values()) == n_good
    assert no_temporaries(tmp_path / "out") == []


def test_batch_local_worker_killed_mid_run_still_completes(corpus, local_out, tmp_path):
    """SIGKILL to a pool worker as soon as it reports its first file: the pool is rebuilt, the files
    in flight are retried, every output is there and equal to the undisturbed run, no temporaries."""
    killed: list[int] = []

    def kill_first(rec: dict) -> None:
        if not killed and rec.get("worker"):
            killed.append(rec["worker"])
            os.kill(rec["worker"], signal.SIGKILL)

    out = tmp_path / "out"
    s = run_batch(
        corpus, out, EngineConfig(), FileOptions(), BatchOptions(workers=2, progress=False), on_record=kill_first
    )
    assert killed and s.failed == 0 and s.ok == N_FILES, s.errors
    assert outputs(out) == outputs(local_out[0])
    assert no_temporaries(out) == []


def test_batch_interrupted_then_resumed_processes_only_the_missing_files(corpus, tmp_path):
    out, rep1, rep2 = tmp_path / "out", tmp_path / "r1.jsonl", tmp_path / "r2.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable,
        "-m",
        "streamsep.cli",
        "batch",
        str(corpus),
        str(out),
        "--workers",
        "1",
        "--quiet",
        "--steps",
        "2",
    ]
    p = subprocess.Popen(
        [*cmd, "--report", str(rep1)], env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        if rep1.exists() and len(rep1.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the batch finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err
    done_first = {r["output"] for r in iter_report(rep1) if r["status"] == "ok"}
    present = {str(f) for f in out.rglob("*.wav")}
    assert done_first <= present and len(present) < N_FILES
    assert no_temporaries(out) == []
    mtimes = {f: Path(f).stat().st_mtime_ns for f in present}
    r = subprocess.run(
        [*cmd, "--report", str(rep2)], env=env, cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr
    recs = list(iter_report(rep2))
    assert {x["output"] for x in recs if x["status"] == "skipped"} == present
    assert {x["output"] for x in recs if x["status"] == "ok"} == {
        str(out / p.relative_to(corpus)) for p in corpus.rglob("*.wav")
    } - present
    assert {f: Path(f).stat().st_mtime_ns for f in present} == mtimes
    assert len(list(out.rglob("*.wav"))) == N_FILES and no_temporaries(out) == []


def test_batch_timeout_records_the_slow_file_and_goes_on(corpus, tmp_path, capsys):
    """``--timeout``: a 60 s file refined in 4 steps outlasts 3 s and is recorded as failed (its
    temporary output discarded); the short files around it are done."""
    src = tmp_path / "in"
    src.mkdir()
    short = sorted((corpus / "a").glob("*.wav"))[:2]
    for f in short:
        shutil.copy(f, src / f.name)
    x = np.concatenate([sf.read(f, dtype="float32")[0] for f in sorted(corpus.rglob("*.wav"))])[: 60 * 8000]
    sf.write(src / "long.wav", x, 8000, subtype="PCM_16")
    rep = tmp_path / "r.jsonl"
    rc, stdout, err = run(
        ["batch", src, tmp_path / "out", "--workers", 1, "--steps", 4, "--timeout", 3, "--report", rep, "--quiet"],
        capsys,
    )
    assert rc == 1 and "2 ok, 0 skipped, 1 failed" in stdout, stdout + err
    recs = {Path(r["input"]).name: r for r in iter_report(rep)}
    assert recs["long.wav"]["status"] == "error" and recs["long.wav"]["error"] == "timed out after 3 s"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f.name for f in short)


def test_batch_dnsmos_before_and_after_in_the_report(corpus, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted((corpus / "b").glob("*.wav"))[:2]:
        shutil.copy(f, src / f.name)
    rep = tmp_path / "r.jsonl"
    rc, _, err = run(["batch", src, tmp_path / "out", "--workers", 1, "--dnsmos", "--report", rep, "--quiet"], capsys)
    assert rc == 0, err
    recs = list(iter_report(rep))
    assert len(recs) == 2
    for r in recs:
        assert 1.0 <= r["dnsmos_before"] <= 5.0 and 1.0 <= r["dnsmos_after"] <= 5.0
    # NSNet2 on these two 8 kHz NOIZEUS files: DNSMOS OVRL rises (measured +0.04 and +0.11)
    assert all(r["dnsmos_after"] > r["dnsmos_before"] for r in recs)


# ------------------------------------------------------------------------------------------------
# inputs and checks
# ------------------------------------------------------------------------------------------------
def test_batch_inputs_from_folder_glob_and_manifest(corpus, tmp_path):
    folder = plan_batch(corpus, tmp_path / "o")
    assert len(folder) == N_FILES and all(j.output == tmp_path / "o" / j.rel for j in folder)
    g = plan_batch(f"{corpus}/**/sp0*.wav", tmp_path / "o")
    assert g and all(Path(j.rel).parts[0] in ("a", "b") and Path(j.rel).name.startswith("sp0") for j in g)
    names = sorted(corpus.rglob("*.wav"))[:3]
    (corpus.parent / "list.txt").write_text(
        "# three files\n" + "\n".join(str(p.relative_to(corpus.parent)) for p in names) + "\n"
    )
    m = plan_batch(corpus.parent / "list.txt", tmp_path / "o", ext="flac")
    assert [j.input for j in m] == [corpus.parent / p.relative_to(corpus.parent) for p in names]
    assert all(j.output.suffix == ".flac" for j in m)
    (corpus.parent / "list.csv").write_text(
        "input,output\n" + "".join(f"{p},renamed/{i}.wav\n" for i, p in enumerate(names))
    )
    c = plan_batch(corpus.parent / "list.csv", tmp_path / "o")
    assert [j.output for j in c] == [tmp_path / "o" / "renamed" / f"{i}.wav" for i in range(3)]
    with pytest.raises(BatchError, match="matches no file"):
        plan_batch(f"{corpus}/**/*.nothing", tmp_path / "o")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--report", "{tmp}/missing/r.jsonl"], "does not exist"),
        (["--ext", "xyz"], "unsupported extension"),
        (["--ext", "flac", "--subtype", "FLOAT"], "FLOAT"),
        (["--policy", "oracle-sisdr"], "reference"),
    ],
    ids=["report-folder", "ext", "subtype", "oracle-policy"],
)
def test_batch_bad_arguments_refused_before_any_work(corpus, tmp_path, capsys, monkeypatch, argv, needle):
    from streamsep import batch

    monkeypatch.setattr(batch, "_run_local", lambda *a, **k: pytest.fail("work started before the checks"))
    rc, _, err = run(["batch", corpus, tmp_path / "out", *[a.format(tmp=tmp_path) for a in argv]], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "out").exists()  # not even the output folder


def test_batch_ray_without_ray_names_the_extra(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    rc, _, err = run(["batch", corpus, tmp_path / "out", "--engine", "ray"], capsys)
    assert rc == 2 and err.strip() == (
        "streamsep: error: --engine ray needs Ray, an optional extra: pip install 'streamsep[ray]'"
    )
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# Ray: a private cluster started by the test (never `ray stop`)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'streamsep[ray]')")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temp = tempfile.mkdtemp(prefix="ssrt")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp,
        log_to_driver=False,
        configure_logging=False,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_batch_ray_gives_the_same_bytes_as_local(ray_cluster, corpus, local_out, tmp_path):
    rep = tmp_path / "r.jsonl"
    s = run_batch(
        corpus,
        tmp_path / "out",
        EngineConfig(),
        FileOptions(),
        BatchOptions(engine="ray", workers=2, report=rep, progress=False),
    )
    assert s.ok == N_FILES and s.failed == 0, s.errors
    assert outputs(tmp_path / "out") == outputs(local_out[0])
    recs = list(iter_report(rep))
    assert all(REPORT_FIELDS <= set(r) and r["status"] == "ok" for r in recs) and len(recs) == N_FILES
    assert ray_cluster.is_initialized()  # the caller's cluster is left running for the caller


def test_batch_ray_actor_killed_mid_run_still_completes(ray_cluster, corpus, local_out, tmp_path):
    """SIGKILL to an actor's process when it reports its first file: Ray restarts the actor
    (max_restarts) and retries its task (max_task_retries); every file comes out, no temporaries."""
    killed: list[int] = []

    def kill_first(rec: dict) -> None:
        if not killed and rec.get("worker"):
            killed.append(rec["worker"])
            os.kill(rec["worker"], signal.SIGKILL)

    s = run_batch(
        corpus,
        tmp_path / "out",
        EngineConfig(),
        FileOptions(),
        BatchOptions(engine="ray", workers=2, progress=False),
        on_record=kill_first,
    )
    assert killed and s.ok == N_FILES and s.failed == 0, s.errors
    assert outputs(tmp_path / "out") == outputs(local_out[0])
    assert no_temporaries(tmp_path / "out") == []
