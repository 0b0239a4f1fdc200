"""The bar across the top of the window: the on/off switch, Start/Stop and the virtual microphone.

* **On/off** (``power``): on = the enhanced signal, off = bypass (the delay-aligned input); the
  stream keeps running either way, so switching is instant and click-free.
* **Start/Stop** (``start_stop``): opens or closes the audio devices.
* **Virtual microphone** (``virtual_mic``): publish the output as a microphone other apps can pick;
  disabled, with the reason as tooltip, where that is not possible.
"""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from gui import theme
from gui.virtual_mic import DEFAULT_NAME

_POWER_STYLE = (
    "QPushButton {{ font-size: 12pt; font-weight: 600; padding: 5px 18px; border-radius: 15px;"
    " min-width: 150px; border: 1px solid {edge}; background: {bg}; color: {fg}; }}"
    "QPushButton:disabled {{ color: #6b727b; background: {base}; border-color: #3a3f47; }}"
)


class TransportBar(QFrame):
    """On/off switch, Start/Stop and the virtual-microphone switch.

    Signals: ``bypass_changed(bool)`` (True = off/bypass), ``start_requested``, ``stop_requested``,
    ``virtual_mic_changed(str)`` ("" = off, else the source's name).  ``set_*`` methods update the
    display without emitting."""

    bypass_changed = pyqtSignal(bool)
    start_requested = pyqtSignal()
    stop_requested = pyqtSignal()
    virtual_mic_changed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transport")
        self.setStyleSheet(f"QFrame#transport {{ background: {theme.PANEL}; border-radius: 4px; }}")
        self.power = QPushButton()
        self.power.setCheckable(True)
        self.power.setChecked(True)
        self.power.setToolTip(
            "Noise removal on or off (Ctrl+B). Off passes the input through with the same "
            "delay; the audio keeps running."
        )
        self.start_stop = QPushButton("Stop")
        self.start_stop.setToolTip("Open or close the audio devices")
        self.start_stop.setMinimumWidth(80)
        self.virtual_mic = QCheckBox("Virtual microphone")
        self.virtual_mic.setEnabled(False)
        self.virtual_mic.setToolTip("Checking whether a virtual microphone can be made here…")
        self.state = QLabel("")
        self.state.setStyleSheet(f"color: {theme.MUTED};")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 5, 8, 5)
        lay.addWidget(self.power)
        lay.addWidget(self.start_stop)
        lay.addSpacing(12)
        lay.addWidget(self.virtual_mic)
        lay.addStretch(1)
        lay.addWidget(self.state)
        self.running = True
        self._name = DEFAULT_NAME
        self._style_power()
        self.power.toggled.connect(self._power_toggled)
        self.start_stop.clicked.connect(self._start_stop_clicked)
        self.virtual_mic.toggled.connect(self._virtual_mic_toggled)

    # -- user actions ----------------------------------------------------------------------
    def _power_toggled(self, on: bool) -> None:
        self._style_power()
        self.bypass_changed.emit(not on)

    def _start_stop_clicked(self) -> None:
        (self.stop_requested if self.running else self.start_requested).emit()

    def _virtual_mic_toggled(self, on: bool) -> None:
        self.virtual_mic_changed.emit(self._name if on else "")

    # -- display ---------------------------------------------------------------------------
    def _style_power(self) -> None:
        on = self.power.isChecked()
        self.power.setText("● Denoise ON" if on else "○ Denoise OFF")
        colour = theme.OK if on else theme.MUTED
        self.power.setStyleSheet(
            _POWER_STYLE.format(
                edge=colour, bg=colour + ("40" if on else "20"), fg=theme.TEXT if on else theme.MUTED, base=theme.BASE
            )
        )

    @property
    def bypass(self) -> bool:
        """True when the switch is off (the engine passes the input through)."""
        return not self.power.isChecked()

    def set_bypass(self, bypass: bool) -> None:
        """Show the engine's bypass state (no signal)."""
        old = self.power.blockSignals(True)
        self.power.setChecked(not bypass)
        self.power.blockSignals(old)
        self._style_power()

    def set_running(self, running: bool, text: str = "") -> None:
        """Show whether audio runs: the button then offers Stop, otherwise Start."""
        self.running = bool(running)
        self.start_stop.setText("■ Stop" if running else "▶ Start")
        self.state.setText(text)

    def set_virtual_mic(self, name: str) -> None:
        """Show the setting ("" = off) without emitting."""
        if name:
            self._name = name
        old = self.virtual_mic.blockSignals(True)
        self.virtual_mic.setChecked(bool(name))
        self.virtual_mic.blockSignals(old)

    def set_virtual_mic_available(self, reason: str | None) -> None:
        """Enable the switch (``reason`` None) or disable it with ``reason`` as tooltip."""
        self.virtual_mic.setEnabled(reason is None)
        if reason is None:
            self.virtual_mic.setToolTip(
                f'Publish the cleaned voice as a microphone named "{self._name}" '
                "that Zoom, Discord, OBS or a browser can pick"
            )
        else:
            self.virtual_mic.setToolTip(reason)
