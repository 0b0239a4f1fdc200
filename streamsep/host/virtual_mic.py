"""A PipeWire virtual microphone fed by the live host: a virtual source node (``media.class =
Audio/Source/Virtual``) that every application lists as a microphone.

How: PipeWire's pulse server creates the node (``pactl load-module module-null-sink
media.class=Audio/Source/Virtual ...``); the host reaches PipeWire's graph through PipeWire's own
libjack (``pipewire-jack``), loaded into this process before PortAudio (so no ``pw-jack`` prefix is
needed), and PortAudio's JACK host API plays into the node's ``input_MONO`` port.

The node is removed when the host stops (also on Ctrl-C and SIGTERM through the host's stop, and at
interpreter exit); a node left by a killed host is found by its ``node.name`` and removed before a
new one is made, so there is never more than one.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from streamsep.host.devices import DeviceError
from streamsep.host.options import DEFAULT_VIRTUAL_MIC, virtual_mic_node_name

#: where Debian's ``pipewire-jack`` puts PipeWire's libjack (what ``pw-jack`` puts on LD_LIBRARY_PATH)
PW_JACK_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pipewire-0.3/jack",
    "/usr/lib/aarch64-linux-gnu/pipewire-0.3/jack",
    "/usr/lib64/pipewire-0.3/jack",
    "/usr/lib/pipewire-0.3/jack",
)
#: seconds to wait for the node's port to appear in the graph
NODE_WAIT_S = 5.0
#: graph quantum requested when the user set none: 10 ms periods at PipeWire's usual 48 kHz
DEFAULT_QUANTUM = "480/48000"


def _loaded_libjack() -> str | None:
    """Path of the libjack mapped into this process, or None."""
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "/libjack.so" in path:
                return path
    except OSError:
        pass
    return None


def pipewire_libjack() -> Path | None:
    """PipeWire's libjack.so.0 (package pipewire-jack), or None when it is not installed."""
    for d in PW_JACK_DIRS:
        p = Path(d) / "libjack.so.0"
        if p.exists():
            return p
    return None


def use_pipewire_jack(quantum: str | None = None) -> None:
    """Make this process's JACK clients (PortAudio's JACK host API, JACK-Client) talk to PipeWire.

    Loads PipeWire's libjack before PortAudio is loaded (the dynamic linker then resolves
    PortAudio's ``libjack.so.0`` to it) and sets ``PIPEWIRE_QUANTUM`` (default 10 ms periods at
    48 kHz) unless the environment sets it.  Call it before anything imports ``sounddevice`` or
    ``jack``; a GUI calls it at start-up.  DeviceError when it cannot be done."""
    lib = pipewire_libjack()
    if lib is None:
        raise DeviceError("--virtual-mic needs PipeWire's JACK library (install pipewire-jack)")
    os.environ.setdefault("PIPEWIRE_QUANTUM", quantum or DEFAULT_QUANTUM)
    loaded = _loaded_libjack()
    if loaded is not None:
        if os.path.realpath(loaded) != os.path.realpath(lib):
            raise DeviceError(
                f"this process already uses another JACK library ({loaded}); "
                "start it again with --virtual-mic from the beginning, or under pw-jack"
            )
        return
    try:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise DeviceError(f"cannot load PipeWire's libjack ({exc})") from exc


def pipewire_running() -> bool:
    """True when a PipeWire server socket exists for this session (``PIPEWIRE_REMOTE``,
    ``PIPEWIRE_RUNTIME_DIR`` or ``XDG_RUNTIME_DIR``/``pipewire-0``); cheap, starts nothing."""
    remote = os.environ.get("PIPEWIRE_REMOTE") or "pipewire-0"
    if os.path.isabs(remote):
        return Path(remote).exists()
    dirs = [os.environ.get("PIPEWIRE_RUNTIME_DIR"), os.environ.get("XDG_RUNTIME_DIR")]
    return any((Path(d) / remote).exists() for d in dirs if d)


def prefer_pipewire_jack() -> bool:
    """At an application's start-up (before anything lists audio devices): route this process's
    JACK clients to PipeWire when a PipeWire server runs and pipewire-jack is installed, so that a
    later ``LiveHost(..., virtual_mic=NAME)`` works and PortAudio lists PipeWire's microphones by
    name.  Never raises; True when PipeWire's libjack is in use."""
    if not pipewire_running() or pipewire_libjack() is None:
        return False
    try:
        use_pipewire_jack()
        return True
    except DeviceError:
        return False


def _pactl(*args: str, timeout: float = 10.0) -> str:
    try:
        p = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"pactl {args[0]}: {exc}") from exc
    if p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()[0]
        raise DeviceError(f"pactl {args[0]}: {msg}")
    return p.stdout


