"""The live host's public names, kept here for existing imports (``from streamsep.live import
LiveHost``).  The host lives in :mod:`streamsep.host`, split by role; ``streamsep live`` is the CLI."""

from __future__ import annotations

from streamsep.host.core import LiveHost
from streamsep.host.devices import (
    DeviceError,
    list_devices,
    portaudio_wedged,
    rescan_devices,
)
from streamsep.host.options import DEFAULT_MARGIN_MS, LiveOptions, OptionsError
from streamsep.host.run import run_live
from streamsep.host.stats import MONITOR_SECONDS

__all__ = [
    "DEFAULT_MARGIN_MS",
    "MONITOR_SECONDS",
    "DeviceError",
    "LiveHost",
    "LiveOptions",
    "OptionsError",
    "list_devices",
    "portaudio_wedged",
    "rescan_devices",
    "run_live",
]


def __getattr__(name: str):
    if name == "_portaudio_wedged":  # read by the soak harness
        return portaudio_wedged()
    raise AttributeError(f"module 'streamsep.live' has no attribute {name!r}")
