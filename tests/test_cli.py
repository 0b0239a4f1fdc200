"""The command line, in-process (``streamsep.cli.main``) and as a real subprocess: process (offline
and --stream) with its JSON report, eval on a NOIZEUS-style directory, models, bench, and bad input:
exit status 2, one ``streamsep: error: ...`` line, no output file left behind or changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cliutil import run
from conftest import SHARED, generated_pair, leventure_pair, shared, si_sdr

RATE = 16000
FAST = ["--metrics", "si_sdr,pesq,stoi", "--threads", "1"]


def write_pair(d: Path, noisy: np.ndarray, clean: np.ndarray, rate: int = RATE) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    sf.write(d / "noisy.wav", noisy, rate, subtype="FLOAT")
    sf.write(d / "clean.wav", clean, rate, subtype="FLOAT")
    return d / "noisy.wav", d / "clean.wav"


@pytest.fixture(scope="module")
def gen_files(tmp_path_factory) -> tuple[Path, Path]:
    """(noisy.wav, clean.wav): 2 s generated speech in coloured noise at 5 dB, 16 kHz float WAV."""
    noisy, clean = generated_pair(2.0, 5.0)
    return write_pair(tmp_path_factory.mktemp("gen"), noisy, clean)


@pytest.fixture(params=["generated", "real"])
def files(request, gen_files, tmp_path_factory) -> tuple[Path, Path]:
    if request.param == "generated":
        return gen_files
    noisy, clean = leventure_pair(0, 2.0)
    return write_pair(tmp_path_factory.mktemp("real"), noisy, clean)


# ------------------------------------------------------------------------------------------------
# process
# ------------------------------------------------------------------------------------------------
def test_process_writes_output_and_report(files, tmp_path, capsys):
    noisy, clean = files
    out, rep = tmp_path / "out.wav", tmp_path / "report.json"
    rc, stdout, err = run(
        ["process", noisy, out, "--reference", clean, "--model", "nsnet2", "--steps", 2, "--json", rep, *FAST], capsys
    )
    assert rc == 0, err
    y, rate = sf.read(out, dtype="float32")
    x, _ = sf.read(noisy, dtype="float32")
    s, _ = sf.read(clean, dtype="float32")
    assert rate == RATE and y.shape == x.shape and np.isfinite(y).all()
    r = json.loads(rep.read_text())
    assert (r["model"], r["steps"], r["policy"]) == ("nsnet2", 2, "fixed")
    assert [e["step"] for e in r["per_step"]] == [0, 1, 2]
    assert r["per_step"][0]["ratio"] is None  # step 0 = one-step
    assert [e["ratio"] for e in r["per_step"][1:]] == pytest.approx([0.5, 0.4])  # the default schedule
    for e in r["per_step"]:
        assert {"si_sdr", "pesq", "stoi", "ratio"} <= set(e)
        assert 1.0 <= e["pesq"] <= 4.7 and 0.0 <= e["stoi"] <= 1.0
    # the file is the last step's estimate, and the report measures it
    assert si_sdr(y, s) == pytest.approx(r["per_step"][-1]["si_sdr"], abs=0.1)
    assert r["per_step"][0]["si_sdr"] > si_sdr(x, s) + 2.0
    assert "step 0" in stdout and "wrote" in stdout


def test_process_scores_metrics_only_when_asked(gen_files, tmp_path, capsys):
    """No metric is computed unless --metrics names it (DNSMOS of a long file costs far more than the
    denoising); named, every step gets it."""
    noisy, clean = gen_files
    rep = tmp_path / "r.json"
    rc, stdout, err = run(
        ["process", noisy, tmp_path / "o.wav", "--reference", clean, "--steps", 1, "--json", rep, "--threads", 1],
        capsys,
    )
    assert rc == 0, err
    assert json.loads(rep.read_text())["per_step"] == [] and "step 0" not in stdout
    rc, _, err = run(
        [
            "process",
            noisy,
            tmp_path / "o.wav",
            "--reference",
            clean,
            "--steps",
            1,
            "--json",
            rep,
            "--threads",
            1,
            "--metrics",
            "si_sdr,pesq,stoi,dnsmos",
        ],
        capsys,
    )
    assert rc == 0, err
    per = json.loads(rep.read_text())["per_step"]
    assert len(per) == 2
    for e in per:
        assert {"si_sdr", "pesq", "stoi", "dnsmos_ovrl", "ratio"} <= set(e)
        assert 1.0 <= e["dnsmos_ovrl"] <= 5.0


def test_process_without_reference_reports_blind_metrics_only(gen_files, tmp_path, capsys):
    noisy, _ = gen_files
    rep = tmp_path / "r.json"
    rc, _, err = run(
        [
            "process",
            noisy,
            tmp_path / "o.flac",
            "--preset",
            "balanced",
            "--json",
            rep,
            "--metrics",
            "dnsmos",
            "--threads",
            1,
        ],
        capsys,
    )
    assert rc == 0, err
    r = json.loads(rep.read_text())
    assert r["steps"] == 0 and len(r["per_step"]) == 1  # balanced: DeepFilterNet3, one step
    assert all(e.get("si_sdr") is None and 1.0 <= e["dnsmos_ovrl"] <= 5.0 for e in r["per_step"])
    assert sf.info(tmp_path / "o.flac").format == "FLAC"
    # an intrusive metric without a reference is refused up front (it used to print an empty line)
    rc, _, err = run(["process", noisy, tmp_path / "o2.flac", "--metrics", "si_sdr,pesq"], capsys)
    assert rc == 2 and "needs a clean reference" in err and not (tmp_path / "o2.flac").exists()


@pytest.mark.parametrize("policy,steps", [("oracle-sisdr", 2), ("oracle-block", 1)])
def test_process_oracle_policies(files, tmp_path, capsys, policy, steps):
    noisy, clean = files
    rep = tmp_path / "r.json"
    rc, _, err = run(
        [
            "process",
            noisy,
            tmp_path / "o.wav",
            "--reference",
            clean,
            "--policy",
            policy,
            "--steps",
            steps,
            "--candidates",
            4,
            "--json",
            rep,
            "--metrics",
            "si_sdr",
        ],
        capsys,
    )
    assert rc == 0, err
    per = json.loads(rep.read_text())["per_step"]
    assert len(per) == steps + 1
    vals = [e["si_sdr"] for e in per]
    if policy == "oracle-sisdr":
        assert all(b >= a - 1e-3 for a, b in zip(vals, vals[1:])), vals


@pytest.mark.parametrize("block", [333, 1024])
def test_process_stream(gen_files, tmp_path, capsys, block):
    noisy, clean = gen_files
    out, rep = tmp_path / "o.wav", tmp_path / "r.json"
    rc, _, err = run(
        [
            "process",
            noisy,
            out,
            "--reference",
            clean,
            "--stream",
            "--block",
            block,
            "--model",
            "nsnet2",
            "--steps",
            1,
            "--policy",
            "heuristic",
            "--json",
            rep,
            "--metrics",
            "si_sdr",
        ],
        capsys,
    )
    assert rc == 0, err
    r = json.loads(rep.read_text())
    assert r["stream"] is True and r["host_block"] == block
    # the decision block is the same with and without --stream (--block-ms, 200 ms), so both give the
    # same samples; the host block only changes how the file is fed
    assert r["engine_block"] == 3200
    assert r["latency_samples"] == r["engine_block"] + 160
    assert r["latency_ms"] == pytest.approx(1000 * r["latency_samples"] / RATE)
    assert r["stream_vs_offline_max_abs"] < 1e-4
    y, _ = sf.read(out, dtype="float32")
    x, _ = sf.read(noisy, dtype="float32")
    s, _ = sf.read(clean, dtype="float32")
    assert y.shape == x.shape
    assert si_sdr(y, s) > si_sdr(x, s) + 2.0  # latency removed: aligned with the clean clip


def test_process_other_rate_keeps_rate_and_length(tmp_path, capsys):
    import soxr

    noisy, clean = generated_pair(2.0, 5.0)
    n48, c48 = (soxr.resample(v, RATE, 48000).astype(np.float32) for v in (noisy, clean))
    nf, cf = write_pair(tmp_path, n48, c48, 48000)
    out, rep = tmp_path / "o.wav", tmp_path / "r.json"
    rc, _, err = run(
        [
            "process",
            nf,
            out,
            "--reference",
            cf,
            "--model",
            "nsnet2",
            "--steps",
            1,
            "--metrics",
            "si_sdr",
            "--json",
            rep,
        ],
        capsys,
    )
    assert rc == 0, err
    y, rate = sf.read(out, dtype="float32")
    r = json.loads(rep.read_text())
    assert (r["rate"], r["model_rate"]) == (48000, 16000)
    assert rate == 48000 and len(y) == len(n48)
    # measured: +3.4 dB with espeak speech; +0.4 dB with the numpy fallback signal, whose empty top
    # bins after the 48 -> 16 kHz low-pass NSNet2 handles badly
    assert si_sdr(y, c48) > si_sdr(n48, c48) + 0.2


# ------------------------------------------------------------------------------------------------
# eval
# ------------------------------------------------------------------------------------------------
def make_eval_dir(root: Path) -> dict[str, str]:
    """clean/ + noisy/ with NOIZEUS-style names; returns noisy name -> expected clean name.

    ``sp01_b`` is a clean stem that extends ``sp01``: its noisy file must map to the longer stem.
    Real NOIZEUS files (8 kHz) when ../shared is there, generated ones (16 kHz) otherwise.
    """
    (root / "clean").mkdir(parents=True)
    (root / "noisy").mkdir()
    expect = {}
    noizeus = SHARED / "data" / "pairs" / "noizeus"
    if noizeus.is_dir():
        for stem, noisy in [("sp01", "sp01_car_sn5"), ("sp02", "sp02_babble_sn5")]:
            shutil.copy(noizeus / "clean" / f"{stem}.wav", root / "clean" / f"{stem}.wav")
            shutil.copy(noizeus / "noisy" / f"{noisy}.wav", root / "noisy" / f"{noisy}.wav")
            expect[f"{noisy}.wav"] = f"{stem}.wav"
        x, sr = sf.read(noizeus / "noisy" / "sp02_car_sn5.wav")
        s, _ = sf.read(noizeus / "clean" / "sp02.wav")
    else:
        for i, (stem, noisy) in enumerate([("sp01", "sp01_car_sn5"), ("sp02", "sp02_babble_sn5")]):
            xn, sn = generated_pair(2.0, 5.0, seed=3 + i)
            sf.write(root / "clean" / f"{stem}.wav", sn, RATE, subtype="FLOAT")
            sf.write(root / "noisy" / f"{noisy}.wav", xn, RATE, subtype="FLOAT")
            expect[f"{noisy}.wav"] = f"{stem}.wav"
        x, s = generated_pair(2.0, 0.0, seed=9)
        sr = RATE
    sf.write(root / "clean" / "sp01_b.wav", s, sr)
    sf.write(root / "noisy" / "sp01_b_car_sn5.wav", x, sr)
    expect["sp01_b_car_sn5.wav"] = "sp01_b.wav"
    sf.write(root / "noisy" / "zz99_car_sn5.wav", x, sr)  # no clean file: ignored
    (root / "noisy" / "notes.txt").write_text("not audio")
    return expect


def test_eval_table_and_json(tmp_path, capsys):
    expect = make_eval_dir(tmp_path / "set")
    rep = tmp_path / "eval.json"
    rc, out, err = run(
        [
            "eval",
            tmp_path / "set",
            "--steps",
            1,
            "--metrics",
            "si_sdr,pesq,stoi",
            "--quiet",
            "--json",
            rep,
            "--threads",
            1,
        ],
        capsys,
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert "files=3" in lines[0]
    header = lines[1].split()
    assert header[:4] == ["step", "si_sdr", "pesq", "stoi"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["noisy", "0", "1"]
    r = json.loads(rep.read_text())
    assert r["files"] == 3 and r["steps"] == 1 and r["policy"] == "fixed"
    assert [e["step"] for e in r["per_step"]] == [0, 1]
    for e in r["per_step"]:
        assert e["files"] == 3 and e["si_sdr"] is not None and e["pesq"] is not None
    assert r["noisy"]["files"] == 3 and r["noisy"]["si_sdr"] is not None  # the unprocessed baseline row
    mapping = {row["file"]: row["clean"] for row in r["rows"]}
    assert mapping == expect
    assert sorted(row["step"] for row in r["rows"]) == sorted([-1, 0, 1] * 3)
    # the table prints the JSON means
    assert float(lines[3].split()[1]) == pytest.approx(r["per_step"][0]["si_sdr"], abs=1e-3)


def test_eval_oracle_on_real_pairs(tmp_path, capsys):
    """oracle-sisdr through eval on 3 s cuts of two real leventure pairs: no file's SI-SDR drops per step."""
    from conftest import LEVENTURE

    shared("data", "pairs", "leventure")
    d = tmp_path / "lev"
    (d / "clean").mkdir(parents=True)
    (d / "noisy").mkdir()
    for i in (0, 1):
        x, s = leventure_pair(i, 3.0)
        sf.write(d / "noisy" / f"{LEVENTURE[i][0]}.wav", x, RATE, subtype="FLOAT")
        sf.write(d / "clean" / f"{LEVENTURE[i][1]}.wav", s, RATE, subtype="FLOAT")
    rep = tmp_path / "e.json"
    rc, out, err = run(
        [
            "eval",
            d,
            "--steps",
            2,
            "--policy",
            "oracle-sisdr",
            "--candidates",
            3,
            "--metrics",
            "si_sdr",
            "--quiet",
            "--json",
            rep,
        ],
        capsys,
    )
    assert rc == 0, err
    r = json.loads(rep.read_text())
    assert r["files"] == 2
    means = [e["si_sdr"] for e in r["per_step"]]
    assert all(b >= a - 1e-6 for a, b in zip(means, means[1:])), means
    for f in {row["file"] for row in r["rows"]}:
        v = [
            row["si_sdr"] for row in sorted(r["rows"], key=lambda q: q["step"]) if row["file"] == f and row["step"] >= 0
        ]
        assert all(b >= a - 1e-6 for a, b in zip(v, v[1:])), (f, v)


