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
from dataclasses import dataclass, field
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


#: server names the tests use, tried in turn.  JACK's shared registry has 8 slots and only reclaims
#: the slot of a crashed server when a server *of the same name* starts again, so a small fixed
#: set of names (not random ones) keeps crashed test servers from filling it up.
SERVER_NAMES = [f"streamsep-test-{i}" for i in range(6)]


class JackServer:
    """``jackd -d dummy -r RATE -p PERIOD`` (real-time if allowed) as a child process."""

    def __init__(self, rate: int = 16000, period: int = 160, name: str | None = None) -> None:
        self.rate, self.period = rate, period
        self.names = [name] if name else list(SERVER_NAMES)
        self.name = self.names[0]
        self.proc: subprocess.Popen | None = None
        self.rt_flags = ["--no-realtime"]
        self._tag = uuid.uuid4().hex[:6]

    @property
    def realtime(self) -> bool:
        """True when jackd runs with SCHED_FIFO (``-R``), False with ``--no-realtime``."""
        return self.rt_flags[0] == "-R"

    @property
    def log(self) -> Path:
        """This instance's jackd output (unique per instance: a failed start must not truncate the
        log of a running server of the same name)."""
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"jackd-{self.name}-{self._tag}.log"

    def env(self) -> dict:
        """Environment for a process that should talk to this server (PortAudio or jack)."""
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        env["JACK_NO_START_SERVER"] = "1"
        return env

    def start(self, timeout: float = 20.0) -> JackServer:
        """Start jackd: real-time scheduling when the system allows it (as a real setup would run;
        a normal-priority dummy driver itself wakes late and xruns on a busy machine), else
        ``--no-realtime``.  ``STREAMSEP_JACK_RT=0`` forces ``--no-realtime``.  A name in use (by
        another test run) moves on to the next name."""
        errors = []
        for name in self.names:
            self.name = name
            if _server_running(name):
                errors.append(f"{name}: in use")
                continue
            flags = [["-R", "-P", "70"], ["--no-realtime"]]
            if os.environ.get("STREAMSEP_JACK_RT", "1") == "0":
                flags = flags[1:]
            for f in flags:
                try:
                    return self._start(f, timeout)
                except RuntimeError as exc:
                    log = self.log.read_text(errors="replace") if self.log.is_file() else ""
                    if "Too many servers" in log:
                        raise RuntimeError(
                            "JACK's server registry (/dev/shm/jack-shm-registry, 8 slots) is full of "
                            "servers that died without unregistering; start and stop a jackd with each "
                            "stale name (`strings /dev/shm/jack-shm-registry`) or remove the file while "
                            "no jackd runs"
                        ) from exc
                    errors.append(f"{name} {' '.join(f)}: {str(exc)[-300:]}")
                    if "already" in log:
                        break  # this name is taken: next name
        raise RuntimeError("could not start jackd:\n" + "\n".join(errors))

    def _start(self, rt_flags: list[str], timeout: float) -> JackServer:
        import jack

        jack.set_error_function(lambda msg: None)  # "cannot connect" while jackd comes up is expected

        self.rt_flags = rt_flags
        cmd = [
            "jackd",
            *self.rt_flags,
            "-n",
            self.name,
            "-d",
            "dummy",
            "-r",
            str(self.rate),
            "-p",
            str(self.period),
            "-C",
            "2",
            "-P",
            "2",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jackd exited with {self.proc.returncode}: {self.log.read_text()[-500:]}")
            try:
                c = jack.Client("probe", servername=self.name, no_start_server=True)
                c.close()
            except jack.JackError:
                time.sleep(0.1)
                continue
            time.sleep(0.3)  # the server answering must be ours, still alive
            if self.proc.poll() is None:
                return self
            raise RuntimeError(f"jackd exited with {self.proc.returncode}: {self.log.read_text()[-500:]}")
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

    def log_lines(self) -> list[str]:
        """The server log so far, line by line (empty when it cannot be read)."""
        try:
            return self.log.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            return []

    def xrun_events_since(self, mark: int) -> dict[str, list[list[str]]]:
        """Xrun events logged after line ``mark``, by cause.  An event is a run of consecutive xrun
        lines (``Process error`` lines do not end it).  The graph is player → host → recorder
        (the test's own clients ``ssx_play_…``/``ssx_rec_…`` only copy buffers):

        * ``driver`` — the dummy driver's own cycle started late (``JackTimedDriver::Process XRun =
          N usec``): a late timer wake-up of the server thread;
        * ``stall`` — the player, upstream of everything and idle, did not finish either: the cycle
          itself did not run in time (the VM did not schedule it);
        * ``host`` — the host (``streamsep``) started a cycle that its upstream player finished
          and did not finish it (state ``Running``); a host that was woken but never ran
          (``Triggered``) counts as a stall;
        * ``harness`` — only the test's recorder missed.
        """
        events: list[list[str]] = []
        current: list[str] | None = None
        for ln in self.log_lines()[mark:]:
            ln = ln.strip()
            if "JackTimedDriver" in ln and "XRun" in ln:
                current = [ln]
                events.append(current)
            elif "not finished" in ln:
                if current is None:
                    current = []
                    events.append(current)
                current.append(ln)
            elif "Process error" not in ln:
                current = None
        out: dict[str, list[list[str]]] = {"driver": [], "stall": [], "host": [], "harness": []}
        for ev in events:
            if "JackTimedDriver" in ev[0]:
                out["driver"].append(ev)
            elif any("client = ssx_play_" in ln for ln in ev):
                out["stall"].append(ev)
            elif any("client = streamsep " in ln and "state = Running" in ln for ln in ev):
                out["host"].append(ev)  # its callback started and did not finish in time
            elif any("client = streamsep " in ln for ln in ev):
                # ``Triggered``: woken, never ran — its JACK thread (real-time priority above every
                # other thread of the host) was not scheduled: the machine, not the host's work
                out["stall"].append(ev)
            else:
                out["harness"].append(ev)
        return out

    def xrun_clients(self) -> list[str]:
        """The server log's xrun lines (which client was not finished), for failure messages."""
        return [ln.strip() for ln in self.log_lines() if "XRun" in ln or "not finished" in ln][:20]

    def kill(self) -> None:
        """Abrupt end (the 'vanished device' case)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _server_running(name: str) -> bool:
    """True when a JACK server called ``name`` answers."""
    import jack

    jack.set_error_function(lambda msg: None)
    try:
        jack.Client("probe", servername=name, no_start_server=True).close()
        return True
    except jack.JackError:
        return False


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
            buf[:n] = self.signal[self.pos : self.pos + n]
        buf[max(n, 0) :] = 0.0
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
        self.buf.fill(0.0)  # fault the pages in now, not in the JACK callback
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
                self.gap_frames.append(self._next)  # first frame that never existed
                self.gap_frames.append(t)  # first frame after the gap
        self._next = t + frames
        i = t - self.first_frame
        n = min(frames, len(self.buf) - i)
        if n > 0:
            self.buf[i : i + n] = self.port.get_array()[:n]
            self.pos = i + n

    def aligned(self, start_frame: int, n: int) -> np.ndarray:
        """``n`` recorded samples starting at JACK frame time ``start_frame``."""
        i = start_frame - self.first_frame
        if i < 0 or i + n > self.pos:
            raise AssertionError(f"recording does not cover frames {start_frame}..{start_frame + n}")
        return self.buf[i : i + n].copy()


class LiveProcess:
    """``python -m streamsep.cli live`` in a subprocess on a JACK server (ports ``streamsep:in_0``/``out_0``)."""

    def __init__(self, server: JackServer, *args: str, stats: Path, env: dict | None = None) -> None:
        self.server = server
        self.stats_path = Path(stats)
        cmd = [
            sys.executable,
            "-m",
            "streamsep.cli",
            "live",
            "--input",
            "system",
            "--output",
            "system",
            "--stats",
            str(self.stats_path),
            "--quiet",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=str(REPO),
            env={**server.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
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


@dataclass
class Recording:
    """What a play/record run captured: samples by JACK frame time, and xruns JACK reported."""

    buf: np.ndarray
    first_frame: int  # JACK frame time of buf[0]
    start_frame: int  # JACK frame time of the first played sample
    end_frame: int  # JACK frame time when playing (plus tail) ended
    xrun_frames: np.ndarray  # JACK frame times of xrun notifications (any client)
    gaps: int  # cycles JACK skipped
    gap_frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    #                         (first missing frame, first frame after) of each skip, JACK frame time

    def skipped(self, start_frame: int, n: int) -> list[tuple[int, int]]:
        """(offset, length), within ``n`` samples from ``start_frame``, of the stretches around
        each jump of JACK's frame time: the frames the jump passed over (zeros that nobody
        played, when JACK really skipped cycles) and as many after them (when a late cycle was
        only labelled one period ahead and the next one repeats that time, as the dummy driver
        does after a late wake-up: that cycle's samples land one period late, and the next
        overwrites them)."""
        out = []
        for a, b in self.gap_frames:
            a, b = int(a), int(b)
            if b <= a:  # a repeated or earlier time: the forward jump before it covers it
                continue
            lo, hi = max(a - start_frame, 0), min(b + (b - a) - start_frame, n)
            if hi > lo:
                out.append((lo, hi - lo))
        return out

    def trusted(self, start_frame: int, n: int) -> np.ndarray:
        """Boolean mask of ``n`` samples from ``start_frame``: False inside :meth:`skipped`
        stretches, where the recording, not the host, is off."""
        mask = np.ones(n, bool)
        for j, m in self.skipped(start_frame, n):
            mask[j : j + m] = False
        return mask

    def aligned(self, start_frame: int, n: int) -> np.ndarray:
        """``n`` recorded samples starting at JACK frame time ``start_frame``."""
        i = start_frame - self.first_frame
        if i < 0 or i + n > len(self.buf):
            raise AssertionError(f"recording does not cover frames {start_frame}..{start_frame + n}")
        return self.buf[i : i + n].copy()

    def xruns_while_playing(self) -> int:
        return int(np.sum((self.xrun_frames >= self.start_frame) & (self.xrun_frames <= self.end_frame)))


class PlayRecord:
    """Play ``x`` into ``streamsep:in_0`` and record ``streamsep:out_0`` from a *separate process*.

    JACK-Client callbacks are Python and need their process's GIL; in a process of their own, with
    a main thread that only sleeps, nothing can hold that GIL when JACK calls them (a test process
    doing other work can, and then the test's own clients cause the xruns)."""

    def __init__(
        self,
        server: JackServer,
        x: np.ndarray,
        tmp: Path,
        lead_s: float = 0.5,
        tail_s: float = 0.6,
        timeout_s: float = 120.0,
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        self.play_path = Path(tmp) / f"play-{tag}.npy"
        self.out_path = Path(tmp) / f"rec-{tag}.npz"
        np.save(self.play_path, np.ascontiguousarray(x, dtype=np.float32))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "playrec",
                server.name,
                str(self.play_path),
                str(self.out_path),
                str(lead_s),
                str(tail_s),
                str(timeout_s),
                tag,
            ],
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.n = len(x)

    def wait(self, timeout: float) -> Recording:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"play/record timed out: {err[-2000:]}") from None
        if self.proc.returncode != 0 or not self.out_path.is_file():
            raise AssertionError(f"play/record failed ({self.proc.returncode}): {err[-2000:]}")
        d = np.load(self.out_path)
        gf = d["gap_frames"].reshape(-1, 2) if "gap_frames" in d else np.zeros((0, 2), np.int64)
        return Recording(d["rec"], int(d["first"]), int(d["start"]), int(d["end"]), d["xruns"], int(d["gaps"]), gf)


