"""The slow DNSMOS meter: OVRL / SIG / BAK (MOS, 1–5) of the output over the last 9 s.

:class:`DnsmosWorker` runs ``streamsep.metrics.DNSMOS`` on ``host.monitor(9.01)`` in a background
thread about once a second (one call costs ~0.2 s of CPU) and reports through a Qt signal;
:class:`DnsmosMeter` shows the three scores.  Below ``silence_db`` dBFS RMS nothing is computed and
the meter rests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gui import theme

WINDOW_S = 9.01  # DNSMOS input length, seconds
SCORES = (("ovrl", "OVRL"), ("sig", "SIG"), ("bak", "BAK"))
HISTORY_S = 60.0  # seconds of score history in the trend plot


class DnsmosWorker(QObject):
    """Background DNSMOS scoring of the host's recent output.

    ``source()`` returns the current host (or None); the worker calls ``host.monitor(window_s)``.
    Emits ``result`` with a dict: ``{"ovrl","sig","bak","seconds","compute_s"}`` when scored,
    ``{"silent": True}`` at silence, ``{"waiting": seconds}`` while less than ``min_s`` seconds of
    audio exist, ``{"error": message}`` when DNSMOS cannot run.
    """

    result = pyqtSignal(dict)

    def __init__(
        self,
        source: Callable[[], object],
        period_s: float = 1.0,
        window_s: float = WINDOW_S,
        min_s: float = 3.0,
        silence_db: float = -60.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.source, self.period_s, self.window_s = source, period_s, window_s
        self.min_s, self.silence_db = min_s, silence_db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dnsmos = None
        self.calls = 0

    def start(self) -> None:
        """Start scoring (no-op when running)."""
        if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
            self._stop = threading.Event()  # each thread watches its own stop flag
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="dnsmos-meter", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop scoring; waits up to ``timeout`` seconds for a score in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.period_s):
            try:
                out = self.score_once()
            except Exception as exc:  # noqa: BLE001 -- shown in the meter, never a traceback
                out = {"error": f"{type(exc).__name__}: {exc}"}
            if out is not None and not stop.is_set():
                self.result.emit(out)
            if out is not None and "error" in out and "DNSMOS unavailable" in out["error"]:
                return

    def score_once(self) -> dict | None:
        """One measurement of the current host's output (None when there is no host)."""
        host = self.source()
        if host is None:
            return None
        _, y, rate = host.monitor(self.window_s)
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        nz = np.flatnonzero(y)
        y = y[nz[0] :] if nz.size else y[:0]  # drop the zero history before the start
        seconds = y.size / float(rate) if rate else 0.0
        rms_db = 10 * np.log10(float(np.mean(y.astype(np.float64) ** 2)) + 1e-20) if y.size else -200.0
        if rms_db < self.silence_db:
            return {"silent": True}
        if seconds < self.min_s:
            return {"waiting": seconds}
        if self._dnsmos is None:
            try:
                from streamsep.metrics import DNSMOS

                self._dnsmos = DNSMOS()
            except Exception as exc:  # noqa: BLE001
                return {"error": f"DNSMOS unavailable: {type(exc).__name__}: {exc}"}
        t0 = time.perf_counter()
        scores = self._dnsmos(y, int(rate))
        self.calls += 1
        return {
            "ovrl": float(scores["ovrl"]),
            "sig": float(scores["sig"]),
            "bak": float(scores["bak"]),
            "seconds": seconds,
            "compute_s": time.perf_counter() - t0,
        }


LABEL_COLOURS = {"ovrl": theme.ACCENT, "sig": theme.OUTPUT, "bak": theme.INPUT}


