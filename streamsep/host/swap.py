"""Engine swaps without stopping the audio (``set_config``): the new engine is built in the caller's
thread, warmed up by the worker in its idle time on recent input, then spliced in with a crossfade
on the output timeline at a block boundary."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from streamsep.engine import LIVE_KEYS, Engine, EngineConfig

#: crossfade at an engine swap (ms; at most one period)
CROSSFADE_MS = 10.0
#: seconds of recent input the new engine is warmed up on before it is spliced in
WARMUP_S = 0.5
#: configuration fields whose change needs a new engine (the rest are live parameters)
REBUILD_KEYS = ("model", "block", "device", "resample_quality")


class Transition:
    """Worker-side splice from the old engine to a new one (crossfade on the output timeline)."""

    def __init__(
        self, new: Engine, p_new: int, fed_to: int, pend: np.ndarray, pend_start: int, start: int, fade: int
    ) -> None:
        self.new, self.p_new = new, p_new
        self.fed_to = fed_to  # absolute input index the new engine has consumed up to
        self.pend2, self.pend2_start = pend, pend_start  # new engine output by output position
        self.pend1 = np.zeros(0, np.float32)
        self.pend1_start = start
        self.start, self.fade = start, fade  # splice begins at output position ``start``
        self.deadline = time.monotonic() + 3.0  # an overloaded worker is never idle: splice anyway


def append(buf: np.ndarray, start: int, y: np.ndarray, pos: int) -> tuple[np.ndarray, int]:
    """Append ``y`` (positions ``pos …``) to a position-indexed pending buffer."""
    if len(buf) == 0:
        return y.astype(np.float32, copy=True), pos
    assert pos == start + len(buf), "pending buffer must stay contiguous"
    return np.concatenate([buf, y]), start


def take(buf: np.ndarray, start: int, a: int, b: int) -> np.ndarray:
    """Positions ``[a, b)`` of a pending buffer (zeros where it has none)."""
    out = np.zeros(b - a, np.float32)
    lo, hi = max(a, start), min(b, start + len(buf))
    if hi > lo:
        out[lo - a : hi - a] = buf[lo - start : hi - start]
    return out


def process_long(eng: Engine, x: np.ndarray) -> np.ndarray:
    """``eng.process`` over a long array in pieces of about 8192 samples, whole multiples of the
    host block the engine was built for (so its output prefill holds and nothing is filled dry)."""
    hb = eng.host_block or 8192
    step = max(1, 8192 // hb) * hb
    return np.concatenate([eng.process(x[i : i + step]) for i in range(0, len(x), step)] or [np.zeros(0, np.float32)])


class SwapMixin:
    """``set_config`` and the worker's side of an engine swap for :class:`~streamsep.host.core.LiveHost`."""

    def set_config(self, config: EngineConfig) -> None:
        """Switch to a new configuration (model, block, preset) without stopping the audio.

        Live parameters only → forwarded to the engine's mailbox.  Otherwise a new engine is built
        in the caller's thread; the worker warms it up on the last 0.5 s of input in its idle time
        and splices it in with a crossfade of one period (at most 10 ms) at a block boundary.  The
        latency becomes the new engine's (reported in stats).
        """
        config = replace(config).validate()
        with self._lock:
            old = self.config
            if not self._running or self.engine is None:
                self.config = config
                return
            grows = config.steps <= self.engine.max_steps or self.engine.grows_steps_live
            if grows and all(getattr(old, k) == getattr(config, k) for k in REBUILD_KEYS):
                self.config = config
                self.set_params(**{k: getattr(config, k) for k in LIVE_KEYS})
                return
            # same model: share the (stateless) separator, so no weights are loaded while audio
            # runs; loading a model holds the GIL for tens of ms and can delay the worker
            same = config.model == old.model and config.device == old.device
            eng = Engine(config, rate=self.rate, host_block=self.period, separator=self.engine.sep if same else None)
            p_new = self._margin_for(eng)
            # the worker warms the new engine up on the last WARMUP_S of input in its idle time
            # (one thread doing all inference: no GIL contention), then splices it in
            hist_end = self._mon_in.written
            w = min(int(WARMUP_S * self.rate), hist_end) // self.period * self.period  # whole periods
            fade = max(1, min(round(CROSSFADE_MS * self.rate / 1000), self.period))
            tr = Transition(eng, p_new, hist_end - w, np.zeros(0, np.float32), hist_end - w + p_new, -1, fade)
            self.config = config
            self._pending_swap = tr

    def _warm_step(self, tr: Transition) -> None:
        """Feed the next engine one period of input it has not seen (from the monitor ring)."""
        n = min(self.period, self._mon_in.written - tr.fed_to)
        x = np.empty(n, np.float32)
        if not self._mon_in.copy_range(tr.fed_to, x):
            x[:] = 0.0
        t0 = time.perf_counter()
        y = tr.new.process(x)
        self._trace_row(tr.fed_to / self.rate, time.perf_counter() - t0, -1.0, -1.0, 3)
        tr.pend2, tr.pend2_start = append(tr.pend2, tr.pend2_start, y, tr.fed_to + tr.p_new)
        tr.fed_to += n
        keep = tr.pend2_start + len(tr.pend2) - self._out.written  # nothing before the write index
        if 0 <= keep < len(tr.pend2):
            tr.pend2, tr.pend2_start = tr.pend2[len(tr.pend2) - keep :].copy(), self._out.written

    def _catch_up(self, tr: Transition, a: int) -> None:
        """Feed the new engine the input it has not seen before position ``a`` (monitor ring)."""
        if tr.fed_to < a:
            gap = np.empty(a - tr.fed_to, np.float32)
            if not self._mon_in.copy_range(tr.fed_to, gap):
                gap[:] = 0.0
            y2 = process_long(tr.new, gap)
            tr.pend2, tr.pend2_start = append(tr.pend2, tr.pend2_start, y2, tr.fed_to + tr.p_new)
            tr.fed_to = a

    def _transition_chunk(self, a: int, x: np.ndarray) -> None:
        tr = self._pending_swap
        n = x.shape[0]
        self._catch_up(tr, a)
        # the old engine's output for the fade comes from what it has already computed (its
        # output FIFO): its cheap dry path returns that and never runs the model again, so the
        # splice costs one engine, not two
        t0 = time.perf_counter()
        slack = (a + self.P - self._out.read) / self.rate
        y1 = self.engine.process(x, dry=True)
        y2 = tr.new.process(x)
        self._trace_row(a / self.rate, time.perf_counter() - t0, slack, -1.0, 2)
        tr.fed_to = a + n
        tr.pend1, tr.pend1_start = append(tr.pend1, tr.pend1_start, y1, a + self.P)
        tr.pend2, tr.pend2_start = append(tr.pend2, tr.pend2_start, y2, a + tr.p_new)
        late = self._write_crossfade(tr)
        self._mon_in.push(x)
        self.processed += n
        if late:
            self._miss()
        if self._out.written >= tr.start + tr.fade:  # done: the new engine owns the timeline
            self._finish_swap(tr)

    def _write_crossfade(self, tr: Transition) -> int:
        """Write what both engines have computed, crossfaded; returns the late sample count."""
        w = self._out.written
        end = tr.pend2_start + len(tr.pend2)
        fade_end = tr.start + tr.fade
        if w < fade_end:
            end = min(end, tr.pend1_start + len(tr.pend1))
        if end <= w:
            return 0
        o = np.arange(w, end)
        v2 = take(tr.pend2, tr.pend2_start, w, end)
        if w < fade_end:
            v1 = take(tr.pend1, tr.pend1_start, w, end)
            g = np.clip((fade_end - o) / tr.fade, 0.0, 1.0).astype(np.float32)
            v = g * v1 + (1.0 - g) * v2
        else:
            v = v2
        return self._out.write_at(w, v.astype(np.float32))

    def _finish_swap(self, tr: Transition) -> None:
        rest = tr.pend2_start + len(tr.pend2) - self._out.written
        if rest > 0:
            self._out.write_at(self._out.written, tr.pend2[len(tr.pend2) - rest :])
        self.engine = tr.new
        self.P = tr.p_new
        self.T = tr.new.latency + tr.p_new
        self._ctrl = self._new_controller(tr.new)
        self._pending_swap = None
        self.swaps += 1
