"""Model cards (strict validation, shape checks against the model) and model files (resolution,
sha256 checks, ``pull`` over file:// URLs)."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import tomllib
from cardutil import sha, tiny_card, tiny_onnx

from streamsep import modelfiles
from streamsep.modelfiles import ModelFileError
from streamsep.separators import registry
from streamsep.separators.card_factory import load_card_file
from streamsep.separators.cards import CardError, builtin_card_paths, builtin_cards, load_card, pull

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "models"


def shipped(name: str) -> dict:
    """The parsed TOML of a shipped card."""
    path = next(p for p in builtin_card_paths() if p.stem == name)
    return tomllib.loads(path.read_text())


def write_card(tmp_path: Path, data: dict, name: str = "card.toml") -> Path:
    p = tmp_path / name
    p.write_text(tomli_w.dumps(data))
    return p


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """No model dir from the environment; the user cache inside tmp_path."""
    monkeypatch.delenv(modelfiles.ENV_MODEL_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


# -- shipped cards ---------------------------------------------------------------------------------
def test_shipped_cards_parse_and_are_registered():
    cards = builtin_cards()
    assert {"gtcrn", "dtln"} <= set(cards)
    assert {"gtcrn", "dtln"} <= set(registry.model_names())
    g, d = cards["gtcrn"], cards["dtln"]
    assert (g.sample_rate, g.frame, g.hop, g.n_fft, g.io, g.latency) == (16000, 512, 256, 512, "stft", 256)
    assert (d.sample_rate, d.frame, d.hop, d.io, d.latency) == (16000, 512, 128, "waveform", 384)
    assert g.licence == d.licence == "MIT"
    for card, commit in (
        (g, "3862c44808dca492ea5a8a145d2dc2a1028d08c8"),
        (d, "1de1f15a8b5b7e1c44905618ff2ef70ca8277fbc"),
    ):
        for f in card.files:
            assert f.url.startswith("https://raw.githubusercontent.com/") and f"/{commit}/" in f.url
            assert len(f.sha256) == 64


def test_shipped_sha256_match_the_shared_models():
    if not MODELS.is_dir():
        pytest.skip(f"../shared not present: {MODELS}")
    for name, card in builtin_cards().items():
        for f in card.files:
            assert sha(MODELS / name / f.name) == f.sha256, f"{name}/{f.name}"


# -- strict validation -----------------------------------------------------------------------------
def _mutations():
    def unknown_top(d):
        d["colour"] = "blue"
        return "colour"

    def unknown_nested(d):
        d["stages"][0]["states"][0]["dtype"] = "float32"
        return "stages[0].states[0].dtype"

    def wrong_type(d):
        d["hop"] = "128"
        return "hop"

    def bool_is_not_int(d):
        d["latency"] = True
        return "latency"

    def missing(d):
        del d["sample_rate"]
        return "sample_rate"

    def missing_nested(d):
        del d["files"][1]["sha256"]
        return "files[1].sha256"

    def bad_enum(d):
        d["format"] = "onnx-magic"
        return "format"

    def bad_layout(d):
        d["stages"][1]["layout"] = "BTF"  # a time frame needs N, not F
        return "stages[1].layout"

    def bad_file(d):
        d["stages"][0]["file"] = "model_9.onnx"
        return "stages[0].file"

    def bad_latency(d):
        d["latency"] = 100  # below frame − hop = 384
        return "latency"

    def bad_sha(d):
        d["files"][0]["sha256"] = "abc"
        return "files[0].sha256"

    def shape_type(d):
        d["stages"][0]["states"][0]["shape"] = [1, 2, "128", 2]
        return "stages[0].states[0].shape[2]"

    return [
        unknown_top,
        unknown_nested,
        wrong_type,
        bool_is_not_int,
        missing,
        missing_nested,
        bad_enum,
        bad_layout,
        bad_file,
        bad_latency,
        bad_sha,
        shape_type,
    ]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_bad_cards_name_file_and_key(tmp_path, mutate):
    data = copy.deepcopy(shipped("dtln"))
    key = mutate(data)
    path = write_card(tmp_path, data, "broken.toml")
    with pytest.raises(CardError) as exc:
        load_card(path)
    msg = str(exc.value)
    assert str(path) in msg and f"'{key}" in msg and "\n" not in msg


def test_lookahead_must_add_up(tmp_path):
    data = copy.deepcopy(shipped("dtln"))
    data["lookahead"] = 10  # latency 384 != 384 + 10
    with pytest.raises(CardError, match="latency"):
        load_card(write_card(tmp_path, data))
    data["latency"] = 394
    assert load_card(write_card(tmp_path, data)).lookahead == 10


def test_not_toml_and_missing_card(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text("name = \n")
    with pytest.raises(CardError, match="not valid TOML"):
        load_card(p)
    with pytest.raises(CardError, match="cannot read"):
        load_card(tmp_path / "absent.toml")


# -- cards against the real model ------------------------------------------------------------------
def test_user_card_runs_a_tiny_model(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    path = write_card(isolated, tiny_card(model))
    sep = registry.create(str(path), model_path=model)
    x = np.arange(12, dtype=np.float32)[None]
    y, state = sep.process(x, sep.new_state(1))
    # y = 0.5·x + previous frame of x
    expect = 0.5 * x[0] + np.concatenate([np.zeros(4), x[0, :8]])
    np.testing.assert_allclose(y[0], expect, atol=1e-6)
    assert sep.latency == 0 and sep.hop == 4


def test_card_lying_about_a_state_shape(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    data = tiny_card(model)
    data["stages"][0]["states"][0]["shape"] = [1, 5]
    factory = load_card_file(write_card(isolated, data))
    with pytest.raises(CardError, match=r"tensor 's' of tiny.onnx has shape \[1, 4\], the card says \[1, 5\]"):
        factory(model_path=model)


def test_card_lying_about_the_signal_shape(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    data = tiny_card(model, frame=8, hop=8)
    with pytest.raises(CardError, match="tensor 'x' of tiny.onnx has shape"):
        load_card_file(write_card(isolated, data))(model_path=model)


def test_card_naming_a_missing_tensor(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    data = tiny_card(model)
    data["stages"][0]["states"][0]["output"] = "state_out"
    with pytest.raises(CardError, match="no output tensor 'state_out'"):
        load_card_file(write_card(isolated, data))(model_path=model)


def test_gtcrn_card_lying_about_cache_shape(isolated):
    if not MODELS.is_dir():
        pytest.skip(f"../shared not present: {MODELS}")
    data = copy.deepcopy(shipped("gtcrn"))
    data["stages"][0]["states"][1]["shape"] = [2, 3, 1, 1, 32]
    factory = load_card_file(write_card(isolated, data))
    with pytest.raises(CardError, match="tensor 'tra_cache' of gtcrn.onnx has shape"):
        factory(model_path=MODELS / "gtcrn")


# -- model files: resolution and checks ------------------------------------------------------------
def test_resolution_order(isolated, monkeypatch):
    model = tiny_onnx(isolated / "src.onnx")
    data = tiny_card(model)
    data["files"][0]["name"] = "tiny.onnx"
    data["stages"][0]["file"] = "tiny.onnx"
    card = load_card(write_card(isolated, data))

    with pytest.raises(ModelFileError) as exc:
        modelfiles.resolve(card)
    msg = str(exc.value)
    assert "tiny.onnx" in msg and "streamsep models pull tiny" in msg and str(modelfiles.cache_dir()) in msg

    cache = modelfiles.cache_dir() / "tiny" / "tiny.onnx"
    cache.parent.mkdir(parents=True)
    shutil.copy(model, cache)
    assert modelfiles.resolve(card)["tiny.onnx"] == cache

    env = isolated / "env"
    (env / "tiny").mkdir(parents=True)
    shutil.copy(model, env / "tiny.onnx")
    monkeypatch.setenv(modelfiles.ENV_MODEL_DIR, str(env))
    assert modelfiles.resolve(card)["tiny.onnx"] == env / "tiny.onnx"
    shutil.copy(model, env / "tiny" / "tiny.onnx")
    assert modelfiles.resolve(card)["tiny.onnx"] == env / "tiny" / "tiny.onnx"

    explicit = isolated / "mine"
    explicit.mkdir()
    shutil.copy(model, explicit / "tiny.onnx")
    assert modelfiles.resolve(card, explicit)["tiny.onnx"] == explicit / "tiny.onnx"
    assert modelfiles.resolve(card, model)["tiny.onnx"] == model  # a one-file card takes any file name

    with pytest.raises(ModelFileError, match="does not exist"):
        modelfiles.resolve(card, isolated / "nowhere")


def test_sha256_checked_and_cached(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    card = load_card(write_card(isolated, tiny_card(model)))
    modelfiles.resolve(card, model)
    st = model.stat()
    assert (str(model.resolve()), st.st_size, st.st_mtime_ns) in modelfiles._DIGESTS
    # a changed file (new mtime) is hashed again and refused
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(ModelFileError, match="sha256"):
        modelfiles.resolve(card, model)


# -- pull ---------------------------------------------------------------------------------------------
def test_pull_file_urls_from_shared_models(isolated):
    if not MODELS.is_dir():
        pytest.skip(f"../shared not present: {MODELS}")
    data = copy.deepcopy(shipped("dtln"))
    for f in data["files"]:
        f["url"] = (MODELS / "dtln" / f["name"]).as_uri()
    card_path = write_card(isolated, data, "dtln-local.toml")
    paths = pull(str(card_path), progress=False)
    cache = modelfiles.cache_dir() / "dtln"
    assert paths == [cache / "model_1.onnx", cache / "model_2.onnx"]
    for p in paths:
        assert sha(p) == sha(MODELS / "dtln" / p.name)
    assert not list(cache.glob(".*part"))
    # the pulled files are found without any model_path, and the model runs
    sep = registry.create(str(card_path))
    y, _ = sep.process(np.zeros((1, 512), np.float32), sep.new_state(1))
    assert y.shape == (1, 512) and np.isfinite(y).all()
    # into an explicit directory, then usable as --model-path
    dest = isolated / "dest"
    assert pull(str(card_path), dest_dir=dest, progress=False) == [dest / "model_1.onnx", dest / "model_2.onnx"]
    assert modelfiles.resolve(load_card(card_path), dest)["model_2.onnx"] == dest / "model_2.onnx"


def test_pull_checksum_mismatch_leaves_nothing(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    data = tiny_card(model)
    data["files"][0]["sha256"] = "0" * 64
    card_path = write_card(isolated, data)
    dest = isolated / "dest"
    with pytest.raises(ModelFileError, match="sha256"):
        pull(str(card_path), dest_dir=dest, progress=False)
    assert not dest.exists() or not any(dest.iterdir())


def test_pull_good_tiny_and_bad_url(isolated):
    model = tiny_onnx(isolated / "tiny.onnx")
    card_path = write_card(isolated, tiny_card(model))
    (path,) = pull(str(card_path), progress=False)
    assert path == modelfiles.cache_dir() / "tiny" / "tiny.onnx" and sha(path) == sha(model)
    data = tiny_card(model)
    data["files"][0]["url"] = (isolated / "gone.onnx").as_uri()
    dest = isolated / "d2"
    with pytest.raises(ModelFileError, match="cannot download"):
        pull(str(write_card(isolated, data, "gone.toml")), dest_dir=dest, progress=False)
    assert not any(dest.iterdir())


def test_pull_unknown_name(isolated):
    with pytest.raises(ModelFileError, match="no model card named 'nosuch'"):
        pull("nosuch", progress=False)
