"""The desktop app on Qt's offscreen platform, driving the real LiveHost and the real engine.

The host is fed from generated audio files in real time (``input_file=``, ``output_device="null"``),
so no sound device is needed.  Speech comes from espeak-ng, mixed with generated noise at 0 dB SNR.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
soundfile = pytest.importorskip("soundfile")

from PyQt6.QtWidgets import QApplication  # noqa: E402

from gui.dnsmos_meter import DnsmosMeter  # noqa: E402
from gui.main_window import MainWindow, WindowOptions  # noqa: E402
from gui.meters import Ballistics  # noqa: E402
from gui.panels import TunePanelSlot  # noqa: E402
from gui.settings import GuiSettings  # noqa: E402
from gui.spectrum import FLOOR_DB, spectrogram_db  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
SENTENCES = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
             "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.")


# -- generated audio ---------------------------------------------------------------------------
def _speech(tmp: Path) -> np.ndarray:
    """About 9 s of espeak-ng speech at 16 kHz (a harmonic, syllable-gated stand-in without it)."""
    if shutil.which("espeak-ng"):
        raw = tmp / "tts.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), SENTENCES], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from streamsep.audio_io import read_audio

        x, _ = read_audio(raw, rate=RATE)
    else:
        t = np.arange(9 * RATE) / RATE
        f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        x = sum(np.sin(k * phase) / k for k in range(1, 20))
        x *= (np.sin(2 * np.pi * 4 * t) > 0)          # 4 syllables per second
    x = x.astype(np.float64)
    return 0.25 * x / np.max(np.abs(x))


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gui_audio")
    speech = _speech(d)
    rng = np.random.default_rng(7)
    noise = np.cumsum(rng.standard_normal(speech.size))     # brown-ish noise, then whitened a little
    noise = noise - np.convolve(noise, np.ones(64) / 64, mode="same") + 0.3 * rng.standard_normal(speech.size)
    noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2))   # 0 dB SNR
    soundfile.write(d / "noisy.wav", (speech + noise).astype(np.float32), RATE, subtype="FLOAT")
    soundfile.write(d / "silence.wav", np.zeros(4 * RATE, np.float32), RATE, subtype="FLOAT")
    return d


# -- helpers -------------------------------------------------------------------------------------
def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:
    """Run the Qt event loop until ``pred()`` is true; fail after ``timeout`` seconds."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if pred():
            return
        time.sleep(0.01)
    app.processEvents()
    assert pred(), f"timed out after {timeout} s waiting for {what}"


def pump(seconds: float) -> None:
    """Run the Qt event loop for ``seconds`` (the host keeps playing meanwhile)."""
    app = QApplication.instance()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def aligned(host, seconds: float = 1.0, search: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The last ``seconds`` of output and the input they were made from (latency removed).

    ``monitor()`` reads its two rings one after the other, so the worker may push a chunk in
    between: with ``search`` > 0 the input lag is refined within ±search samples of the reported
    latency by the best normalised correlation."""
    lat = int(host.stats()["latency_samples"])
    x, y, rate = host.monitor(seconds + (lat + search) / host.rate + 0.01)
    n = int(seconds * rate)
    y = y[-n:]

    def seg(lag: int) -> np.ndarray:
        return x[len(x) - lag - n:len(x) - lag]

    if search:
        lat = max(range(max(0, lat - search), lat + search + 1),
                  key=lambda lag: float(np.dot(seg(lag), y)) / (np.linalg.norm(seg(lag)) + 1e-12))
    return seg(lat), y


def delayed_copy(x: np.ndarray, y: np.ndarray) -> bool:
    """True when ``y`` is ``x`` (same level within 0.5 dB, correlation > 0.99)."""
    return abs(rms_db(y) - rms_db(x)) < 0.5 and float(np.corrcoef(x, y)[0, 1]) > 0.99


def clean_window(host, seconds: float = 1.0, timeout: float = 15.0, search: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Aligned input/output of a ``seconds`` window that the engine fully processed.

    Parameter changes ramp in over a block, so the window starts 0.3 s after the call.  Windows
    where the host fell back to its dry path (deadline control on a loaded machine) are retried;
    when none is clean within ``timeout`` seconds the test is skipped with the reason."""
    end = time.monotonic() + timeout
    pump(0.3)
    while time.monotonic() < end:
        s0 = host.stats()
        pump(seconds + host.stats()["latency_samples"] / host.rate + 0.05)
        s1 = host.stats()
        if (s1["dry_chunks"], s1["fallback_samples"]) == (s0["dry_chunks"], s0["fallback_samples"]):
            return aligned(host, seconds, search)
    pytest.skip(f"host kept falling back to its dry path for {timeout} s (machine overloaded)")


def open_window(settings: Path, **kw) -> MainWindow:
    opts = WindowOptions(settings_file=settings, **kw)
    win = MainWindow(opts)
    win.show()
    win.start()
    return win


def running(win: MainWindow) -> bool:
    h = win.controller.host
    return h is not None and bool(h.stats().get("running"))


def card_value(win: MainWindow, key: str) -> float:
    """The number a stat card shows (NaN for '—')."""
    text = win.cards[key].text().split()
    try:
        return float(text[0])
    except (IndexError, ValueError):
        return float("nan")


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-20)


