"""JACK port routing for the live host through the JACK-Client library: the client-name check,
``--connect-input`` / ``--connect-output`` links, a mono output on both channels of a stereo
destination, and waiting for ports to exist before linking.

Port specs: ``client:port`` names one port; a bare ``client`` means that client's audio ports of
the right direction (all of them for outputs: a stereo destination hears the voice in both ears;
the first one for the input, which is mono).
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

from streamsep.host.devices import DeviceError

#: seconds to wait for a port to appear before linking to it
PORT_WAIT_S = 5.0


def _jack():
    try:
        import jack
    except Exception as exc:  # JACK-Client or libjack missing
        raise DeviceError(f"JACK routing needs the JACK-Client package and libjack ({exc})") from exc
    return jack


@contextmanager
def jack_client(name: str):
    """A short-lived JACK client (never starts a server); links made through it outlive it."""
    jack = _jack()
    try:
        client = jack.Client(name, no_start_server=True)
    except Exception as exc:
        raise DeviceError(f"cannot reach the JACK server ({str(exc).splitlines()[0]})") from exc
    try:
        yield client
    finally:
        client.close()


def name_taken(name: str) -> bool:
    """True when a JACK client called ``name`` already has ports (another streamsep running)."""
    try:
        jack = _jack()
        client = jack.Client(f"{name}-check", no_start_server=True)
    except Exception:
        return False  # no JACK-Client or no server: PortAudio will report the real problem
    try:
        return bool(client.get_ports(f"^{re.escape(name)}:"))
    finally:
        client.close()


def wait_ports(client, pattern: str, timeout: float = PORT_WAIT_S, **kw) -> list:
    """Ports whose full name matches the regex ``pattern`` (``get_ports`` keywords apply), waiting
    up to ``timeout`` seconds for at least one to exist; [] when none appeared."""
    t_end = time.monotonic() + timeout
    while True:
        ports = client.get_ports(pattern, is_audio=True, **kw)
        if ports or time.monotonic() >= t_end:
            return ports
        time.sleep(0.05)


def resolve_spec(client, spec: str, want_input: bool, timeout: float = PORT_WAIT_S) -> list:
    """The ports a ``--connect-*`` spec names (see module doc); DeviceError when none appear."""
    kw = {"is_input": True} if want_input else {"is_output": True}
    if ":" in spec:
        ports = wait_ports(client, f"^{re.escape(spec)}$", timeout, **kw)
    else:
        ports = wait_ports(client, f"^{re.escape(spec)}:", timeout, **kw)
    if not ports:
        kind = "input" if want_input else "output"
        raise DeviceError(f"JACK port '{spec}' not found (no {kind} port of that name; list them with jack_lsp)")
    return ports


def route(
    host_name: str,
    *,
    has_input: bool,
    out_ports: int,
    connect_input: list[str],
    connect_output: list[str],
    detach_output: bool,
    timeout: float = PORT_WAIT_S,
) -> None:
    """Link the host's ports ``host_name:in_0`` / ``host_name:out_*`` after its stream started.

    ``detach_output``: remove the links PortAudio made from our outputs (``--output null``: ports
    that exist but play nowhere).  ``connect_input`` replaces the input's links."""
    with jack_client(f"{host_name}-route") as client:
        ours_in = wait_ports(client, f"^{re.escape(host_name)}:in_", timeout, is_input=True) if has_input else []
        ours_out = wait_ports(client, f"^{re.escape(host_name)}:out_", timeout, is_output=True) if out_ports else []
        if (has_input and not ours_in) or (out_ports and not ours_out):
            raise DeviceError(f"JACK ports of '{host_name}' did not appear")
        if detach_output:
            for p in ours_out:
                for q in client.get_all_connections(p):
                    client.disconnect(p, q)
        if connect_input and ours_in:
            for q in client.get_all_connections(ours_in[0]):
                client.disconnect(q, ours_in[0])
            for spec in connect_input:
                src = resolve_spec(client, spec, want_input=False, timeout=timeout)
                _link(client, src[0], ours_in[0])  # the input is mono: first port
        for spec in connect_output:
            dst = resolve_spec(client, spec, want_input=True, timeout=timeout)
            for i, d in enumerate(dst):
                _link(client, ours_out[min(i, len(ours_out) - 1)], d)


def _link(client, src, dst) -> None:
    try:
        if dst.name not in {p.name for p in client.get_all_connections(src)}:
            client.connect(src, dst)
    except Exception as exc:
        raise DeviceError(f"cannot link {src.name} -> {dst.name}: {str(exc).splitlines()[0]}") from exc


def server_period() -> int | None:
    """The JACK server's period (frames), or None when it cannot be asked.  PortAudio's stream
    latency is not trusted for this: PipeWire's libjack reports it unset before the stream runs."""
    try:
        jack = _jack()
        client = jack.Client("streamsep-period", no_start_server=True)
    except Exception:
        return None
    try:
        return int(client.blocksize)
    finally:
        client.close()
