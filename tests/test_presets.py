"""Presets: the built-ins load and build engines; unknown keys, wrong types and out-of-range values
raise PresetError naming the key; save/load round trip."""

from __future__ import annotations

import pytest

from streamsep.engine import Engine, EngineConfig
from streamsep.presets import PresetError, builtin_presets, config_from_dict, load_preset, save_preset

BUILTINS = ("low-latency", "balanced", "quality")


def test_three_builtins_exist_and_load():
    names = builtin_presets()
    assert set(BUILTINS) <= set(names)
    for name in BUILTINS:
        cfg = load_preset(name)
        assert isinstance(cfg, EngineConfig) and cfg.model == ("dfn3" if name == "balanced" else "nsnet2")
        assert cfg.validate() is cfg
        assert load_preset(names[name]) == cfg  # by path too


def test_builtin_values():
    low, bal, q = (load_preset(n) for n in BUILTINS)
    assert (low.steps, low.candidates, low.policy, low.block) == (0, 1, "fixed", 160)
    assert (bal.model, bal.steps, bal.policy, bal.block) == ("dfn3", 0, "fixed", 480)
    assert (q.steps, q.candidates, q.policy, q.block) == (2, 4, "proxy", 3200)


@pytest.mark.parametrize("name,latency_ms", [("low-latency", 20.0), ("balanced", 40.0), ("quality", 210.0)])
def test_builtins_build_engines(nsnet2, name, latency_ms):
    import numpy as np

    cfg = load_preset(name)
    if cfg.model == "dfn3":
        from streamsep.modelfiles import ModelFileError
        from streamsep.separators.dfn3 import tarball_path

        try:
            tarball_path()
        except ModelFileError as exc:
            pytest.skip(f"DeepFilterNet3 unavailable: {exc}")
    eng = Engine(cfg, separator=nsnet2 if cfg.model == "nsnet2" else None)
    assert eng.latency_ms == pytest.approx(latency_ms)
    y = eng.process(np.zeros(1000, np.float32))
    assert y.shape == (1000,)


def write(tmp_path, text: str):
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text,key",
    [
        ("stepz = 2\n", "stepz"),
        ('model = "nsnet2"\ncolour = "blue"\n', "colour"),
        ('steps = "3"\n', "steps"),
        ("steps = 2.5\n", "steps"),
        ("steps = true\n", "steps"),
        ('mix = "loud"\n', "mix"),
        ("bypass = 1\n", "bypass"),
        ('ratios = [0.5, "x"]\n', "ratios"),
        ("ratios = 0.5\n", "ratios"),
        ("steps = 99\n", "steps"),
        ("steps = -1\n", "steps"),
        ("mix = 1.5\n", "mix"),
        ("atten_db = -6.0\n", "atten_db"),
        ("candidates = 0\n", "candidates"),
        ("ratios = [0.5, 1.5]\n", "ratios"),
        ('policy = "oracle-sisdr"\n', "policy"),
        ('resample_quality = "ultra"\n', "resample_quality"),
    ],
)
def test_bad_preset_names_the_key(tmp_path, text, key):
    p = write(tmp_path, text)
    with pytest.raises(PresetError) as err:
        load_preset(p)
    msg = str(err.value)
    assert key in msg and str(p) in msg
    assert "\n" not in msg


def test_unknown_name_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(PresetError, match="nope"):
        load_preset("nope")
    with pytest.raises(PresetError, match="not found"):
        load_preset(tmp_path / "missing.toml")
    with pytest.raises(PresetError, match="TOML"):
        load_preset(write(tmp_path, "steps = = 2\n"))


def test_config_from_dict_keeps_base_and_ignores_description():
    base = EngineConfig(steps=2, mix=0.5)
    cfg = config_from_dict({"description": "x", "name": "y", "candidates": 3}, base=base)
    assert (cfg.steps, cfg.mix, cfg.candidates) == (2, 0.5, 3)
    assert isinstance(config_from_dict({"mix": 1}).mix, float)


@pytest.mark.parametrize(
    "cfg",
    [
        EngineConfig(),
        EngineConfig(
            steps=3,
            candidates=5,
            policy="proxy",
            proxy="residual-flatness",
            block=800,
            mix=0.75,
            atten_db=12.0,
            bypass=True,
            resample_quality="HQ",
        ),
        EngineConfig(model="rnnoise", steps=1, policy="fixed", ratios=[0.3], block=960),
    ],
)
def test_save_load_round_trip(tmp_path, cfg):
    p = save_preset(cfg, tmp_path / "sub" / "mine.toml", description="round trip")
    assert p.is_file()
    assert load_preset(p) == cfg
    assert "round trip" in p.read_text()
    assert [f.name for f in p.parent.iterdir()] == ["mine.toml"]  # no temporary file left


def test_save_refuses_invalid_config_and_leaves_nothing(tmp_path):
    from streamsep.engine import ConfigError

    target = tmp_path / "bad.toml"
    with pytest.raises(ConfigError, match="mix"):
        save_preset(EngineConfig(mix=3.0), target)
    assert not target.exists()
