"""The main window: the on/off bar and a message bar on top, controls on the left, Live / File /
Tune / Advanced tabs on the right.  Talks to the audio host only through
:class:`gui.host_controller.HostController` (slow jobs off-thread) and ``LiveHost.stats()`` /
``monitor()`` polled by QTimers at display rate.

Roles are split: :class:`gui.window_host.HostLifecycle` starts, stops and retries the host,
:class:`gui.window_engine.EngineEdits` applies control changes to the engine,
:class:`gui.window_presets.PresetActions` handles presets and file dialogs, the pages in
:mod:`gui.live_page` and :mod:`gui.advanced_page` display; this class lays out, boots and polls."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui import virtual_mic
from gui.advanced_page import AdvancedPage
from gui.dnsmos_meter import DnsmosWorker
from gui.file_mode import FilePanel
from gui.host_controller import (
    HostController,
    build_config,
    config_to_dict,
    device_lists,
    model_names,
    one_line,
    policy_names,
    preset_names,
)
from gui.live_page import SPECTRO_SPAN_S, LivePage
from gui.panels import ControlPanel, MessageBar, TunePanelSlot
from gui.settings import GuiSettings, settings_path
from gui.spectrum import FLOOR_DB, aligned_levels, spectrogram_db
from gui.transport import TransportBar
from gui.window_engine import EngineEdits, model_geometry
from gui.window_host import HostLifecycle
from gui.window_presets import PresetActions

POLL_MS = 33  # stats poll (~30 Hz)
SPECTRO_MS = 100  # spectrogram refresh (10 Hz)
SPECTRO_HOP_S = 0.025  # seconds per spectrogram column
METER_WINDOW_S = 0.05  # seconds of audio per meter reading (longer than a poll: no peak falls between)
RETRY_S = 5.0  # seconds between automatic retries when the audio devices cannot be opened

OUTPUT_NAMES = {"": "default output", "null": "no playback"}


@dataclass
class WindowOptions:
    """How the window starts.  ``None`` means: the remembered setting (or the default)."""

    preset: str | None = None  # name or .toml path; given → remembered edits are ignored
    input_device: str | None = None
    output_device: str | None = None  # "null" = no playback
    input_file: str | None = None  # feed this file in real time instead of a capture device
    remember: bool = True  # write settings back on change and on close
    settings_file: Path | None = None
    dnsmos: bool = True


class MainWindow(HostLifecycle, EngineEdits, PresetActions, QMainWindow):
    """streamsep's desktop app.  Signals: ``host_started``, ``host_failed(str)``, ``host_stopped``, ``booted``."""

    booted = pyqtSignal()
    host_started = pyqtSignal()
    host_failed = pyqtSignal(str)
    host_stopped = pyqtSignal()

    def __init__(self, options: WindowOptions | None = None) -> None:
        super().__init__()
        self.opts = options or WindowOptions()
        self.settings_file = self.opts.settings_file or settings_path()
        self.settings = GuiSettings.load(self.settings_file)
        self.preset = self.opts.preset or self.settings.preset
        self.config = None  # EngineConfig once booted
        self.geometry_rate_hop = (16000, 160)
        self.controller = HostController(parent=self)
        self.last_stats: dict = {}
        self.retry_s = RETRY_S
        self.virtual_mic_reason: str | None = "not checked yet"  # None once a virtual mic is possible
        self.start_attempts = 0  # host starts requested (first start and retries)
        self._user_stopped = False
        self._last_host_error: str | None = None
        self._last_seconds = None
        self._tick_n = 0
        self._started = False
        self._models: list[str] = []
        self._policies: list[str] = []
        self._rebuilding = 0
        self._live_during_rebuild: dict = {}
        self._save_timer = self._timer(400, self.save_settings, single=True)
        self.retry_timer = self._timer(int(self.retry_s * 1000), self.retry, single=True)
        self.setWindowTitle("streamsep")
        self.resize(1280, 800)
        self._build()
        if self.settings.warning:
            self.message_bar.show_message(self.settings.warning, "warning")
        self.poll_timer = self._timer(POLL_MS, self.poll)
        self.spectro_timer = self._timer(SPECTRO_MS, self.refresh_spectrogram)
        self.dnsmos_worker = DnsmosWorker(lambda: self.controller.host, parent=self)
        self.dnsmos_worker.result.connect(self._dnsmos_result)

    def _timer(self, ms: int, slot, single: bool = False) -> QTimer:
        t = QTimer(self)
        t.setInterval(ms)
        t.setSingleShot(single)
        t.timeout.connect(slot)
        return t

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 4)
        outer.setSpacing(4)
        self.transport = TransportBar()
        self.transport.set_virtual_mic(self.settings.virtual_mic)
        outer.addWidget(self.transport)
        self.message_bar = MessageBar()
        outer.addWidget(self.message_bar)

        self.controls = ControlPanel()
        self.controls.setEnabled(False)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumWidth(260)
        scroll.setMaximumWidth(380)

        self.tabs = QTabWidget()
        self.live_page = LivePage()
        self.tabs.addTab(self.live_page, "Live")
        self.file_panel = FilePanel(
            lambda: self.config, lambda: self.controls.devices()[1], self.message_bar.show_message
        )
        self.file_panel.on_open_request = self._ask_open_file
        self.file_panel.on_export_request = self._ask_export_file
        self.tabs.addTab(self.file_panel, "File")
        self.tune_slot = TunePanelSlot()
        self.tune_panel = None  # mounted on first visit (keeps matplotlib out of start-up)
        self.tabs.addTab(self.tune_slot, "Tune")
        self.advanced = AdvancedPage(dnsmos_on=self.opts.dnsmos)
        self.tabs.addTab(self.advanced, "Advanced")
        self.tabs.currentChanged.connect(self._tab_changed)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 980])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel("Loading the engine…")
        self.statusBar().addWidget(self.status_label, 1)
        self._connect()

    def _connect(self) -> None:
        for keys, slot in (
            ("Ctrl+O", self._open_from_shortcut),
            ("Ctrl+E", self._ask_export_file),
            ("Ctrl+L", self._ask_load_preset),
            ("Ctrl+Shift+S", self._ask_save_preset),
            ("Ctrl+B", self.transport.power.toggle),
            ("Ctrl+Q", self.close),
        ):
            QShortcut(QKeySequence(keys), self, activated=slot)
        c = self.controls
        c.live_changed.connect(self.on_live_changed)
        c.rebuild_changed.connect(self.on_rebuild_changed)
        c.devices_changed.connect(self.on_devices_changed)
        c.preset_chosen.connect(self.load_preset)
        c.preset_load_clicked.connect(self._ask_load_preset)
        c.preset_save_clicked.connect(self._ask_save_preset)
        c.preset_reset_clicked.connect(self.reset_preset)
        t = self.transport
        t.bypass_changed.connect(lambda bypass: self.on_live_changed({"bypass": bool(bypass)}))
        t.start_requested.connect(self.start_audio)
        t.stop_requested.connect(self.stop_audio)
        t.virtual_mic_changed.connect(self.set_virtual_mic)
        self.advanced.dnsmos_toggle.toggled.connect(self.set_dnsmos)

    # shortcuts to the display widgets (tests and scripts use these names)
    meters = property(lambda self: self.live_page.meters)
    spectrogram = property(lambda self: self.live_page.spectrogram)
    cards = property(lambda self: self.live_page.cards)
    ratio_plot = property(lambda self: self.advanced.ratio_plot)
    dnsmos = property(lambda self: self.advanced.dnsmos)
    dnsmos_toggle = property(lambda self: self.advanced.dnsmos_toggle)

    def show_config(self, cfg: dict, preset: str | None = None) -> None:
        """Show engine settings (EngineConfig fields) in the controls and the on/off switch."""
        self.controls.set_values(cfg, preset=preset)
        if "bypass" in cfg:
            self.transport.set_bypass(bool(cfg["bypass"]))

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.tune_slot:
            self.mount_tune_panel()

    def mount_tune_panel(self):
        """Put :class:`gui.tune_panel.TunePanel` into the Tune slot (once); None when it cannot load."""
        if self.tune_panel is None:
            try:
                from gui.tune_panel import TunePanel
            except Exception as exc:  # noqa: BLE001 -- the rest of the app works without it
                self.message_bar.show_message(f"Tune panel unavailable: {one_line(exc)}", "warning")
                return None
            self.tune_panel = TunePanel(host=lambda: self.controller.host, message=self.message_bar.show_message)
            scroll = QScrollArea()  # the panel is taller than a 600-pixel screen allows
            scroll.setWidget(self.tune_panel)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            self.tune_slot.layout().addWidget(scroll)
            if self._models:
                self.tune_panel.set_models(self._models, self.config.model if self.config else None)
                self.tune_panel.set_policies(self._policies)
        return self.tune_panel

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the engine and open the devices off the GUI thread (call once, after show())."""
        if self._started:
            return
        self._started = True
        overrides = {} if self.opts.preset else dict(self.settings.engine)
        preset = self.preset

        def boot():
            virtual_mic.prepare()  # before any device is listed (PipeWire routing)
            cfg, warnings = build_config(preset, overrides)
            ins, outs, dev_warning = device_lists()
            if dev_warning:
                warnings.append(dev_warning)
            return {
                "config": cfg,
                "warnings": warnings,
                "models": model_names(),
                "presets": preset_names(),
                "policies": policy_names(),
                "inputs": ins,
                "outputs": outs,
                "geometry": model_geometry(cfg.model),
                "virtual_mic": virtual_mic.availability(),
            }

        self.controller.submit(boot, self._booted, self._boot_failed)
        self.poll_timer.start()
        self.spectro_timer.start()

    def _booted(self, info: dict) -> None:
        self.config = info["config"]
        self._models, self._policies = list(info["models"]), list(info["policies"])
        if self.tune_panel is not None:
            self.tune_panel.set_models(self._models, self.config.model)
            self.tune_panel.set_policies(self._policies)
        c = self.controls
        c.set_choices(
            info["models"],
            info["presets"],
            info["inputs"],
            info["outputs"],
            self.opts.input_file,
            policies=info["policies"],
        )
        self.geometry_rate_hop = info["geometry"]
        c.set_geometry(*info["geometry"])
        self.show_config(config_to_dict(self.config), preset=self.preset)
        in_dev = self.opts.input_device if self.opts.input_device is not None else self.settings.input_device
        out_dev = self.opts.output_device if self.opts.output_device is not None else self.settings.output_device
        if self.opts.input_file and self.opts.input_device is None:
            in_dev = f"file:{self.opts.input_file}"
        c.set_devices(in_dev, out_dev)
        c.setEnabled(True)
        self.virtual_mic_reason = info["virtual_mic"]
        self.transport.set_virtual_mic_available(self.virtual_mic_reason)
        for w in info["warnings"]:
            self.message_bar.show_message(w, "warning")
        self.booted.emit()
        self.start_host()

    def _boot_failed(self, msg: str) -> None:
        self.message_bar.show_message(f"engine failed to load: {msg}", "error")
        self.status_label.setText("Engine not loaded")
        self.host_failed.emit(msg)

    # -- settings ----------------------------------------------------------------------------------
    def _changed(self) -> None:
        if self.opts.remember:
            self._save_timer.start()

    def save_settings(self) -> None:
        """Remember preset, devices and engine parameters (skipped when ``remember`` is off)."""
        if not self.opts.remember or self.config is None:
            return
        s = self.settings
        s.preset = self.preset
        in_dev, out_dev = self.controls.devices()
        if not in_dev.startswith("file:"):
            s.input_device = in_dev
        s.output_device = out_dev
        s.engine = config_to_dict(self.config)
        try:
            s.save(self.settings_file)
        except OSError as exc:
            self.message_bar.show_message(f"settings not saved: {one_line(exc)}", "warning")

    # -- display ------------------------------------------------------------------------------------
    def poll(self) -> None:
        """One display tick (~30 Hz): read the host's statistics and recent audio, update the meters."""
        host = self.controller.host
        now = time.monotonic()
        if host is None:
            self.live_page.show_levels(FLOOR_DB, FLOOR_DB, FLOOR_DB, FLOOR_DB, now)
            self.live_page.update_silence(None, now)
            return
        try:
            s = host.stats()
            lag = int(s.get("latency_samples") or 0)
            x_in, x_out, rate = host.monitor(METER_WINDOW_S + lag / max(1, host.rate) + 0.05)
        except Exception as exc:  # noqa: BLE001 -- host gone between ticks
            s, x_in, x_out, rate, lag = {"error": one_line(exc), "running": False}, [], [], 0, 0
        self.last_stats = s
        levels = aligned_levels(x_in, x_out, int(METER_WINDOW_S * rate), lag, slack=int(s.get("period") or 0))
        self.live_page.show_levels(*levels, now)
        self.live_page.update_silence(
            levels[0] if s.get("running") and s.get("seconds", 0) > 0 else None,
            now,
            from_file=self.controls.devices()[0].startswith("file:"),
        )
        err = s.get("error")
        if err and err != self._last_host_error:
            self.message_bar.show_message(f"audio: {err}", "error")
        self._last_host_error = err
        seconds = s.get("seconds")
        if seconds is not None and seconds != self._last_seconds:
            self._last_seconds = seconds
            self.ratio_plot.add(float(seconds), s.get("ratios") or [])
        self._tick_n += 1
        if self._tick_n % 3 == 0:
            self.advanced.redraw_ratios()
            cfg = self.config
            self.live_page.show_cards(s, cfg.steps if cfg else None, cfg.candidates if cfg else None)
            self.advanced.show_details(s)
            self._update_status(s)

    def _update_status(self, s: dict) -> None:
        running = s.get("running")
        secs = s.get("seconds") or 0.0
        model = s.get("model") or (self.config.model if self.config else "")
        in_dev, out_dev = self.controls.devices()
        src = Path(in_dev[5:]).name if in_dev.startswith("file:") else (in_dev or "default input")
        state = "● running" if running else "■ stopped"
        preset = Path(self.preset).stem if self.preset else "custom"
        mic = f' · virtual mic "{self.settings.virtual_mic}"' if running and self.virtual_mic_name() else ""
        self.status_label.setText(
            f"{state} · {model} · preset {preset} · {src} → {OUTPUT_NAMES.get(out_dev, out_dev)}{mic} · {secs:.1f} s"
        )

    def refresh_spectrogram(self) -> None:
        """Recompute the scrolling spectrograms from ``host.monitor()`` (10 Hz)."""
        host = self.controller.host
        if host is None or not self.isVisible() or self.tabs.currentWidget() is not self.live_page:
            return
        try:
            x_in, x_out, rate = host.monitor(SPECTRO_SPAN_S)
        except Exception:  # noqa: BLE001 -- host gone between ticks
            return
        cols = int(SPECTRO_SPAN_S / SPECTRO_HOP_S)
        s_in, freqs = spectrogram_db(x_in, rate, cols, SPECTRO_HOP_S)
        s_out, _ = spectrogram_db(x_out, rate, cols, SPECTRO_HOP_S)
        self.spectrogram.set_spectrograms(s_in, s_out, freqs)

    # -- shutdown -----------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers, the DNSMOS thread, playback and the host; remember the settings."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        for timer in (self.poll_timer, self.spectro_timer, self._save_timer, self.retry_timer):
            timer.stop()
        self.save_settings()
        # wait for a score in progress: a native onnxruntime call still running while the
        # interpreter exits aborts the process ("terminate called without an active exception")
        self.dnsmos_worker.stop(timeout=15.0)
        self.file_panel.shutdown(timeout=15.0)
        if self.tune_panel is not None:
            try:
                self.tune_panel.cancel()
                self.tune_panel.wait(15.0)
            except Exception as exc:  # noqa: BLE001 -- closing anyway
                print(f"streamsep gui: tune panel did not stop cleanly: {one_line(exc)}", file=sys.stderr)
        self.controller.shutdown()
