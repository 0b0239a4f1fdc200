"""Test helpers: a private JACK server on the dummy driver, a JACK player and recorder that share its
sample clock, and a `streamsep live` host running in a subprocess against that server.

The dummy driver runs JACK's graph on the wall clock without sound hardware, so the live host,
PortAudio's JACK host API and the real-time constraints are all exercised for real.

Clock bookkeeping: the player notes the JACK frame time at which its first signal sample went out;
the recorder notes the frame time of every cycle it captured.  Player and recorder are separate JACK
clients so the graph ``player → streamsep → recorder`` has no cycle (a cycle would add a period).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HOST_CLIENT = "streamsep"


def jack_missing_reason() -> str | None:
    """Why JACK tests cannot run here (None when jackd, JACK-Client and PortAudio are usable)."""
    if shutil.which("jackd") is None:
        return "jackd not installed (apt-get install jackd2)"
    try:
        import jack  # noqa: F401
    except Exception as exc:  # JACK-Client missing or libjack missing
        return f"JACK-Client unusable: {exc}"
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        return f"PortAudio missing: {exc} (apt-get install libportaudio2)"
    return None


class JackServer:
    """``jackd --no-realtime -n NAME -d dummy -r RATE -p PERIOD`` as a child process."""

    def __init__(self, rate: int = 16000, period: int = 160, name: str | None = None) -> None:
        self.rate, self.period = rate, period
        self.name = name or f"ssx{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen | None = None
        self.rt_flags = ["--no-realtime"]
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"jackd-{self.name}.log"

    def env(self) -> dict:
        """Environment for a process that should talk to this server (PortAudio or jack)."""
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        env["JACK_NO_START_SERVER"] = "1"
        return env

    def start(self, timeout: float = 20.0) -> "JackServer":
        """Start jackd: real-time scheduling when the system allows it (as a real setup would run;
        a normal-priority dummy driver itself wakes late and xruns on a busy machine), else
        ``--no-realtime``.  ``STREAMSEP_JACK_RT=0`` forces ``--no-realtime``."""
        if os.environ.get("STREAMSEP_JACK_RT", "1") != "0":
            try:
                return self._start(["-R", "-P", "70"], timeout)
            except RuntimeError:
                pass
        return self._start(["--no-realtime"], timeout)

    def _start(self, rt_flags: list[str], timeout: float) -> "JackServer":
        import jack

        self.rt_flags = rt_flags
        cmd = ["jackd", *self.rt_flags, "-n", self.name, "-d", "dummy", "-r", str(self.rate),
               "-p", str(self.period), "-C", "2", "-P", "2"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=self.env(), start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jackd exited with {self.proc.returncode}: {self.log.read_text()[-500:]}")
            try:
                c = jack.Client("probe", servername=self.name, no_start_server=True)
                c.close()
                return self
            except jack.JackError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jackd did not come up in {timeout} s: {self.log.read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Abrupt end (the 'vanished device' case)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def jack_server(rate: int = 16000, period: int = 160):
    srv = JackServer(rate, period).start()
    try:
        yield srv
    finally:
        srv.stop()


class Player:
    """A JACK client with one output port that plays ``signal`` once, on request."""

    def __init__(self, server: str, name: str = "ssx_player") -> None:
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.port = self.client.outports.register("out")
        self.signal = np.zeros(0, np.float32)
        self.pos = 0
        self.armed = False
        self.start_frame: int | None = None
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        buf = self.port.get_array()
        if not self.armed:
            buf[:] = 0.0
            return
        t = self.client.last_frame_time
        if self.start_frame is None:
            self.start_frame = t
        self.pos = t - self.start_frame  # follow JACK's clock, even across skipped cycles
        n = min(frames, len(self.signal) - self.pos)
        if n > 0:
            buf[:n] = self.signal[self.pos:self.pos + n]
        buf[max(n, 0):] = 0.0
        self.pos += frames

    def play(self, x: np.ndarray) -> None:
        self.signal = np.ascontiguousarray(x, dtype=np.float32)
        self.pos = 0
        self.start_frame = None
        self.armed = True

    @property
    def done(self) -> bool:
        return self.armed and self.pos >= len(self.signal)


class Recorder:
    """A JACK client with one input port recording every cycle with its JACK frame time."""

    def __init__(self, server: str, seconds: float, name: str = "ssx_recorder") -> None:
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.port = self.client.inports.register("in")
        self.buf = np.zeros(int(seconds * self.client.samplerate), np.float32)
        self.pos = 0
        self.first_frame: int | None = None
        self._next: int | None = None
        self.gaps = 0
        self.gap_frames: list[int] = []
        self.xruns = 0
        self.xrun_frames: list[int] = []
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)

    def _xrun(self, delay_usecs: float) -> None:
        self.xruns += 1
        if len(self.xrun_frames) < 1000:
            self.xrun_frames.append(self.client.frame_time)

    def _process(self, frames: int) -> None:
        t = self.client.last_frame_time
        if self.first_frame is None:
            self.first_frame = t
        elif t != self._next:
            self.gaps += 1  # JACK skipped cycles: the frames between never existed
            if len(self.gap_frames) < 1000:
                self.gap_frames.append(t)
        self._next = t + frames
        i = t - self.first_frame
        n = min(frames, len(self.buf) - i)
        if n > 0:
            self.buf[i:i + n] = self.port.get_array()[:n]
            self.pos = i + n

    def aligned(self, start_frame: int, n: int) -> np.ndarray:
        """``n`` recorded samples starting at JACK frame time ``start_frame``."""
        i = start_frame - self.first_frame
        if i < 0 or i + n > self.pos:
            raise AssertionError(f"recording does not cover frames {start_frame}..{start_frame + n}")
        return self.buf[i:i + n].copy()


class LiveProcess:
    """``python -m streamsep.live`` in a subprocess on a JACK server (ports ``streamsep:in_0``/``out_0``)."""

    def __init__(self, server: JackServer, *args: str, stats: Path, env: dict | None = None) -> None:
        self.server = server
        self.stats_path = Path(stats)
        cmd = [sys.executable, "-m", "streamsep.live", "--input", "system", "--output", "system",
               "--stats", str(self.stats_path), "--quiet", *args]
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), env={**server.env(), **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = ""
        self.err = ""

    def wait_ports(self, client, timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            names = [p.name for p in client.get_ports(f"{HOST_CLIENT}:")]
            if f"{HOST_CLIENT}:in_0" in names and f"{HOST_CLIENT}:out_0" in names:
                return
            if self.proc.poll() is not None:
                self.finish()
                raise AssertionError(f"live host exited early ({self.proc.returncode}): {self.err[-2000:]}")
            time.sleep(0.1)
        raise AssertionError("live host ports did not appear")

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C the host and wait for it; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> int:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.out += out or ""
        self.err += err or ""
        return self.proc.returncode

    def stats(self) -> dict:
        return json.loads(self.stats_path.read_text())


def route(client, player: Player, recorder: Recorder) -> None:
    """player → streamsep:in_0 (replacing system:capture), streamsep:out_0 → recorder."""
    hin, hout = f"{HOST_CLIENT}:in_0", f"{HOST_CLIENT}:out_0"
    for p in client.get_all_connections(hin):
        client.disconnect(p, hin)
    client.connect(player.port.name, hin)
    client.connect(hout, recorder.port.name)


def wait_until(cond, timeout: float, step: float = 0.05) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return cond()


# -- test signals ---------------------------------------------------------------------------------
def espeak_speech(rate: int = 16000, text: str | None = None) -> np.ndarray | None:
    """Speech synthesised by espeak-ng, resampled to ``rate`` (None if espeak-ng is missing)."""
    if shutil.which("espeak-ng") is None:
        return None
    import io

    import soundfile as sf
    import soxr

    text = text or ("The quick brown fox jumps over the lazy dog. Real time speech enhancement "
                    "should never glitch, and the latency must stay constant over the session.")
    wav = subprocess.run(["espeak-ng", "-s", "150", "--stdout", text], check=True, capture_output=True).stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32")
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != rate:
        x = soxr.resample(x, sr, rate)
    return (0.5 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def speech_like(rate: int = 16000, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Numpy-generated voiced 'syllables' (harmonic bursts with a syllabic envelope) plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    x = 0.2 * voiced * env + 0.02 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x)).astype(np.float32)
    n *= np.sqrt(np.mean(x ** 2) / (np.mean(n ** 2) * 10 ** (snr_db / 10)))
    return (x + n).astype(np.float32)


def real_speech(rate: int, seconds: float) -> np.ndarray | None:
    """Real noisy speech from ../shared (LEVENTURE pairs, 16 kHz), concatenated to ``seconds``."""
    d = SHARED / "data" / "pairs" / "leventure" / "noisy"
    if not d.is_dir():
        return None
    import soundfile as sf
    import soxr

    parts, total = [], 0
    for f in sorted(d.glob("*.wav")):
        x, sr = sf.read(str(f), dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        if sr != rate:
            x = soxr.resample(x, sr, rate)
        parts.append(x)
        total += len(x)
        if total >= seconds * rate:
            break
    return np.concatenate(parts)[: int(seconds * rate)].astype(np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    err = np.sum((ref - est) ** 2)
    return float(10 * np.log10(np.sum(ref ** 2) / max(err, 1e-20)))
