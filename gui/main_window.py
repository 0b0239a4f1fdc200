"""The main window: controls on the left, Live / File / Tune tabs on the right, a message bar on
top.  Talks to the audio host only through :class:`gui.host_controller.HostController` (slow jobs
off-thread) and ``LiveHost.stats()`` / ``monitor()`` polled by QTimers at display rate."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMainWindow,
                             QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from gui import theme
from gui.dnsmos_meter import DnsmosMeter, DnsmosWorker
from gui.file_mode import FilePanel
from gui.host_controller import (LIVE_PARAMS, HostController, build_config, config_to_dict, device_lists,
                                 model_names, one_line, preset_names)
from gui.meters import LevelMeters, RatioPlot, SpectrogramView, StatCard
from gui.panels import ControlPanel, MessageBar, TunePanelSlot
from gui.settings import GuiSettings, settings_path
from gui.spectrum import FLOOR_DB, spectrogram_db, to_db

POLL_MS = 33            # stats poll (~30 Hz)
SPECTRO_MS = 100        # spectrogram refresh (10 Hz)
SPECTRO_SPAN_S = 6.0    # seconds of history shown
SPECTRO_HOP_S = 0.025   # seconds per spectrogram column

OUTPUT_NAMES = {"": "default output", "null": "no playback"}

_geometry_cache: dict[str, tuple[int, int]] = {}


def model_geometry(model: str) -> tuple[int, int]:
    """(sample rate in Hz, hop in samples) of a model, cached; worker thread only."""
    if model not in _geometry_cache:
        from streamsep.separators.registry import create

        sep = create(model)
        _geometry_cache[model] = (int(sep.sample_rate), int(sep.hop))
    return _geometry_cache[model]


@dataclass
class WindowOptions:
    """How the window starts.  ``None`` means: the remembered setting (or the default)."""

    preset: str | None = None          # name or .toml path; given → remembered edits are ignored
    input_device: str | None = None
    output_device: str | None = None   # "null" = no playback
    input_file: str | None = None      # feed this file in real time instead of a capture device
    remember: bool = True              # write settings back on change and on close
    settings_file: Path | None = None
    dnsmos: bool = True


class MainWindow(QMainWindow):
    """streamsep's desktop app.  Signals: ``host_started``, ``host_failed(str)``, ``booted``."""

    booted = pyqtSignal()
    host_started = pyqtSignal()
    host_failed = pyqtSignal(str)

    def __init__(self, options: WindowOptions | None = None) -> None:
        super().__init__()
        self.opts = options or WindowOptions()
        self.settings_file = self.opts.settings_file or settings_path()
        self.settings = GuiSettings.load(self.settings_file)
        self.preset = self.opts.preset or self.settings.preset
        self.config = None                     # EngineConfig once booted
        self.geometry_rate_hop = (16000, 160)
        self.controller = HostController(parent=self)
        self._last_host_error: str | None = None
        self._last_seconds = None
        self._tick_n = 0
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_settings)
        self.setWindowTitle("streamsep")
        self.resize(1280, 800)
        self._build()
        if self.settings.warning:
            self.message_bar.show_message(self.settings.warning, "warning")
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll)
        self.spectro_timer = QTimer(self)
        self.spectro_timer.setInterval(SPECTRO_MS)
        self.spectro_timer.timeout.connect(self.refresh_spectrogram)
        self.dnsmos_worker = DnsmosWorker(lambda: self.controller.host, parent=self)
        self.dnsmos_worker.result.connect(self.dnsmos.show_result)
        self._started = False
        self._models: list[str] = []
        self._rebuilding = 0                   # engine rebuild jobs in flight
        self._live_during_rebuild: dict = {}   # live edits made meanwhile (re-applied when done)

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 4)
        self.message_bar = MessageBar()
        outer.addWidget(self.message_bar)

        self.controls = ControlPanel()
        self.controls.setEnabled(False)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(self.controls)
        left_lay.addWidget(self._build_details())
        left_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumWidth(300)
        scroll.setMaximumWidth(380)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_live(), "Live")
        self.file_panel = FilePanel(lambda: self.config, lambda: self.controls.devices()[1],
                                    self.message_bar.show_message)
        self.file_panel.on_open_request = self._ask_open_file
        self.file_panel.on_export_request = self._ask_export_file
        self.tabs.addTab(self.file_panel, "File")
        self.tune_slot = TunePanelSlot()
        self.tune_panel = None            # mounted on first visit (keeps matplotlib out of start-up)
        self.tabs.addTab(self.tune_slot, "Tune")
        self.tabs.currentChanged.connect(self._tab_changed)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 960])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel("Loading the engine…")
        self.statusBar().addWidget(self.status_label, 1)

        for keys, slot in (("Ctrl+O", self._open_from_shortcut), ("Ctrl+E", self._ask_export_file),
                           ("Ctrl+L", self._ask_load_preset), ("Ctrl+Shift+S", self._ask_save_preset),
                           ("Ctrl+B", lambda: self.controls.bypass.toggle()), ("Ctrl+Q", self.close)):
            QShortcut(QKeySequence(keys), self, activated=slot)

        c = self.controls
        c.live_changed.connect(self.on_live_changed)
        c.rebuild_changed.connect(self.on_rebuild_changed)
        c.devices_changed.connect(self.on_devices_changed)
        c.preset_chosen.connect(self.load_preset)
        c.preset_load_clicked.connect(self._ask_load_preset)
        c.preset_save_clicked.connect(self._ask_save_preset)
        c.preset_reset_clicked.connect(self.reset_preset)

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
            self.tune_slot.layout().addWidget(self.tune_panel)
            if self._models:
                self.tune_panel.set_models(self._models, self.config.model if self.config else None)
        return self.tune_panel

    def _build_details(self) -> QWidget:
        box = QGroupBox("Engine details")
        form = QFormLayout(box)
        form.setVerticalSpacing(3)
        self.details = {}
        for key, title, tip in (
                ("host", "Audio", "Host sample rate and device period"),
                ("latency", "Latency", "Engine latency (model + block) plus the host's safety margin"),
                ("level", "Load level", "Deadline control: 0 = all requested work, higher = fewer steps/candidates"),
                ("dry", "Dry fallback", "Chunks the host passed through unprocessed to stay on time"),
                ("swaps", "Engine swaps", "Engines built and spliced in (model, block or preset changes)")):
            label = QLabel("—")
            label.setStyleSheet(f"color: {theme.MUTED};")
            label.setToolTip(tip)
            form.addRow(title, label)
            self.details[key] = label
        return box

    def _build_live(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setHorizontalSpacing(8)

        self.meters = LevelMeters()
        self.spectrogram = SpectrogramView(span_s=SPECTRO_SPAN_S)
        grid.addWidget(self.meters, 0, 0)
        grid.addWidget(self.spectrogram, 0, 1, 1, 2)

        strip = QFrame()
        strip.setStyleSheet(f"QFrame#strip {{ background: {theme.PANEL}; border-radius: 4px; }}")
        strip.setObjectName("strip")
        row = QHBoxLayout(strip)
        row.setContentsMargins(4, 4, 4, 4)
        self.cards = {
            "latency": StatCard("Latency", "ms", "Input-to-output delay of the engine (constant)"),
            "rtf": StatCard("Load (RTF)", "", "Processing time / audio time; above 1 the host cannot keep up"),
            "steps": StatCard("Steps in use", "", "Refinement steps running now / requested"),
            "candidates": StatCard("Candidates", "", "Ratios tried per step now / requested"),
            "misses": StatCard("Deadline misses", "", "Blocks that were not ready in time"),
            "xruns": StatCard("Xruns", "", "Audio device under/overruns"),
        }
        for card in self.cards.values():
            row.addWidget(card)
        grid.addWidget(strip, 1, 0, 1, 3)

        self.ratio_plot = RatioPlot()
        ratio_box = QGroupBox("Chosen ratio per step")
        QVBoxLayout(ratio_box).addWidget(self.ratio_plot)
        ratio_box.layout().setContentsMargins(4, 4, 4, 4)
        grid.addWidget(ratio_box, 2, 0, 1, 2)

        self.dnsmos = DnsmosMeter()
        dn_box = QGroupBox("DNSMOS (output, last 9 s)")
        dn_lay = QVBoxLayout(dn_box)
        self.dnsmos_toggle = QCheckBox("score every second")
        self.dnsmos_toggle.setToolTip("Runs DNSMOS on the last 9 s of output about once a second "
                                      "(~0.2 s of CPU per score, on a background thread)")
        self.dnsmos_toggle.setChecked(self.opts.dnsmos)
        self.dnsmos_toggle.setStyleSheet(f"color: {theme.MUTED}; font-size: 8pt;")
        self.dnsmos_toggle.toggled.connect(self.set_dnsmos)
        dn_lay.addWidget(self.dnsmos_toggle)
        dn_lay.addWidget(self.dnsmos, 1)
        dn_box.setFixedWidth(290)
        grid.addWidget(dn_box, 2, 2)

        grid.setColumnStretch(1, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(2, 2)
        return page

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the engine and open the devices off the GUI thread (call once, after show())."""
        if self._started:
            return
        self._started = True
        overrides = {} if self.opts.preset else dict(self.settings.engine)
        preset = self.preset

        def boot():
            cfg, warnings = build_config(preset, overrides)
            ins, outs, dev_warning = device_lists()
            if dev_warning:
                warnings.append(dev_warning)
            return {"config": cfg, "warnings": warnings, "models": model_names(), "presets": preset_names(),
                    "inputs": ins, "outputs": outs, "geometry": model_geometry(cfg.model)}

        self.controller.submit(boot, self._booted, self._boot_failed)
        self.poll_timer.start()
        self.spectro_timer.start()

    def _booted(self, info: dict) -> None:
        self.config = info["config"]
        self._models = list(info["models"])
        if self.tune_panel is not None:
            self.tune_panel.set_models(self._models, self.config.model)
        c = self.controls
        c.set_choices(info["models"], info["presets"], info["inputs"], info["outputs"], self.opts.input_file)
        self.geometry_rate_hop = info["geometry"]
        c.set_geometry(*info["geometry"])
        c.set_values(config_to_dict(self.config), preset=self.preset)
        in_dev = self.opts.input_device if self.opts.input_device is not None else self.settings.input_device
        out_dev = self.opts.output_device if self.opts.output_device is not None else self.settings.output_device
        if self.opts.input_file and self.opts.input_device is None:
            in_dev = f"file:{self.opts.input_file}"
        c.set_devices(in_dev, out_dev)
        c.setEnabled(True)
        for w in info["warnings"]:
            self.message_bar.show_message(w, "warning")
        self.booted.emit()
        self.start_host()

    def _boot_failed(self, msg: str) -> None:
        self.message_bar.show_message(f"engine failed to load: {msg}", "error")
        self.status_label.setText("Engine not loaded")
        self.host_failed.emit(msg)

    def start_host(self) -> None:
        """(Re)start the live host with the selected devices and the current configuration."""
        in_dev, out_dev = self.controls.devices()
        input_file = in_dev[5:] if in_dev.startswith("file:") else None
        self.status_label.setText("Opening audio devices…")
        self._reset_displays()
        self.controller.start_host(self.config, None if input_file else (in_dev or None), out_dev or None,
                                   input_file, self._host_ready, self._host_error)

    def set_dnsmos(self, on: bool) -> None:
        """Turn the background DNSMOS meter on or off."""
        self.opts.dnsmos = bool(on)
        if on and self.controller.host is not None:
            self.dnsmos_worker.start()
        elif not on:
            self.dnsmos_worker.stop(timeout=0.0)
            self.dnsmos.reset("off")

    def _host_ready(self, host) -> None:
        if self.message_bar.level == "error" and self.message_bar.label.text().startswith("audio:"):
            self.message_bar.clear()
        self._last_host_error = None
        if self.opts.dnsmos:
            self.dnsmos_worker.start()
        self.host_started.emit()

    def _host_error(self, msg: str) -> None:
        self.message_bar.show_message(f"audio: {msg}", "error")
        self.status_label.setText("Stopped: no audio")
        self._reset_displays()
        self.host_failed.emit(msg)

    def _reset_displays(self) -> None:
        self.ratio_plot.clear()
        self.dnsmos.reset("waiting for audio" if self.opts.dnsmos else "off")
        self._last_seconds = None

    # -- controls → engine ----------------------------------------------------------------------
    def on_live_changed(self, changes: dict) -> None:
        """Steps, candidates, policy, mix, attenuation, bypass: the host's mailbox, applied live."""
        if self.config is None:
            return
        try:
            new = dataclasses.replace(self.config, **changes)
            if hasattr(new, "validate"):
                new.validate()
            self.controller.set_params(**{k: v for k, v in changes.items() if k in LIVE_PARAMS})
        except Exception as exc:  # noqa: BLE001 -- ConfigError, a vanished host: shown, not raised
            self.message_bar.show_message(one_line(exc), "error")
            self.controls.set_values(config_to_dict(self.config))
            return
        self.config = new
        if self._rebuilding:                 # keep it across the engine being rebuilt right now
            self._live_during_rebuild.update(changes)
        self._changed()

    def on_rebuild_changed(self, changes: dict) -> None:
        """Model or block size: a new engine, built off the GUI thread and swapped in by the host.

        ``self.config`` changes at once (later edits build on it); live edits made while the engine
        is being built are re-sent once it is in, a failure reverts the changed keys."""
        if self.config is None:
            return
        old = self.config
        new = dataclasses.replace(old, **changes)
        self.config = new
        old_hop = self.geometry_rate_hop[1]
        self._rebuilding += 1
        self.controls.setEnabled(False)
        self.status_label.setText(f"Loading {new.model}…")

        def job():
            rate, hop = model_geometry(new.model)
            cfg = new
            if "model" in changes and (cfg.block or old_hop) % hop:
                hops = max(1, (old.block or old_hop) // old_hop)
                cfg = dataclasses.replace(cfg, block=hops * hop)
            cfg.validate()
            if host is not None:
                host.set_config(cfg)
            return cfg, (rate, hop)

        def finish() -> dict:
            self._rebuilding -= 1
            pending = dict(self._live_during_rebuild)
            if not self._rebuilding:
                self._live_during_rebuild.clear()
            self.controls.setEnabled(not self._rebuilding)
            return pending

        def done(result) -> None:
            cfg, geom = result
            pending = finish()
            if cfg.block != new.block:       # block kept at the same number of hops of the new model
                self.config = dataclasses.replace(self.config, block=cfg.block)
            if pending:                      # edits made while the engine was being built
                try:
                    self.controller.set_params(**pending)
                except Exception as exc:  # noqa: BLE001
                    self.message_bar.show_message(one_line(exc), "error")
            self.geometry_rate_hop = geom
            self.controls.set_geometry(*geom)
            self.controls.set_values(config_to_dict(self.config))
            self._changed()

        def failed(msg: str) -> None:
            finish()
            self.message_bar.show_message(msg, "error")
            self.config = dataclasses.replace(self.config, **{k: getattr(old, k) for k in changes})
            self.controls.set_values(config_to_dict(self.config))

        host = self.controller.host
        self.controller.submit(job, done, failed)

    def on_devices_changed(self, input_device: str, output_device: str) -> None:
        """A different input or output device: the host is restarted with it (off-thread)."""
        if self.config is None:
            return
        self._changed()
        self.start_host()

    def apply_config(self, cfg, preset: str | None = None) -> None:
        """Make ``cfg`` (a whole EngineConfig, e.g. from a preset) the running configuration.

        Only live parameters differ → the host's mailbox; anything else → a new engine."""
        if preset is not None:
            self.preset = preset
        self.controls.set_values(config_to_dict(cfg), preset=preset)
        old = self.config
        names = [f.name for f in dataclasses.fields(cfg)]
        differ = [k for k in names if getattr(cfg, k) != getattr(old, k)]
        if all(k in LIVE_PARAMS for k in differ):
            if differ:
                self.on_live_changed({k: getattr(cfg, k) for k in differ})
            else:
                self._changed()
        else:
            self.on_rebuild_changed({k: getattr(cfg, k) for k in names})

    # -- presets ----------------------------------------------------------------------------------
    def load_preset(self, name_or_path: str) -> bool:
        """Load a preset by name or path and apply it; a bad preset shows a message."""
        if not name_or_path or self.config is None:
            return False
        from streamsep.presets import load_preset

        try:
            cfg = load_preset(name_or_path)
        except Exception as exc:  # noqa: BLE001 -- PresetError and friends: one line in the window
            self.message_bar.show_message(f"preset not loaded: {one_line(exc)}", "error")
            self.controls.set_values({}, preset=self.preset)
            return False
        self.apply_config(cfg, preset=str(name_or_path))
        self.status_label.setText(f"Preset {Path(str(name_or_path)).stem} loaded")
        return True

    def save_preset(self, path: str | Path) -> bool:
        """Save the current settings as a preset file and select it."""
        if self.config is None:
            return False
        from streamsep.presets import save_preset

        try:
            save_preset(self.config, path)
        except Exception as exc:  # noqa: BLE001
            self.message_bar.show_message(f"preset not saved: {one_line(exc)}", "error")
            return False
        self.preset = str(path)
        self.controls.set_values({}, preset=self.preset)
        self.message_bar.show_message(f"preset saved to {path}", "info")
        self._changed()
        return True

    def reset_preset(self) -> None:
        """Discard edits: reload the selected preset."""
        self.load_preset(self.preset)

    def _ask_load_preset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", self.settings.last_file_dir, "Presets (*.toml)")
        if path:
            self.load_preset(path)

    def _ask_save_preset(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset as", self.settings.last_file_dir, "Presets (*.toml)")
        if path:
            if not path.endswith(".toml"):
                path += ".toml"
            self.save_preset(path)

    def _ask_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio file", self.settings.last_file_dir,
                                              "Audio (*.wav *.flac *.ogg);;All files (*)")
        if path:
            self.settings.last_file_dir = str(Path(path).parent)
            self.file_panel.open_file(path)

    def _open_from_shortcut(self) -> None:
        self.tabs.setCurrentWidget(self.file_panel)
        self._ask_open_file()

    def _ask_export_file(self) -> None:
        base = self.file_panel.path
        suggestion = str(base.with_name(base.stem + "_enhanced.wav")) if base else ""
        path, _ = QFileDialog.getSaveFileName(self, "Export processed audio", suggestion,
                                              "Audio (*.wav *.flac *.ogg)")
        if path:
            self.file_panel.export(path)

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
        """One display tick (~30 Hz): read the host's statistics snapshot, update the meters."""
        host = self.controller.host
        now = time.monotonic()
        if host is None:
            self.meters.set_levels(FLOOR_DB, FLOOR_DB, FLOOR_DB, FLOOR_DB, now)
            return
        try:
            s = host.stats()
        except Exception as exc:  # noqa: BLE001
            s = {"error": one_line(exc), "running": False}
        self.last_stats = s
        self.meters.set_levels(to_db(s.get("input_peak_db")), to_db(s.get("input_rms_db")),
                               to_db(s.get("output_peak_db")), to_db(s.get("output_rms_db")), now)
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
            self.ratio_plot.redraw()
            self._update_cards(s)

    def _update_cards(self, s: dict) -> None:
        cfg = self.config
        lat = s.get("latency_ms")
        self.cards["latency"].set_value("—" if lat is None else f"{lat:.1f}")
        rtf = s.get("rtf")
        if rtf is None or not np.isfinite(rtf):
            self.cards["rtf"].set_value("—", "idle")
        else:
            self.cards["rtf"].set_value(f"{rtf:.2f}", "error" if rtf >= 1 else "warn" if rtf >= 0.7 else "ok")
        for key, req in (("steps", cfg.steps if cfg else None), ("candidates", cfg.candidates if cfg else None)):
            v = s.get(f"{key}_in_use")
            if v is None:
                self.cards[key].set_value("—", "idle")
            else:
                limited = req is not None and v < req
                self.cards[key].set_value(f"{v} / {req}" if req is not None else f"{v}", "warn" if limited else "ok")
        for key, name in (("misses", "deadline_misses"), ("xruns", "xruns")):
            v = s.get(name)
            self.cards[key].set_value("—" if v is None else f"{int(v)}", "warn" if v else "ok")
        self._update_details(s)
        running = s.get("running")
        secs = s.get("seconds") or 0.0
        model = s.get("model") or (cfg.model if cfg else "")
        in_dev, out_dev = self.controls.devices()
        src = Path(in_dev[5:]).name if in_dev.startswith("file:") else (in_dev or "default input")
        state = "● running" if running else "■ stopped"
        preset = Path(self.preset).stem if self.preset else "custom"
        self.status_label.setText(f"{state} · {model} · preset {preset} · {src} → {OUTPUT_NAMES.get(out_dev, out_dev)}"
                                  f" · {secs:.1f} s")

    def _update_details(self, s: dict) -> None:
        rate = s.get("samplerate") or 0
        if not rate:
            return
        ms = 1000.0 / rate
        d = self.details
        d["host"].setText(f"{rate / 1000:g} kHz · period {s.get('period', 0)} samples")
        d["latency"].setText(f"engine {s.get('engine_latency_samples', 0) * ms:.1f} ms"
                             f" + margin {s.get('margin_samples', 0) * ms:.1f} ms")
        d["level"].setText(f"{s.get('load_level', 0)} ({s.get('level_changes', 0)} changes)")
        d["dry"].setText(f"{s.get('dry_chunks', 0)} chunks · {s.get('fallback_samples', 0)} samples")
        d["swaps"].setText(str(s.get("swaps", 0)))

    def refresh_spectrogram(self) -> None:
        """Recompute the scrolling spectrograms from ``host.monitor()`` (10 Hz)."""
        host = self.controller.host
        if host is None or not self.isVisible() or self.tabs.currentIndex() != 0:
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
    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers, the DNSMOS thread, playback and the host; remember the settings."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        self.poll_timer.stop()
        self.spectro_timer.stop()
        self._save_timer.stop()
        self.save_settings()
        # wait for a score in progress: a native onnxruntime call still running while the
        # interpreter exits aborts the process ("terminate called without an active exception")
        self.dnsmos_worker.stop(timeout=15.0)
        self.file_panel.shutdown(timeout=15.0)
        if self.tune_panel is not None:
            try:
                self.tune_panel.cancel()
                self.tune_panel.wait(15.0)
            except Exception:  # noqa: BLE001 -- closing anyway
                pass
        self.controller.shutdown()
