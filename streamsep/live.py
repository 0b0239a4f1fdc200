"""The live duplex host: capture → engine (worker thread) → playback, without glitches.

Threads and what they may do
----------------------------
* **Audio callback** (PortAudio's thread): compiled with numba (:func:`streamsep.rings.audio_callback_core`)
  and handed to PortAudio as a C function, so it never waits for the GIL.  It copies the input
  into the input ring and the output ring into the output (preallocated, lock-free rings whose
  counters live in a shared int64 header) and counts PortAudio status flags (xruns).  No
  allocation, no lock, no logging, no model call.  If the output ring lacks samples (the worker
  missed a deadline) it plays the *delay-aligned dry input* for the missing samples from the input
  ring's history — never silence, never a shift of the timeline.
* **Worker** thread: takes whatever input has arrived, runs :meth:`Engine.process` (or its cheap dry
  path when it is late), and writes the result at a fixed offset on the output timeline.  Measures
  compute time and slack and feeds :class:`~streamsep.deadline.DeadlineController`, which caps the
  engine's steps/candidates (``Engine.set_load_limit``) and climbs back with hysteresis.
* **Caller** threads (CLI, GUI): :meth:`LiveHost.set_params` (forwarded to the engine's mailbox),
  :meth:`LiveHost.set_config` (a new engine is built and warmed up in the caller's thread, then the
  worker splices it in with a crossfade at a block boundary), :meth:`LiveHost.stats`,
  :meth:`LiveHost.monitor`.

Timeline and latency
--------------------
Input and output share one sample clock (absolute sample index ``i`` since start).  The engine's
output for input chunk ``[a, a+n)`` is written to output positions ``[a+P, a+P+n)``; the output
ring starts with ``P`` samples of silence.  ``P`` is the host's safety margin: one device period for
the callback, time for the engine to compute one decision block at the controller's high-load mark,
and a jitter allowance (``margin_ms``).  The reported latency is ``engine.latency + P`` samples,
constant for the lifetime of an engine; a dry fallback sample at position ``o`` is input ``o − T``.
"""
from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from streamsep.deadline import DeadlineController
from streamsep.engine import LIVE_KEYS, ConfigError, Engine, EngineConfig
from streamsep import rings as R
from streamsep.rings import SampleRing

MONITOR_SECONDS = 30.0
from streamsep.catalogue import LIVE_MARGIN_MS as DEFAULT_MARGIN_MS  # one definition (catalogue)
CROSSFADE_MS = 10.0
WARMUP_S = 0.5
#: wall time (s) the worker may lose while not running — preempted, descheduled by the OS or a VM's
#: hypervisor, or waiting for the GIL — before it counts as a stall
STALL_S = 0.005
#: a deadline miss this soon (s, stream time) after a stall is counted as following it
STALL_WINDOW_S = 0.25
JACK_CLIENT_NAME = os.environ.get("STREAMSEP_JACK_NAME", "streamsep")
REBUILD_KEYS = ("model", "block", "device", "resample_quality")


class DeviceError(RuntimeError):
    """An unknown or vanished device, or a device that refuses the rate (one-line message)."""


# -- PortAudio set-up -------------------------------------------------------------------------
_jack_name_buf: ctypes.Array | None = None  # PortAudio keeps the pointer: keep the bytes alive
_open_streams = 0
_portaudio_wedged = False  # a stream could not be stopped (server gone): never call Pa_Terminate


def _wedged() -> None:
    """A stream hangs in PortAudio (its device or server vanished).  Pa_Terminate would hang too,
    so drop sounddevice's exit handler and stop re-initialising PortAudio in this process."""
    global _portaudio_wedged
    _portaudio_wedged = True
    try:
        import atexit

        import sounddevice as sd

        atexit.unregister(sd._exit_handler)
    except Exception:
        pass


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # libportaudio missing
        raise DeviceError(f"PortAudio library not available ({exc}); install libportaudio2") from exc
    return sd


def rescan_devices() -> None:
    """Re-initialise PortAudio so that devices (and a JACK server) started since are seen.

    Also names our JACK client ``streamsep`` (env ``STREAMSEP_JACK_NAME``) so its ports are
    ``streamsep:in_0`` / ``streamsep:out_0``.  Skipped while one of our streams is open.
    """
    global _jack_name_buf
    sd = _sd()
    if _open_streams or _portaudio_wedged:
        return
    sd._terminate()
    try:
        lib = ctypes.CDLL(sd._libname)
        if hasattr(lib, "PaJack_SetClientName"):
            _jack_name_buf = ctypes.create_string_buffer(JACK_CLIENT_NAME.encode())
            lib.PaJack_SetClientName(_jack_name_buf)
    except OSError:
        pass
    sd._initialize()


def list_devices() -> list[dict]:
    """Audio devices: index, name, host API, channel counts and default sample rate (Hz)."""
    sd = _sd()
    rescan_devices()
    apis = sd.query_hostapis()
    out = []
    for d in sd.query_devices():
        out.append({
            "index": int(d["index"]),
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "max_input_channels": int(d["max_input_channels"]),
            "max_output_channels": int(d["max_output_channels"]),
            "default_samplerate": float(d["default_samplerate"]),
        })
    return out


