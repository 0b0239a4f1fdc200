"""Opening, starting and stopping the live host's audio: device and rate choice, the PortAudio
stream whose callback is the compiled, GIL-free :func:`streamsep.rings.audio_callback_core`, the
rings and margins of a fresh start, and the device-less clock."""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from streamsep import rings as R
from streamsep.deadline import DeadlineController
from streamsep.engine import ConfigError, Engine
from streamsep.host import devices as D
from streamsep.host.stats import MONITOR_SECONDS
from streamsep.host.worker import warm_up
from streamsep.rings import SampleRing


@dataclass
class DevicePlan:
    """The devices a start uses: PortAudio indices (None: none), output channels, JACK or not."""

    in_idx: int | None
    out_idx: int | None
    out_ch: int
    jack: bool
    null_out: bool


def _abort_close(stream) -> None:
    try:
        stream.abort()
    except Exception:
        pass
    try:
        stream.close()
    except Exception:
        pass


class StreamMixin:
    """Device set-up and tear-down for :class:`~streamsep.host.core.LiveHost`."""

    # -- devices -----------------------------------------------------------------------------
    def _plan_devices(self):
        """Resolve the devices; JACK with output 'null' still opens an output (ports that always
        exist), disconnected after start."""
        null_out = isinstance(self.output_device, str) and self.output_device.strip().lower() == "null"
        use_in = self.input_file is None
        sd = None
        if use_in or not null_out:
            sd = D.sounddevice_module()
            D.rescan_devices()
        in_idx = D.resolve_device(self.input_device, "input") if use_in else None
        out_idx = None if null_out else D.resolve_device(self.output_device, "output")
        devs = [d for d in (in_idx, out_idx) if d is not None]
        jack = bool(devs) and any(D.is_jack_device(sd, d) for d in devs)
        if jack and null_out and in_idx is not None:
            out_idx = self._any_jack_output(sd, in_idx)
        return sd, DevicePlan(in_idx, out_idx, 1, jack, null_out)

    @staticmethod
    def _any_jack_output(sd, prefer: int) -> int | None:
        """A JACK device with output channels (``prefer`` if it has some) to carry our out ports."""
        if sd.query_devices(prefer)["max_output_channels"] > 0:
            return prefer
        for d in sd.query_devices():
            if d["max_output_channels"] > 0 and D.is_jack_device(sd, d["index"]):
                return int(d["index"])
        return None

    def _choose_rate(self, sd, plan: DevicePlan, model_rate: int) -> int:
        rate = self.samplerate
        devs = [d for d in (plan.in_idx, plan.out_idx) if d is not None]
        if rate is None:
            if not devs:
                rate = model_rate
            elif plan.jack:
                rate = int(sd.query_devices(devs[0])["default_samplerate"])
            elif D.rate_ok(sd, plan.in_idx, plan.out_idx, model_rate):
                rate = model_rate
            else:
                idx = plan.out_idx if plan.out_idx is not None else plan.in_idx
                rate = int(sd.query_devices(idx)["default_samplerate"])
        return rate

    def _check_devices(self, sd, plan: DevicePlan, rate: int) -> None:
        """Output channels (mono, else stereo; on JACK one port per channel of the destination, up
        to two, so a stereo destination hears the voice in both ears) and the rate."""
        if plan.out_idx is not None:
            nmax = int(sd.query_devices(plan.out_idx)["max_output_channels"])
            plan.out_ch = 1
            if plan.jack and not plan.null_out:
                plan.out_ch = max(1, min(2, nmax))
            else:
                try:
                    sd.check_output_settings(plan.out_idx, channels=1, samplerate=rate, dtype="float32")
                except Exception:
                    plan.out_ch = 2
        for idx, kind in ((plan.in_idx, "input"), (plan.out_idx, "output")):
            if idx is None:
                continue
            check = sd.check_input_settings if kind == "input" else sd.check_output_settings
            try:
                check(idx, channels=1 if kind == "input" else plan.out_ch, samplerate=rate, dtype="float32")
            except Exception as exc:
                name = sd.query_devices(idx)["name"]
                raise D.DeviceError(
                    f"{kind} device {idx} ({name}) refuses {rate} Hz: {str(exc).splitlines()[0]}"
                ) from exc

    def _make_separator(self):
        from streamsep.separators.registry import create

        if str(self.config.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"device: '{self.config.device}' requested but torch has no CUDA device here")
        kw = {"model_path": self.model_path} if self.model_path else {}
        return create(self.config.model, device=self.config.device, **kw)

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> None:
        sd, plan = self._plan_devices()
        if plan.jack:
            self._check_jack_name()
        try:
            sep = self._make_separator()
        except Exception:
            self._close_stream()
            raise
        rate = self._choose_rate(sd, plan, int(sep.sample_rate))
        self.rate = rate
        self._check_devices(sd, plan, rate)
        self._file = D.load_file(self.input_file, rate) if self.input_file else None
        # JACK: follow the server period (blocksize 0 adds no buffering); elsewhere 10 ms blocks
        block = self.blocksize or (0 if plan.jack else max(16, round(rate / 100)))
        self._in_idx, self._out_idx, self._jack, self._plan = plan.in_idx, plan.out_idx, plan.jack, plan
        self._build_stream(sd, plan.in_idx, plan.out_idx, plan.out_ch, block)
        self._set_period(block, rate)
        try:
            eng = Engine(self.config, rate=rate, host_block=self.period, separator=sep)
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._install(eng)
            if self._stream is None:  # compile the device-less clock now, not while audio runs
                R.run_clock.compile("(int64[::1], float32[::1], float32[::1], int64, int64)")
            warm_up(eng, self.period)
        except BaseException:
            self._close_stream()
            raise
        self._start_threads()

    def _set_period(self, block: int, rate: int) -> None:
        """The host period (samples): the block asked for, else JACK's period, else PortAudio's
        stream latency, else 10 ms.  ``device_latency``: PortAudio's buffering (s), not reported."""
        period = block
        lat = self._stream.latency if self._stream is not None else 0.0
        lat_max = max(lat) if isinstance(lat, (tuple, list)) else lat
        if not 0.0 <= lat_max < 1.0:  # PipeWire's libjack reports garbage before the stream runs
            lat, lat_max = 0.0, 0.0
        if not period and self._stream is not None and lat_max:
            period = max(16, round(lat_max * rate))
        if not period and self._jack:
            from streamsep.host.jackroute import server_period

            period = server_period() or 0
        self.period = int(period or round(rate / 100))
        self.device_latency = float(sum(lat) if isinstance(lat, (tuple, list)) else lat)

    def _start_threads(self) -> None:
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
                D.PA.open_streams += 1
            else:
                self._clock_thread = threading.Thread(target=self._clock, name="streamsep-clock", daemon=True)
                self._clock_thread.start()
        except Exception as exc:
            self._running = False
            self._stop_evt.set()
            self._worker.join()
            self._close_stream()
            raise D.DeviceError(f"cannot start audio stream: {str(exc).splitlines()[0]}") from exc

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
                kind=kind,
                samplerate=self.rate,
                blocksize=block,
                device=device,
                channels=channels,
                dtype="float32",
                latency="low",
                extra_settings=None,
                callback=R.callback_address(capture_only=mode == R.MODE_CAPTURE),
                finished_callback=None,
                clip_off=True,
                dither_off=True,
                never_drop_input=False,
                prime_output_buffers_using_stream_callback=False,
                userdata=sd._ffi.cast("void*", hdr.ctypes.data),
                wrap_callback=None,
            )
        except Exception as exc:
            raise D.DeviceError(f"cannot open audio device at {self.rate} Hz: {str(exc).splitlines()[0]}") from exc

    def _install(self, eng: Engine) -> None:
        """Rings, margins and controller for a fresh start with engine ``eng``."""
        rate = self.rate
        hdr = self._hdr
        self.engine = eng
        self.P = self._margin_for(eng)
        self.T = eng.latency + self.P
        cap = 4 * rate + 2 * self.T + 4 * 8192
        self._in = SampleRing(cap, hdr[R.IN_W : R.IN_W + 2])
        self._out = SampleRing(cap, hdr[R.OUT_W : R.OUT_W + 2])
        self._out.written = self.P  # prefill: P samples of silence
        mon = int(MONITOR_SECONDS * rate)
        self._played = SampleRing(mon, hdr[R.PLAY_W : R.PLAY_W + 2])  # output as played (device time)
        self._mon_in = SampleRing(mon)  # input as consumed by the worker (index = input index)
        R.attach(hdr, R.IN_BUF, R.IN_CAP, self._in.buf)
        R.attach(hdr, R.OUT_BUF, R.OUT_CAP, self._out.buf)
        R.attach(hdr, R.PLAY_BUF, R.PLAY_CAP, self._played.buf)
        if self._file is not None:
            R.attach(hdr, R.FILE_BUF, R.FILE_LEN, self._file)
        else:  # capture-only streams write their (unplayed) output to this scratch
            self._scratch = np.zeros(1 << 16, np.float32)
            R.attach(hdr, R.FILE_BUF, R.FILE_LEN, self._scratch)
        hdr[R.LOOP] = int(self.loop_file)
        self._clock_in = np.zeros(1 << 16, np.float32)  # for the device-less clock thread
        self._clock_out = np.zeros(1 << 16, np.float32)
        self._ctrl = self._new_controller(eng)
        # optional per-chunk trace for tuning: STREAMSEP_LIVE_TRACE=out.npy (written at stop)
        self._trace_path = os.environ.get("STREAMSEP_LIVE_TRACE")
        self._trace = np.zeros((200000, 5)) if self._trace_path else None
        self._trace_n = 0

    def _margin_for(self, eng: Engine) -> int:
        """Host margin P (host samples), :func:`streamsep.host.budget.host_margin`: one device
        period (the callback), three quarters of a decision block (its compute at the controller's
        high-load mark) and ``margin_ms``.  At 10 ms periods and blocks and the default 2.5 ms: 20 ms."""
        from streamsep.host.budget import host_margin

        return host_margin(self.period, math.ceil(eng.block * self.rate / eng.sr), self.rate, self.margin_ms)

    def _new_controller(self, eng: Engine) -> DeadlineController:
        slack = (self.P - self.period) / self.rate
        return DeadlineController(eng.config.steps, eng.config.candidates, margin_s=max(0.001, 0.25 * slack), tau_s=0.5)

    # -- stopping ------------------------------------------------------------------------------
    def _stop_stream(self) -> None:
        """Abort and close the stream; PortAudio's abort waits for the audio thread to acknowledge
        and, when the device or server has vanished, that thread never runs again: wait 3 s."""
        stream, self._stream = self._stream, None
        t = threading.Thread(target=_abort_close, args=(stream,), daemon=True)
        t.start()
        t.join(timeout=3.0)
        if t.is_alive():
            D.mark_wedged()
            if self._error is None:
                self._error = "audio stream did not stop (device or server gone)"
        else:
            D.PA.open_streams = max(0, D.PA.open_streams - 1)

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:
                pass
            self._stream = None