# ------------------------------------------------------------------------------------------------
# models, bench, presets
# ------------------------------------------------------------------------------------------------
def test_models_lists_nsnet2_with_rate_hop_latency(capsys):
    rc, out, _ = run(["models"], capsys)
    assert rc == 0
    header = out.splitlines()[0].split()
    assert header[:5] == ["name", "rate", "hop", "latency", "ms"]
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:] if ln.strip()}
    assert rows["nsnet2"][1:5] == ["16000", "160", "160", "10.0"]
    assert rows["nsnet2-48k"][1:5] == ["48000", "480", "480", "10.0"]


def test_bench_json(tmp_path, capsys):
    rep = tmp_path / "b.json"
    rc, out, err = run(["bench", "--steps", "0,1", "--block", "160", "--seconds", "1", "--json", rep], capsys)
    assert rc == 0, err
    r = json.loads(rep.read_text())
    assert {"cpu", "cores", "threads", "torch", "device"} <= set(r["machine"])
    assert [c["steps"] for c in r["configs"]] == [0, 1]
    assert [c["passes"] for c in r["configs"]] == [1, 2]  # steps count refinements after one-step
    for c in r["configs"]:
        assert {
            "rtf",
            "latency_ms",
            "block",
            "steps",
            "candidates",
            "device",
            "reference_rtf",
            "reference_rtf_at_start",
        } <= set(c)
        assert c["rtf"] > 0 and c["reference_rtf"] > 0 and c["reference_rtf_at_start"] > 0
        assert c["block"] == 160 and c["candidates"] == 1 and c["device"] == "cpu"
        assert c["latency_ms"] == pytest.approx(20.0)
        assert c["blockwise_rtf"] > 0
        assert c["blockwise_over_reference"] == pytest.approx(c["blockwise_rtf"] / c["reference_rtf"])


