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
    """A running host reports exactly the budget's latency: low-latency 10 ms model + 20 ms host,
    balanced (DFN3) 30 ms model + 20 ms host; no block buffering, no resampler at their own rates."""
    import soundfile as sf

    from streamsep.host.budget import latency_budget
    from streamsep.live import LiveHost
    from streamsep.presets import load_preset

    # low-latency (NSNet2) at its own 16 kHz: 10 + 20 ms; balanced (DeepFilterNet3) at 48 kHz: 30 + 20 ms
    for name, rate, limit_ms in (("low-latency", 16000, 30.0), ("balanced", 48000, 50.0)):
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
        assert b.total_ms == pytest.approx(b.model_ms + b.buffer_ms + b.resampler_ms + b.host_ms)
        assert b.host_ms <= 20.0 and b.total_ms <= limit_ms and b.buffer_ms == b.resampler_ms == 0.0, b


def test_budget_48k_and_dfn3_numbers():
    """At 48 kHz and 10 ms periods: low-latency = 10 ms model + 5 ms FIR resampler + 20 ms host
    (no block buffering), ≤ 40 ms; a DFN3-like model known by its numbers (48 kHz, hop 480,
    latency 1440) = 30 ms model + 20 ms host = 50 ms; the numbers-only budget agrees with the
    engine-built one for NSNet2."""
    from streamsep.host.budget import budget_from_numbers, latency_budget
    from streamsep.presets import load_preset

    b = latency_budget(load_preset("low-latency"), 48000)
    assert (b.model_ms, b.buffer_ms, b.resampler_ms, b.host_ms, b.total_ms, b.total_samples) == (
        10.0,
        0.0,
        5.0,
        20.0,
        35.0,
        1680,
    ), b
    assert budget_from_numbers(16000, 160, 160, 48000) == b
    assert budget_from_numbers(16000, 160, 160, 16000) == latency_budget(load_preset("low-latency"), 16000)
    d = budget_from_numbers(48000, 1440, 480, 48000)
    assert (d.model_ms, d.buffer_ms, d.resampler_ms, d.host_ms, d.total_ms, d.total_samples) == (
        30.0,
        0.0,
        0.0,
        20.0,
        50.0,
        2400,
    ), d
    # PipeWire's power-of-two quantum (256 frames at 48 kHz): block buffering comes back, still ≤ 40 ms
    q = latency_budget(load_preset("low-latency"), 48000, period=256)
    assert 0 < q.buffer_ms < 10.0 and q.total_ms <= 40.0, q


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
        assert host.stats()["engine_filled_samples"] == 0  # the new engine was fed whole periods only
    finally:
        host.stop()
