"""Live meters: level bars with peak hold, stat read-outs, the ratio-per-step plot and the
scrolling input/output spectrogram.  Widgets only display what they are given; the main window
feeds them from ``LiveHost.stats()`` / ``monitor()`` at display rate."""

from __future__ import annotations

import time
from collections import deque
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPen
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui import theme
from gui.spectrum import FLOOR_DB

METER_FLOOR_DB = -60.0
METER_TICKS = (0, -6, -12, -18, -24, -30, -40, -50, -60)


class Ballistics:
    """Meter ballistics in dB: instant attack, linear release, peak hold.

    ``release_db_s``: fall rate of the bars (dB per second); ``hold_s``: how long the peak-hold
    marker stays before it falls at the same rate.  Values never go below ``floor`` dB.
    Each value is a maximum over past readings (a reading minus its decay), so a meter fed
    readings that are never higher than another meter's never shows more than it, hold included.
    """

    def __init__(self, floor: float = METER_FLOOR_DB, release_db_s: float = 30.0, hold_s: float = 1.5):
        self.floor, self.release, self.hold_s = floor, release_db_s, hold_s
        self.peak = self.rms = self.hold = floor
        self._t: float | None = None
        self._recent: deque[tuple[float, float]] = deque()  # (time, peak) of the last hold_s seconds
        self._expired = -np.inf  # max of peak + release·(t + hold_s) gone by

    def update(self, peak_db: float, rms_db: float, now: float | None = None) -> None:
        """Feed one reading (dBFS; -inf/None allowed, read as the floor)."""
        now = time.monotonic() if now is None else now
        dt = 0.0 if self._t is None else max(0.0, now - self._t)
        self._t = now
        fall = self.release * dt
        peak_db, rms_db = max(self.floor, peak_db), max(self.floor, rms_db)
        self.peak = max(peak_db, self.peak - fall)
        self.rms = max(rms_db, self.rms - fall)
        self._recent.append((now, peak_db))
        while self._recent and now - self._recent[0][0] > self.hold_s:
            t, p = self._recent.popleft()
            self._expired = max(self._expired, p + self.release * (t + self.hold_s))
        held = max(p for _, p in self._recent)
        self.hold = max(self.floor, held, self._expired - self.release * now)

    @property
    def at_rest(self) -> bool:
        """True when every bar sits on the floor."""
        return max(self.peak, self.rms, self.hold) <= self.floor


def _db_to_frac(db: float, floor: float = METER_FLOOR_DB) -> float:
    return float(np.clip((db - floor) / -floor, 0.0, 1.0))


#: meter colour zones (dBFS): (from, to, colour)
ZONES = ((METER_FLOOR_DB, -18.0, theme.OK), (-18.0, -6.0, theme.WARN), (-6.0, 0.0, theme.ERROR))


class LevelMeter(QWidget):
    """One vertical level bar: RMS filled, peak as a lighter bar, peak hold as a line (dBFS)."""

    def __init__(self, title: str, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.colour = title, QColor(colour)
        self.ballistics = Ballistics()
        self.setMinimumSize(34, 160)
        self.setToolTip(
            f"{title} level, dBFS: solid = RMS, light = peak, white line = peak hold (number below: peak hold)"
        )
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFixedWidth(40)

    def set_level(self, peak_db: float, rms_db: float, now: float | None = None) -> None:
        """New reading in dBFS; repaints."""
        self.ballistics.update(peak_db, rms_db, now)
        self.update()

    def _bar_rect(self) -> QRectF:
        return QRectF(8, 18, self.width() - 16, self.height() - 38)

    @staticmethod
    def _fill(p: QPainter, r: QRectF, lo_db: float, hi_db: float, alpha: int) -> None:
        """Fill the bar between two levels, green / yellow (> -18 dB) / red (> -6 dB) by height."""
        for z_lo, z_hi, colour in ZONES:
            a, b = max(lo_db, z_lo), min(hi_db, z_hi)
            if b <= a:
                continue
            y0 = r.bottom() - r.height() * _db_to_frac(a)
            y1 = r.bottom() - r.height() * _db_to_frac(b)
            c = QColor(colour)
            c.setAlpha(alpha)
            p.fillRect(QRectF(r.left(), y1, r.width(), y0 - y1), c)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        r = self._bar_rect()
        p.fillRect(r, QColor(theme.BASE))
        b = self.ballistics
        self._fill(p, r, METER_FLOOR_DB, b.rms, 255)  # RMS: solid
        self._fill(p, r, b.rms, b.peak, 120)  # peak above RMS: translucent
        if b.hold > METER_FLOOR_DB:
            y = r.bottom() - r.height() * _db_to_frac(b.hold)
            p.setPen(QPen(QColor("#ffffff"), 2))
            p.drawLine(int(r.left()), int(y), int(r.right()), int(y))
        p.setPen(QPen(QColor("#3a3f47")))
        for db in METER_TICKS:  # ticks across the bar, level with the scale
            y = r.bottom() - r.height() * _db_to_frac(db)
            p.drawLine(int(r.left()), int(y), int(r.right()), int(y))
        f = QFont(self.font())
        f.setPointSizeF(8.5)
        f.setBold(True)
        p.setFont(f)
        p.setPen(self.colour)
        p.drawText(QRectF(0, 0, self.width(), 16), Qt.AlignmentFlag.AlignCenter, self.title)
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor(theme.TEXT))
        txt = "−∞" if b.hold <= METER_FLOOR_DB else f"{b.hold:.0f}"  # the peak-hold value
        p.drawText(QRectF(0, self.height() - 18, self.width(), 16), Qt.AlignmentFlag.AlignCenter, txt)
        p.end()


