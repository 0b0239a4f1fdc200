"""The virtual-microphone switch's one connection to the library.

With the switch on, the live host publishes its output as a PipeWire virtual source (a microphone
that Zoom, Discord, OBS or a browser can pick) named :data:`DEFAULT_NAME`.  The window keeps the
choice in one settings key, ``virtual_mic`` ("" = off, otherwise the source's description), and
passes it to the host only through :func:`host_options`; :func:`availability` says why the switch
is disabled (no PipeWire server, or a live host without the option).
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

#: description of the virtual source (PipeWire ``node.description``) when the switch is on
DEFAULT_NAME = "streamsep denoised microphone"
#: the ``LiveHost`` keyword argument that carries the name
HOST_KEYWORD = "virtual_mic"


def pipewire_socket() -> Path | None:
    """The PipeWire server socket this session would talk to, or None when there is none.

    Honours ``PIPEWIRE_REMOTE`` (a name or an absolute path), ``PIPEWIRE_RUNTIME_DIR`` and
    ``XDG_RUNTIME_DIR``; the default socket name is ``pipewire-0``."""
    remote = os.environ.get("PIPEWIRE_REMOTE") or "pipewire-0"
    if os.path.isabs(remote):
        candidates = [Path(remote)]
    else:
        dirs = [os.environ.get("PIPEWIRE_RUNTIME_DIR"), os.environ.get("XDG_RUNTIME_DIR")]
        candidates = [Path(d) / remote for d in dirs if d]
    for path in candidates:
        if path.exists():
            return path
    return None


def host_supports_virtual_mic(host_class=None) -> bool:
    """True when the live host accepts the :data:`HOST_KEYWORD` argument (imports the host)."""
    if host_class is None:
        from streamsep.live import LiveHost as host_class
    try:
        return HOST_KEYWORD in inspect.signature(host_class).parameters
    except (TypeError, ValueError):
        return False


def _host_module():
    """The live host's virtual-microphone module (``streamsep.host.virtual_mic``), None when this
    streamsep has none."""
    try:
        from streamsep.host import virtual_mic as module
    except ImportError:
        return None
    return module


def prepare() -> bool:
    """At start-up, before any audio device is listed: let the host route this process's audio
    through PipeWire when PipeWire runs (the host's ``prefer_pipewire_jack``).  Never raises; True
    when PipeWire's JACK library is in use.  Worker thread only (imports the host)."""
    module = _host_module()
    if module is None or not hasattr(module, "prefer_pipewire_jack"):
        return False
    try:
        return bool(module.prefer_pipewire_jack())
    except Exception:  # noqa: BLE001 -- the switch then says why it is disabled
        return False


def availability(host_class=None) -> str | None:
    """None when a virtual microphone can be made here, otherwise a one-line reason (for a tooltip).

    Uses the host's own checks where it has them.  Call it off the GUI thread: it imports the live
    host and may ask PipeWire's pulse server (``pactl info``)."""
    module = _host_module() if host_class is None else None
    if module is not None and hasattr(module, "check_pipewire"):
        if not module.pipewire_running():
            return "Needs PipeWire: no PipeWire server is running in this session"
        if module.pipewire_libjack() is None:
            return "Needs PipeWire's JACK library (install pipewire-jack)"
        try:
            module.check_pipewire()
        except Exception as exc:  # noqa: BLE001 -- DeviceError: its message is the reason
            return " ".join(str(exc).split()).replace("--virtual-mic", "The virtual microphone")
        return None if host_supports_virtual_mic() else "This streamsep's live host has no virtual microphone"
    if shutil.which("pw-cli") is None and shutil.which("pactl") is None:
        return "Needs PipeWire: the PipeWire tools (pw-cli, pactl) are not installed"
    if pipewire_socket() is None:
        return "Needs PipeWire: no PipeWire server is running in this session"
    if not host_supports_virtual_mic(host_class):
        return "This version of the streamsep live host cannot publish a virtual microphone yet"
    return None


def host_options(virtual_mic: str | None, output_device: str | None = None) -> dict:
    """The output side of ``LiveHost(...)``'s keyword arguments: the chosen ``output_device``
    ("" or None = the default, "null" = none), or, with the ``virtual_mic`` setting on (a name;
    "" or None = off), the virtual microphone, which takes the place of the output device."""
    name = (virtual_mic or "").strip()
    if name:
        return {HOST_KEYWORD: name, "output_device": None}
    return {"output_device": output_device or None}
