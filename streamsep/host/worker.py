"""The live host's worker thread: takes the input that has arrived, runs the engine (or its cheap dry
path when late), writes the result at a fixed offset on the output timeline, and feeds the deadline
controller.  Also the thread-priority helper and the device-less clock."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np

from streamsep import rings as R
from streamsep.engine import Engine

#: wall time (s) the worker may lose while not running — preempted, descheduled by the OS or a VM's
#: hypervisor, or waiting for the GIL — before it counts as a stall
STALL_S = 0.005
#: a deadline miss this soon (s, stream time) after a stall is counted as following it
STALL_WINDOW_S = 0.25
WORKER_RT_PRIORITY = 10  # below JACK's audio threads (server −P 70 → clients 65)


def boost_thread(realtime: bool, priority: int = WORKER_RT_PRIORITY) -> str:
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


def warm_up(eng: Engine, period: int, seconds: float = 0.25) -> None:
    """Run the engine on silence before audio starts: first calls pay torch's lazy set-up costs.

    The engine's timeline is unaffected (it just heard ``seconds`` of silence first)."""
    z = np.zeros(period, np.float32)
    block_host = max(1, math.ceil(eng.block * eng.rate / eng.sr))
    for _ in range(max(3 * math.ceil(block_host / period), math.ceil(seconds * eng.rate / period))):
        eng.process(z)


class WorkerMixin:
    """The worker loop of :class:`~streamsep.host.core.LiveHost`."""

    def _clock(self) -> None:
        """No device at all (file in, null out): a compiled, GIL-free timer loop stands in for the
        audio callback (:func:`streamsep.rings.run_clock`)."""
        boost_thread(self.realtime, WORKER_RT_PRIORITY + 5)  # the 'device' outranks the worker
        R.run_clock(self._hdr, self._clock_in, self._clock_out, self.period, self.rate)

    def _fail(self, msg: str) -> None:
        if self._error is None:
            self._error = msg
        self._stop_evt.set()

    def _work(self) -> None:
        self.worker_priority = boost_thread(self.realtime)
        try:
            self._work_loop()
        except Exception as exc:  # the worker must never die silently
            self._fail(f"worker stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    def _work_loop(self) -> None:
        self._last_cb, self._last_cb_t = -1, time.monotonic()
        while not self._stop_evt.is_set():
            avail = self._in.written - self._in.read
            if avail <= 0:
                if not self._idle():
                    break
                continue
            self._last_cb, self._last_cb_t = self.callbacks, time.monotonic()
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

    def _idle(self) -> bool:
        """No input yet: warm a pending engine, watch for a dead device, nap.  False: stop."""
        tr = self._pending_swap
        if tr is not None and tr.start < 0 and tr.fed_to < self._mon_in.written:
            self._warm_step(tr)  # idle time: bring the next engine up to date
            return True
        now = time.monotonic()
        watchdog = max(1.0, 50 * self.period / self.rate)
        if self.callbacks != self._last_cb:
            self._last_cb, self._last_cb_t = self.callbacks, now
        elif now - self._last_cb_t > watchdog and self._stream is not None and self._running:
            if self._error is None:
                self._error = "audio device stopped delivering audio (device vanished or server gone)"
            from streamsep.host.devices import mark_wedged

            mark_wedged()  # tearing PortAudio down over a vanished device/server can hang: don't
            self._stop_evt.set()
            return False
        nap = min(0.002, 0.25 * self.period / self.rate)
        time.sleep(nap)
        lost = time.monotonic() - now - nap
        if lost > STALL_S:
            self._stall(lost)
        return True

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
        self._trace_row(a / rate, dt, slack, slack_after, dry)
        self._account(x, y, dt, late, dry, slack_after)

    def _trace_row(self, t: float, dt: float, slack: float, slack_after: float, kind) -> None:
        """One row of the optional per-chunk trace (``STREAMSEP_LIVE_TRACE``)."""
        tr = self._trace
        if tr is not None and self._trace_n < len(tr):
            tr[self._trace_n] = (t, dt, slack, slack_after, kind)
            self._trace_n += 1

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