def _resolve_device(dev, kind: str) -> int:
    """A device index or (part of a) name → PortAudio device index; raises DeviceError."""
    sd = _sd()
    chan_key = "max_input_channels" if kind == "input" else "max_output_channels"
    if dev is None or (isinstance(dev, str) and dev.strip() in ("", "default")):
        idx = sd.default.device[0 if kind == "input" else 1]
        if idx is None or idx < 0:
            avail = [d["index"] for d in sd.query_devices() if d[chan_key] > 0]
            if not avail:
                raise DeviceError(f"no {kind} device found (is an audio server running? see `streamsep devices`)")
            idx = avail[0]
        return int(idx)
    if isinstance(dev, (int, np.integer)) or (isinstance(dev, str) and dev.strip().isdigit()):
        idx = int(dev)
        n = len(sd.query_devices())
        if not 0 <= idx < n:
            raise DeviceError(f"{kind} device {idx} does not exist (there are {n}; see `streamsep devices`)")
        if sd.query_devices(idx)[chan_key] < 1:
            raise DeviceError(f"device {idx} ({sd.query_devices(idx)['name']}) has no {kind} channels")
        return idx
    try:
        return int(sd.query_devices(str(dev), kind)["index"])
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        raise DeviceError(f"{kind} device '{dev}': {msg} (see `streamsep devices`)") from exc


def _jack_device(sd, idx: int) -> bool:
    return "JACK" in sd.query_hostapis(sd.query_devices(idx)["hostapi"])["name"]


# -- the host ---------------------------------------------------------------------------------
class _Transition:
    """Worker-side splice from the old engine to a new one (crossfade on the output timeline)."""

    def __init__(self, new: Engine, p_new: int, fed_to: int, pend: np.ndarray, pend_start: int,
                 start: int, fade: int) -> None:
        self.new, self.p_new = new, p_new
        self.fed_to = fed_to              # absolute input index the new engine has consumed up to
        self.pend2, self.pend2_start = pend, pend_start  # new engine output by output position
        self.pend1 = np.zeros(0, np.float32)
        self.pend1_start = start
        self.start, self.fade = start, fade  # splice begins at output position ``start``


