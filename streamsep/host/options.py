"""Typed options of the live host and of ``streamsep live`` (no argparse here), with the one-line
validation every entry point shares.  Importing this module is cheap (no numpy, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streamsep.catalogue import LIVE_MARGIN_MS as DEFAULT_MARGIN_MS  # one definition

#: the virtual microphone's ``node.description`` when ``--virtual-mic`` is given without a name
DEFAULT_VIRTUAL_MIC = "streamsep denoised microphone"
#: the JACK client name (ports ``streamsep:in_0``, ``streamsep:out_0``)
DEFAULT_JACK_NAME = "streamsep"
#: accepted ranges (inclusive): beyond these a value is a typo, not a setting
MARGIN_MS_RANGE = (0.0, 1000.0)
BLOCK_RANGE = (16, 16384)  # host block, samples at the device rate (0 = automatic)
SAMPLERATE_RANGE = (8000, 192000)  # Hz
DURATION_MAX_S = 7 * 24 * 3600.0
THREADS_RANGE = (1, 256)


class OptionsError(ValueError):
    """An option out of range; the message is one line naming the option."""


@dataclass
class LiveOptions:
    """Everything ``streamsep live`` needs besides the engine configuration.

    Devices are PortAudio indices or (parts of) names; ``output_device="null"`` plays nowhere.
    ``virtual_mic`` (a node description) publishes the output as a PipeWire virtual source.
    """

    input_device: str | int | None = None
    output_device: str | int | None = None
    input_file: str | None = None
    loop_file: bool = True
    samplerate: int | None = None  # Hz; None: the device's (JACK/PipeWire) or the model's
    block: int = 0  # host block in samples; 0: the server period, else 10 ms
    margin_ms: float = DEFAULT_MARGIN_MS
    duration: float | None = None  # seconds; None: until Ctrl-C / SIGTERM (or file end, no loop)
    stats_path: str | None = None
    adapt: bool = True
    realtime: bool = True
    threads: int = 1
    quiet: bool = False
    model_path: str | None = None
    jack_name: str = DEFAULT_JACK_NAME
    connect_input: list[str] = field(default_factory=list)
    connect_output: list[str] = field(default_factory=list)
    virtual_mic: str | None = None

    def validate(self) -> LiveOptions:
        """Raise :class:`OptionsError` (one line, naming the option) for an absurd value."""
        _check_range("--margin-ms", self.margin_ms, *MARGIN_MS_RANGE, "ms")
        if self.duration is not None:
            d = float(self.duration)
            if not math.isfinite(d) or d <= 0 or d > DURATION_MAX_S:
                raise OptionsError(
                    f"--duration: must be a positive number of seconds (at most "
                    f"{DURATION_MAX_S:.0f}), got {self.duration:g}"
                )
        if self.block:
            _check_range("--block", self.block, *BLOCK_RANGE, "samples")
        elif self.block != 0:
            raise OptionsError(f"--block: must be positive, got {self.block}")
        if self.samplerate is not None:
            _check_range("--samplerate", self.samplerate, *SAMPLERATE_RANGE, "Hz")
        _check_range("--threads", self.threads, *THREADS_RANGE, "")
        name = str(self.jack_name)
        if not name or len(name) > 63 or ":" in name:
            raise OptionsError(f"--name: a JACK client name of 1-63 characters without ':' is needed, got {name!r}")
        if self.virtual_mic is not None and not str(self.virtual_mic).strip():
            raise OptionsError("--virtual-mic: the name must not be empty")
        return self


def _check_range(opt: str, value, lo, hi, unit: str) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptionsError(f"{opt}: not a number: {value!r}") from None
    if not math.isfinite(v) or v < lo or v > hi:
        u = f" {unit}" if unit else ""
        raise OptionsError(f"{opt}: must be between {lo:g} and {hi:g}{u}, got {value:g}")


def virtual_mic_node_name(description: str) -> str:
    """``node.name`` for a virtual microphone: ``streamsep_mic`` for the default description, else
    ``streamsep_mic_`` + the description reduced to lower-case letters, digits and underscores."""
    if description == DEFAULT_VIRTUAL_MIC:
        return "streamsep_mic"
    slug = "".join(c if c.isalnum() else "_" for c in description.lower()).strip("_")
    return "streamsep_mic_" + (slug[:40] or "x")
