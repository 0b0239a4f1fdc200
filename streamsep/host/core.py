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
* **Worker** thread (:mod:`streamsep.host.worker`): takes whatever input has arrived, runs
  :meth:`Engine.process` (or its cheap dry path when it is late), and writes the result at a fixed
  offset on the output timeline; feeds :class:`~streamsep.deadline.DeadlineController`.
* **Caller** threads (CLI, GUI): :meth:`LiveHost.set_params`, :meth:`LiveHost.set_config`
  (:mod:`streamsep.host.swap`), :meth:`LiveHost.stats`, :meth:`LiveHost.monitor`.

Timeline and latency
--------------------
Input and output share one sample clock (absolute sample index ``i`` since start).  The engine's
output for input chunk ``[a, a+n)`` is written to output positions ``[a+P, a+P+n)``; the output
ring starts with ``P`` samples of silence.  ``P`` is the host margin: one device period for the
callback, time for the engine to compute one decision block at the controller's high-load mark,
and a jitter allowance (``margin_ms``).  The reported latency is ``engine.latency + P`` samples,
constant for the lifetime of an engine; a dry fallback sample at position ``o`` is input ``o − T``.

Routing
-------
On JACK the client is called ``jack_name`` (an error if taken), its output ports exist even with
output ``"null"``, and ``connect_input`` / ``connect_output`` link ports (:mod:`streamsep.host.jackroute`).
``virtual_mic`` publishes the output as a PipeWire virtual microphone (:mod:`streamsep.host.virtual_mic`).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace

import numpy as np

from streamsep import rings as R
from streamsep.engine import LIVE_KEYS, EngineConfig
from streamsep.host import devices as D
from streamsep.host.options import DEFAULT_JACK_NAME, DEFAULT_MARGIN_MS, LiveOptions
from streamsep.host.stats import StatsMixin
from streamsep.host.stream import StreamMixin
from streamsep.host.swap import SwapMixin, Transition
from streamsep.host.worker import WorkerMixin