def _playrec_main(server: str, play: str, out: str, lead_s: str, tail_s: str, timeout_s: str, tag: str) -> int:
    x = np.load(play)
    player = Player(server, f"ssx_play_{tag}")
    rec = Recorder(server, len(x) / player.client.samplerate + float(timeout_s) + 30, f"ssx_rec_{tag}")
    player.client.activate()
    rec.client.activate()
    hin, hout = f"{HOST_CLIENT}:in_0", f"{HOST_CLIENT}:out_0"
    if not wait_until(
        lambda: {hin, hout} <= {p.name for p in rec.client.get_ports(f"{HOST_CLIENT}:")}, float(timeout_s), step=0.2
    ):
        print("host ports did not appear", file=sys.stderr)
        return 3
    route(rec.client, player, rec)
    time.sleep(float(lead_s))
    player.play(x)
    # the main thread stays out of the callbacks' way: a thread that wakes up takes the GIL, and
    # if the OS preempts it right then, a JACK callback waiting for the GIL misses its cycle
    time.sleep(len(x) / player.client.samplerate + 0.1)
    while not player.done:
        time.sleep(0.1)
    time.sleep(float(tail_s))
    end = rec.client.frame_time
    player.client.deactivate()
    rec.client.deactivate()
    np.savez(
        out,
        rec=rec.buf[: rec.pos],
        first=rec.first_frame,
        start=player.start_frame,
        end=end,
        xruns=np.array(rec.xrun_frames, dtype=np.int64),
        gaps=rec.gaps,
        gap_frames=np.array(rec.gap_frames, dtype=np.int64),
    )
    return 0


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
    """Speech synthesised by espeak-ng at ``rate``, 0.5 peak (None if espeak-ng is missing)."""
    from streamsep.synth import espeak_speech as _espeak

    text = text or (
        "The quick brown fox jumps over the lazy dog. Real time speech enhancement "
        "should never glitch, and the latency must stay constant over the session."
    )
    return _espeak(text, rate, words_per_minute=150, peak=0.5)


def speech_like(rate: int = 16000, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """The package's synthetic voiced signal (the fallback when espeak-ng is missing)."""
    from streamsep.synth import synthetic_speech

    return synthetic_speech(seconds, rate, seed)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x)).astype(np.float32)
    n *= np.sqrt(np.mean(x**2) / (np.mean(n**2) * 10 ** (snr_db / 10)))
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
    return float(10 * np.log10(np.sum(ref**2) / max(err, 1e-20)))


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "playrec":
        sys.exit(_playrec_main(*sys.argv[2:]))
    print("usage: jackutil.py playrec SERVER PLAY.npy OUT.npz LEAD_S TAIL_S TIMEOUT_S TAG", file=sys.stderr)
    sys.exit(2)
