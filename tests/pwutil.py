"""Test helpers: a private PipeWire (pipewire + wireplumber + pipewire-pulse) on PipeWire's dummy
driver, with its own D-Bus session bus, ``XDG_RUNTIME_DIR``, ``XDG_STATE_HOME`` and configuration,
so the tests never touch a desktop's sound server and need no sound card.

The graph runs at ``rate`` Hz with ``quantum``-sample periods (a config drop-in in the private
``XDG_CONFIG_HOME``).  :meth:`PipeWire.alive` tells whether all four daemons still run (wireplumber
has been seen to crash); :meth:`PipeWire.env` is the environment for clients of this instance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("pipewire", "wireplumber", "pipewire-pulse")
#: Debian packages these tests need (the CI installs them)
PACKAGES = ("pipewire", "pipewire-bin", "wireplumber", "pipewire-pulse", "pipewire-jack", "pulseaudio-utils", "dbus")


def pipewire_missing_reason() -> str | None:
    """Why a private PipeWire cannot be started here (None when every binary is present)."""
    for exe in ("dbus-daemon", *DAEMONS, "pactl", "pw-record", "pw-cli"):
        if shutil.which(exe) is None:
            return f"{exe} not installed (apt-get install {' '.join(PACKAGES)})"
    return None


class PipeWire:
    """A private PipeWire instance; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, rate: int = 48000, quantum: int = 480) -> None:
        self.rate, self.quantum = rate, quantum
        self.dir = Path(tempfile.mkdtemp(prefix="streamsep-pw-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.bus = ""

    def env(self) -> dict:
        """Environment for a client of this instance (PortAudio/JACK, pactl, pw-record)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JACK_", "PIPEWIRE_", "PULSE_")) and k != "DBUS_SESSION_BUS_ADDRESS"
        }
        env.update(
            XDG_RUNTIME_DIR=str(self.dir / "run"),
            XDG_STATE_HOME=str(self.dir / "state"),
            XDG_CONFIG_HOME=str(self.dir / "config"),
            DBUS_SESSION_BUS_ADDRESS=self.bus,
        )
        return env

    def _write_config(self) -> None:
        for d in ("run", "state", "config/pipewire/pipewire.conf.d"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        (self.dir / "run").chmod(0o700)
        (self.dir / "config/pipewire/pipewire.conf.d/streamsep-test.conf").write_text(
            "context.properties = {\n"
            f"    default.clock.rate = {self.rate}\n"
            f"    default.clock.allowed-rates = [ {self.rate} ]\n"
            f"    default.clock.quantum = {self.quantum}\n"
            "    default.clock.min-quantum = 16\n"
            "}\n"
        )

    def start(self, timeout: float = 20.0) -> PipeWire:
        """Start the bus and the three daemons and wait until the pulse server answers."""
        self._write_config()
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:path={self.dir / 'bus'}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.procs["dbus-daemon"] = bus
        self.bus = bus.stdout.readline().strip()
        env = self.env()
        for name in DAEMONS:
            log = open(self.dir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
            self.procs[name] = subprocess.Popen([name], env=env, stdout=log, stderr=subprocess.STDOUT)
            if name == "pipewire":
                self._wait(lambda: (self.dir / "run" / "pipewire-0").exists(), timeout, "pipewire socket")
        self._wait(lambda: self.pactl("info").returncode == 0, timeout, "pipewire-pulse")
        self._wait(lambda: "Dummy-Driver" in self.run("pw-cli", "ls", "Node").stdout, timeout, "dummy driver")
        return self

    def _wait(self, cond, timeout: float, what: str) -> None:
        t_end = time.monotonic() + timeout
        while not cond():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > t_end:
                logs = {n: self.log(n)[-500:] for n in DAEMONS}
                self.stop()
                raise RuntimeError(f"private PipeWire: {what} not up (dead: {dead}); logs: {logs}")
            time.sleep(0.05)

    def alive(self) -> list[str]:
        """Names of daemons that have exited (empty when all run)."""
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def log(self, name: str) -> str:
        p = self.dir / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def run(self, *cmd: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """A client command against this instance."""
        return subprocess.run(list(cmd), env=self.env(), capture_output=True, text=True, timeout=timeout, check=False)

    def pactl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("pactl", *args)

    def sources(self) -> list[str]:
        """``node.name`` of every source the pulse server lists."""
        out = self.pactl("list", "short", "sources").stdout
        return [ln.split("\t")[1] for ln in out.splitlines() if "\t" in ln]

    def objects(self) -> list[dict]:
        """The graph's objects as ``pw-dump`` sees them.  A dump taken while the graph changes holds
        more than one JSON array: later arrays update objects by id, and ``"info": null`` removes one."""
        return parse_pw_dump(self.run("pw-dump").stdout)

    def node_props(self, name: str) -> list[dict]:
        """The properties of every graph node whose ``node.name`` is ``name``."""
        return [
            o["info"]["props"]
            for o in self.objects()
            if o.get("type") == "PipeWire:Interface:Node"
            and ((o.get("info") or {}).get("props") or {}).get("node.name") == name
        ]

    def nodes_named(self, name: str) -> int:
        """How many graph nodes have ``node.name`` = ``name`` (pw-dump, the graph's own view)."""
        return len(self.node_props(name))

    def stop(self) -> None:
        """Stop the daemons (SIGTERM, then SIGKILL) and remove the private directory."""
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PipeWire:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_pw_dump(text: str) -> list[dict]:
    """Objects of a ``pw-dump`` output: one JSON array, or several when the graph changed during the
    dump (each later array updates objects by ``id``; ``"info": null`` means the object was removed)."""
    import json

    decoder, pos, objects = json.JSONDecoder(), 0, {}
    text = text or "[]"
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        chunk, pos = decoder.raw_decode(text, pos)
        for o in chunk:
            if "type" not in o and o.get("info") is None:
                objects.pop(o.get("id"), None)
            elif o.get("id") in objects and "type" not in o:
                objects[o["id"]].update(o)
            else:
                objects[o.get("id")] = o
    return list(objects.values())
