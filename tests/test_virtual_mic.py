"""``streamsep live --virtual-mic`` against a real PipeWire: the tests start their own PipeWire,
WirePlumber and pipewire-pulse (private D-Bus bus, runtime, state and config directories; PipeWire's
dummy driver, no sound card; :mod:`pwutil`), run the host in a subprocess as a user would (the plain
command, no ``pw-jack``), and record the virtual microphone the way another application does
(``pw-record --target streamsep_mic``).

What is asserted, on the recording and on PipeWire's own node list (pw-dump), not on the host's word:
* the recording of the virtual microphone is the offline engine's output on the same real speech
  (SNR >= 40 dB at the best alignment, clearly worse one sample either side);
* the node has ``media.class = Audio/Source/Virtual``, ``node.name = streamsep_mic`` and the
  default description; it is removed on Ctrl-C and on SIGTERM;
* a host killed with SIGKILL leaves its node behind; the next start removes it (exactly one node).

These run in CI (``.ci/run`` installs PipeWire); outside CI they skip when the binaries are absent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jackutil import real_speech, snr_db  # noqa: E402
from pwutil import PipeWire, pipewire_missing_reason  # noqa: E402

from streamsep.engine import enhance_array  # noqa: E402
from streamsep.presets import load_preset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
NODE = "streamsep_mic"
DESCRIPTION = "streamsep denoised microphone"
_REASON = pipewire_missing_reason()
if _REASON and os.environ.get("CI"):
    raise RuntimeError(f"PipeWire tests must run in CI: {_REASON}")  # never a silent skip there
pytestmark = [pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


@pytest.fixture(scope="module")
def pipewire():
    """A private PipeWire at 16 kHz with 10 ms periods (the model's rate: no resampling anywhere)."""
    pw = PipeWire(rate=RATE, quantum=160).start()
    yield pw
    dead = pw.alive()
    logs = {n: pw.log(n)[-800:] for n in dead}
    pw.stop()
    assert not dead, f"PipeWire daemons died during the tests: {dead} {logs}"


@pytest.fixture
def speech(tmp_path) -> tuple[Path, np.ndarray]:
    """6 s of real noisy speech from ../shared after 0.5 s of silence, as a 16 kHz WAV file."""
    import soundfile as sf

    s = real_speech(RATE, 6.0)
    if s is None:
        pytest.skip("../shared/data/pairs/leventure not present")
    x = np.concatenate([np.zeros(RATE // 2, np.float32), s]).astype(np.float32)
    path = tmp_path / "speech.wav"
    sf.write(str(path), x, RATE, subtype="FLOAT")
    return path, x


class Host:
    """``streamsep live --virtual-mic`` in a subprocess against the private PipeWire."""

    def __init__(self, pw: PipeWire, *args: str, stats: Path | None = None) -> None:
        env = pw.env()
        env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
        self.stats_path = stats
        cmd = [
            sys.executable,
            "-m",
            "streamsep.cli",
            "live",
            "--virtual-mic",
            "--samplerate",
            str(RATE),
            "--quiet",
            *args,
        ] + (["--stats", str(stats)] if stats else [])
        self.proc = subprocess.Popen(
            cmd, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.err = ""

    def wait_running(self, pw: PipeWire, timeout: float = 120.0) -> None:
        """Until the host's output is linked into the node (the host is then streaming)."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                self.finish()
                raise AssertionError(f"host exited early ({self.proc.returncode}): {self.err[-2000:]}")
            links = pw.run("pw-link", "-l").stdout
            if f"{NODE}:input_MONO" in links and "streamsep:out_0" in links:
                return
            time.sleep(0.2)
        raise AssertionError("the host never linked its output into the virtual microphone")

    def signal(self, sig: int, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> int:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.err += err or ""
        return self.proc.returncode


def node_props(pw: PipeWire, name: str) -> list[dict]:
    return pw.node_props(name)


def record(pw: PipeWire, path: Path, seconds: float) -> np.ndarray:
    """Record the virtual microphone as an application would (pw-record), mono float32 at 16 kHz."""
    import soundfile as sf

    rec = subprocess.Popen(
        ["pw-record", "--target", NODE, "--rate", str(RATE), "--channels", "1", "--format", "f32", str(path)],
        env=pw.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(seconds)
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=10)
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == RATE, (sr, err)
    return y[:, 0]


def best_alignment(y: np.ndarray, ref: np.ndarray) -> int:
    """Offset ``k`` into ``ref`` where ``y`` matches best (cross-correlation by FFT)."""
    n = len(ref) + len(y)
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(ref, nfft) * np.conj(np.fft.rfft(y, nfft)), nfft)[: len(ref) - len(y) + 1]
    return int(np.argmax(c))


def test_virtual_mic_recording_equals_offline_engine(pipewire, speech, tmp_path):
    """An application recording ``streamsep_mic`` hears the engine's output: equal to the offline
    engine on the same speech (>= 40 dB SNR), and the node is the documented one."""
    path, x = speech
    stats = tmp_path / "stats.json"
    # no deadline control and a wider margin: on a loaded machine a late chunk costs its own
    # samples (played dry), not seconds of reduced work; what is tested here is the plumbing
    host = Host(
        pipewire, "--input-file", str(path), "--preset", "low-latency", "--no-adapt", "--margin-ms", "20", stats=stats
    )
    try:
        host.wait_running(pipewire)
        props = node_props(pipewire, NODE)
        assert len(props) == 1, props
        assert props[0]["media.class"] == "Audio/Source/Virtual" and props[0]["node.description"] == DESCRIPTION
        y = record(pipewire, tmp_path / "rec.wav", 9.0)
        code = host.signal(signal.SIGINT)
    finally:
        if host.proc.poll() is None:
            host.proc.kill()
            host.finish()
    assert code == 0, host.err[-2000:]
    st = json.loads(stats.read_text())
    assert st["error"] is None and st["virtual_mic"]["node_name"] == NODE, st
    assert st["latency_samples"] == st["engine_latency_samples"] + st["margin_samples"]
    assert st["samplerate"] == RATE and st["xruns"] == 0
    assert node_props(pipewire, NODE) == [], "node left after Ctrl-C"
    # the file loops: the offline engine on the same loop, after silence as the host idled on
    loops = int(np.ceil((st["seconds"] + 12.0) * RATE / len(x))) + 2
    lead = 2 * RATE
    ref = enhance_array(
        np.concatenate([np.zeros(lead, np.float32), np.tile(x, loops)]), RATE, load_preset("low-latency")
    )[lead:]
    y = y[RATE // 2 :]  # the recorder's own start
    assert np.abs(y).max() > 1e-3, "the recording is silent"
    good, total, used = piecewise_parity(y, ref)
    info = (good, total, used, {k: st[k] for k in ("xruns", "deadline_misses", "callbacks", "max_period")})
    # every loud segment that matches does so at an alignment found on the recording; the recording
    # may jump by whole graph cycles where an overloaded VM dropped them (seen: 384 and 1408 samples,
    # with no xrun reported by PipeWire, the host or the recorder), never more than about once a second
    assert total > 30 and len(good) >= 0.85 * total, info
    assert len(used) <= 2 + len(y) / RATE, info
    k = max(used, key=used.get)
    segs = [a for a, kk in good if kk == k]
    idx = np.concatenate([np.arange(a, a + RATE // 10) for a in segs])
    snr = {s: snr_db(ref[idx + k + s], y[idx]) for s in (-1, 0, 1)}
    assert snr[0] >= 40.0 and snr[0] > max(snr[-1], snr[1]) + 15, (snr, info)


def piecewise_parity(y: np.ndarray, ref: np.ndarray, seg: int = RATE // 10):
    """Loud 100 ms segments of ``y`` that equal ``ref`` (SNR >= 40 dB) at one of the alignments
    found on 0.5 s windows (every 0.25 s) (``y[a] == ref[a + k]``).  Returns ([(a, k) of each good segment], the
    number of loud segments, {k: segments}); the first and last ``seg`` of ``ref`` never match."""
    cands = []
    for a in range(0, len(y) - RATE // 2 + 1, RATE // 4):
        w = y[a : a + RATE // 2]
        if np.abs(w).max() > 1e-3:
            k = best_alignment(w, ref) - a
            if k >= 1 and k + len(y) + 1 <= len(ref) and k not in cands:
                cands.append(k)
    good, total, used = [], 0, {}
    for a in range(0, len(y) - seg + 1, seg):
        w = y[a : a + seg]
        if np.sum(w**2) < 1e-6 * seg:
            continue
        total += 1
        if not cands:
            continue
        best = max(cands, key=lambda k: snr_db(ref[k + a : k + a + seg], w))
        if snr_db(ref[best + a : best + a + seg], w) >= 40.0:
            good.append((a, best))
            used[best] = used.get(best, 0) + 1
    return good, total, used


def test_virtual_mic_killed_host_node_replaced_never_two(pipewire, speech, tmp_path):
    """SIGKILL leaves the node; the next start removes it first (exactly one node); SIGTERM removes it."""
    path, _ = speech
    first = Host(pipewire, "--input-file", str(path))
    try:
        first.wait_running(pipewire)
    finally:
        first.proc.kill()
        first.finish()
    assert len(node_props(pipewire, NODE)) == 1, "a killed host's node is expected to stay behind"
    second = Host(pipewire, "--input-file", str(path))
    try:
        second.wait_running(pipewire)
        assert len(node_props(pipewire, NODE)) == 1, node_props(pipewire, NODE)
        mods = [
            ln for ln in pipewire.pactl("list", "short", "modules").stdout.splitlines() if f"sink_name={NODE}" in ln
        ]
        assert len(mods) == 1, mods
        code = second.signal(signal.SIGTERM)
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
            second.finish()
    assert code == 0, second.err[-2000:]
    assert node_props(pipewire, NODE) == [], "node left after SIGTERM"


def test_virtual_mic_refuses_output_device_with_one_line(pipewire, tmp_path):
    """--virtual-mic replaces --output: asking for both is one clear line, exit 2, no node made."""
    host = Host(pipewire, "--output", "Dummy Output", "--input-file", str(tmp_path / "none.wav"))
    code = host.finish(120)
    lines = [ln for ln in host.err.splitlines() if ln.strip()]
    assert code == 2 and lines and lines[-1].startswith("streamsep live: error:") and "--virtual-mic" in lines[-1], (
        host.err
    )
    assert node_props(pipewire, NODE) == []
