"""Preset and file actions of the main window (load, save, reset, the file dialogs).

A mixin for :class:`gui.main_window.MainWindow`: it uses the window's ``config``, ``preset``,
``settings``, ``message_bar``, ``status_label``, ``file_panel``, ``apply_config``, ``show_config``
and ``_changed``."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from gui.host_controller import one_line


class PresetActions:
    """Presets by name or path, and the open/export/preset file dialogs."""

    def load_preset(self, name_or_path: str) -> bool:
        """Load a preset by name or path and apply it; a bad preset shows a message."""
        if not name_or_path or self.config is None:
            return False
        from streamsep.presets import load_preset

        try:
            cfg = load_preset(name_or_path)
        except Exception as exc:  # noqa: BLE001 -- PresetError and friends: one line in the window
            self.message_bar.show_message(f"preset not loaded: {one_line(exc)}", "error")
            self.show_config({}, preset=self.preset)
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
        self.show_config({}, preset=self.preset)
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
        path, _ = QFileDialog.getOpenFileName(
            self, "Open audio file", self.settings.last_file_dir, "Audio (*.wav *.flac *.ogg);;All files (*)"
        )
        if path:
            self.settings.last_file_dir = str(Path(path).parent)
            self.file_panel.open_file(path)

    def _open_from_shortcut(self) -> None:
        self.tabs.setCurrentWidget(self.file_panel)
        self._ask_open_file()

    def _ask_export_file(self) -> None:
        base = self.file_panel.path
        suggestion = str(base.with_name(base.stem + "_enhanced.wav")) if base else ""
        path, _ = QFileDialog.getSaveFileName(self, "Export processed audio", suggestion, "Audio (*.wav *.flac *.ogg)")
        if path:
            self.file_panel.export(path)