def test_bench_times_the_reference_between_the_engine_repeats():
    """The reference runs once before each timed repeat, and its best per audio second comes back."""
    from streamsep.bench import stream_rtf
    from streamsep.engine import Engine, EngineConfig

    eng = Engine(EngineConfig(model="spectral", steps=0, block=160))
    x = np.zeros(8000, np.float32)  # 0.5 s at 16 kHz
    order: list[str] = []
    seconds = iter([0.3, 0.1, 0.2])
    real_process = eng.process

    def process(block):
        if not order or order[-1] != "engine":
            order.append("engine")
        return real_process(block)

    def reference() -> float:
        order.append("reference")
        return next(seconds)

    def alone() -> float:
        order.append("alone")
        return 0.05

    eng.process = process
    t = stream_rtf(eng, x, 160, repeat=3, reference=reference, alongside={"alone": alone})
    assert order == ["engine"] + ["reference", "alone", "engine"] * 3  # warm-up, then interleaved
    assert t.reference == pytest.approx(0.1 / 0.5)
    assert t.alongside == {"alone": pytest.approx(0.05 / 0.5)}
    assert t.wall > 0 and t.cpu > 0
    bare = stream_rtf(eng, x, 160, repeat=1)
    assert bare.reference is None and bare.alongside == {}