@pytest.fixture(scope="class")
def live(qapp, audio_dir, tmp_path_factory):
    """One window running the real host on the noisy file (low-latency preset, DNSMOS on)."""
    settings = tmp_path_factory.mktemp("cfg") / "gui.toml"
    win = open_window(settings, preset="low-latency", input_file=str(audio_dir / "noisy.wav"),
                      output_device="null")
    wait_for(lambda: running(win), 30, "the live host to start")
    yield win
    win.close()


# -- pure helpers -------------------------------------------------------------------------------
def test_ballistics_hold_and_release():
    b = Ballistics(floor=-60, release_db_s=30, hold_s=1.0)
    b.update(-6, -12, now=0.0)
    assert (b.peak, b.rms, b.hold) == (-6, -12, -6)
    b.update(-120, -120, now=0.5)            # silence: bars fall at 30 dB/s, hold stays
    assert b.peak == pytest.approx(-21) and b.rms == pytest.approx(-27) and b.hold == -6
    b.update(float("-inf"), -120, now=3.0)
    assert b.at_rest


def test_spectrogram_reads_dbfs():
    t = np.arange(2 * RATE) / RATE
    s, f = spectrogram_db(0.5 * np.sin(2 * np.pi * 1000 * t), RATE, columns=50, hop_s=0.02)
    assert s.shape == (50, len(f)) and f[-1] == 8000
    assert f[np.argmax(s[-1])] == pytest.approx(1000, abs=RATE / 512)
    assert s[-1].max() == pytest.approx(-6.0, abs=0.2)             # 0.5 amplitude = -6 dBFS
    s, _ = spectrogram_db(np.zeros(100), RATE, columns=50, hop_s=0.02)
    assert np.all(s == FLOOR_DB)


def test_settings_file_round_trip_and_broken_file(tmp_path):
    p = tmp_path / "gui.toml"
    GuiSettings(preset="quality", output_device="null", engine={"steps": 2, "atten_db": None, "mix": 0.5}).save(p)
    s = GuiSettings.load(p)
    assert (s.preset, s.output_device, s.engine) == ("quality", "null", {"steps": 2, "mix": 0.5, "atten_db": None})
    p.write_text("[gui\npreset = ")
    s = GuiSettings.load(p)
    assert s.warning and str(p) in s.warning and s.engine == {}


