"""The package's shape: a light command line, a public API, one vocabulary.

``streamsep --help``, every ``streamsep CMD --help`` and ``streamsep models`` must not import torch
or onnxruntime (start-up stays fast; listing models opens no weights).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime")


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def test_help_of_every_command_imports_neither_torch_nor_onnxruntime():
    code = f"""
import contextlib, io, json, sys
from streamsep.cli import build_parser, main
import importlib.util
commands = [None] + [c for c in build_parser()._subparsers._group_actions[0].choices
                     if c != "gui" or importlib.util.find_spec("PyQt6") is not None]
heavy = {{}}
for cmd in commands:
    argv = ["--help"] if cmd is None else [cmd, "--help"]
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    loaded = [m for m in {HEAVY!r} if m in sys.modules]
    if loaded:
        heavy[str(cmd)] = loaded
        break
print(json.dumps({{"commands": [str(c) for c in commands], "heavy": heavy}}))
"""
    r = _run_python(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"process", "live", "bench", "tune", "models"} <= set(out["commands"])
    assert out["heavy"] == {}, f"--help imported {out['heavy']}"


def test_models_lists_every_model_without_loading_weights():
    code = f"""
import contextlib, io, json, sys
from streamsep.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    rc = main(["models"])
print(json.dumps({{"rc": rc, "out": buf.getvalue(), "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    r = _run_python(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0
    assert out["heavy"] == []
    names = [ln.split()[0] for ln in out["out"].splitlines()[1:] if ln.strip()]
    from streamsep.separators.registry import model_names

    assert names == model_names()


@pytest.mark.parametrize("name", ["dfn3", "nsnet2", "nsnet2-48k", "rnnoise", "spectral"])
def test_models_table_matches_the_separators(name):
    """The light listing says what the opened separator says."""
    from streamsep.separators.registry import BUILTIN_INFO, create, describe

    assert name in BUILTIN_INFO
    real, listed = create(name).info(), describe(name)
    for key in ("sample_rate", "hop", "latency", "latency_ms", "frame_domain"):
        assert listed[key] == real[key], key
    assert real["description"].startswith(listed["description"])


def test_public_api_is_lazy_and_complete():
    code = """
import json, sys
import streamsep
light = [m for m in ("torch", "onnxruntime") if m in sys.modules]
cfg = streamsep.EngineConfig(steps=1)
light_cfg = [m for m in ("torch", "onnxruntime") if m in sys.modules]
names = {n: callable(getattr(streamsep, n)) for n in ("Engine", "create", "LiveHost", "enhance_file", "load_preset")}
print(json.dumps({"version": streamsep.__version__, "light": light, "light_cfg": light_cfg, "names": names}))
"""
    r = _run_python(code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["light"] == [] and out["light_cfg"] == []
    assert all(out["names"].values()), out["names"]
    assert out["version"].count(".") >= 1


def test_enhance_file_equals_the_engine_on_the_same_signal(tmp_path):
    """``enhance_file`` is the engine's whole-signal path: same samples as ``enhance_array``."""
    import numpy as np

    import streamsep
    from streamsep.audio_io import read_audio, write_audio
    from streamsep.engine import enhance_array
    from streamsep.synth import coloured_noise, mix_at_snr, synthetic_speech

    x = mix_at_snr(synthetic_speech(2.0), coloured_noise(32000), 5.0)
    write_audio(tmp_path / "in.wav", x, 16000, subtype="FLOAT")
    cfg = streamsep.EngineConfig(model="nsnet2", steps=1, policy="heuristic", block=800)
    res = streamsep.enhance_file(tmp_path / "in.wav", tmp_path / "out.wav", cfg, streamsep.FileOptions(subtype="FLOAT"))
    y, rate = read_audio(res.output)
    ref = enhance_array(read_audio(tmp_path / "in.wav")[0], 16000, cfg)
    assert rate == 16000 and len(y) == len(x)
    assert float(np.max(np.abs(y - ref))) < 1e-6
    assert float(np.std(y)) > 0.01


def test_one_vocabulary():
    """Policy and proxy names, config keys and live keys come from the catalogue."""
    from dataclasses import fields

    from streamsep import catalogue
    from streamsep.config import EngineConfig
    from streamsep.engine import LIVE_KEYS
    from streamsep.offline import ALL_POLICIES
    from streamsep.policies import ENGINE_POLICIES, PROXIES

    assert tuple(PROXIES) == catalogue.PROXY_NAMES
    assert ENGINE_POLICIES is catalogue.ENGINE_POLICIES
    assert ALL_POLICIES is catalogue.ALL_POLICIES
    assert LIVE_KEYS is catalogue.LIVE_KEYS
    assert tuple(f.name for f in fields(EngineConfig)) == catalogue.CONFIG_KEYS
    assert set(catalogue.LIVE_KEYS) <= set(catalogue.CONFIG_KEYS)
    assert set(catalogue.EDITABLE_KEYS) <= set(catalogue.CONFIG_KEYS)