def check_pipewire() -> None:
    """DeviceError unless PipeWire's pulse server answers ``pactl``."""
    if shutil.which("pactl") is None:
        raise DeviceError("--virtual-mic needs pactl (install pulseaudio-utils) and PipeWire's pulse server")
    try:
        info = _pactl("info")
    except DeviceError as exc:
        raise DeviceError(
            f"--virtual-mic needs a running PipeWire with its pulse server (pipewire-pulse): {exc}"
        ) from exc
    if "PipeWire" not in info:
        raise DeviceError(
            "--virtual-mic needs PipeWire (the sound server here is not PipeWire; on JACK, link "
            "the ports with --connect-output instead)"
        )


def stale_modules(node_name: str) -> list[int]:
    """IDs of pulse modules that made a node called ``node_name`` (left by a killed host)."""
    out = []
    for line in _pactl("list", "short", "modules").splitlines():
        parts = line.split("\t")
        if (
            len(parts) >= 3
            and parts[1] == "module-null-sink"
            and re.search(rf"(^|\s)sink_name={re.escape(node_name)}(\s|$)", parts[2])
        ):
            out.append(int(parts[0]))
    return out


def source_names() -> list[str]:
    """``node.name`` of every source PipeWire's pulse server lists."""
    return [ln.split("\t")[1] for ln in _pactl("list", "short", "sources").splitlines() if "\t" in ln]


def default_source_description() -> str | None:
    """Description of PipeWire's default source when it is a real microphone (None when the default
    is a monitor of an output, one of our virtual microphones, or there is none)."""
    name = _pactl("get-default-source").strip()
    if not name or name.endswith(".monitor") or name.startswith("streamsep_mic"):
        return None
    block = re.split(r"\n(?=Source #)", _pactl("list", "sources"))
    for b in block:
        if re.search(rf"^\s*Name: {re.escape(name)}\s*$", b, re.MULTILINE):
            m = re.search(r"^\s*Description: (.+)$", b, re.MULTILINE)
            return m.group(1).strip() if m else None
    return None


class VirtualMic:
    """One virtual microphone node; :meth:`create` and :meth:`remove` (idempotent)."""

    def __init__(self, description: str = DEFAULT_VIRTUAL_MIC) -> None:
        if '"' in description or "'" in description:
            raise DeviceError("--virtual-mic: the name must not contain quotes")
        self.description = description
        self.node_name = virtual_mic_node_name(description)
        self.module: int | None = None
        self.removed_stale = 0

    @property
    def jack_port(self) -> str:
        """The node's input port as JACK clients name it."""
        return f"{self.description}:input_MONO"

    def create(self) -> VirtualMic:
        """Remove a stale node of the same name, make the node, wait for its port."""
        check_pipewire()
        for mid in stale_modules(self.node_name):
            _pactl("unload-module", str(mid))
            self.removed_stale += 1
        if self.node_name in source_names():
            subprocess.run(["pw-cli", "destroy", self.node_name], capture_output=True, timeout=10, check=False)
        # pulse module arguments: the property list is one quoted value with its own quoting inside
        props = f"\"node.description='{self.description}'\""
        out = _pactl(
            "load-module",
            "module-null-sink",
            "media.class=Audio/Source/Virtual",
            f"sink_name={self.node_name}",
            "channel_map=mono",
            f"sink_properties={props}",
        )
        self.module = int(out.strip().split()[0])
        atexit.register(self.remove)
        t_end = time.monotonic() + NODE_WAIT_S
        while self.node_name not in source_names():
            if time.monotonic() > t_end:
                self.remove()
                raise DeviceError(f"virtual microphone '{self.node_name}' did not appear in PipeWire")
            time.sleep(0.05)
        return self

    def wait_port(self) -> None:
        """Wait until the node's input port exists for JACK clients (PortAudio enumerates them)."""
        from streamsep.host.jackroute import jack_client, wait_ports

        with jack_client("streamsep-vmic-wait") as c:
            if not wait_ports(c, f"^{re.escape(self.jack_port)}$", NODE_WAIT_S, is_input=True):
                raise DeviceError(f"virtual microphone port '{self.jack_port}' did not appear")

    def remove(self) -> None:
        """Unload the node (idempotent; errors are ignored: the server may be gone)."""
        mid, self.module = self.module, None
        if mid is None:
            return
        try:
            atexit.unregister(self.remove)
            subprocess.run(["pactl", "unload-module", str(mid)], capture_output=True, timeout=10, check=False)
        except Exception:
            pass

    def info(self) -> dict:
        """For the statistics: node name, description, and whether the node exists."""
        return {
            "node_name": self.node_name,
            "description": self.description,
            "active": self.module is not None,
            "removed_stale": self.removed_stale,
        }