def test_blockwise_timer_streams_the_separator_alone_in_engine_blocks():
    """What bench's ``blockwise_rtf`` times: the separator's own process() over the whole input in
    blocks of the engine's size, each call given the state the previous one returned; its output
    is the whole-file output (so it times the same work as the reference, cut into blocks)."""
    from streamsep.bench import blockwise_timer
    from streamsep.separators.registry import create
    from streamsep.synth import coloured_noise, mix_at_snr, synthetic_speech

    sep = create("spectral")
    x = mix_at_snr(synthetic_speech(1.0, 16000), coloured_noise(16000, 16000), 5.0).astype(np.float32)
    calls: list[int] = []
    outs: list[np.ndarray] = []
    last = {"state": None}
    real = sep.process

    def process(block, state):
        if calls and len(calls) > 20:  # past the warm-up: the state handed back is carried
            assert state is last["state"]
        calls.append(block.shape[-1])
        y, last["state"] = real(block, state)
        outs.append(y)
        return y, last["state"]

    sep.process = process
    seconds = blockwise_timer(sep, x, 480)()
    n = len(x) // 480
    assert seconds > 0
    assert calls == [480] * (20 + n)  # 20 warm-up blocks, then every whole block of the input
    whole, _ = real(x[None, : n * 480], sep.new_state(1))
    np.testing.assert_allclose(np.concatenate(outs[20:], axis=-1), whole, atol=1e-5)