class LiveHost(StatsMixin, StreamMixin, WorkerMixin, SwapMixin):
    """Capture → engine → playback with constant latency and deadline control (see module doc).

    ``virtual_mic``: a node description (e.g. ``"streamsep denoised microphone"``) to publish the
    output as a PipeWire virtual microphone instead of playing it (None: off)."""

    def __init__(
        self,
        config: EngineConfig,
        input_device=None,
        output_device=None,
        samplerate: int | None = None,
        blocksize: int = 0,
        input_file: str | None = None,
        loop_file: bool = True,
        margin_ms: float = DEFAULT_MARGIN_MS,
        adapt: bool = True,
        threads: int | None = 1,
        realtime: bool = True,
        model_path: str | None = None,
        *,
        jack_name: str = DEFAULT_JACK_NAME,
        connect_input: list[str] | None = None,
        connect_output: list[str] | None = None,
        virtual_mic: str | None = None,
    ) -> None:
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
        self.jack_name = str(jack_name)
        self.connect_input = list(connect_input or [])
        self.connect_output = list(connect_output or [])
        self.virtual_mic = virtual_mic
        self._vmic = None
        self._jack = False
        self.engine = None
        self.rate = 0
        self._stream = None
        self._clock_thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._running = False
        self._error: str | None = None
        self._lock = threading.Lock()  # caller-side only (start/stop/set_config), never the callback
        self._pending_swap: Transition | None = None
        self._pending_ctrl: tuple[int, int] | None = None
        self._reset_counters()

    @classmethod
    def from_options(cls, config: EngineConfig, opts: LiveOptions) -> LiveHost:
        """A host for ``streamsep live``'s typed options (validated here)."""
        o = opts.validate()
        return cls(
            config,
            input_device=o.input_device,
            output_device=o.output_device,
            samplerate=o.samplerate,
            blocksize=o.block,
            input_file=o.input_file,
            loop_file=o.loop_file,
            margin_ms=o.margin_ms,
            adapt=o.adapt,
            threads=o.threads,
            realtime=o.realtime,
            model_path=o.model_path,
            jack_name=o.jack_name,
            connect_input=o.connect_input,
            connect_output=o.connect_output,
            virtual_mic=o.virtual_mic,
        )

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the devices, build the engine, start the worker and the stream.  Raises DeviceError."""
        with self._lock:
            if self._running:
                return
            self._error = None
            self._reset_counters()
            self._stop_evt.clear()
            D.set_jack_client_name(self.jack_name)
            if self.virtual_mic is not None:
                self._start_virtual_mic()
            try:
                self._open()
                if self._jack:
                    self._route()
            except BaseException:
                self._teardown()
                raise

    def _start_virtual_mic(self) -> None:
        """Make the PipeWire node and aim the output (and a default input) at PipeWire's graph."""
        from streamsep.host import virtual_mic as V

        if self.output_device not in (None, "", "null"):
            raise D.DeviceError("--virtual-mic replaces --output (add --connect-output PORT to also hear it)")
        quantum = f"{self.blocksize or round((self.samplerate or 48000) / 100)}/{self.samplerate or 48000}"
        V.use_pipewire_jack(quantum)
        self._vmic = V.VirtualMic(self.virtual_mic).create()
        try:
            self._vmic.wait_port()
            self.output_device = self.virtual_mic
            if self.input_file is None and self.input_device in (None, "", "default"):
                desc = V.default_source_description()
                if desc is None:
                    raise D.DeviceError(
                        "no microphone: PipeWire's default source is not a microphone; "
                        "choose one with --input NAME (see `streamsep devices`)"
                    )
                self.input_device = desc
        except BaseException:
            self._vmic.remove()
            self._vmic = None
            raise

    def _check_jack_name(self) -> None:
        from streamsep.host.jackroute import name_taken

        if name_taken(self.jack_name):
            raise D.DeviceError(
                f"JACK client name '{self.jack_name}' is taken (another streamsep running?); choose another with --name"
            )

    def _route(self) -> None:
        from streamsep.host.jackroute import route

        plan = self._plan
        if not (self.connect_input or self.connect_output or plan.null_out):
            return  # PortAudio's own links are the ones wanted
        route(
            self.jack_name,
            has_input=plan.in_idx is not None,
            out_ports=plan.out_ch if plan.out_idx is not None else 0,
            connect_input=self.connect_input,
            connect_output=self.connect_output,
            detach_output=plan.null_out,
        )

    def virtual_mic_info(self) -> dict | None:
        """The virtual microphone's node name and description (None when not in use)."""
        return self._vmic.info() if self._vmic is not None else None

    def stop(self) -> None:
        """Stop audio and the worker and remove the virtual microphone; idempotent.  Statistics
        stay readable."""
        with self._lock:
            self._teardown()

    def _teardown(self) -> None:
        if self._running or self._stream is not None or self._clock_thread is not None:
            self._running = False
            self._stop_evt.set()
            self._hdr[R.STOP] = 1
            if self._clock_thread is not None:
                self._clock_thread.join(timeout=2)
                self._clock_thread = None
            if self._stream is not None:
                self._stop_stream()
            if self._worker is not None and self._worker is not threading.current_thread():
                self._worker.join(timeout=5)
            self._worker = None
            import gc

            gc.unfreeze()
            sys.setswitchinterval(getattr(self, "_old_switch", 0.005))
            if getattr(self, "_trace", None) is not None:
                np.save(self._trace_path, self._trace[: self._trace_n])
            self._t_stop = time.monotonic()
        if self._vmic is not None:
            self._vmic.remove()

    # -- parameters ----------------------------------------------------------------------------
    def set_params(self, **kw) -> None:
        """Live parameter changes (steps, candidates, policy, ratios, mix, atten_db, bypass)."""
        bad = [k for k in kw if k not in LIVE_KEYS]
        if bad:
            raise ValueError(f"{bad[0]}: not a live parameter (live: {', '.join(LIVE_KEYS)}); use set_config")
        new = replace(self.config, **kw).validate()
        eng = self.engine
        if eng is not None and new.steps > eng.max_steps and not eng.grows_steps_live:
            self.set_config(new)  # steps that add latency (waveform models, dfn3): a new engine, crossfaded in
            return
        if eng is not None:
            eng.set_params(**kw)
            tr = self._pending_swap
            if tr is not None:
                tr.new.set_params(**kw)
        self.config = new
        if eng is not None and ("steps" in kw or "candidates" in kw):
            self._pending_ctrl = (self.config.steps, self.config.candidates)