class LiveHost:
    """Capture → engine → playback with constant latency and deadline control (see module doc)."""

    def __init__(self, config: EngineConfig, input_device=None, output_device=None,
                 samplerate: int | None = None, blocksize: int = 0,
                 input_file: str | None = None, loop_file: bool = True,
                 margin_ms: float = DEFAULT_MARGIN_MS, adapt: bool = True, threads: int | None = 1,
                 realtime: bool = True, model_path: str | None = None) -> None:
        self.config = replace(config).validate()
        self.model_path = model_path
        self.input_device, self.output_device = input_device, output_device
        self.samplerate = int(samplerate) if samplerate else None
        self.blocksize = int(blocksize or 0)
        self.input_file, self.loop_file = input_file, bool(loop_file)
        self.margin_ms = float(margin_ms)
        self.adapt = bool(adapt)
        #: torch intra-op threads for this process (1: measured far steadier on a loaded 2-core CPU)
        self.threads = threads
        #: try to raise the worker thread's scheduling priority (SCHED_FIFO, else nice −10)
        self.realtime = bool(realtime)
        self.worker_priority = "normal"
        self.engine: Engine | None = None
        self.rate = 0
        self._stream = None
        self._clock_thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._running = False
        self._error: str | None = None
        self._lock = threading.Lock()       # caller-side only (start/stop/set_config), never the callback
        self._pending_swap: _Transition | None = None
        self._pending_ctrl: tuple[int, int] | None = None
        self._reset_counters()

    # -- counters: the callback's live in the shared header, the worker's are plain ints ----------
    def _reset_counters(self) -> None:
        self._hdr = R.new_header()
        self.deadline_misses = 0
        self.dry_chunks = 0
        self.overruns = 0
        self.level_changes = 0
        self.rtf = 0.0
        self.processed = 0
        self.swaps = 0
        self.splices: list[int] = []           # output positions (samples) where engine swaps began
        self.miss_times: list[float] = []      # timeline seconds of the first 100 deadline misses
        self.level_history: list[list] = []    # [seconds, steps cap, candidates cap, dry] per change
        self.stalls = 0                        # times the worker lost > STALL_S of wall time
        self.stall_times: list[list[float]] = []  # [timeline seconds, lost ms] of the first 100
        self.misses_after_stall = 0            # deadline misses within STALL_WINDOW_S of a stall
        self._last_stall = -1e9

    xruns = property(lambda self: int(self._hdr[R.XRUNS]), doc="callbacks with PortAudio xrun flags")
    input_overflows = property(lambda self: int(self._hdr[R.IN_OVERFLOWS]))
    output_underflows = property(lambda self: int(self._hdr[R.OUT_UNDERFLOWS]))
    callbacks = property(lambda self: int(self._hdr[R.CALLBACKS]))
    fallback_samples = property(lambda self: int(self._hdr[R.FALLBACK_SAMPLES]),
                                doc="output samples played dry because the worker was late")
    fallback_callbacks = property(lambda self: int(self._hdr[R.FALLBACK_CALLBACKS]))
    file_done = property(lambda self: bool(self._hdr[R.FILE_DONE]))

    @property
    def T(self) -> int:
        """Total latency in samples (engine latency + safety margin); the callback reads it too."""
        return int(self._hdr[R.LATENCY])

    @T.setter
    def T(self, v: int) -> None:
        self._hdr[R.LATENCY] = int(v)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the devices, build the engine, start the worker and the stream.  Raises DeviceError."""
        with self._lock:
            if self._running:
                return
            self._error = None
            self._reset_counters()
            self._stop_evt.clear()
            self._open()

    def _open(self) -> None:
        global _open_streams
        null_out = isinstance(self.output_device, str) and self.output_device.strip().lower() == "null"
        use_in = self.input_file is None
        sd = None
        if use_in or not null_out:
            sd = _sd()
            rescan_devices()
        in_idx = _resolve_device(self.input_device, "input") if use_in else None
        out_idx = None if null_out else _resolve_device(self.output_device, "output")
        devs = [d for d in (in_idx, out_idx) if d is not None]
        jack = bool(devs) and any(_jack_device(sd, d) for d in devs)
        from streamsep.separators.registry import create

        if str(self.config.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"device: '{self.config.device}' requested but torch has no CUDA device here")
        kw = {"model_path": self.model_path} if self.model_path else {}
        try:
            sep = create(self.config.model, device=self.config.device, **kw)
        except Exception:
            self._close_stream()
            raise
        model_rate = int(sep.sample_rate)
        rate = self.samplerate
        if rate is None:
            if not devs:
                rate = model_rate
            elif jack:
                rate = int(sd.query_devices(devs[0])["default_samplerate"])
            else:
                rate = model_rate if _rate_ok(sd, in_idx, out_idx, model_rate) else \
                    int(sd.query_devices(out_idx if out_idx is not None else in_idx)["default_samplerate"])
        self.rate = rate
        out_ch = 1
        if out_idx is not None:
            try:
                sd.check_output_settings(out_idx, channels=1, samplerate=rate, dtype="float32")
            except Exception:
                out_ch = 2
        for idx, kind in ((in_idx, "input"), (out_idx, "output")):
            if idx is None:
                continue
            check = sd.check_input_settings if kind == "input" else sd.check_output_settings
            try:
                check(idx, channels=1 if kind == "input" else out_ch, samplerate=rate, dtype="float32")
            except Exception as exc:
                name = sd.query_devices(idx)["name"]
                raise DeviceError(f"{kind} device {idx} ({name}) refuses {rate} Hz: "
                                  f"{str(exc).splitlines()[0]}") from exc
        self._file = _load_file(self.input_file, rate) if self.input_file else None
        # JACK: follow the server period (blocksize 0 adds no buffering); elsewhere 10 ms blocks
        block = self.blocksize or (0 if jack else max(16, round(rate / 100)))
        self._in_idx, self._out_idx, self._jack = in_idx, out_idx, jack
        self._build_stream(sd, in_idx, out_idx, out_ch, block)
        period = block
        if not period and self._stream is not None:
            lat = self._stream.latency
            lat = max(lat) if isinstance(lat, (tuple, list)) else lat
            period = max(16, round(lat * rate)) if lat else round(rate / 100)
        self.period = int(period or round(rate / 100))
        lat = self._stream.latency if self._stream is not None else 0.0
        #: PortAudio's device buffering (input + output), seconds: outside the reported latency
        self.device_latency = float(sum(lat) if isinstance(lat, (tuple, list)) else lat)
        try:
            eng = Engine(self.config, rate=rate, host_block=self.period, separator=sep)
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._install(eng)
            if self._stream is None:  # compile the device-less clock now, not while audio runs
                R.run_clock.compile("(int64[::1], float32[::1], float32[::1], int64, int64)")
            _warm_up(eng, self.period)
        except BaseException:
            self._close_stream()
            raise
        self._worker = threading.Thread(target=self._work, name="streamsep-worker", daemon=True)
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        gc.collect()
        gc.freeze()
        self._running = True
        self._t_start = time.monotonic()
        self._worker.start()
        try:
            if self._stream is not None:
                self._stream.start()
                _open_streams += 1
            else:
                self._clock_thread = threading.Thread(target=self._clock, name="streamsep-clock", daemon=True)
                self._clock_thread.start()
        except Exception as exc:
            self._running = False
            self._stop_evt.set()
            self._worker.join()
            self._close_stream()
            raise DeviceError(f"cannot start audio stream: {str(exc).splitlines()[0]}") from exc

    def _build_stream(self, sd, in_idx, out_idx, out_ch: int, block: int) -> None:
        """Open (not start) a PortAudio stream whose callback is the compiled, GIL-free
        :func:`streamsep.rings.audio_callback_core`; its ``userData`` is the shared header."""
        hdr = self._hdr
        hdr[R.OUT_CH], hdr[R.IN_CH] = out_ch, 1
        if in_idx is not None and out_idx is not None:
            kind, device, channels, mode = "duplex", (in_idx, out_idx), (1, out_ch), R.MODE_DUPLEX
        elif in_idx is not None:
            kind, device, channels, mode = "input", in_idx, 1, R.MODE_CAPTURE
        elif out_idx is not None:
            kind, device, channels, mode = "output", out_idx, out_ch, R.MODE_FILE
        else:
            kind, mode = None, R.MODE_FILE
        hdr[R.MODE] = mode
        if kind is None:
            self._stream = None
            return
        try:
            self._stream = sd._StreamBase(
                kind=kind, samplerate=self.rate, blocksize=block, device=device, channels=channels,
                dtype="float32", latency="low", extra_settings=None,
                callback=R.callback_address(capture_only=mode == R.MODE_CAPTURE),
                finished_callback=None, clip_off=True, dither_off=True, never_drop_input=False,
                prime_output_buffers_using_stream_callback=False,
                userdata=sd._ffi.cast("void*", hdr.ctypes.data), wrap_callback=None)
        except Exception as exc:
            raise DeviceError(f"cannot open audio device at {self.rate} Hz: {str(exc).splitlines()[0]}") from exc

    def _install(self, eng: Engine) -> None:
        """Rings, margins and controller for a fresh start with engine ``eng``."""
        rate = self.rate
        hdr = self._hdr
        self.engine = eng
        self.P = self._margin_for(eng)
        self.T = eng.latency + self.P
        cap = 4 * rate + 2 * self.T + 4 * 8192
        self._in = SampleRing(cap, hdr[R.IN_W:R.IN_W + 2])
        self._out = SampleRing(cap, hdr[R.OUT_W:R.OUT_W + 2])
        self._out.written = self.P  # prefill: P samples of silence
        mon = int(MONITOR_SECONDS * rate)
        self._played = SampleRing(mon, hdr[R.PLAY_W:R.PLAY_W + 2])  # output as played (device time)
        self._mon_in = SampleRing(mon)    # input as consumed by the worker (index = input index)
        R.attach(hdr, R.IN_BUF, R.IN_CAP, self._in.buf)
        R.attach(hdr, R.OUT_BUF, R.OUT_CAP, self._out.buf)
        R.attach(hdr, R.PLAY_BUF, R.PLAY_CAP, self._played.buf)
        if self._file is not None:
            R.attach(hdr, R.FILE_BUF, R.FILE_LEN, self._file)
        else:  # capture-only streams write their (unplayed) output to this scratch
            self._scratch = np.zeros(1 << 16, np.float32)
            R.attach(hdr, R.FILE_BUF, R.FILE_LEN, self._scratch)
        hdr[R.LOOP] = int(self.loop_file)
        self._clock_in = np.zeros(1 << 16, np.float32)   # for the device-less clock thread
        self._clock_out = np.zeros(1 << 16, np.float32)
        self._ctrl = self._new_controller(eng)
        # optional per-chunk trace for tuning: STREAMSEP_LIVE_TRACE=out.npy (written at stop)
        self._trace_path = os.environ.get("STREAMSEP_LIVE_TRACE")
        self._trace = np.zeros((200000, 5)) if self._trace_path else None
        self._trace_n = 0

    def _margin_for(self, eng: Engine) -> int:
        """Safety margin P (host samples): a period, a decision block's compute, jitter."""
        block_host = math.ceil(eng.block * self.rate / eng.sr)
        return int(self.period + math.ceil(0.75 * block_host) + round(self.margin_ms * self.rate / 1000))

    def _new_controller(self, eng: Engine) -> DeadlineController:
        slack = (self.P - self.period) / self.rate
        return DeadlineController(eng.config.steps, eng.config.candidates,
                                  margin_s=max(0.001, 0.25 * slack), tau_s=0.5)

    def stop(self) -> None:
        """Stop audio and the worker; idempotent.  Statistics stay readable."""
        global _open_streams
        with self._lock:
            if not self._running and self._stream is None:
                return
            self._running = False
            self._stop_evt.set()
            self._hdr[R.STOP] = 1
            if self._clock_thread is not None:
                self._clock_thread.join(timeout=2)
                self._clock_thread = None
            if self._stream is not None:
                # PortAudio's abort waits for the audio thread to acknowledge; when the device or
                # server has vanished that thread never runs again, so do not wait forever
                stream, self._stream = self._stream, None
                t = threading.Thread(target=_abort_close, args=(stream,), daemon=True)
                t.start()
                t.join(timeout=3.0)
                if t.is_alive():
                    _wedged()
                    if self._error is None:
                        self._error = "audio stream did not stop (device or server gone)"
                else:
                    _open_streams = max(0, _open_streams - 1)
            if self._worker is not None and self._worker is not threading.current_thread():
                self._worker.join(timeout=5)
            self._worker = None
            gc.unfreeze()
            sys.setswitchinterval(getattr(self, "_old_switch", 0.005))
            if getattr(self, "_trace", None) is not None:
                np.save(self._trace_path, self._trace[: self._trace_n])
            self._t_stop = time.monotonic()

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:
                pass
            self._stream = None

    def _fail(self, msg: str) -> None:
        if self._error is None:
            self._error = msg
        self._stop_evt.set()

    def _clock(self) -> None:
        """No device at all (file in, null out): a compiled, GIL-free timer loop stands in for the
        audio callback (:func:`streamsep.rings.run_clock`)."""
        _boost_thread(self.realtime, WORKER_RT_PRIORITY + 5)  # the 'device' outranks the worker
        R.run_clock(self._hdr, self._clock_in, self._clock_out, self.period, self.rate)

    # -- worker ----------------------------------------------------------------------------------
    def _work(self) -> None:
        self.worker_priority = _boost_thread(self.realtime)
        try:
            self._work_loop()
        except Exception as exc:  # the worker must never die silently
            self._fail(f"worker stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    def _work_loop(self) -> None:
        rate = self.rate
        last_cb, last_cb_t = -1, time.monotonic()
        watchdog = max(1.0, 50 * self.period / rate)
        while not self._stop_evt.is_set():
            avail = self._in.written - self._in.read
            if avail <= 0:
                tr = self._pending_swap
                if tr is not None and tr.start < 0 and tr.fed_to < self._mon_in.written:
                    self._warm_step(tr)  # idle time: bring the next engine up to date
                    continue
                now = time.monotonic()
                if self.callbacks != last_cb:
                    last_cb, last_cb_t = self.callbacks, now
                elif now - last_cb_t > watchdog and self._stream is not None and self._running:
                    if self._error is None:
                        self._error = "audio device stopped delivering audio (device vanished or server gone)"
                    _wedged()  # tearing PortAudio down over a vanished device/server can hang: don't
                    self._stop_evt.set()
                    break
                nap = min(0.002, 0.25 * self.period / rate)
                time.sleep(nap)
                lost = time.monotonic() - now - nap
                if lost > STALL_S:
                    self._stall(lost)
                continue
            last_cb, last_cb_t = self.callbacks, time.monotonic()
            if avail > self._in.capacity - 8192:
                self._resync()
                continue
            self._apply_mail()
            # feed the engine one device period at a time: constant tensor shapes (a catch-up of
            # several periods in one call would hit torch's first-call costs for new shapes)
            n = min(avail, self.period)
            a = self._in.read
            x = np.empty(n, np.float32)
            self._in.read_into(x)
            tr = self._pending_swap
            if tr is not None and tr.start < 0 and (tr.fed_to >= a or time.monotonic() > tr.deadline):
                tr.start = tr.pend1_start = self._out.written  # splice where the timeline stands now
                self.splices.append(tr.start)
            if tr is not None and tr.start >= 0:
                self._transition_chunk(a, x)
            else:
                self._chunk(a, x)

    def _chunk(self, a: int, x: np.ndarray) -> None:
        """One chunk through the current engine onto output positions ``a+P …``."""
        eng, ctrl, rate, n = self.engine, self._ctrl, self.rate, x.shape[0]
        slack = (a + self.P - self._out.read) / rate
        # the chunk that completes an engine block carries that block's whole compute
        due = len(eng.in_fifo) + n * eng.sr / rate >= eng.block
        work_s = max(n / rate, eng.block / eng.sr) if due else n / rate
        dry = self.adapt and ctrl.should_catch_up(slack, work_s)
        t0, c0 = time.perf_counter(), time.thread_time()
        y = eng.process(x, dry=dry)
        dt = time.perf_counter() - t0
        lost = dt - (time.thread_time() - c0)  # wall time this chunk spent not running on a CPU
        if lost > STALL_S:
            self._stall(lost)
        late = self._out.write_at(a + self.P, y)
        slack_after = (a + self.P - self._out.read) / rate
        tr = self._trace
        if tr is not None and self._trace_n < len(tr):
            tr[self._trace_n] = (a / rate, dt, slack, slack_after, dry)
            self._trace_n += 1
        self._account(x, y, dt, late, dry, slack_after)

    def _account(self, x, y, dt: float, late: int, dry: bool, slack_after: float) -> None:
        n = x.shape[0]
        self.processed += n
        if late:
            self._miss()
        if dry:
            self.dry_chunks += 1
        audio_s = n / self.rate
        a = min(1.0, audio_s / 1.0)
        self.rtf += a * (dt / audio_s - self.rtf)
        if self.adapt and self._ctrl.update(dt, audio_s, slack_after, dry):
            self.engine.set_load_limit(*self._ctrl.caps())
            self.level_changes += 1
            if len(self.level_history) < 1000:
                lv = self._ctrl.level
                self.level_history.append([round(self.processed / self.rate, 3), lv.steps, lv.candidates, lv.dry])
        self._mon_in.push(x)

    def _miss(self) -> None:
        self.deadline_misses += 1
        now = self.processed / self.rate
        if now - self._last_stall <= STALL_WINDOW_S:
            self.misses_after_stall += 1
        if len(self.miss_times) < 100:
            self.miss_times.append(round(now, 3))

    def _stall(self, lost: float) -> None:
        """The worker was not running for ``lost`` seconds (preempted, descheduled, or waiting for
        the GIL): a deadline miss soon after is the machine's, not the load's (docs/RELIABILITY.md)."""
        self.stalls += 1
        self._last_stall = self.processed / self.rate
        if len(self.stall_times) < 100:
            self.stall_times.append([round(self._last_stall, 3), round(1000.0 * lost, 1)])

    def _resync(self) -> None:
        """The worker stalled for longer than the input ring holds: skip to the present."""
        skip_to = self._in.written - self.period
        d = skip_to - self._in.read
        self._in.advance(d)
        self._out.write_at(self._out.written, np.zeros(d, np.float32))  # all late: dropped
        self._mon_in.push(np.zeros(d, np.float32))  # keep monitor indices = input indices
        self.overruns += 1
        self._miss()

    def _apply_mail(self) -> None:
        pc = self._pending_ctrl
        if pc is not None:
            self._pending_ctrl = None
            self._ctrl.reconfigure(*pc)
            self.engine.set_load_limit(*self._ctrl.caps())

    # -- engine swap (set_config) ---------------------------------------------------------------
    def _warm_step(self, tr: _Transition) -> None:
        """Feed the next engine one period of input it has not seen (from the monitor ring)."""
        n = min(self.period, self._mon_in.written - tr.fed_to)
        x = np.empty(n, np.float32)
        if not self._mon_in.copy_range(tr.fed_to, x):
            x[:] = 0.0
        t0 = time.perf_counter()
        y = tr.new.process(x)
        trc = self._trace
        if trc is not None and self._trace_n < len(trc):
            trc[self._trace_n] = (tr.fed_to / self.rate, time.perf_counter() - t0, -1.0, -1.0, 3)
            self._trace_n += 1
        tr.pend2, tr.pend2_start = _append(tr.pend2, tr.pend2_start, y, tr.fed_to + tr.p_new)
        tr.fed_to += n
        keep = tr.pend2_start + len(tr.pend2) - self._out.written  # nothing before the write index
        if 0 <= keep < len(tr.pend2):
            tr.pend2, tr.pend2_start = tr.pend2[len(tr.pend2) - keep:].copy(), self._out.written

    def _transition_chunk(self, a: int, x: np.ndarray) -> None:
        tr = self._pending_swap
        n = x.shape[0]
        if tr.fed_to < a:  # catch the new engine up on input it has not seen (from the monitor ring)
            gap = np.empty(a - tr.fed_to, np.float32)
            if not self._mon_in.copy_range(tr.fed_to, gap):
                gap[:] = 0.0
            y2 = _process_long(tr.new, gap)
            tr.pend2, tr.pend2_start = _append(tr.pend2, tr.pend2_start, y2, tr.fed_to + tr.p_new)
            tr.fed_to = a
        # the old engine's output for the fade comes from what it has already computed (its
        # output FIFO): its cheap dry path returns that and never runs the model again, so the
        # splice costs one engine, not two
        t0 = time.perf_counter()
        slack = (a + self.P - self._out.read) / self.rate
        y1 = self.engine.process(x, dry=True)
        y2 = tr.new.process(x)
        dt = time.perf_counter() - t0
        trc = self._trace
        if trc is not None and self._trace_n < len(trc):
            trc[self._trace_n] = (a / self.rate, dt, slack, -1.0, 2)
            self._trace_n += 1
        tr.fed_to = a + n
        tr.pend1, tr.pend1_start = _append(tr.pend1, tr.pend1_start, y1, a + self.P)
        tr.pend2, tr.pend2_start = _append(tr.pend2, tr.pend2_start, y2, a + tr.p_new)
        w = self._out.written
        end = tr.pend2_start + len(tr.pend2)
        fade_end = tr.start + tr.fade
        if w < fade_end:
            end = min(end, tr.pend1_start + len(tr.pend1))
        late = 0
        if end > w:
            o = np.arange(w, end)
            v2 = _take(tr.pend2, tr.pend2_start, w, end)
            if w < fade_end:
                v1 = _take(tr.pend1, tr.pend1_start, w, end)
                g = np.clip((fade_end - o) / tr.fade, 0.0, 1.0).astype(np.float32)
                v = g * v1 + (1.0 - g) * v2
            else:
                v = v2
            late = self._out.write_at(w, v.astype(np.float32))
        self._mon_in.push(x)
        self.processed += n
        if late:
            self._miss()
        if self._out.written >= fade_end:  # done: the new engine owns the timeline
            rest = tr.pend2_start + len(tr.pend2) - self._out.written
            if rest > 0:
                self._out.write_at(self._out.written, tr.pend2[len(tr.pend2) - rest:])
            self.engine = tr.new
            self.P = tr.p_new
            self.T = tr.new.latency + tr.p_new
            self._ctrl = self._new_controller(tr.new)
            self._pending_swap = None
            self.swaps += 1

    def set_config(self, config: EngineConfig) -> None:
        """Switch to a new configuration (model, block, preset) without stopping the audio.

        Live parameters only → forwarded to the engine's mailbox.  Otherwise a new engine is built
        in the caller's thread; the worker warms it up on the last 0.5 s of input in its idle time
        and splices it in with a crossfade of one period (at most 10 ms) at a block boundary.  The latency becomes the new
        engine's (reported in stats).
        """
        config = replace(config).validate()
        with self._lock:
            old = self.config
            if not self._running or self.engine is None:
                self.config = config
                return
            if all(getattr(old, k) == getattr(config, k) for k in REBUILD_KEYS):
                self.config = config
                self.set_params(**{k: getattr(config, k) for k in LIVE_KEYS})
                return
            # same model: share the (stateless) separator, so no weights are loaded while audio
            # runs; loading a model holds the GIL for tens of ms and can delay the worker
            same = config.model == old.model and config.device == old.device
            eng = Engine(config, rate=self.rate, host_block=self.period,
                         separator=self.engine.sep if same else None)
            p_new = self._margin_for(eng)
            # the worker warms the new engine up on the last WARMUP_S of input in its idle time
            # (one thread doing all inference: no GIL contention), then splices it in
            hist_end = self._mon_in.written
            w = min(int(WARMUP_S * self.rate), hist_end)
            fade = max(1, min(round(CROSSFADE_MS * self.rate / 1000), self.period))
            tr = _Transition(eng, p_new, hist_end - w, np.zeros(0, np.float32), hist_end - w + p_new, -1, fade)
            tr.deadline = time.monotonic() + 3.0  # an overloaded worker is never idle: splice anyway
            self.config = config
            self._pending_swap = tr

    # -- parameters and statistics -----------------------------------------------------------
    def set_params(self, **kw) -> None:
        """Live parameter changes (steps, candidates, policy, ratios, mix, atten_db, bypass)."""
        bad = [k for k in kw if k not in LIVE_KEYS]
        if bad:
            raise ValueError(f"{bad[0]}: not a live parameter (live: {', '.join(LIVE_KEYS)}); use set_config")
        new = replace(self.config, **kw).validate()
        eng = self.engine
        if eng is not None:
            eng.set_params(**kw)
            tr = self._pending_swap
            if tr is not None:
                tr.new.set_params(**kw)
        self.config = new
        if eng is not None:
            if "steps" in kw or "candidates" in kw:
                self._pending_ctrl = (self.config.steps, self.config.candidates)

    def stats(self) -> dict:
        """A snapshot of the live statistics; safe from any thread."""
        eng = self.engine
        st = eng.stats if eng is not None else None
        rate = self.rate or 1
        T = getattr(self, "T", 0)
        ctrl = getattr(self, "_ctrl", None)
        return {
            "running": bool(self._running and self._error is None),
            "error": self._error,
            "model": self.config.model,
            "samplerate": self.rate,
            "period": getattr(self, "period", 0),
            "xruns": self.xruns,
            "input_overflows": self.input_overflows,
            "output_underflows": self.output_underflows,
            "deadline_misses": self.deadline_misses,
            "fallback_samples": self.fallback_samples,
            "dry_chunks": self.dry_chunks,
            "overruns": self.overruns,
            "steps_in_use": int(st.steps_in_use) if st else 0,
            "candidates_in_use": int(st.candidates_in_use) if st else 0,
            "steps_requested": self.config.steps,
            "candidates_requested": self.config.candidates,
            "load_level": (ctrl.index if ctrl else 0),
            "level_changes": self.level_changes,
            "rtf": float(self.rtf),
            "latency_samples": int(T),
            "latency_ms": 1000.0 * T / rate if self.rate else 0.0,
            "engine_latency_samples": int(eng.latency) if eng else 0,
            "device_latency_ms": 1000.0 * getattr(self, "device_latency", 0.0),
            "margin_samples": int(getattr(self, "P", 0)),
            "input_peak_db": float(st.input_peak_db) if st else -120.0,
            "output_peak_db": float(st.output_peak_db) if st else -120.0,
            "input_rms_db": float(st.input_rms_db) if st else -120.0,
            "output_rms_db": float(st.output_rms_db) if st else -120.0,
            "ratios": [float(r) for r in (st.ratios if st is not None else [])],
            "resets": int(st.resets) if st else 0,   # model chains reset after a poisoned (NaN) state
            "seconds": self.processed / rate if self.rate else 0.0,
            "swaps": self.swaps,
            "splice_samples": list(self.splices),
            "worker_priority": self.worker_priority,
            "callbacks": self.callbacks,
            "max_period": int(self._hdr[R.MAX_FRAMES]),
            "file_done": self.file_done,
            "miss_times": list(self.miss_times),
            "worker_stalls": self.stalls,
            "stall_times": [list(t) for t in self.stall_times],
            "misses_after_stall": self.misses_after_stall,
            "level_history": [list(h) for h in self.level_history],
        }

    def monitor(self, seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
        """The last ``seconds`` (at most 29) of input as processed and of output as played (mono
        float32 at the host rate; the output includes any dry fallback) and the rate in Hz."""
        if self.engine is None:
            return np.zeros(0, np.float32), np.zeros(0, np.float32), self.rate
        n = int(min(max(0.0, seconds), MONITOR_SECONDS - 1.0) * self.rate)
        return self._mon_in.tail(n), self._played.tail(n), self.rate

    def write_stats(self, path) -> None:
        """Write :meth:`stats` as JSON (NaN ratios, i.e. 'kept previous', become null)."""
        s = self.stats()
        s["ratios"] = [None if not math.isfinite(r) else r for r in s["ratios"]]
        Path(path).write_text(json.dumps(s, indent=2) + "\n")


# -- helpers ----------------------------------------------------------------------------------
WORKER_RT_PRIORITY = 10  # below JACK's audio threads (server −P 70 → clients 65)


def _boost_thread(realtime: bool, priority: int = WORKER_RT_PRIORITY) -> str:
    """Raise the calling thread's scheduling priority where the system allows it.

    SCHED_FIFO at a low real-time priority keeps other processes from delaying inference by more
    than a time slice; without the privilege (no rtprio limit), fall back to nice −10, then to
    normal.  Returns what was applied."""
    if not realtime or not hasattr(os, "sched_setscheduler"):
        return "normal"
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        return f"fifo:{priority}"
    except (OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, -10)
        return "nice:-10"
    except (OSError, AttributeError):
        return "normal"


def _abort_close(stream) -> None:
    try:
        stream.abort()
    except Exception:
        pass
    try:
        stream.close()
    except Exception:
        pass


def _warm_up(eng: Engine, period: int, seconds: float = 0.25) -> None:
    """Run the engine on silence before audio starts: first calls pay torch's lazy set-up costs.

    The engine's timeline is unaffected (it just heard ``seconds`` of silence first)."""
    z = np.zeros(period, np.float32)
    block_host = max(1, math.ceil(eng.block * eng.rate / eng.sr))
    for _ in range(max(3 * math.ceil(block_host / period), math.ceil(seconds * eng.rate / period))):
        eng.process(z)


def _append(buf: np.ndarray, start: int, y: np.ndarray, pos: int) -> tuple[np.ndarray, int]:
    """Append ``y`` (positions ``pos …``) to a position-indexed pending buffer."""
    if len(buf) == 0:
        return y.astype(np.float32, copy=True), pos
    assert pos == start + len(buf), "pending buffer must stay contiguous"
    return np.concatenate([buf, y]), start


def _take(buf: np.ndarray, start: int, a: int, b: int) -> np.ndarray:
    """Positions ``[a, b)`` of a pending buffer (zeros where it has none)."""
    out = np.zeros(b - a, np.float32)
    lo, hi = max(a, start), min(b, start + len(buf))
    if hi > lo:
        out[lo - a:hi - a] = buf[lo - start:hi - start]
    return out


def _process_long(eng: Engine, x: np.ndarray) -> np.ndarray:
    return np.concatenate([eng.process(x[i:i + 8192]) for i in range(0, len(x), 8192)] or [np.zeros(0, np.float32)])


def _rate_ok(sd, in_idx, out_idx, rate: int) -> bool:
    try:
        if in_idx is not None:
            sd.check_input_settings(in_idx, channels=1, samplerate=rate, dtype="float32")
        if out_idx is not None:
            sd.check_output_settings(out_idx, channels=1, samplerate=rate, dtype="float32")
        return True
    except Exception:
        return False


def _load_file(path: str, rate: int) -> np.ndarray:
    """A file as mono float32 at ``rate`` (for ``input_file``)."""
    from streamsep.audio_io import read_audio

    try:
        x, _ = read_audio(path, rate=rate)
    except Exception as exc:
        raise DeviceError(f"input file {path}: {str(exc).splitlines()[0]}") from exc
    return np.ascontiguousarray(x, dtype=np.float32)


# -- the `streamsep live` command ----------------------------------------------------------------
def add_live_arguments(p) -> None:
    """Options of ``streamsep live`` (defined once, in the main CLI)."""
    from streamsep.cli.options import add_live_arguments as _add

    _add(p)


def config_from_args(args) -> EngineConfig:
    """Preset (or defaults) overridden by the explicit engine options (the main CLI's rules)."""
    from streamsep.cli.options import engine_config

    return engine_config(args)


def _summary(s: dict) -> str:
    return (f"{s['seconds']:.1f} s, latency {s['latency_ms']:.1f} ms, xruns {s['xruns']}, "
            f"deadline misses {s['deadline_misses']}, steps {s['steps_in_use']}/{s['steps_requested']}, "
            f"candidates {s['candidates_in_use']}, rtf {s['rtf']:.2f}, "
            f"in {s['input_peak_db']:.0f} dB, out {s['output_peak_db']:.0f} dB")


class _Terminate(Exception):
    pass


def run_live(args) -> int:
    """Body of ``streamsep live``: 0 on a clean stop (duration reached, Ctrl-C), 1 on a runtime
    error, 2 on a device or configuration error.  ``--stats`` is written in every case."""
    stats_path = getattr(args, "stats", None)
    try:
        config = config_from_args(args)
    except Exception as exc:  # PresetError, ConfigError, CLIError: one line
        print(f"streamsep live: error: {exc}", file=sys.stderr)
        if stats_path:
            Path(stats_path).write_text(json.dumps({"running": False, "error": str(exc)}, indent=2) + "\n")
        return 2
    margin = getattr(args, "margin_ms", None)
    host = LiveHost(config, input_device=getattr(args, "input", None), output_device=getattr(args, "output", None),
                    samplerate=getattr(args, "samplerate", None), blocksize=getattr(args, "block", None) or 0,
                    input_file=getattr(args, "input_file", None), loop_file=not getattr(args, "no_loop", False),
                    margin_ms=DEFAULT_MARGIN_MS if margin is None else margin,
                    adapt=not getattr(args, "no_adapt", False),
                    realtime=not getattr(args, "no_realtime", False),
                    threads=getattr(args, "threads", None) or 1,
                    model_path=getattr(args, "model_path", None))
    duration = getattr(args, "duration", None)
    quiet = getattr(args, "quiet", False) or not sys.stderr.isatty()

    def on_term(signum, frame):
        raise _Terminate()

    prev_term = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None
    code = 0
    try:
        try:
            host.start()
        except (DeviceError, ValueError) as exc:
            print(f"streamsep live: error: {exc}", file=sys.stderr)
            host._error = str(exc)
            code = 2
            return code
        except Exception as exc:  # anything else at start-up: still one line, still stats
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"streamsep live: error: {msg}", file=sys.stderr)
            host._error = msg
            code = 1
            return code
        s = host.stats()
        print(f"streamsep live: {config.model} at {s['samplerate']} Hz, latency {s['latency_ms']:.1f} ms "
              f"({s['latency_samples']} samples); Ctrl-C stops", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        next_line = t0 + 1.0
        while True:
            # the main thread shares the GIL with the worker: wake rarely (Ctrl-C interrupts sleep)
            left = (t0 + duration - time.monotonic()) if duration is not None else 0.5
            time.sleep(max(0.0, min(0.5, left)))
            now = time.monotonic()
            if host._error is not None:
                break
            if duration is not None and now - t0 >= duration:
                break
            if host.file_done and host._out.read >= host._out.written:
                break
            if not quiet and now >= next_line:
                print("\r" + _summary(host.stats()), end="", file=sys.stderr, flush=True)
                next_line = now + 1.0
    except (KeyboardInterrupt, _Terminate):
        print("\nstreamsep live: interrupted, stopping", file=sys.stderr)
    finally:
        host.stop()
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
        if stats_path:
            try:
                host.write_stats(stats_path)
            except OSError as exc:
                print(f"streamsep live: cannot write stats to {stats_path}: {exc}", file=sys.stderr)
                code = code or 1
    s = host.stats()
    if s["error"] and code == 0:
        print(f"streamsep live: error: {s['error']}", file=sys.stderr)
        code = 1
    if code == 0:
        print(("\n" if not quiet else "") + "streamsep live: " + _summary(s), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """``python -m streamsep.live``: the live host without the main CLI (``--list`` lists devices)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m streamsep.live", description="streamsep live duplex host")
    p.add_argument("--list", action="store_true", help="list audio devices and exit")
    add_live_arguments(p)
    args = p.parse_args(argv)
    if args.list:
        try:
            for d in list_devices():
                print(f"{d['index']:3d}  {d['name']}  ({d['hostapi']}, in {d['max_input_channels']}, "
                      f"out {d['max_output_channels']}, {d['default_samplerate']:.0f} Hz)")
        except DeviceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    return run_live(args)


if __name__ == "__main__":
    sys.exit(main())