class DbScale(QWidget):
    """The dBFS scale drawn beside the level meters (same geometry as :class:`LevelMeter`)."""

    UNIT = "dBFS"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedWidth(34)
        self.setMinimumHeight(160)
        self.setToolTip("Level in dB relative to digital full scale (0 dBFS = the loudest possible sample)")

    def labels(self) -> list[str]:
        """The texts drawn on the scale, top to bottom (tick values, then the unit)."""
        return [str(db) for db in METER_TICKS] + [self.UNIT]

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        f = QFont(self.font())
        f.setPointSizeF(7.5)
        p.setFont(f)
        p.setPen(QColor(theme.MUTED))
        top, height = 18, self.height() - 38
        for db in METER_TICKS:
            y = top + height * (1 - _db_to_frac(db))
            p.drawText(
                QRectF(0, y - 7, self.width() - 5, 14),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{db}",
            )
            p.drawLine(self.width() - 4, int(y), self.width(), int(y))
        p.drawText(
            QRectF(0, self.height() - 18, self.width() - 2, 16),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            self.UNIT,
        )
        p.end()


class LevelMeters(QWidget):
    """Input and output meters (peak and RMS, dBFS, peak hold) on one shared scale.

    Feed both with levels of the *same* audio (see :func:`gui.spectrum.aligned_levels`): the output
    lags the input by the host's latency."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.input = LevelMeter("IN", theme.INPUT)
        self.output = LevelMeter("OUT", theme.OUTPUT)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(DbScale())
        lay.addWidget(self.input)
        lay.addWidget(self.output)

    def set_levels(
        self, in_peak: float, in_rms: float, out_peak: float, out_rms: float, now: float | None = None
    ) -> None:
        """New readings in dBFS for both meters."""
        self.input.set_level(in_peak, in_rms, now)
        self.output.set_level(out_peak, out_rms, now)

    @property
    def at_rest(self) -> bool:
        return self.input.ballistics.at_rest and self.output.ballistics.at_rest


class StatCard(QWidget):
    """A titled number with a unit, tinted by state ("ok", "warn", "error", "idle")."""

    COLOURS: ClassVar[dict[str, str]] = {
        "ok": theme.TEXT,
        "warn": theme.WARN,
        "error": theme.ERROR,
        "idle": theme.MUTED,
    }

    def __init__(self, title: str, unit: str = "", tooltip: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.unit = unit
        self.title_label = QLabel(title)
        self.title_label.setStyleSheet(f"color: {theme.MUTED}; font-size: 8.5pt;")
        self.value_label = QLabel("—")
        self.value_label.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.value_label.setMinimumWidth(70)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.setSpacing(0)
        lay.addWidget(self.title_label)
        lay.addWidget(self.value_label)
        if tooltip:
            self.setToolTip(tooltip)

    def set_value(self, text: str, state: str = "ok") -> None:
        """Show ``text`` (the unit is appended) in the colour of ``state``."""
        unit = (
            f" <span style='font-size:9pt; color:{theme.MUTED}'>{self.unit}</span>" if self.unit and text != "—" else ""
        )
        self.value_label.setText(f"<span style='color:{self.COLOURS.get(state, theme.TEXT)}'>{text}</span>{unit}")

    def text(self) -> str:
        """The shown value without markup (for tests and logs)."""
        import re

        return re.sub(r"<[^>]+>", "", self.value_label.text())


class RatioPlot(pg.PlotWidget):
    """Chosen blend ratio r per refinement step over the last ``span_s`` seconds.

    Gaps mean the step kept its previous estimate (ratio NaN from the engine)."""

    def __init__(self, span_s: float = 10.0, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.span_s = span_s
        self.history: deque[tuple[float, np.ndarray]] = deque(maxlen=4000)
        self.curves: list[pg.PlotDataItem] = []
        item = self.getPlotItem()
        item.setLabel("left", "share of the original")
        item.setLabel("bottom", "time", units="s")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setYRange(0.0, 1.0, padding=0.02)
        item.setXRange(-span_s, 0.0, padding=0.0)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self.legend = item.addLegend(offset=(-6, 4), labelTextSize="8pt", colCount=4)
        self.setMinimumHeight(120)

    def add(self, t: float, ratios) -> None:
        """Record the ratios chosen at audio time ``t`` seconds (NaN = kept previous)."""
        r = np.asarray([np.nan if v is None else v for v in (ratios or [])], dtype=float)
        if self.history and t < self.history[-1][0]:
            self.history.clear()  # host restarted: time went back
        self.history.append((t, r))

    def clear(self) -> None:
        self.history.clear()
        self.redraw()

    def redraw(self) -> None:
        """Refresh the curves from the recorded history."""
        if not self.history:
            for c in self.curves:
                c.setData([], [])
            return
        t_end = self.history[-1][0]
        rows = [(t - t_end, r) for t, r in self.history if t >= t_end - self.span_s]
        steps = max((len(r) for _, r in rows), default=0)
        while len(self.curves) < steps:
            k = len(self.curves)
            pen = pg.mkPen(theme.STEP_COLOURS[k % len(theme.STEP_COLOURS)], width=2)
            self.curves.append(self.plot([], [], pen=pen, name=f"step {k + 1}", connect="finite"))
        ts = np.array([t for t, _ in rows])
        for k, curve in enumerate(self.curves):
            ys = np.array([r[k] if k < len(r) else np.nan for _, r in rows], dtype=float)
            curve.setData(ts, ys, connect="finite")
            curve.setVisible(k < steps)

    def latest(self) -> np.ndarray:
        return self.history[-1][1] if self.history else np.zeros(0)

    def state(self) -> str:
        """What the last ``span_s`` seconds show: "empty" (no data yet), "off" (no refinement step
        ran), "kept" (every step kept the estimate before it, i.e. the one-step estimate was
        output), or "active" (at least one step mixed in a ratio)."""
        if not self.history:
            return "empty"
        t_end = self.history[-1][0]
        rows = [r for t, r in self.history if t >= t_end - self.span_s]
        if all(r.size == 0 for r in rows):
            return "off"
        if all(not np.isfinite(r).any() for r in rows):
            return "kept"
        return "active"


class SpectrogramView(pg.GraphicsLayoutWidget):
    """Scrolling input (top) and output (bottom) spectrograms in dBFS, time in seconds, kHz."""

    def __init__(
        self, span_s: float = 6.0, fmax: float = 8000.0, levels=(-100.0, -20.0), parent: QWidget | None = None
    ) -> None:
        super().__init__(parent=parent)
        self.span_s, self.fmax, self.levels = span_s, fmax, levels
        self.cmap = pg.colormap.get("inferno")
        self.plots, self.images = [], []
        for row, (name, colour) in enumerate((("input", theme.INPUT), ("output", theme.OUTPUT))):
            plot = self.addPlot(row=row, col=0)
            plot.setTitle(f"<span style='color:{colour}'>{name}</span>", size="9pt")
            img = pg.ImageItem(axisOrder="col-major")
            img.setColorMap(self.cmap)
            plot.addItem(img)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setLabel("left", "kHz")
            plot.getAxis("left").setScale(1e-3)
            plot.getAxis("left").setWidth(42)
            if row == 1:
                plot.setLabel("bottom", "time", units="s")
            plot.setXRange(-span_s, 0, padding=0)
            plot.setYRange(0, fmax, padding=0)
            self.plots.append(plot)
            self.images.append(img)
        self.plots[1].setXLink(self.plots[0])
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=self.cmap, label="dBFS", interactive=False, width=12)
        self.colorbar.setImageItem(self.images, insert_in=None)
        self.addItem(self.colorbar, row=0, col=1, rowspan=2)
        self.mean_db = [FLOOR_DB, FLOOR_DB]

    def blank(self) -> None:
        """Blank both spectrograms (no audio).  Not named ``clear``: overriding the pyqtgraph widget's
        own ``clear`` left the whole view blank."""
        blank = np.full((2, 2), FLOOR_DB, np.float32)
        for img in self.images:
            img.setImage(blank, autoLevels=False, levels=self.levels)
        self.mean_db = [FLOOR_DB, FLOOR_DB]

    def set_spectrograms(self, s_in: np.ndarray, s_out: np.ndarray, freqs: np.ndarray) -> None:
        """Show two (columns, bins) dB arrays covering the last ``span_s`` seconds."""
        top = float(freqs[-1]) if len(freqs) else self.fmax
        for k, (img, s) in enumerate(zip(self.images, (s_in, s_out))):
            img.setImage(s, autoLevels=False, levels=self.levels)
            img.setRect(QRectF(-self.span_s, 0.0, self.span_s, top))
            self.mean_db[k] = float(np.mean(s[-10:])) if s.size else FLOOR_DB
        for plot in self.plots:
            plot.setYRange(0, top, padding=0)
