"""The Advanced tab: what multi-step refinement is doing, the DNSMOS quality meter and the engine's
internals (audio period, latency split, load level, dry fallback, engine swaps)."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.dnsmos_meter import WINDOW_S, DnsmosMeter
from gui.meters import RatioPlot

RATIO_HELP = (
    "Each refinement step mixes part of the original (noisy) signal back into the model's "
    "estimate and runs the model again. The plot shows that share per step: 0 = the step "
    "used only the previous estimate, 1 = only the original."
)
RATIO_NOTES = {
    "empty": "Waiting for audio.",
    "off": "Refinement is off (0 steps): the output is the model's one-step estimate.",
    "kept": "For the last {span:g} s the policy kept the one-step estimate: no refinement step was "
    "judged better, so nothing is plotted.",
    "active": "",
}


class AdvancedPage(QWidget):
    """Ratio plot with plain-words note, DNSMOS meter with its on/off box, engine details."""

    def __init__(self, dnsmos_on: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.addWidget(self._build_ratio(), 0, 0)
        grid.addWidget(self._build_dnsmos(dnsmos_on), 0, 1, 2, 1)
        grid.addWidget(self._build_details(), 1, 0)
        grid.setColumnStretch(0, 1)
        grid.setRowStretch(0, 1)

    def _build_ratio(self) -> QWidget:
        box = QGroupBox("Multi-step refinement")
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 6, 6, 6)
        helptext = QLabel(RATIO_HELP)
        helptext.setWordWrap(True)
        helptext.setStyleSheet(f"color: {theme.MUTED}; font-size: 8.5pt;")
        self.ratio_note = QLabel(RATIO_NOTES["empty"])
        self.ratio_note.setWordWrap(True)
        self.ratio_plot = RatioPlot()
        lay.addWidget(helptext)
        lay.addWidget(self.ratio_note)
        lay.addWidget(self.ratio_plot, 1)
        return box

    def _build_dnsmos(self, on: bool) -> QWidget:
        box = QGroupBox(f"Speech quality (DNSMOS, output, up to {WINDOW_S:.0f} s)")
        lay = QVBoxLayout(box)
        self.dnsmos_toggle = QCheckBox("score every second")
        self.dnsmos_toggle.setToolTip(
            f"Runs DNSMOS on up to the last {WINDOW_S:.0f} s of output about once a "
            "second (~0.2 s of CPU per score, on a background thread)"
        )
        self.dnsmos_toggle.setChecked(on)
        self.dnsmos_toggle.setStyleSheet(f"color: {theme.MUTED}; font-size: 8pt;")
        self.dnsmos = DnsmosMeter()
        lay.addWidget(self.dnsmos_toggle)
        lay.addWidget(self.dnsmos, 1)
        box.setMinimumWidth(260)
        box.setMaximumWidth(340)
        return box

    def _build_details(self) -> QWidget:
        box = QGroupBox("Engine details")
        form = QFormLayout(box)
        form.setVerticalSpacing(3)
        self.details: dict[str, QLabel] = {}
        for key, title, tip in (
            ("host", "Audio", "Host sample rate and device period"),
            ("latency", "Latency", "Engine latency (model + block) plus the host's safety margin"),
            ("level", "Load level", "Deadline control: 0 = all requested work, higher = fewer steps/candidates"),
            ("dry", "Dry fallback", "Chunks the host passed through unprocessed to stay on time"),
            ("swaps", "Engine swaps", "Engines built and spliced in (model, block or preset changes)"),
        ):
            label = QLabel("—")
            label.setStyleSheet(f"color: {theme.MUTED};")
            label.setToolTip(tip)
            form.addRow(title, label)
            self.details[key] = label
        return box

    # -- feeding -------------------------------------------------------------------------------
    def redraw_ratios(self) -> None:
        """Redraw the ratio plot and say in words what it shows."""
        self.ratio_plot.redraw()
        state = self.ratio_plot.state()
        self.ratio_note.setText(RATIO_NOTES[state].format(span=self.ratio_plot.span_s))
        self.ratio_note.setVisible(bool(self.ratio_note.text()))

    def show_details(self, s: dict) -> None:
        """Engine internals from a ``LiveHost.stats()`` snapshot."""
        rate = s.get("samplerate") or 0
        if not rate:
            return
        ms = 1000.0 / rate
        d = self.details
        d["host"].setText(f"{rate / 1000:g} kHz · period {s.get('period', 0)} samples")
        d["latency"].setText(
            f"engine {s.get('engine_latency_samples', 0) * ms:.1f} ms + margin {s.get('margin_samples', 0) * ms:.1f} ms"
        )
        d["level"].setText(f"{s.get('load_level', 0)} ({s.get('level_changes', 0)} changes)")
        d["dry"].setText(f"{s.get('dry_chunks', 0)} chunks · {s.get('fallback_samples', 0)} samples")
        d["swaps"].setText(str(s.get("swaps", 0)))
