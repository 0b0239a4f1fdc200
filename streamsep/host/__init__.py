"""The live host, by role: :mod:`~streamsep.host.devices` (PortAudio set-up, device lookup),
:mod:`~streamsep.host.stream` (opening, the compiled callback's stream, rings and margins),
:mod:`~streamsep.host.worker` (the worker thread), :mod:`~streamsep.host.swap` (engine swaps),
:mod:`~streamsep.host.stats` (counters and statistics), :mod:`~streamsep.host.jackroute` (JACK
links), :mod:`~streamsep.host.virtual_mic` (the PipeWire virtual microphone),
:mod:`~streamsep.host.options` (typed options) and :mod:`~streamsep.host.run` (``streamsep live``).

Names are imported lazily: ``import streamsep.host.options`` stays cheap (no numpy, no torch).
"""

from __future__ import annotations

_EXPORTS = {
    "LiveHost": "streamsep.host.core",
    "DeviceError": "streamsep.host.devices",
    "list_devices": "streamsep.host.devices",
    "rescan_devices": "streamsep.host.devices",
    "LiveOptions": "streamsep.host.options",
    "OptionsError": "streamsep.host.options",
    "run_live": "streamsep.host.run",
    "VirtualMic": "streamsep.host.virtual_mic",
    "use_pipewire_jack": "streamsep.host.virtual_mic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'streamsep.host' has no attribute {name!r}")