def test_presets_command(capsys):
    rc, out, _ = run(["presets"], capsys)
    assert rc == 0
    assert {ln.split()[0] for ln in out.splitlines()} >= {"low-latency", "balanced", "quality"}


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, gen_files) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
    sf.write(d / "empty.wav", np.zeros(0, np.float32), RATE)
    noisy, clean = gen_files
    s, _ = sf.read(clean, dtype="float32")
    sf.write(d / "short.wav", s[: len(s) // 2], RATE)
    import soxr

    sf.write(d / "rate8k.wav", soxr.resample(s, RATE, 8000), 8000)
    return {
        "noisy": noisy,
        "clean": clean,
        "corrupt": d / "corrupt.wav",
        "empty": d / "empty.wav",
        "short": d / "short.wav",
        "rate8k": d / "rate8k.wav",
        "missing": d / "missing.wav",
    }


BAD = [
    ("missing input", ["process", "{missing}", "{out}"], "missing.wav"),
    ("corrupt input", ["process", "{corrupt}", "{out}"], "corrupt.wav"),
    ("empty input", ["process", "{empty}", "{out}"], "empty"),
    ("unknown model", ["process", "{noisy}", "{out}", "--model", "nope"], "nope"),
    ("unknown policy", ["process", "{noisy}", "{out}", "--policy", "nope"], "nope"),
    ("short reference", ["process", "{noisy}", "{out}", "--reference", "{short}"], "length"),
    ("reference rate", ["process", "{noisy}", "{out}", "--reference", "{rate8k}"], "rate"),
    ("corrupt reference", ["process", "{noisy}", "{out}", "--reference", "{corrupt}"], "corrupt.wav"),
    ("oracle-sisdr without reference", ["process", "{noisy}", "{out}", "--policy", "oracle-sisdr"], "reference"),
    ("oracle-pesq without reference", ["process", "{noisy}", "{out}", "--policy", "oracle-pesq"], "reference"),
    ("oracle-block without reference", ["process", "{noisy}", "{out}", "--policy", "oracle-block"], "reference"),
    ("bad ratios", ["process", "{noisy}", "{out}", "--ratios", "0.5,x"], "ratios"),
    ("ratio out of range", ["process", "{noisy}", "{out}", "--steps", "1", "--ratios", "1.5"], "ratios"),
    (
        "engine block not a multiple of hop",
        ["process", "{noisy}", "{out}", "--stream", "--engine-block", "250"],
        "block",
    ),
    ("unknown preset", ["process", "{noisy}", "{out}", "--preset", "nope"], "nope"),
    ("unknown output format", ["process", "{noisy}", "{outdir}/out.xyz"], "xyz"),
    ("si_sdr without reference", ["process", "{noisy}", "{out}", "--metrics", "si_sdr"], "reference"),
    ("output is the input", ["process", "{noisy}", "{noisy}"], "in-place"),
    ("json folder missing", ["process", "{noisy}", "{out}", "--json", "{outdir}/no/r.json"], "does not exist"),
    ("eval without clean/noisy", ["eval", "{outdir}"], "clean"),
]


@pytest.mark.parametrize("case,argv,needle", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing-output"])
def test_bad_input_exits_2_with_one_line_and_no_output(bad_files, tmp_path, capsys, case, argv, needle, existing):
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    out, rep = outdir / "out.wav", outdir / "report.json"
    before = b"previous output, must survive"
    if existing:
        out.write_bytes(before)
        (outdir / "out.xyz").write_bytes(before)
    names = {**{k: str(v) for k, v in bad_files.items()}, "out": str(out), "outdir": str(outdir)}
    args = [a.format(**names) for a in argv]
    if args[0] == "process" and "--json" not in args:
        args += ["--json", str(rep)]
    snapshot = {p.name: p.read_bytes() for p in outdir.iterdir()}
    rc, stdout, err = run(args, capsys)
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamsep: error: "), err
    assert needle in lines[0], lines[0]
    # nothing written, nothing changed, no temporary file left
    assert {p.name: p.read_bytes() for p in outdir.iterdir()} == snapshot


def test_unwritable_output_directory(gen_files, tmp_path, capsys):
    noisy, _ = gen_files
    rc, _, err = run(["process", noisy, tmp_path / "no" / "such" / "dir" / "o.wav"], capsys)
    assert rc == 2 and err.startswith("streamsep: error: ") and len(err.strip().splitlines()) == 1
    assert "does not exist" in err
    assert not (tmp_path / "no").exists()


# ------------------------------------------------------------------------------------------------
# a real subprocess
# ------------------------------------------------------------------------------------------------
def streamsep_cmd() -> list[str]:
    exe = shutil.which("streamsep")
    return [exe] if exe else [sys.executable, "-m", "streamsep.cli"]


def test_subprocess_process_and_error(gen_files, tmp_path):
    noisy, clean = gen_files
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out, rep = tmp_path / "o.wav", tmp_path / "r.json"
    p = subprocess.run(
        [
            *streamsep_cmd(),
            "process",
            str(noisy),
            str(out),
            "--reference",
            str(clean),
            "--model",
            "nsnet2",
            "--steps",
            "1",
            "--json",
            str(rep),
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert "wrote" in p.stdout
    r = json.loads(rep.read_text())
    assert r["model"] == "nsnet2" and len(r["per_step"]) == 2
    assert sf.info(out).frames == sf.info(noisy).frames
    before = out.read_bytes()
    p = subprocess.run(
        [*streamsep_cmd(), "process", str(tmp_path / "missing.wav"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"streamsep: error: {tmp_path / 'missing.wav'}: file not found"]
    assert out.read_bytes() == before