class _ScoreBars(QWidget):
    """Three horizontal bars on a 1–5 MOS scale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, float | None] = {k: None for k, _ in SCORES}
        self.setMinimumSize(180, 72)
        self.setMaximumHeight(84)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        f = QFont(self.font())
        f.setPointSizeF(8.5)
        p.setFont(f)
        row_h = self.height() / len(SCORES)
        label_w, value_w = 40, 36
        bar_w = self.width() - label_w - value_w - 6
        for i, (key, name) in enumerate(SCORES):
            y = i * row_h
            p.setPen(QColor(LABEL_COLOURS[key]))
            p.drawText(QRectF(0, y, label_w, row_h), Qt.AlignmentFlag.AlignVCenter, name)
            bar = QRectF(label_w, y + row_h * 0.22, bar_w, row_h * 0.56)
            p.fillRect(bar, QColor(theme.BASE))
            v = self.values.get(key)
            if v is not None:
                frac = float(np.clip((v - 1.0) / 4.0, 0.0, 1.0))
                colour = QColor(theme.OK if v >= 3.5 else theme.WARN if v >= 2.5 else theme.ERROR)
                p.fillRect(QRectF(bar.left(), bar.top(), bar.width() * frac, bar.height()), colour)
            p.setPen(QColor("#3a3f47"))
            for mos in (2, 3, 4):
                x = bar.left() + bar.width() * (mos - 1) / 4
                p.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
            p.setPen(QColor(theme.TEXT))
            p.drawText(
                QRectF(label_w + bar_w + 4, y, value_w, row_h),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                "—" if v is None else f"{v:.2f}",
            )
        p.end()


class DnsmosMeter(QWidget):
    """Shows the latest :class:`DnsmosWorker` result: bars for OVRL/SIG/BAK and a status line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bars = _ScoreBars()
        self.status = QLabel("waiting for audio")
        self.status.setStyleSheet(f"color: {theme.MUTED}; font-size: 8pt;")
        self.trend = pg.PlotWidget()
        item = self.trend.getPlotItem()
        item.setYRange(1.0, 5.0, padding=0.02)
        item.setXRange(-HISTORY_S, 0, padding=0)
        item.setLabel("left", "MOS")
        item.setLabel("bottom", "time", units="s")
        item.getAxis("left").setTicks([[(v, str(v)) for v in (1, 2, 3, 4, 5)]])
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self.trend.setMinimumHeight(90)
        colours = {"ovrl": theme.ACCENT, "sig": theme.OUTPUT, "bak": theme.INPUT}
        self.trend_curves = {
            k: self.trend.plot(
                [],
                [],
                pen=pg.mkPen(colours[k], width=2),
                connect="finite",
                symbol="o",
                symbolSize=4,
                symbolPen=None,
                symbolBrush=colours[k],
            )
            for k, _ in SCORES
        }
        self.history: deque[tuple[float, dict]] = deque(maxlen=600)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.addWidget(self.bars)
        lay.addWidget(self.trend, 1)
        lay.addWidget(self.status)
        self.last: dict = {}
        self.updates = 0

    @property
    def values(self) -> dict[str, float | None]:
        return dict(self.bars.values)

    def show_result(self, res: dict) -> None:
        """Display one worker result (see :class:`DnsmosWorker` for the shapes)."""
        self.last = res
        now = time.monotonic()
        self.history.append((now, {k: res.get(k, np.nan) for k, _ in SCORES}))
        self._draw_trend(now)
        if "ovrl" in res:
            self.updates += 1
            self.bars.values = {k: res[k] for k, _ in SCORES}
            self.status.setText(
                f"scored on the last {min(res['seconds'], WINDOW_S):.1f} s of up to {WINDOW_S:.0f} s"
                f" · {res['compute_s'] * 1000:.0f} ms per score"
            )
        else:
            self.bars.values = {k: None for k, _ in SCORES}
            if res.get("silent"):
                self.status.setText("silence: not scored")
            elif "waiting" in res:
                self.status.setText(f"collecting audio ({res['waiting']:.1f} s of 3 s)")
            else:
                self.status.setText(res.get("error", "idle"))
        self.bars.update()

    def _draw_trend(self, now: float) -> None:
        rows = [(t - now, v) for t, v in self.history if t >= now - HISTORY_S]
        ts = np.array([t for t, _ in rows])
        for k, curve in self.trend_curves.items():
            ys = np.array([v[k] for _, v in rows], dtype=float)
            keep = np.isfinite(ys)
            if not keep.any():
                curve.setData([], [])
            else:  # gaps (silence, waiting) break the line
                curve.setData(ts, ys, connect=keep & np.roll(keep, -1))

    def reset(self, text: str = "waiting for audio") -> None:
        self.history.clear()
        self._draw_trend(time.monotonic())
        self.bars.values = {k: None for k, _ in SCORES}
        self.status.setText(text)
        self.bars.update()
