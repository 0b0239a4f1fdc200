"""The live host's counters and its statistics snapshot (``stats()``, ``monitor()``, JSON).

The audio callback's counters live in the shared int64 header (:mod:`streamsep.rings`); the
worker's are plain ints on the host.  Every method here is safe from any thread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from streamsep import rings as R

#: seconds of input and played output kept for :meth:`StatsMixin.monitor`
MONITOR_SECONDS = 30.0


class StatsMixin:
    """Counters and statistics of :class:`~streamsep.host.core.LiveHost`."""

    def _reset_counters(self) -> None:
        self._hdr = R.new_header()
        self.deadline_misses = 0
        self.dry_chunks = 0
        self.overruns = 0
        self.level_changes = 0
        self.rtf = 0.0
        self.processed = 0
        self.swaps = 0
        self.splices: list[int] = []  # output positions (samples) where engine swaps began
        self.miss_times: list[float] = []  # timeline seconds of the first 100 deadline misses
        self.level_history: list[list] = []  # [seconds, steps cap, candidates cap, dry] per change
        self.stalls = 0  # times the worker lost > STALL_S of wall time
        self.stall_times: list[list[float]] = []  # [timeline seconds, lost ms] of the first 100
        self.misses_after_stall = 0  # deadline misses within STALL_WINDOW_S of a stall
        self._last_stall = -1e9

    xruns = property(lambda self: int(self._hdr[R.XRUNS]), doc="callbacks with PortAudio xrun flags")
    input_overflows = property(lambda self: int(self._hdr[R.IN_OVERFLOWS]))
    output_underflows = property(lambda self: int(self._hdr[R.OUT_UNDERFLOWS]))
    callbacks = property(lambda self: int(self._hdr[R.CALLBACKS]))
    fallback_samples = property(
        lambda self: int(self._hdr[R.FALLBACK_SAMPLES]), doc="output samples played dry because the worker was late"
    )
    fallback_callbacks = property(lambda self: int(self._hdr[R.FALLBACK_CALLBACKS]))
    file_done = property(lambda self: bool(self._hdr[R.FILE_DONE]))

    @property
    def T(self) -> int:
        """Total latency in samples (engine latency + safety margin); the callback reads it too."""
        return int(self._hdr[R.LATENCY])

    @T.setter
    def T(self, v: int) -> None:
        self._hdr[R.LATENCY] = int(v)

    def stats(self) -> dict:
        """A snapshot of the live statistics; safe from any thread."""
        eng = self.engine
        st = eng.stats if eng is not None else None
        rate = self.rate or 1
        T = getattr(self, "T", 0)
        ctrl = getattr(self, "_ctrl", None)
        out = {
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
        }
        out.update(self._level_stats(st))
        out.update(self._history_stats())
        out["virtual_mic"] = self.virtual_mic_info()
        return out

    def _level_stats(self, st) -> dict:
        return {
            "input_peak_db": float(st.input_peak_db) if st else -120.0,
            "output_peak_db": float(st.output_peak_db) if st else -120.0,
            "input_rms_db": float(st.input_rms_db) if st else -120.0,
            "output_rms_db": float(st.output_rms_db) if st else -120.0,
            "ratios": [float(r) for r in (st.ratios if st is not None else [])],
            "resets": int(st.resets) if st else 0,  # model chains reset after a poisoned (NaN) state
        }

    def _history_stats(self) -> dict:
        return {
            "seconds": self.processed / self.rate if self.rate else 0.0,
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
