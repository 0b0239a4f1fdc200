"""Host life cycle of the main window: start (with the chosen devices and the virtual microphone),
Stop/Start, retries when the audio devices or server cannot be opened, the DNSMOS meter.

A mixin for :class:`gui.main_window.MainWindow`: it uses the window's ``config``, ``controller``,
``controls``, ``settings``, ``transport``, ``message_bar``, ``status_label``, the pages, the
``retry_timer``, ``dnsmos_worker`` and the ``host_*`` signals."""

from __future__ import annotations

from gui import virtual_mic
from gui.host_controller import device_lists


class HostLifecycle:
    """Start/stop/retry the live host; ``_user_stopped`` is True after Stop until Start."""

    def virtual_mic_name(self) -> str:
        """The virtual microphone the host should publish ("" = none, or not possible here)."""
        return self.settings.virtual_mic if self.virtual_mic_reason is None else ""

    def start_host(self, rescan: bool = False) -> None:
        """(Re)start the live host with the selected devices and the current configuration."""
        if self.config is None:
            return
        self.retry_timer.stop()
        self._user_stopped = False
        self.start_attempts += 1
        in_dev, out_dev = self.controls.devices()
        input_file = in_dev[5:] if in_dev.startswith("file:") else None
        mic = self.virtual_mic_name()
        self.controls.output_device.setEnabled(not mic)
        self.controls.output_device.setToolTip(f'The output goes to the virtual microphone "{mic}"' if mic else "")
        self.status_label.setText("Opening audio devices…")
        self.transport.set_running(True, "starting…")
        self._reset_displays()
        self.controller.start_host(
            self.config,
            None if input_file else (in_dev or None),
            out_dev or None,
            input_file,
            self._host_ready,
            self._host_error,
            options=virtual_mic.host_options(mic, out_dev),
            rescan=rescan,
        )

    def start_audio(self) -> None:
        """The Start button."""
        self.start_host(rescan=True)

    def stop_audio(self) -> None:
        """The Stop button: close the devices; no automatic retry until Start."""
        self._user_stopped = True
        self.retry_timer.stop()
        self.dnsmos_worker.stop(timeout=0.0)
        self.controller.stop_host(lambda _: self.host_stopped.emit())
        self.transport.set_running(False, "stopped")
        self.status_label.setText("■ stopped")
        self._reset_displays()

    def retry(self) -> None:
        """Try to open the audio devices again (Retry button and the automatic retry): list the
        devices afresh (an audio server or a device may have appeared), then start the host."""
        if self._user_stopped or self.config is None:
            return
        self.retry_timer.stop()

        def relisted(lists) -> None:
            ins, outs, _warning = lists
            if ins or outs:
                self.controls.set_device_choices(ins, outs, self.opts.input_file)
            if not self._user_stopped:
                self.start_host()

        self.controller.submit(device_lists, relisted, lambda msg: self.start_host(rescan=True))

    def set_virtual_mic(self, name: str) -> None:
        """The virtual-microphone switch: remembered, and the host restarted with it."""
        self.settings.virtual_mic = name
        self._changed()
        if self.controller.host is not None or not self._user_stopped:
            self.start_host()

    def set_dnsmos(self, on: bool) -> None:
        """Turn the background DNSMOS meter on or off."""
        self.opts.dnsmos = bool(on)
        if on and self.controller.host is not None:
            self.dnsmos_worker.start()
        elif not on:
            self.dnsmos_worker.stop(timeout=0.0)
            self.dnsmos.reset("off")
            self.live_page.show_quality(None)

    def _dnsmos_result(self, res: dict) -> None:
        self.dnsmos.show_result(res)
        self.live_page.show_quality(res.get("ovrl"))

    def _host_ready(self, host) -> None:
        if self.message_bar.level == "error" and self.message_bar.label.text().startswith("audio:"):
            self.message_bar.clear()
        self._last_host_error = None
        self.transport.set_running(True, "")
        if self.opts.dnsmos:
            self.dnsmos_worker.start()
        self.host_started.emit()

    def _host_error(self, msg: str) -> None:
        retrying = not self._user_stopped and self.retry_s > 0
        note = f" — retrying every {self.retry_s:g} s" if retrying else ""
        self.message_bar.show_message(f"audio: {msg}{note}", "error", action=("Retry now", self.retry))
        self.status_label.setText("Stopped: no audio")
        self.transport.set_running(False, "no audio")
        self._reset_displays()
        if retrying:
            self.retry_timer.start(int(self.retry_s * 1000))
        self.host_failed.emit(msg)

    def _reset_displays(self) -> None:
        self.ratio_plot.clear()
        self.advanced.redraw_ratios()
        self.dnsmos.reset("waiting for audio" if self.opts.dnsmos else "off")
        self.live_page.reset()
        self._last_seconds = None
