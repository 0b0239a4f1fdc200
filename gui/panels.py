"""Side panels: the message bar, the live controls and the Tune slot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui import theme

#: decision block sizes offered, in hops of the model (samples = hops × hop)
BLOCK_HOPS = (1, 2, 4, 5, 8, 10, 20)
MAX_STEPS = 8
MAX_CANDIDATES = 16


class MessageBar(QFrame):
    """A dismissable one-line banner at the top of the window: errors, warnings, notes."""

    LEVELS: ClassVar[dict[str, str]] = {"error": theme.ERROR, "warning": theme.WARN, "info": theme.ACCENT}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.hide()
        self.action.clicked.connect(self._act)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.clear)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action)
        lay.addWidget(close)
        self.level = ""
        self.history: list[tuple[str, str]] = []
        self._callback: Callable[[], None] | None = None
        self.hide()

    def show_message(
        self, text: str, level: str = "error", action: tuple[str, Callable[[], None]] | None = None
    ) -> None:
        """Show ``text`` (one line) with the colour of ``level`` ("error", "warning", "info") and,
        with ``action`` = (button text, callback), a button that runs the callback."""
        text = " ".join(str(text).split())
        self.level = level
        self.history.append((level, text))
        self._callback = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        colour = self.LEVELS.get(level, theme.ERROR)
        self.setStyleSheet(f"MessageBar {{ background: {colour}33; border: 1px solid {colour}; border-radius: 3px; }}")
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() or self.label.text() else ""

    def clear(self) -> None:
        self.label.setText("")
        self.level = ""
        self._callback = None
        self.action.hide()
        self.hide()

    def _act(self) -> None:
        if self._callback is not None:
            self._callback()


def _combo(items=()) -> QComboBox:
    c = QComboBox()
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(12)
    for it in items:
        c.addItem(it, it)
    return c


def _select_data(combo: QComboBox, value) -> bool:
    i = combo.findData(value)
    if i >= 0:
        combo.setCurrentIndex(i)
    return i >= 0


class ControlPanel(QWidget):
    """Every live control.  Emits what changed; the window decides how to apply it.

    ``live_changed(dict)``: steps, candidates, policy, mix, atten_db (host mailbox; the on/off
    switch lives in :class:`gui.transport.TransportBar`).
    ``rebuild_changed(dict)``: model or block (a new engine).  ``devices_changed(in, out)``:
    device names ("" = default, "null" = no playback, "file:PATH" = file input).
    ``preset_chosen(str)``, ``preset_load_clicked``, ``preset_save_clicked``, ``preset_reset_clicked``.
    """

    live_changed = pyqtSignal(dict)
    rebuild_changed = pyqtSignal(dict)
    devices_changed = pyqtSignal(str, str)
    preset_chosen = pyqtSignal(str)
    preset_load_clicked = pyqtSignal()
    preset_save_clicked = pyqtSignal()
    preset_reset_clicked = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._rate, self._hop = 16000, 160
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for build in (self._build_preset, self._build_audio, self._build_model, self._build_output):
            lay.addWidget(build())
        lay.addStretch(1)
        self._connect()

    def _build_preset(self) -> QWidget:
        box = QGroupBox("Preset")
        form = QVBoxLayout(box)
        self.preset = _combo()
        self.preset.setToolTip("Built-in presets and preset files loaded in this session")
        form.addWidget(self.preset)
        row = QHBoxLayout()
        self.preset_load = QPushButton("Load…")
        self.preset_load.setToolTip("Load a preset file (Ctrl+L)")
        self.preset_save = QPushButton("Save as…")
        self.preset_save.setToolTip("Save the current settings as a preset file (Ctrl+Shift+S)")
        self.preset_reset = QPushButton("Reset")
        self.preset_reset.setToolTip("Discard edits: back to the selected preset's values")
        for b in (self.preset_load, self.preset_save, self.preset_reset):
            row.addWidget(b)
        form.addLayout(row)
        return box

    def _build_audio(self) -> QWidget:
        box = QGroupBox("Audio")
        form = QFormLayout(box)
        self.input_device = _combo()
        self.output_device = _combo()
        form.addRow("Input", self.input_device)
        form.addRow("Output", self.output_device)
        return box

    def _build_model(self) -> QWidget:
        box = QGroupBox("Model and refinement")
        form = QFormLayout(box)
        self.model = _combo()
        self.steps = QSpinBox()
        self.steps.setRange(0, MAX_STEPS)
        self.steps.setSpecialValueText("0 (plain model)")
        self.steps.setToolTip("K refinement steps after the first pass: z = r·x + (1−r)·y, run the model again")
        self.candidates = QSpinBox()
        self.candidates.setRange(1, MAX_CANDIDATES)
        self.candidates.setToolTip("Blend ratios tried per step (the previous estimate is always kept as a candidate)")
        self.policy = _combo()  # filled from the library's policy names by set_choices
        self.policy.setToolTip(
            "How the ratio of each step is chosen: fixed schedule, SNR heuristic, reference-free proxy"
        )
        self.block = _combo()
        self.block.setToolTip("Decision block: samples at the model rate between ratio decisions")
        form.addRow("Model", self.model)
        form.addRow("Steps K", self.steps)
        form.addRow("Candidates", self.candidates)
        form.addRow("Policy", self.policy)
        form.addRow("Block", self.block)
        return box

    def _build_output(self) -> QWidget:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        mixrow = QHBoxLayout()
        self.mix = QSlider(Qt.Orientation.Horizontal)
        self.mix.setRange(0, 100)
        self.mix.setToolTip("Wet/dry: 100 % = fully processed, 0 % = delay-aligned input")
        self.mix_label = QLabel("100 %")
        self.mix_label.setMinimumWidth(40)
        mixrow.addWidget(self.mix, 1)
        mixrow.addWidget(self.mix_label)
        self.atten = QSpinBox()
        self.atten.setRange(0, 60)
        self.atten.setSuffix(" dB")
        self.atten.setSpecialValueText("unlimited")
        self.atten.setToolTip("Attenuation limit: the most the processor may suppress, in dB")
        form.addRow("Wet/dry", mixrow)
        form.addRow("Max. suppression", self.atten)
        return box

    def _connect(self) -> None:
        self.steps.valueChanged.connect(lambda v: self.live_changed.emit({"steps": int(v)}))
        self.candidates.valueChanged.connect(lambda v: self.live_changed.emit({"candidates": int(v)}))
        self.policy.currentIndexChanged.connect(lambda _: self.live_changed.emit({"policy": self.policy.currentData()}))
        self.mix.valueChanged.connect(self._mix_changed)
        self.atten.valueChanged.connect(lambda v: self.live_changed.emit({"atten_db": None if v == 0 else float(v)}))
        self.model.currentIndexChanged.connect(lambda _: self.rebuild_changed.emit({"model": self.model.currentData()}))
        self.block.currentIndexChanged.connect(
            lambda _: self.rebuild_changed.emit({"block": int(self.block.currentData())})
        )
        self.input_device.currentIndexChanged.connect(self._devices_changed)
        self.output_device.currentIndexChanged.connect(self._devices_changed)
        self.preset.currentIndexChanged.connect(lambda _: self.preset_chosen.emit(self.preset.currentData() or ""))
        self.preset_load.clicked.connect(self.preset_load_clicked)
        self.preset_save.clicked.connect(self.preset_save_clicked)
        self.preset_reset.clicked.connect(self.preset_reset_clicked)

    # -- signal helpers ------------------------------------------------------------------
    def _mix_changed(self, v: int) -> None:
        self.mix_label.setText(f"{v} %")
        self.live_changed.emit({"mix": v / 100.0})

    def _devices_changed(self, _=None) -> None:
        self.devices_changed.emit(self.input_device.currentData() or "", self.output_device.currentData() or "")

    def _quiet(self):
        widgets = (
            self.preset,
            self.input_device,
            self.output_device,
            self.model,
            self.steps,
            self.candidates,
            self.policy,
            self.block,
            self.mix,
            self.atten,
        )
        return _Blocked(widgets)

    # -- filling and reading ----------------------------------------------------------------
    def set_choices(
        self,
        models: list[str],
        presets: list[str],
        inputs: list[str],
        outputs: list[str],
        input_file: str | None = None,
        policies: list[str] = (),
    ) -> None:
        """Fill the combo boxes (no signals); names come from the library."""
        with self._quiet():
            self.model.clear()
            for m in models:
                self.model.addItem(m, m)
            self.policy.clear()
            for name in policies:
                self.policy.addItem(name, name)
            self.preset.clear()
            for p in presets:
                self.preset.addItem(p, p)
        self.set_device_choices(inputs, outputs, input_file)

    def set_device_choices(self, inputs: list[str], outputs: list[str], input_file: str | None = None) -> None:
        """Fill the device lists (no signals), keeping the selected devices selected."""
        chosen = self.devices()
        with self._quiet():
            self.input_device.clear()
            if input_file:
                self.input_device.addItem(f"File: {Path(input_file).name}", f"file:{input_file}")
            self.input_device.addItem("System default", "")
            for d in inputs:
                self.input_device.addItem(d, d)
            self.output_device.clear()
            self.output_device.addItem("System default", "")
            self.output_device.addItem("None (no playback)", "null")
            for d in outputs:
                self.output_device.addItem(d, d)
        self.set_devices(*chosen)

    def set_geometry(self, rate: int, hop: int) -> None:
        """Model rate (Hz) and hop (samples): relabel the block sizes in ms."""
        current = self.block.currentData()
        self._rate, self._hop = int(rate), int(hop)
        with self._quiet():
            self.block.clear()
            for n in BLOCK_HOPS:
                ms = 1000.0 * n * hop / rate
                self.block.addItem(f"{n * hop} samples ({ms:g} ms)", n * hop)
            if current is not None and not _select_data(self.block, current):
                self._add_block_item(int(current))

    def _add_block_item(self, samples: int) -> None:
        ms = 1000.0 * samples / self._rate
        self.block.addItem(f"{samples} samples ({ms:g} ms)", samples)
        self.block.setCurrentIndex(self.block.count() - 1)

    def set_values(self, cfg: dict, preset: str | None = None) -> None:
        """Show an engine configuration (dict of EngineConfig fields) without emitting signals."""
        with self._quiet():
            if preset is not None and not _select_data(self.preset, preset):
                self.preset.addItem(Path(preset).name if preset.endswith(".toml") else preset, preset)
                self.preset.setCurrentIndex(self.preset.count() - 1)
            if "model" in cfg and not _select_data(self.model, cfg["model"]):
                self.model.addItem(cfg["model"], cfg["model"])
                self.model.setCurrentIndex(self.model.count() - 1)
            if "steps" in cfg:
                if cfg["steps"] > self.steps.maximum():
                    self.steps.setMaximum(int(cfg["steps"]))
                self.steps.setValue(int(cfg["steps"]))
            if "candidates" in cfg:
                if cfg["candidates"] > self.candidates.maximum():
                    self.candidates.setMaximum(int(cfg["candidates"]))
                self.candidates.setValue(int(cfg["candidates"]))
            if "policy" in cfg and not _select_data(self.policy, cfg["policy"]):
                self.policy.addItem(cfg["policy"], cfg["policy"])
                self.policy.setCurrentIndex(self.policy.count() - 1)
            if "block" in cfg:
                block = int(cfg["block"]) or self._hop
                if not _select_data(self.block, block):
                    self._add_block_item(block)
            if "mix" in cfg:
                self.mix.setValue(round(float(cfg["mix"]) * 100))
                self.mix_label.setText(f"{self.mix.value()} %")
            if "atten_db" in cfg:
                self.atten.setValue(0 if cfg["atten_db"] is None else round(float(cfg["atten_db"])))

    def set_devices(self, input_device: str, output_device: str) -> None:
        """Select devices by name (added to the list when not present, e.g. a vanished device)."""
        with self._quiet():
            for combo, name in ((self.input_device, input_device), (self.output_device, output_device)):
                if not _select_data(combo, name):
                    combo.addItem(f"{name} (not found)", name)
                    combo.setCurrentIndex(combo.count() - 1)

    def devices(self) -> tuple[str, str]:
        return self.input_device.currentData() or "", self.output_device.currentData() or ""


class _Blocked:
    """Context manager: block the signals of several widgets."""

    def __init__(self, widgets) -> None:
        self.widgets = widgets

    def __enter__(self):
        self.old = [w.blockSignals(True) for w in self.widgets]
        return self

    def __exit__(self, *exc) -> None:
        for w, old in zip(self.widgets, self.old):
            w.blockSignals(old)


class TunePanelSlot(QWidget):
    """Empty slot for the Tune panel, which another part of the project fills in later.

    Whoever implements it adds widgets to ``self.layout()``; it holds nothing yet on purpose.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TunePanelSlot")
        QVBoxLayout(self)