# -- the running app ------------------------------------------------------------------------------
class TestLiveWindow:
    """One window on the real host for all these tests (closed when the class is done)."""

    def test_window_runs_real_host_and_has_tune_slot(self, live):
        host = live.controller.host
        assert type(host).__module__ == "streamsep.live" and type(host).__name__ == "LiveHost"
        assert host.engine.config.model == "nsnet2" and live.controls.isEnabled()
        assert live.tabs.tabText(2) == "Tune" and isinstance(live.tabs.widget(2), TunePanelSlot)
        assert live.tune_panel is None                     # mounted on first visit only
        live.tabs.setCurrentIndex(2)
        from gui.tune_panel import TunePanel

        assert isinstance(live.tune_panel, TunePanel) and live.tune_slot.layout().count() == 1
        live.tabs.setCurrentIndex(0)

    def test_meters_move_when_audio_plays(self, live):
        wait_for(lambda: live.meters.input.ballistics.peak > -40 and live.meters.output.ballistics.peak > -50,
                 10, "level meters to move")
        wait_for(lambda: live.spectrogram.mean_db[0] > -90 and live.spectrogram.mean_db[1] > -100, 5,
                 "spectrograms to fill")
        stats = live.controller.host.stats()
        wait_for(lambda: card_value(live, "latency") == pytest.approx(stats["latency_ms"], abs=0.05), 3,
                 "the latency read-out")
        wait_for(lambda: card_value(live, "rtf") > 0, 3, "the load read-out")
        wait_for(lambda: live.dnsmos.updates >= 1, 30, "a DNSMOS score")
        v = live.dnsmos.values
        assert all(1.0 <= v[k] <= 5.0 for k in ("ovrl", "sig", "bak")), v

    def test_every_control_changes_the_running_engine(self, live):
        c = live.controls
        host = live.controller.host
        eng = lambda: live.controller.host.engine.config  # noqa: E731 -- the engine swaps on rebuilds

        c.steps.setValue(2)
        wait_for(lambda: eng().steps == 2 and host.stats()["steps_requested"] == 2, 5, "steps = 2")
        c.candidates.setValue(3)
        wait_for(lambda: eng().candidates == 3, 5, "candidates = 3")
        c.policy.setCurrentIndex(c.policy.findData("heuristic"))
        wait_for(lambda: eng().policy == "heuristic", 5, "policy = heuristic")
        wait_for(lambda: len(host.stats()["ratios"]) >= 2, 5, "ratios for two steps")
        wait_for(lambda: len(live.ratio_plot.latest()) >= 2, 5, "the ratio plot to show two steps")

        c.atten.setValue(2)
        wait_for(lambda: eng().atten_db == 2.0, 5, "atten_db = 2")
        c.atten.setValue(0)                             # "unlimited"
        wait_for(lambda: eng().atten_db is None, 5, "atten_db = unlimited")
        c.mix.setValue(40)
        wait_for(lambda: eng().mix == 0.4, 5, "mix = 0.4")
        c.mix.setValue(100)
        wait_for(lambda: eng().mix == 1.0, 5, "mix = 1")
        c.bypass.setChecked(True)
        wait_for(lambda: eng().bypass is True, 5, "bypass on")
        c.bypass.setChecked(False)
        wait_for(lambda: eng().bypass is False, 5, "bypass off")

        lat0 = host.stats()["latency_ms"]
        c.block.setCurrentIndex(c.block.findData(800))
        wait_for(lambda: eng().block == 800 and host.stats()["latency_ms"] > lat0 + 30, 20, "block = 800 samples")

        c.model.setCurrentIndex(c.model.findData("spectral"))
        wait_for(lambda: eng().model == "spectral" and host.stats()["model"] == "spectral", 20, "model = spectral")
        assert live.config.model == "spectral" and eng().block == 800 and running(live)   # block kept

        # presets: load a built-in one, save the current settings, reset discards edits
        c.preset.setCurrentIndex(c.preset.findData("quality"))
        wait_for(lambda: eng().model == "nsnet2" and eng().steps == 2 and eng().policy == "proxy", 20, "preset quality")
        c.steps.setValue(1)                         # possibly while the new engine is still being built
        wait_for(lambda: c.isEnabled(), 20, "the rebuild to finish")
        assert live.config.steps == 1 and c.steps.value() == 1
        wait_for(lambda: eng().steps == 1, 5, "steps = 1")
        c.preset_reset.click()
        wait_for(lambda: eng().steps == 2 and c.steps.value() == 2, 5, "reset to the preset")

    def test_device_choices_restart_the_host(self, live, audio_dir):
        """Input/output device combos restart the host: a real device where one exists, else a message."""
        c = live.controls
        wav = str(audio_dir / "noisy.wav")
        for combo, attr in ((c.input_device, "input_device"), (c.output_device, "output_device")):
            old = live.controller.host
            live.message_bar.clear()
            combo.setCurrentIndex(combo.findData(""))          # "System default"
            wait_for(lambda: live.controller.host is not old and
                     (running(live) or live.message_bar.text().startswith("audio:")), 30, f"{attr} = default")
            if live.controller.host is not None:              # a machine with sound devices
                assert live.controller.host.input_file is None or attr == "output_device"
            else:
                assert live.message_bar.level == "error" and "device" in live.message_bar.text()
            combo.setCurrentIndex(combo.findData(f"file:{wav}" if attr == "input_device" else "null"))
            wait_for(lambda: running(live) and live.controller.host.input_file == wav
                     and live.controller.host.output_device == "null", 30, "back to file → null")

    def test_output_controls_change_the_sound(self, live):
        """Attenuation limit, wet/dry and bypass heard in the host's output (latency-aligned)."""
        c = live.controls
        c.preset.setCurrentIndex(c.preset.findData("low-latency"))
        wait_for(lambda: live.controller.host.engine.config.steps == 0 and not c.bypass.isChecked(), 20,
                 "preset low-latency")
        host = live.controller.host

        c.atten.setValue(0)
        x, y = clean_window(host)
        suppressed = rms_db(x) - rms_db(y)
        assert suppressed > 3.0, f"NSNet2 removed only {suppressed:.1f} dB of 0 dB-SNR noise"
        c.atten.setValue(2)                             # at most 2 dB of suppression
        x, y = clean_window(host)
        assert rms_db(y) > rms_db(x) - 2.5
        c.atten.setValue(0)
        c.mix.setValue(0)                               # fully dry: the output is the delayed input
        x, y = clean_window(host)
        assert delayed_copy(x, y)
        c.mix.setValue(100)
        c.bypass.setChecked(True)
        x, y = clean_window(host)
        assert delayed_copy(x, y)
        c.bypass.setChecked(False)

    def test_preset_save_as_writes_a_loadable_file(self, live, tmp_path):
        from streamsep.presets import load_preset

        live.controls.mix.setValue(70)
        wait_for(lambda: live.controller.host.engine.config.mix == 0.7, 5, "mix = 0.7")
        path = tmp_path / "mine.toml"
        assert live.save_preset(path)
        cfg = load_preset(path)
        assert cfg.mix == pytest.approx(0.7) and cfg.model == live.config.model and cfg.steps == live.config.steps
        assert live.controls.preset.currentData() == str(path)

    def test_bad_preset_files_show_a_message(self, live, tmp_path):
        bad = tmp_path / "broken.toml"
        bad.write_text("steps = [unterminated\n")
        assert not live.load_preset(str(bad))
        assert live.message_bar.isVisible() and "broken.toml" in live.message_bar.text()
        wrong = tmp_path / "wrong.toml"
        wrong.write_text('model = "nsnet2"\nsteps = -3\n')
        assert not live.load_preset(str(wrong))
        assert "wrong.toml" in live.message_bar.text() and "steps" in live.message_bar.text()
        assert not live.load_preset(str(tmp_path / "missing.toml"))
        assert "missing.toml" in live.message_bar.text()
        assert running(live)                            # the engine kept running

    def test_file_mode_process_and_export(self, live, audio_dir, tmp_path):
        fp = live.file_panel
        assert fp.open_file(audio_dir / "noisy.wav")
        wait_for(lambda: fp.y is not None and not fp.busy, 60, "file processing")
        assert fp.y.shape == fp.x.shape and fp.rate == RATE
        assert rms_db(fp.y) < rms_db(fp.x) - 3.0       # noise removed
        out = tmp_path / "out.wav"
        assert fp.export(out)
        y, rate = soundfile.read(out, dtype="float32")
        assert rate == RATE and len(y) == len(fp.x)
        assert not fp.open_file(tmp_path / "nope.wav")
        assert "nope.wav" in live.message_bar.text()
        # A-B playback: plays where an output device exists, otherwise says so in the window
        fp.open_file(audio_dir / "noisy.wav")
        wait_for(lambda: fp.y is not None and not fp.busy, 60, "file processing")
        live.controls.set_devices(live.controls.devices()[0], "")
        live.message_bar.clear()
        fp.play("B")
        if fp.player is not None and fp.player.playing:
            fp.play("A")
            assert fp.player.which == "A"
            fp.stop()
        else:
            assert live.message_bar.level == "error" and "play" in live.message_bar.text()

    def test_dnsmos_meter_can_be_switched_off(self, live):
        live.dnsmos_toggle.setChecked(False)
        assert live.dnsmos.status.text() == "off" and not live.opts.dnsmos
        n = live.dnsmos.updates
        pump(2.5)
        assert live.dnsmos.updates == n
        live.dnsmos_toggle.setChecked(True)
        wait_for(lambda: live.dnsmos.updates > n, 30, "DNSMOS scores again")


