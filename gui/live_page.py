"""The Live tab: level meters and input/output spectrograms, the stat cards, and a hint when the
input is silent.  Widgets display what the window feeds them (``LiveHost.stats()``/``monitor()``)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from gui import theme
from gui.meters import LevelMeters, SpectrogramView, StatCard

SPECTRO_SPAN_S = 6.0  # seconds of history shown
#: below this input peak (dBFS) for SILENT_AFTER_S seconds the input counts as silent
SILENT_DB = -70.0
SILENT_AFTER_S = 2.0
SILENT_HINT = "No input signal — check the microphone"
SILENT_FILE_HINT = "No input signal — the input file is silent here"


class LivePage(QWidget):
    """Meters, spectrograms and stat cards of the running host."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.meters = LevelMeters()
        self.spectrogram = SpectrogramView(span_s=SPECTRO_SPAN_S)
        self.spectrogram.setMinimumHeight(260)
        self.hint = QLabel()
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet(
            f"background: {theme.WARN}33; border: 1px solid {theme.WARN}; border-radius: 3px;"
            " padding: 3px; font-weight: 600;"
        )
        self.hint.hide()
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        grid.addWidget(self.hint, 0, 0, 1, 2)
        grid.addWidget(self.meters, 1, 0)
        grid.addWidget(self.spectrogram, 1, 1)
        grid.addWidget(self._build_cards(), 2, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(1, 1)
        self._quiet_since: float | None = None

    def _build_cards(self) -> QWidget:
        strip = QFrame()
        strip.setObjectName("strip")
        strip.setStyleSheet(f"QFrame#strip {{ background: {theme.PANEL}; border-radius: 4px; }}")
        row = QHBoxLayout(strip)
        row.setContentsMargins(4, 3, 4, 3)
        row.setSpacing(2)
        self.cards = {
            "latency": StatCard("Latency", "ms", "Input-to-output delay of the engine (constant)"),
            "rtf": StatCard("Load (RTF)", "", "Processing time / audio time; above 1 the host cannot keep up"),
            "steps": StatCard("Steps", "", "Refinement steps running now / requested"),
            "candidates": StatCard("Candidates", "", "Ratios tried per step now / requested"),
            "misses": StatCard("Late blocks", "", "Deadline misses: blocks that were not ready in time"),
            "xruns": StatCard("Xruns", "", "Audio device under/overruns"),
            "dnsmos": StatCard("Quality", "MOS", "DNSMOS overall score of the output (1–5; details under Advanced)"),
        }
        for card in self.cards.values():
            row.addWidget(card)
        return strip

    # -- feeding -------------------------------------------------------------------------------
    def show_levels(self, in_peak: float, in_rms: float, out_peak: float, out_rms: float, now: float) -> None:
        """Meter readings in dBFS (input and output of the same audio)."""
        self.meters.set_levels(in_peak, in_rms, out_peak, out_rms, now)

    def update_silence(self, in_peak_db: float | None, now: float, from_file: bool = False) -> None:
        """Show the silent-input hint once the input stayed below :data:`SILENT_DB` for
        :data:`SILENT_AFTER_S` seconds; ``in_peak_db`` None = no audio running (hint hidden)."""
        if in_peak_db is None or in_peak_db > SILENT_DB:
            self._quiet_since = None
            self.hint.hide()
            return
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since >= SILENT_AFTER_S:
            self.hint.setText(SILENT_FILE_HINT if from_file else SILENT_HINT)
            self.hint.show()

    @property
    def silent_hint(self) -> str:
        """The hint shown now ("" when none)."""
        return self.hint.text() if self.hint.isVisibleTo(self) else ""

    def show_cards(self, s: dict, steps_req: int | None, candidates_req: int | None) -> None:
        """Update the stat cards from a ``LiveHost.stats()`` snapshot."""
        lat = s.get("latency_ms")
        self.cards["latency"].set_value("—" if lat is None else f"{lat:.1f}")
        rtf = s.get("rtf")
        if rtf is None or not np.isfinite(rtf):
            self.cards["rtf"].set_value("—", "idle")
        else:
            self.cards["rtf"].set_value(f"{rtf:.2f}", "error" if rtf >= 1 else "warn" if rtf >= 0.7 else "ok")
        for key, req in (("steps", steps_req), ("candidates", candidates_req)):
            v = s.get(f"{key}_in_use")
            if v is None:
                self.cards[key].set_value("—", "idle")
            else:
                limited = req is not None and v < req
                self.cards[key].set_value(f"{v} / {req}" if req is not None else f"{v}", "warn" if limited else "ok")
        for key, name in (("misses", "deadline_misses"), ("xruns", "xruns")):
            v = s.get(name)
            self.cards[key].set_value("—" if v is None else f"{int(v)}", "warn" if v else "ok")

    def show_quality(self, ovrl: float | None) -> None:
        """The DNSMOS overall score (None = not scored now)."""
        if ovrl is None:
            self.cards["dnsmos"].set_value("—", "idle")
        else:
            self.cards["dnsmos"].set_value(f"{ovrl:.2f}", "ok" if ovrl >= 3.0 else "warn")

    def reset(self) -> None:
        """Back to 'nothing running': cards and spectrograms blank, hint hidden."""
        for card in self.cards.values():
            card.set_value("—", "idle")
        self.spectrogram.blank()
        self.update_silence(None, 0.0)
