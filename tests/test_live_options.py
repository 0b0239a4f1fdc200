"""``streamsep live`` option checks and the latency budget, without an audio server.

* absurd margins, durations, blocks, rates, thread counts and JACK names are refused with one line
  (exit 2) before any model is loaded, and ``--stats`` still records the error;
* the budget ``streamsep presets`` states is the latency a running host reports (file in, no
  device), and ``low-latency`` stays within 40 ms at 16 kHz with 10 ms periods.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamsep.host.options import LiveOptions, OptionsError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--margin-ms", "-100"], "--margin-ms"),
        (["--margin-ms", "1e9"], "--margin-ms"),
        (["--duration", "-5"], "--duration"),
        (["--duration", "nan"], "--duration"),
        (["--block", "3"], "--block"),
        (["--samplerate", "100"], "--samplerate"),
        (["--threads", "0"], "--threads"),
        (["--name", "a:b"], "--name"),
    ],
)
def test_live_refuses_absurd_options_in_one_line(args, needle, tmp_path):
    stats = tmp_path / "s.json"
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "streamsep.cli", "live", "--output", "null", "--stats", str(stats), *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("streamsep live: error: " + needle), p.stderr
    assert json.loads(stats.read_text())["error"].startswith(needle)
    assert "torch" not in p.stderr and time.monotonic() - t0 < 60


def test_live_options_validate_accepts_defaults_and_rejects_empty_virtual_mic_name():
    assert LiveOptions().validate().margin_ms == 2.5
    with pytest.raises(OptionsError, match="--virtual-mic"):
        LiveOptions(virtual_mic="  ").validate()


def test_budget_equals_reported_latency_and_low_latency_within_40ms(tmp_path):
    """A running host reports exactly the budget's latency; low-latency: 20 ms model + 20 ms host."""
    import soundfile as sf

    from streamsep.host.budget import latency_budget
    from streamsep.live import LiveHost
    from streamsep.presets import load_preset

    # low-latency (NSNet2) at its own 16 kHz; balanced (DeepFilterNet3) at its own 48 kHz
    for name, rate, limit_ms in (("low-latency", 16000, 40.0), ("balanced", 48000, 60.0)):
        path = tmp_path / f"x{rate}.wav"
        sf.write(str(path), (0.1 * np.random.default_rng(0).standard_normal(rate)).astype(np.float32), rate)
        cfg = load_preset(name)
        host = LiveHost(cfg, input_file=str(path), output_device="null", samplerate=rate)
        host.start()
        try:
            st = host.stats()
        finally:
            host.stop()
        b = latency_budget(cfg, rate, period=st["period"])
        assert st["period"] == rate // 100 and st["latency_samples"] == b.total_samples, (st, b)
        assert b.total_ms == pytest.approx(b.model_ms + b.resampler_ms + b.host_ms)
        assert b.host_ms <= 20.0 and b.total_ms <= limit_ms, b


def test_every_preset_description_states_its_live_latency():
    """Each built-in preset's description gives the live latency the budget computes at 16 kHz
    with 10 ms periods (the figure `streamsep presets` prints and the host reports)."""
    import tomllib

    from streamsep.host.budget import latency_budget
    from streamsep.presets import builtin_presets, load_preset, resolve

    for name in builtin_presets():
        desc = tomllib.loads(resolve(name).read_text())["description"]
        cfg = load_preset(name)
        rate = 16000 if cfg.model == "nsnet2" else 48000
        b = latency_budget(cfg, rate)
        assert f"{b.total_ms:g} ms" in desc, (name, b.total_ms, desc)


def test_more_steps_on_dfn3_rebuild_the_engine_with_their_latency(tmp_path):
    """dfn3 steps add latency (exact chaining), so a live steps increase cannot grow the running
    engine: the host builds a new one, splices it in, and reports the larger latency (+20 ms a step)."""
    import time

    import soundfile as sf

    from streamsep.live import LiveHost
    from streamsep.presets import load_preset

    path = tmp_path / "x.wav"
    sf.write(str(path), (0.1 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32), 48000)
    cfg = load_preset("balanced")
    assert cfg.model == "dfn3" and cfg.steps == 0
    host = LiveHost(cfg, input_file=str(path), output_device="null", samplerate=48000)
    host.start()
    try:
        before = host.stats()["latency_samples"]
        host.set_params(steps=1)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and host.engine.max_steps < 1:
            time.sleep(0.1)
        assert host.engine.max_steps == 1 and host.config.steps == 1
        assert host.stats()["latency_samples"] == before + 2 * 480  # two 10 ms frames of lag per step
    finally:
        host.stop()