# -- separate windows ---------------------------------------------------------------------------
def test_meters_rest_at_silence(qapp, audio_dir, tmp_path):
    win = open_window(tmp_path / "gui.toml", preset="balanced", input_file=str(audio_dir / "silence.wav"),
                      output_device="null")
    try:
        wait_for(lambda: running(win) and win.controller.host.stats()["seconds"] > 1.0, 30, "the host to run")
        pump(1.0)
        assert win.meters.at_rest
        assert win.spectrogram.mean_db == [FLOOR_DB, FLOOR_DB]
        wait_for(lambda: win.dnsmos.last.get("silent"), 5, "the DNSMOS meter to see silence")
        assert all(v is None for v in win.dnsmos.values.values())
    finally:
        win.close()


def test_missing_devices_show_a_message(qapp, tmp_path):
    win = open_window(tmp_path / "gui.toml", preset="low-latency", input_device="no-such-microphone-42",
                      output_device="null")
    failures = []
    win.host_failed.connect(failures.append)
    try:
        wait_for(lambda: failures, 30, "the device error")
        assert win.controller.host is None
        text = win.message_bar.text()
        assert win.message_bar.isVisible() and "no-such-microphone-42" in text and "Traceback" not in text
        pump(0.3)
        assert win.meters.at_rest
    finally:
        win.close()


