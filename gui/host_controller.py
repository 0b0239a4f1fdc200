"""Everything slow happens here, off the GUI thread: importing torch and the models, loading
presets, opening devices, building engines, stopping hosts.

Jobs run one at a time on a single worker thread (so host start/stop/config changes never
overlap) and report back on the GUI thread through a queued Qt signal.  The GUI itself only calls
``LiveHost.set_params`` (a mailbox), ``stats()`` and ``monitor()``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from gui.settings import ENGINE_KEYS

LIVE_PARAMS = ("steps", "candidates", "policy", "ratios", "mix", "atten_db", "bypass", "proxy")
REBUILD_PARAMS = ("model", "block")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line; exceptions from streamsep already name the culprit."""
    msg = " ".join(str(exc).split()) or repr(exc)
    return msg if isinstance(exc, (ValueError, RuntimeError, OSError)) else f"{type(exc).__name__}: {msg}"


def config_to_dict(config) -> dict:
    """The GUI-editable fields of an ``EngineConfig`` as a plain dict."""
    d = dataclasses.asdict(config)
    return {k: d[k] for k in ENGINE_KEYS if k in d}


def build_config(preset: str, overrides: dict) -> tuple[Any, list[str]]:
    """``load_preset(preset)`` with remembered ``overrides`` applied; (config, warnings).

    A preset that does not load falls back to ``EngineConfig()`` defaults, overrides that the
    config refuses are dropped; either way a one-line warning says what happened.
    """
    from streamsep.engine import EngineConfig
    from streamsep.presets import load_preset

    warnings: list[str] = []
    try:
        base = load_preset(preset)
    except Exception as exc:  # noqa: BLE001 -- reported in the window
        warnings.append(f"preset '{preset}' not loaded: {one_line(exc)}; using defaults")
        base = EngineConfig()
    fields = {f.name for f in dataclasses.fields(base)}
    good = {k: v for k, v in overrides.items() if k in fields}
    try:
        return dataclasses.replace(base, **good), warnings
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"remembered settings ignored: {one_line(exc)}")
        return base, warnings


def preset_names() -> list[str]:
    """Built-in preset names, from the library."""
    from streamsep.presets import builtin_presets

    return [str(n) for n in builtin_presets()]


def policy_names() -> list[str]:
    """Engine policy names, from the library's catalogue."""
    from streamsep.catalogue import ENGINE_POLICIES

    return list(ENGINE_POLICIES)


def model_names() -> list[str]:
    from streamsep.separators.registry import model_names as names

    return list(names())


def device_lists() -> tuple[list[str], list[str], str | None]:
    """(input device names, output device names, warning) from ``streamsep.live.list_devices``."""
    try:
        from streamsep.live import list_devices

        devs = list_devices()
    except Exception as exc:  # noqa: BLE001 -- no PortAudio, no devices: the GUI still works
        return [], [], f"audio devices unavailable: {one_line(exc)}"
    ins = [str(d["name"]) for d in devs if int(d.get("max_input_channels", 0)) > 0]
    outs = [str(d["name"]) for d in devs if int(d.get("max_output_channels", 0)) > 0]
    return ins, outs, None


class HostController(QObject):
    """Owns the :class:`~streamsep.live.LiveHost` and runs slow jobs on one worker thread."""

    _deliver = pyqtSignal(object, object)

    def __init__(self, host_factory: Callable[..., Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamsep-gui-job")
        self._deliver.connect(self._on_deliver)
        self._factory = host_factory
        self.host = None  # the running LiveHost, or None
        self.pending = 0  # jobs submitted and not yet delivered
        self.closed = False
        self._started: list = []  # hosts started by jobs and not yet stopped (worker thread only)
        self._generation = 0  # start_host requests so far (GUI thread)

    # -- generic job plumbing -----------------------------------------------------------
    def submit(
        self,
        fn: Callable[[], Any],
        done: Callable[[Any], None] | None = None,
        error: Callable[[str], None] | None = None,
    ) -> Future:
        """Run ``fn()`` on the worker thread; ``done(result)`` or ``error(message)`` on the GUI thread."""
        self.pending += 1

        def job():
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 -- every failure becomes a message
                if os.environ.get("STREAMSEP_DEBUG"):
                    traceback.print_exc()
                else:
                    print(f"streamsep gui: {one_line(exc)}", file=sys.stderr)
                self._deliver.emit(error, one_line(exc))
                return None
            self._deliver.emit(done, result)
            return result

        return self._pool.submit(job)

    def _on_deliver(self, callback, value) -> None:
        self.pending -= 1
        if callback is not None and not self.closed:
            callback(value)

    # -- host lifecycle ------------------------------------------------------------------
    def start_host(
        self,
        config,
        input_device: str | None,
        output_device: str | None,
        input_file: str | None,
        done: Callable[[Any], None],
        error: Callable[[str], None],
        options: dict | None = None,
        rescan: bool = False,
    ) -> None:
        """Stop every host started so far and start a new one with these devices, off-thread.

        ``options``: more ``LiveHost`` keyword arguments, overriding ``output_device`` where they name it
        (:func:`gui.virtual_mic.host_options`);
        ``rescan``: look for audio devices (and servers) again first (a retry).
        Only the latest request counts: a host delivered after a newer request is stopped."""
        options = dict(options or {})
        self.host = None
        self._generation += 1
        gen = self._generation
        factory = self._factory

        def job():
            while self._started:  # jobs run one at a time: nobody else touches the list
                self._started.pop().stop()
            if rescan:
                from streamsep.live import rescan_devices

                rescan_devices()
            if factory is None:
                from streamsep.live import LiveHost

                make = LiveHost
            else:
                make = factory
            kw = {"output_device": output_device or None, **options}
            host = make(config, input_device=input_device or None, input_file=input_file or None, **kw)
            try:
                host.start()
            except BaseException:  # noqa: BLE001 -- closed, then re-raised
                try:
                    host.stop()
                finally:
                    raise
            self._started.append(host)
            if self.closed:
                host.stop()
            return host

        def ok(host):
            if gen != self._generation:  # a newer start request is queued: it will stop this one
                return
            self.host = host
            done(host)

        def failed(msg: str) -> None:
            if gen == self._generation:
                error(msg)

        self.submit(job, ok, failed)

    def stop_host(self, done: Callable[[Any], None] | None = None) -> None:
        """Stop every host started so far, off-thread; ``done(None)`` once they are closed."""
        self.host = None
        self._generation += 1

        def job():
            while self._started:
                self._started.pop().stop()

        self.submit(job, done, lambda msg: done(None) if done else None)

    def apply_config(self, config, done: Callable[[Any], None], error: Callable[[str], None]) -> None:
        """``host.set_config(config)`` off the GUI thread (model or block change)."""
        host = self.host
        if host is None:
            done(config)
            return
        self.submit(lambda: (host.set_config(config), config)[1], done, error)

    def set_params(self, **kw) -> None:
        """Live parameters through the host's mailbox (cheap; called on the GUI thread)."""
        if self.host is not None:
            self.host.set_params(**kw)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the host and the worker; blocks up to ``timeout`` seconds (window close)."""
        self.closed = True
        self.host = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        for host in self._started:  # the pool is drained: safe to touch from here
            try:
                host.stop()
            except Exception:  # noqa: BLE001 -- closing anyway
                traceback.print_exc()
        self._started.clear()
