"""The Tune tab: run the ``streamsep tune`` sweep on a file or on the last 20 s of live input, off the
GUI thread, with progress; show the quality-versus-load/latency plot, the table (Pareto rows in bold,
the recommendation highlighted) and save the recommendation as a preset.

Self-contained: mount it with ``slot.layout().addWidget(TunePanel(host=lambda: controller.host,
message=message_bar.show_message))``.  ``host()`` returns the running ``LiveHost`` or None; only its
``monitor(seconds)`` is used (input side).  ``streamsep.tune`` (and so torch) is imported in the
worker thread, never while building the widget.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui import theme

#: seconds of live input a live sweep uses
LIVE_SECONDS = 20.0
#: shortest live excerpt worth a sweep (DNSMOS needs about a second of audio to say anything)
MIN_LIVE_SECONDS = 2.0
DEFAULT_MODELS = ["dfn3", "nsnet2", "rnnoise", "spectral", "gtcrn", "dtln"]
COLUMNS = [
    ("#", None),
    ("steps", "steps"),
    ("cands", "candidates"),
    ("policy", "policy"),
    ("block", "block"),
    ("rtf", "rtf"),
    ("cpu rtf", "cpu_rtf"),
    ("latency ms", "latency_ms"),
    ("SI-SDR dB", "si_sdr"),
    ("PESQ", "pesq"),
    ("DNSMOS OVRL", "dnsmos_ovrl"),
]


class _Signals(QObject):
    progress = pyqtSignal(int, int)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal(str)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class TunePanel(QWidget):
    """The Tune tab.  Signals: ``sweep_finished(dict)`` (the result), ``preset_saved(str)`` (path)."""

    sweep_finished = pyqtSignal(object)
    preset_saved = pyqtSignal(str)

    def __init__(
        self,
        host: Callable[[], Any] | None = None,
        message: Callable[[str, str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._host = host
        self._message = message or (lambda text, level: None)
        self.result: dict | None = None
        self.busy = False
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._sig = _Signals()
        self._sig.progress.connect(self._on_progress)
        self._sig.finished.connect(self._on_finished)
        self._sig.failed.connect(self._on_failed)
        self._sig.cancelled.connect(self._on_cancelled)
        self._build()
        self._refresh()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self._build_source())
        left.addWidget(self._build_sweep())
        left.addLayout(self._build_actions())
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(420)
        lay = QHBoxLayout(self)
        lay.addWidget(left_w)
        lay.addWidget(self._build_results(), 1)
        self.file_btn.clicked.connect(lambda: self._browse(self.file_edit, "Noisy recording"))
        self.ref_btn.clicked.connect(lambda: self._browse(self.ref_edit, "Clean reference"))
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.save_btn.clicked.connect(self._ask_save_preset)
        self.json_btn.clicked.connect(self._ask_save_json)
        self.png_btn.clicked.connect(self._ask_save_plot)
        self.live_radio.toggled.connect(self._refresh)

    def _build_source(self) -> QWidget:
        src = QGroupBox("Audio to tune on")
        self.file_radio = QRadioButton("File")
        self.live_radio = QRadioButton(f"Live input, last {LIVE_SECONDS:.0f} s")
        self.file_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.file_radio)
        group.addButton(self.live_radio)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("noisy recording (wav, flac, ogg)")
        self.file_btn = QPushButton("Browse…")
        self.ref_edit = QLineEdit()
        self.ref_edit.setPlaceholderText("optional clean reference: enables SI-SDR and PESQ")
        self.ref_btn = QPushButton("Browse…")
        form = QFormLayout(src)
        row = QHBoxLayout()
        row.addWidget(self.file_radio)
        row.addWidget(self.file_edit, 1)
        row.addWidget(self.file_btn)
        form.addRow(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Reference"))
        row.addWidget(self.ref_edit, 1)
        row.addWidget(self.ref_btn)
        form.addRow(row)
        form.addRow(self.live_radio)
        return src

    def _build_sweep(self) -> QWidget:
        grid = QGroupBox("Sweep")
        g = QFormLayout(grid)
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.addItems(DEFAULT_MODELS)
        self.steps_edit = QLineEdit("0,1,2,3")
        self.cands_edit = QLineEdit("1,4")
        self.policy_edit = QLineEdit()  # filled from the library's names by set_policies
        self.policy_edit.setPlaceholderText("every engine policy")
        self.block_edit = QLineEdit("160,800")
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.01, 10.0)
        self.budget.setSingleStep(0.05)
        self.budget.setValue(0.5)
        tips = {
            self.steps_edit: "refinement steps K, comma list (0 = the plain model)",
            self.cands_edit: "candidate ratios per step, comma list (searching policies only)",
            self.policy_edit: "engine policies, comma list (empty = every one)",
            self.block_edit: "host block sizes in samples at the model rate, comma list",
            self.budget: "recommend the best configuration whose real-time factor stays at or below this",
        }
        for w, tip in tips.items():
            w.setToolTip(tip)
        g.addRow("Model", self.model_box)
        g.addRow("Steps", self.steps_edit)
        g.addRow("Candidates", self.cands_edit)
        g.addRow("Policies", self.policy_edit)
        g.addRow("Host blocks", self.block_edit)
        g.addRow("RTF budget", self.budget)
        return grid

    def _build_actions(self) -> QVBoxLayout:
        self.run_btn = QPushButton("Run sweep")
        self.cancel_btn = QPushButton("Cancel")
        self.save_btn = QPushButton("Save recommended as preset…")
        self.json_btn = QPushButton("Save JSON…")
        self.png_btn = QPushButton("Save plot…")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m configurations")
        self.status = QLabel("Choose a file (or live input) and run the sweep.")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {theme.MUTED};")

        left = QVBoxLayout()
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.cancel_btn)
        left.addLayout(buttons)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addStretch(1)
        for b in (self.save_btn, self.json_btn, self.png_btn):
            left.addWidget(b)
        return left

    def _build_results(self) -> QWidget:
        self.figure = Figure(figsize=(9, 4.2), dpi=90, facecolor=theme.PANEL)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.canvas)
        right.addWidget(self.table)
        right.setSizes([420, 220])
        return right

    def set_models(self, names: list[str], current: str | None = None) -> None:
        """Replace the model list (e.g. with ``registry.model_names()``) and select ``current``."""
        keep = current or self.model_box.currentText()
        self.model_box.clear()
        self.model_box.addItems(list(names))
        if keep:
            self.model_box.setCurrentText(keep)

    # -- running ----------------------------------------------------------------------------
    def _live_host(self):
        return self._host() if self._host is not None else None

    def _source(self) -> tuple[np.ndarray, int, np.ndarray | None, str]:
        """(noisy, rate, reference or None, description); raises ValueError naming the problem."""
        if self.live_radio.isChecked():
            host = self._live_host()
            if host is None:
                raise ValueError("live input: no live host is running (start it on the Live tab)")
            x, _, rate = host.monitor(LIVE_SECONDS)
            x = np.asarray(x, dtype=np.float32).reshape(-1)
            if len(x) < MIN_LIVE_SECONDS * rate:
                raise ValueError(
                    f"live input: only {len(x) / rate:.1f} s captured so far; need at least {MIN_LIVE_SECONDS:.0f} s"
                )
            return x, int(rate), None, f"live input ({len(x) / rate:.0f} s)"
        from streamsep.audio_io import read_audio, resample

        path = self.file_edit.text().strip()
        if not path:
            raise ValueError("choose a file to tune on (or live input)")
        x, rate = read_audio(path)
        ref = None
        ref_path = self.ref_edit.text().strip()
        if ref_path:
            ref, ref_rate = read_audio(ref_path)
            if ref_rate != rate:
                ref = resample(ref, ref_rate, rate)
            if abs(len(ref) - len(x)) > max(1, int(0.01 * rate)):
                raise ValueError(f"{ref_path}: reference is {len(ref) / rate:.2f} s, input is {len(x) / rate:.2f} s")
        return x, rate, ref, Path(path).name

    def options(self) -> dict:
        """The sweep's keyword arguments as typed in the panel (validated by ``sweep``); an empty
        policy list leaves the library's default (every engine policy)."""
        opts = {
            "model": self.model_box.currentText().strip(),
            "steps": self.steps_edit.text(),
            "candidates": self.cands_edit.text(),
            "policies": self.policy_edit.text(),
            "blocks": self.block_edit.text(),
            "budget_rtf": float(self.budget.value()),
        }
        if not opts["policies"].strip():
            del opts["policies"]
        return opts

    def set_policies(self, names: list[str]) -> None:
        """Offer these policy names (the library's) when the field is still empty."""
        if not self.policy_edit.text().strip():
            self.policy_edit.setText(",".join(names))

    def run(self) -> bool:
        """Start the sweep off the GUI thread; False (with a message) when it cannot start."""
        if self.busy:
            return False
        try:
            x, rate, ref, what = self._source()
        except (ValueError, OSError) as exc:
            self._report(_one_line(exc), "error")
            return False
        opts = self.options()
        self.busy = True
        self._cancel.clear()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"Tuning {opts['model']} on {what}…")
        self._refresh()
        sig, cancel = self._sig, self._cancel

        def job() -> None:
            from streamsep.tune import TuneCancelled, sweep

            try:
                res = sweep(
                    x, rate, ref, progress=lambda d, t: sig.progress.emit(d, t), cancelled=cancel.is_set, **opts
                )
                res["source"] = what
                sig.finished.emit(res)
            except TuneCancelled as exc:
                sig.cancelled.emit(_one_line(exc))
            except Exception as exc:  # noqa: BLE001 -- reported in the window
                sig.failed.emit(_one_line(exc))

        self._thread = threading.Thread(target=job, name="tune-sweep", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the configuration that is running now."""
        if self.busy:
            self._cancel.set()
            self.status.setText("Cancelling after the current configuration…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker ends (tests and shutdown); True when it has."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_finished(self, result: dict) -> None:
        self.busy = False
        self.show_result(result)
        self._refresh()
        self.sweep_finished.emit(result)

    def _on_failed(self, msg: str) -> None:
        self.busy = False
        self._report(f"tune: {msg}", "error")
        self._refresh()

    def _on_cancelled(self, msg: str) -> None:
        self.busy = False
        self.status.setText(msg[0].upper() + msg[1:] + ".")
        self._refresh()

    # -- results ----------------------------------------------------------------------------
    def show_result(self, result: dict) -> None:
        """Draw the plot, fill the table and say what is recommended."""
        from streamsep.tune import label, plot

        self.result = result
        plot(result, self.figure)
        theme.dark_figure(self.figure)
        self._fit_figure()
        self.canvas.draw_idle()
        rows, pareto, rec = result["configs"], set(result["pareto"]), result["recommended"]
        self.table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for i, r in enumerate(rows):
            for j, (_, key) in enumerate(COLUMNS):
                v = i if key is None else r.get(key)
                if isinstance(v, float):
                    text = "-" if not math.isfinite(v) else (f"{v:.1f}" if key == "latency_ms" else f"{v:.3f}")
                else:
                    text = "-" if v is None else str(v)
                item = QTableWidgetItem(text)
                if i in pareto:
                    item.setFont(bold)
                if i == rec:
                    item.setBackground(QColor(theme.ACCENT))
                    item.setForeground(QColor("#000000"))
                self.table.setItem(i, j, item)
        metric = result["quality_metric"]
        if rec is None:
            self.status.setText(
                f"No configuration fits the RTF budget {result['budget_rtf']:g}. Bold rows are "
                f"Pareto-optimal (quality = {metric})."
            )
        else:
            r = rows[rec]
            self.status.setText(
                f"Recommended: {label(r)}, RTF {r['rtf']:.2f}, {r['latency_ms']:.0f} ms, "
                f"{metric} {r['quality']:.2f}. Bold rows are Pareto-optimal."
            )

    def save_preset(self, name: str) -> Path | None:
        """Save the recommendation (name → user preset dir, or a path ending in .toml)."""
        from streamsep.tune import save_recommended

        if self.result is None:
            return None
        try:
            path = save_recommended(self.result, name)
        except Exception as exc:  # noqa: BLE001 -- CLIError / PresetError / OSError, shown to the user
            self._report(_one_line(exc), "error")
            return None
        self._report(f"saved preset {path}", "info")
        self.preset_saved.emit(str(path))
        return path

    def save_json(self, path: str | Path) -> bool:
        """Write the sweep result as JSON (atomically; numpy values as plain JSON)."""
        from streamsep.reporting import write_json

        if self.result is None:
            return False
        try:
            write_json(path, self.result)
        except (OSError, TypeError, ValueError) as exc:
            self._report(_one_line(exc), "error")
            return False
        return True

    def save_plot(self, path: str | Path) -> bool:
        from streamsep.tune import plot

        if self.result is None:
            return False
        try:
            plot(self.result, str(path))
        except (OSError, ValueError) as exc:
            self._report(_one_line(exc), "error")
            return False
        return True

    def _fit_figure(self) -> None:
        """Keep the plot inside the canvas at any window size: long titles and axis labels wrap,
        the layout is recomputed at every draw (so also after a resize)."""
        fig = self.figure
        title = fig.get_suptitle()
        if title:
            fig.suptitle(title, fontsize=9, wrap=True, color=theme.TEXT)
        for ax in fig.axes:
            for label in (ax.xaxis.label, ax.yaxis.label):
                label.set_wrap(True)
        fig.set_layout_engine("tight", rect=(0.0, 0.0, 0.8, 0.95))  # right: the legend

    # -- helpers ----------------------------------------------------------------------------
    def _report(self, text: str, level: str) -> None:
        self._message(text, level)
        if level == "error":
            self.status.setText(text)

    def _refresh(self) -> None:
        live = self.live_radio.isChecked()
        for w in (self.file_edit, self.file_btn, self.ref_edit, self.ref_btn):
            w.setEnabled(not live and not self.busy)
        for w in (
            self.file_radio,
            self.live_radio,
            self.model_box,
            self.steps_edit,
            self.cands_edit,
            self.policy_edit,
            self.block_edit,
            self.budget,
            self.run_btn,
        ):
            w.setEnabled(not self.busy)
        self.cancel_btn.setEnabled(self.busy)
        has = self.result is not None and not self.busy
        self.json_btn.setEnabled(has)
        self.png_btn.setEnabled(has)
        self.save_btn.setEnabled(has and self.result.get("recommended") is not None)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, title, edit.text() or "", "Audio (*.wav *.flac *.ogg);;All files (*)"
        )
        if path:
            edit.setText(path)

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name (or a path ending in .toml):", text="tuned")
        if ok and name.strip():
            self.save_preset(name.strip())

    def _ask_save_json(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save sweep JSON", "tune.json", "JSON (*.json)")
        if path:
            self.save_json(path)

    def _ask_save_plot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save plot", "tune.png", "PNG (*.png)")
        if path:
            self.save_plot(path)