def test_bad_preset_and_settings_at_start_show_messages(qapp, audio_dir, tmp_path):
    settings = tmp_path / "gui.toml"
    settings.write_text("[gui\n = broken")
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "nsnet2"\ncandidates = "many"\n')
    win = open_window(settings, preset=str(bad), input_file=str(audio_dir / "silence.wav"), output_device="null")
    try:
        wait_for(lambda: running(win), 30, "the host to start on defaults")
        texts = " | ".join(t for _, t in win.message_bar.history)
        assert "gui.toml" in texts and "bad.toml" in texts and "candidates" in texts, texts
        from streamsep.engine import EngineConfig

        assert "Traceback" not in texts and win.config.model == EngineConfig().model  # the defaults
    finally:
        win.close()


def test_settings_are_remembered_between_runs(qapp, audio_dir, tmp_path):
    settings = tmp_path / "gui.toml"
    win = open_window(settings, preset="balanced", input_file=str(audio_dir / "noisy.wav"), output_device="null")
    try:
        wait_for(lambda: running(win), 30, "the host to start")
        win.controls.steps.setValue(4)
        win.controls.atten.setValue(12)
        win.controls.policy.setCurrentIndex(win.controls.policy.findData("heuristic"))
    finally:
        win.close()
    s = GuiSettings.load(settings)
    assert s.preset == "balanced" and s.output_device == "null"
    assert (s.engine["steps"], s.engine["atten_db"], s.engine["policy"]) == (4, 12.0, "heuristic")
    win = open_window(settings, input_file=str(audio_dir / "noisy.wav"))   # no preset: remembered values
    try:
        wait_for(lambda: running(win), 30, "the host to start again")
        assert win.controls.steps.value() == 4 and win.controls.atten.value() == 12
        assert win.controller.host.engine.config.policy == "heuristic"
        assert win.controls.devices()[1] == "null"
    finally:
        win.close()


def test_dnsmos_meter_shows_results(qapp):
    m = DnsmosMeter()
    m.show_result({"ovrl": 3.1, "sig": 3.5, "bak": 3.9, "seconds": 9.0, "compute_s": 0.2})
    assert m.values == {"ovrl": 3.1, "sig": 3.5, "bak": 3.9} and m.updates == 1
    m.show_result({"silent": True})
    assert all(v is None for v in m.values.values()) and "silence" in m.status.text()


def test_screenshot_command(qapp, audio_dir, tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    proc = subprocess.run([sys.executable, "-m", "gui.app", "--screenshot", str(out), "--after", "2",
                           "--input-file", str(audio_dir / "noisy.wav"), "--preset", "balanced", "--no-dnsmos",
                           "--size", "1100x700", "--colours", "256"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (1100, 700)
    # "window shown after 0.81 s (0.62 s CPU; torch not imported)": wall time from process start
    # depends on the machine's load, CPU time and the lazy torch import do not
    shown = [line for line in proc.stderr.splitlines() if "window shown after" in line]
    assert shown, proc.stderr
    wall, cpu = float(shown[0].split("after")[1].split()[0]), float(shown[0].split("(")[1].split()[0])
    assert "torch not imported" in shown[0] and cpu < 1.5 and wall < 8.0, shown[0]
    assert not (tmp_path / "cfg" / "streamsep" / "gui.toml").exists()     # screenshot mode writes nothing
