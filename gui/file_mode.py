"""File mode: open a file, process it with the current settings off the GUI thread, listen A-B
(original / processed, switching at the same position), export the processed audio.

All processing goes through :func:`enhance_audio`, the file mode's one call into the library (the
same job as ``streamsep process``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import theme


def enhance_audio(x: np.ndarray, rate: int, config) -> np.ndarray:
    """The processed version of ``x`` (mono float32, ``rate`` Hz) with the engine ``config``; as
    many samples as ``x``, latency removed.  Runs on a worker thread (imports torch).

    The file mode's single call into the library: the same function that
    :func:`streamsep.enhance.enhance_file` (``streamsep process``) runs on a file's samples; the
    file mode keeps the samples in memory for A-B listening, so it calls it on the array."""
    from streamsep.engine import enhance_array

    return enhance_array(x, rate, config)


class PlaybackError(RuntimeError):
    """Playback impossible (no PortAudio, no output device, device refused)."""


class FilePlayer:
    """A-B player: one output stream reading original (A) or processed (B) at a shared position.

    ``device``: sounddevice output device (name or index, None = default).  Rates in Hz.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, rate: int, device=None) -> None:
        n = min(len(a), len(b))
        self.sources = {"A": np.ascontiguousarray(a[:n], np.float32), "B": np.ascontiguousarray(b[:n], np.float32)}
        self.rate, self.device, self.n = int(rate), device, n
        self.which = "A"
        self.position = 0  # samples
        self._stream = None
        self._lock = threading.Lock()

    @property
    def playing(self) -> bool:
        return self._stream is not None and self._stream.active

    def _callback(self, outdata, frames, time_info, status) -> None:
        with self._lock:
            src, pos = self.sources[self.which], self.position
            chunk = src[pos : pos + frames]
            self.position = pos + len(chunk)
        outdata[: len(chunk), 0] = chunk
        if len(chunk) < frames:
            outdata[len(chunk) :, 0] = 0
            import sounddevice as sd

            raise sd.CallbackStop

    def play(self, which: str) -> None:
        """Start (or switch to) source ``which`` ("A" or "B"); raises :class:`PlaybackError`."""
        self.which = which
        if self.playing:
            return
        try:
            import sounddevice as sd
        except OSError as exc:
            raise PlaybackError(f"playback unavailable: PortAudio not found ({exc})") from None
        if self.position >= self.n:
            self.position = 0
        try:
            self._stream = sd.OutputStream(
                samplerate=self.rate, channels=1, dtype="float32", device=self.device, callback=self._callback
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 -- PortAudioError, ValueError for unknown devices
            self._stream = None
            dev = "default output device" if self.device is None else f"output device '{self.device}'"
            raise PlaybackError(f"cannot play on the {dev}: {' '.join(str(exc).split())}") from None

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None


class _Signals(QObject):
    processed = pyqtSignal(object)
    failed = pyqtSignal(str)


class FilePanel(QWidget):
    """The File tab.  ``config()`` gives the current EngineConfig, ``output_device()`` the playback
    device ("" = default, "null" = none), ``message(text, level)`` reports problems."""

    def __init__(
        self,
        config: Callable[[], object],
        output_device: Callable[[], str],
        message: Callable[[str, str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._config, self._output_device, self._message = config, output_device, message
        self.path: Path | None = None
        self.rate = 0
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.player: FilePlayer | None = None
        self.busy = False
        self.process_seconds = 0.0
        self._thread: threading.Thread | None = None
        self.on_open_request: Callable[[], None] | None = None
        self.on_export_request: Callable[[], None] | None = None
        self._sig = _Signals()
        self._sig.processed.connect(self._processed)
        self._sig.failed.connect(self._failed)

        self.open_btn = QPushButton("Open file…")
        self.process_btn = QPushButton("Process with current settings")
        self.play_a = QPushButton("A  original")
        self.play_b = QPushButton("B  processed")
        self.stop_btn = QPushButton("Stop")
        self.export_btn = QPushButton("Export processed…")
        for b in (self.play_a, self.play_b):
            b.setCheckable(True)
        self._ab_group = QButtonGroup(self)
        self._ab_group.setExclusive(True)
        self._ab_group.addButton(self.play_a)
        self._ab_group.addButton(self.play_b)
        self.info = QLabel("No file open.")
        self.info.setStyleSheet(f"color: {theme.MUTED};")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumHeight(6)
        self.progress.setTextVisible(False)
        self.progress.hide()

        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "time", units="s")
        item.setLabel("left", "amplitude (full scale = 1)")
        item.getAxis("left").enableAutoSIPrefix(False)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.addLegend(offset=(-6, 4), labelTextSize="8pt")
        self.curve_a = self.plot.plot([], [], pen=pg.mkPen(theme.INPUT, width=1), name="A original")
        self.curve_b = self.plot.plot([], [], pen=pg.mkPen(theme.OUTPUT, width=1), name="B processed")
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#ffffff", width=1))
        self.plot.addItem(self.playhead)

        top = QHBoxLayout()
        for b in (self.open_btn, self.process_btn):
            top.addWidget(b)
        top.addStretch(1)
        top.addWidget(self.export_btn)
        transport = QHBoxLayout()
        for b in (self.play_a, self.play_b, self.stop_btn):
            transport.addWidget(b)
        transport.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(self.progress)
        lay.addWidget(self.plot, 1)
        lay.addLayout(transport)

        self.open_btn.clicked.connect(lambda: self.on_open_request and self.on_open_request())
        self.export_btn.clicked.connect(lambda: self.on_export_request and self.on_export_request())
        self.process_btn.clicked.connect(self.process)
        self.play_a.clicked.connect(lambda: self.play("A"))
        self.play_b.clicked.connect(lambda: self.play("B"))
        self.stop_btn.clicked.connect(self.stop)
        self._timer = QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._tick)
        self._refresh_buttons()

    # -- actions --------------------------------------------------------------------------
    def open_file(self, path: str | Path, process: bool = True) -> bool:
        """Read ``path`` (any rate, mixed to mono); process it unless ``process`` is False."""
        from streamsep.audio_io import AudioFileError, read_audio

        self.stop()
        try:
            x, rate = read_audio(path)
        except (AudioFileError, ValueError, OSError) as exc:
            self._message(" ".join(str(exc).split()), "error")
            return False
        self.path, self.x, self.rate, self.y = Path(path), x, rate, None
        self.player = None
        self.info.setText(f"{self.path.name}: {len(x) / rate:.1f} s, {rate} Hz")
        self._plot()
        self._refresh_buttons()
        if process:
            self.process()
        return True

    def process(self) -> None:
        """Run the whole file through ``enhance_array`` with the current settings, off-thread."""
        if self.x is None or self.busy:
            return
        config = self._config()
        if config is None:
            self._message("the engine is still loading: try again in a moment", "warning")
            return
        self.stop()
        self.busy = True
        self.progress.show()
        self.info.setText(
            f"{self.path.name}: processing with {config.model}, K={config.steps}, "
            f"C={config.candidates}, {config.policy}…"
        )
        self._refresh_buttons()
        x, rate = self.x, self.rate

        def job():
            try:
                t0 = time.perf_counter()
                y = enhance_audio(x, rate, config)
                self._sig.processed.emit((y, time.perf_counter() - t0, config))
            except Exception as exc:  # noqa: BLE001 -- shown in the window
                self._sig.failed.emit(" ".join(str(exc).split()) or type(exc).__name__)

        self._thread = threading.Thread(target=job, name="file-process", daemon=True)
        self._thread.start()

    def _processed(self, result) -> None:
        y, seconds, config = result
        self.busy, self.y, self.process_seconds = False, np.asarray(y, np.float32), seconds
        self.player = None
        self.progress.hide()
        dur = len(self.x) / self.rate
        self.info.setText(
            f"{self.path.name}: {dur:.1f} s, {self.rate} Hz · processed with {config.model}, "
            f"K={config.steps}, C={config.candidates}, {config.policy} in {seconds:.1f} s "
            f"(RTF {seconds / dur:.2f})"
        )
        self._plot()
        self._refresh_buttons()

    def _failed(self, msg: str) -> None:
        self.busy = False
        self.progress.hide()
        self.info.setText(f"{self.path.name}: processing failed")
        self._message(f"file processing failed: {msg}", "error")
        self._refresh_buttons()

    def play(self, which: str) -> None:
        """Play (or switch to) A = original or B = processed from the current position."""
        if self.x is None or self.y is None:
            return
        dev = self._output_device()
        if dev == "null":
            self._message("no playback device selected: choose an output device to listen", "warning")
            self._uncheck()
            return
        if self.player is None:
            self.player = FilePlayer(self.x, self.y, self.rate, device=dev or None)
        try:
            self.player.play(which)
        except PlaybackError as exc:
            self._message(str(exc), "error")
            self._uncheck()
            return
        (self.play_a if which == "A" else self.play_b).setChecked(True)
        self._timer.start()

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()
        self._timer.stop()
        self._uncheck()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop playback and wait (up to ``timeout`` s) for a file being processed."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def export(self, path: str | Path) -> bool:
        """Write the processed audio to ``path`` (format from the extension)."""
        from streamsep.audio_io import AudioFileError, write_audio

        if self.y is None:
            self._message("nothing to export: open and process a file first", "warning")
            return False
        try:
            write_audio(path, self.y, self.rate)
        except (AudioFileError, ValueError, OSError) as exc:
            self._message(" ".join(str(exc).split()), "error")
            return False
        self._message(f"exported {Path(path).name} ({len(self.y) / self.rate:.1f} s, {self.rate} Hz)", "info")
        return True

    # -- display ----------------------------------------------------------------------------
    def _uncheck(self) -> None:
        self._ab_group.setExclusive(False)
        for b in (self.play_a, self.play_b):
            b.setChecked(False)
        self._ab_group.setExclusive(True)

    def _tick(self) -> None:
        if self.player is None:
            return
        self.playhead.setValue(self.player.position / self.rate)
        if not self.player.playing:
            self.stop()

    def _plot(self) -> None:
        for curve, sig in ((self.curve_a, self.x), (self.curve_b, self.y)):
            if sig is None:
                curve.setData([], [])
                continue
            step = max(1, len(sig) // 20000)  # decimate the display, not the audio
            t = np.arange(0, len(sig), step) / self.rate
            curve.setData(t, sig[::step])
        self.playhead.setValue(0)

    def _refresh_buttons(self) -> None:
        has_x, has_y = self.x is not None, self.y is not None
        self.process_btn.setEnabled(has_x and not self.busy)
        for b in (self.play_a, self.play_b, self.stop_btn, self.export_btn):
            b.setEnabled(has_y and not self.busy)
