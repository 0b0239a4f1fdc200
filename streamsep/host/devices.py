"""PortAudio set-up for the live host: initialisation, the JACK client name, device lookup by index
or name, and the 'wedged' state (a stream whose device or server vanished cannot be torn down).

Nothing here runs in the audio callback.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np


class DeviceError(RuntimeError):
    """An unknown or vanished device, or a device that refuses the rate (one-line message)."""


class _PortAudioState:
    """Process-wide PortAudio bookkeeping (PortAudio itself is process-wide)."""

    def __init__(self) -> None:
        #: JACK client name given to PortAudio; PortAudio keeps the pointer, so the bytes live here
        self.jack_name = os.environ.get("STREAMSEP_JACK_NAME", "streamsep")
        self.jack_name_buf: ctypes.Array | None = None
        #: streams of ours that are open (PortAudio is not re-initialised while one is)
        self.open_streams = 0
        #: a stream could not be stopped (server gone): never call Pa_Terminate again
        self.wedged = False


PA = _PortAudioState()


def portaudio_wedged() -> bool:
    """True once a stream hung in PortAudio; PortAudio must then never be terminated."""
    return PA.wedged


def mark_wedged() -> None:
    """A stream hangs in PortAudio (its device or server vanished).  Pa_Terminate would hang too,
    so drop sounddevice's exit handler and stop re-initialising PortAudio in this process."""
    PA.wedged = True
    try:
        import atexit

        import sounddevice as sd

        atexit.unregister(sd._exit_handler)
    except Exception:
        pass


def sounddevice_module():
    """The ``sounddevice`` module; DeviceError when libportaudio is missing."""
    try:
        import sounddevice as sd
    except OSError as exc:  # libportaudio missing
        raise DeviceError(f"PortAudio library not available ({exc}); install libportaudio2") from exc
    return sd


def set_jack_client_name(name: str) -> None:
    """The JACK client name PortAudio uses from the next :func:`rescan_devices` on."""
    PA.jack_name = str(name)


def rescan_devices() -> None:
    """Re-initialise PortAudio so that devices (and a JACK server) started since are seen.

    Also names our JACK client (:func:`set_jack_client_name`, default ``streamsep``, env
    ``STREAMSEP_JACK_NAME``) so its ports are ``NAME:in_0`` / ``NAME:out_0``.  Skipped while one
    of our streams is open.
    """
    sd = sounddevice_module()
    if PA.open_streams or PA.wedged:
        return
    sd._terminate()
    try:
        lib = ctypes.CDLL(sd._libname)
        if hasattr(lib, "PaJack_SetClientName"):
            PA.jack_name_buf = ctypes.create_string_buffer(PA.jack_name.encode())
            lib.PaJack_SetClientName(PA.jack_name_buf)
    except OSError:
        pass
    sd._initialize()


def list_devices() -> list[dict]:
    """Audio devices: index, name, host API, channel counts and default sample rate (Hz)."""
    sd = sounddevice_module()
    rescan_devices()
    apis = sd.query_hostapis()
    out = []
    for d in sd.query_devices():
        out.append(
            {
                "index": int(d["index"]),
                "name": d["name"],
                "hostapi": apis[d["hostapi"]]["name"],
                "max_input_channels": int(d["max_input_channels"]),
                "max_output_channels": int(d["max_output_channels"]),
                "default_samplerate": float(d["default_samplerate"]),
            }
        )
    return out


def resolve_device(dev, kind: str) -> int:
    """A device index or (part of a) name → PortAudio device index; raises DeviceError.

    A name that equals a device's name exactly wins over devices that merely contain it."""
    sd = sounddevice_module()
    chan_key = "max_input_channels" if kind == "input" else "max_output_channels"
    if dev is None or (isinstance(dev, str) and dev.strip() in ("", "default")):
        idx = sd.default.device[0 if kind == "input" else 1]
        if idx is None or idx < 0:
            avail = [d["index"] for d in sd.query_devices() if d[chan_key] > 0]
            if not avail:
                raise DeviceError(f"no {kind} device found (is an audio server running? see `streamsep devices`)")
            idx = avail[0]
        return int(idx)
    if isinstance(dev, (int, np.integer)) or (isinstance(dev, str) and dev.strip().isdigit()):
        idx = int(dev)
        n = len(sd.query_devices())
        if not 0 <= idx < n:
            raise DeviceError(f"{kind} device {idx} does not exist (there are {n}; see `streamsep devices`)")
        if sd.query_devices(idx)[chan_key] < 1:
            raise DeviceError(f"device {idx} ({sd.query_devices(idx)['name']}) has no {kind} channels")
        return idx
    exact = [d["index"] for d in sd.query_devices() if d["name"] == str(dev) and d[chan_key] > 0]
    if exact:
        return int(exact[0])
    try:
        return int(sd.query_devices(str(dev), kind)["index"])
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        raise DeviceError(f"{kind} device '{dev}': {msg} (see `streamsep devices`)") from exc


def is_jack_device(sd, idx: int) -> bool:
    """True when PortAudio device ``idx`` belongs to the JACK host API."""
    return "JACK" in sd.query_hostapis(sd.query_devices(idx)["hostapi"])["name"]


def rate_ok(sd, in_idx: int | None, out_idx: int | None, rate: int) -> bool:
    """True when both devices (those given) accept mono float32 at ``rate`` Hz."""
    try:
        if in_idx is not None:
            sd.check_input_settings(in_idx, channels=1, samplerate=rate, dtype="float32")
        if out_idx is not None:
            sd.check_output_settings(out_idx, channels=1, samplerate=rate, dtype="float32")
        return True
    except Exception:
        return False


def load_file(path: str, rate: int) -> np.ndarray:
    """A file as mono float32 at ``rate`` Hz (the host's ``input_file``); DeviceError if unreadable."""
    from streamsep.audio_io import read_audio

    try:
        x, _ = read_audio(path, rate=rate)
    except Exception as exc:
        raise DeviceError(f"input file {path}: {str(exc).splitlines()[0]}") from exc
    return np.ascontiguousarray(x, dtype=np.float32)
