"""Model cards: TOML files that describe separators streamsep does not implement itself.

A card names the model, its format, rates and framing, its latency, licence and upstream source,
and the weight files with download URL and sha256.  Cards shipped with streamsep live in
``streamsep/cards/*.toml``; a user's own card is used by passing its path (``….toml``) as the
model name.  Loading is strict: an unknown key, a wrong type or a missing key raises
:class:`CardError` naming the card file and the key; when the model is opened, the declared tensor
names and shapes are compared with the model's real inputs/outputs.

Top-level keys (units: Hz for ``sample_rate``; samples for ``frame``, ``hop``, ``latency``,
``lookahead``, ``n_fft``, ``win_length``):

``name``, ``format`` (``onnx-stream`` | ``onnx-window`` | ``torchscript-stream`` |
``torchscript-window``), ``description`` (optional), ``sample_rate``, ``frame`` (samples per
model frame/window), ``hop``, ``io`` (``stft`` | ``waveform``), ``latency``, ``lookahead``
(optional; the model's own output delay, so ``latency = frame − hop + lookahead``, or
``latency = lookahead`` for ``torchscript-stream``), ``n_fft`` / ``win_length`` (STFT),
``window`` (``sqrt-hann``: sqrt-Hann analysis, matching synthesis; ``rect``: no analysis weighting,
synthesis normalised to overlap-add to one; ``none``: raw frames in, model frames summed as they
are), ``licence``, ``source`` (upstream repository URL), ``[[files]]`` (``name``, ``url``,
``sha256``).

``onnx-stream`` cards list ``[[stages]]``, run in order on every frame: ``file``, ``input``,
``output`` (tensor names), ``layout`` (axis letters of the signal tensors: ``B`` batch, ``T`` time
(one frame), ``F`` frequency bins, ``C`` real/imag, ``N`` samples of the frame, ``1`` a unit
axis; ``output_layout`` when the output differs), ``feed`` (``spectrum`` | ``magnitude`` |
``frame``), ``returns`` (``spectrum`` | ``mask`` (real, multiplies the spectrum) | ``frame``),
and ``[[stages.states]]`` (``input``, ``output``: the state output that feeds that input on the
next frame; ``shape``: the model's tensor shape).  Window formats give ``[model]`` (``file``;
ONNX also ``input``, ``output``, ``layout`` (default ``BN``)); ``torchscript-stream`` gives
``[model]`` with ``file`` and ``[[model.states]]`` (``shape`` for one stream, ``batch_axis``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from streamsep.modelfiles import ModelFileError, pull_files

FORMATS = ("onnx-stream", "onnx-window", "torchscript-stream", "torchscript-window")
IOS = ("stft", "waveform")
WINDOWS = ("sqrt-hann", "rect", "none")
FEEDS = ("spectrum", "magnitude", "frame")
RETURNS = ("spectrum", "mask", "frame")
LAYOUT_LETTERS = set("BTFCN1")
#: signal letters each representation needs in a layout
KIND_LETTERS = {"spectrum": "FC", "magnitude": "F", "mask": "F", "frame": "N"}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class CardError(ValueError):
    """A model card that is malformed, or that does not match its model."""


# -- schema --------------------------------------------------------------------------------------
# spec: key -> (type, required); a type is int, str, a nested spec dict (table) or [spec] (array)
_FILE = {"name": (str, True), "url": (str, True), "sha256": (str, True)}
_ONNX_STATE = {"input": (str, True), "output": (str, True), "shape": ([int], True)}
_STAGE = {
    "file": (str, True),
    "input": (str, True),
    "output": (str, True),
    "layout": (str, True),
    "output_layout": (str, False),
    "feed": (str, True),
    "returns": (str, True),
    "states": ([_ONNX_STATE], False),
}
_TS_STATE = {"name": (str, False), "shape": ([int], True), "batch_axis": (int, True)}
_MODEL = {
    "file": (str, True),
    "input": (str, False),
    "output": (str, False),
    "layout": (str, False),
    "states": ([_TS_STATE], False),
}
_TOP = {
    "name": (str, True),
    "format": (str, True),
    "description": (str, False),
    "sample_rate": (int, True),
    "frame": (int, True),
    "hop": (int, True),
    "io": (str, True),
    "latency": (int, True),
    "lookahead": (int, False),
    "n_fft": (int, False),
    "win_length": (int, False),
    "window": (str, False),
    "licence": (str, True),
    "source": (str, True),
    "files": ([_FILE], True),
    "stages": ([_STAGE], False),
    "model": (_MODEL, False),
}


def _type_name(t: Any) -> str:
    if isinstance(t, list):
        return f"array of {_type_name(t[0])}"
    if isinstance(t, dict):
        return "table"
    return {int: "integer", str: "string"}[t]


def _check_value(value: Any, t: Any, where: str, err: Callable[[str], CardError]) -> None:
    if isinstance(t, dict):
        if not isinstance(value, dict):
            raise err(f"key '{where}' must be a table")
        _check_table(value, t, where + ".", err)
    elif isinstance(t, list):
        if not isinstance(value, list):
            raise err(f"key '{where}' must be an {_type_name(t)}")
        for i, item in enumerate(value):
            _check_value(item, t[0], f"{where}[{i}]", err)
    elif t is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise err(f"key '{where}' must be an integer, not {value!r}")
    elif not isinstance(value, t):
        raise err(f"key '{where}' must be a {_type_name(t)}, not {value!r}")


def _check_table(table: dict, spec: dict, prefix: str, err: Callable[[str], CardError]) -> None:
    for key in table:
        if key not in spec:
            raise err(f"unknown key '{prefix}{key}'")
    for key, (t, required) in spec.items():
        if key not in table:
            if required:
                raise err(f"missing key '{prefix}{key}'")
            continue
        _check_value(table[key], t, prefix + key, err)


# -- card objects ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileEntry:
    """One weight file: local name, upstream URL, sha256 hex digest."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class OnnxState:
    """A recurrent state of an ONNX graph: the output ``output`` feeds ``input`` on the next frame."""

    input: str
    output: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Stage:
    """One ONNX graph run per frame (see the module docstring)."""

    file: str
    input: str
    output: str
    layout: str
    output_layout: str
    feed: str
    returns: str
    states: tuple[OnnxState, ...] = ()


@dataclass(frozen=True)
class TorchState:
    """A TorchScript stream state: ``shape`` for one stream, batch on ``batch_axis``."""

    name: str
    shape: tuple[int, ...]
    batch_axis: int


@dataclass(frozen=True)
class ModelSpec:
    """The single model of a window format or of ``torchscript-stream``."""

    file: str
    input: str = ""
    output: str = ""
    layout: str = "BN"
    states: tuple[TorchState, ...] = ()


@dataclass(frozen=True)
class Card:
    """A validated model card."""

    path: Path
    name: str
    format: str
    description: str
    sample_rate: int
    frame: int
    hop: int
    io: str
    latency: int
    lookahead: int
    n_fft: int
    win_length: int
    window: str
    licence: str
    source: str
    files: tuple[FileEntry, ...]
    stages: tuple[Stage, ...] = ()
    model: ModelSpec | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_bins(self) -> int:
        """Frequency bins per frame (n_fft // 2 + 1)."""
        return self.n_fft // 2 + 1

    def error(self, message: str) -> CardError:
        """A :class:`CardError` prefixed with this card's file."""
        return CardError(f"model card {self.path}: {message}")


def _check_layout(layout: str, kind: str, where: str, err: Callable[[str], CardError]) -> None:
    letters = [c for c in layout if c != "1"]
    if not layout or set(layout) - LAYOUT_LETTERS or len(letters) != len(set(letters)):
        raise err(f"key '{where}' = '{layout}' must use the letters B T F C N 1, each of B T F C N at most once")
    need = set(KIND_LETTERS[kind])
    have = set(letters) & set("FCN")
    if have != need:
        raise err(f"key '{where}' = '{layout}' must hold exactly the axes {'+'.join(sorted(need))} for '{kind}'")


_Err = Callable[[str], CardError]


def _check_header(d: dict, err: _Err) -> None:
    """Check name, format, io and the rates: ``sample_rate`` (Hz), ``frame`` and ``hop`` (samples)."""
    if not _NAME_RE.match(d["name"]):
        raise err(f"key 'name' = {d['name']!r} must be lower-case letters, digits, '.', '_' or '-'")
    for key, allowed in (("format", FORMATS), ("io", IOS)):
        if d[key] not in allowed:
            raise err(f"key '{key}' = {d[key]!r} must be one of {', '.join(allowed)}")
    for key in ("sample_rate", "frame", "hop"):
        if d[key] <= 0:
            raise err(f"key '{key}' must be positive")
    if d["hop"] > d["frame"]:
        raise err(f"key 'hop' = {d['hop']} exceeds 'frame' = {d['frame']}")


def _parse_files(d: dict, err: _Err) -> tuple[FileEntry, ...]:
    """The ``[[files]]`` entries (at least one; plain names, 64-hex sha256, http(s)/file URLs)."""
    if not d["files"]:
        raise err("key 'files' must list at least one file")
    files = []
    for i, f in enumerate(d["files"]):
        if "/" in f["name"] or "\\" in f["name"] or f["name"] in ("", ".", ".."):
            raise err(f"key 'files[{i}].name' = {f['name']!r} must be a plain file name")
        if not _SHA_RE.match(f["sha256"]):
            raise err(f"key 'files[{i}].sha256' must be 64 hex digits")
        if f["url"].split(":", 1)[0] not in ("https", "http", "file"):
            raise err(f"key 'files[{i}].url' must be an https://, http:// or file:// URL")
        files.append(FileEntry(f["name"], f["url"], f["sha256"].lower()))
    return tuple(files)


def _parse_framing(d: dict, err: _Err) -> tuple[str, int, int]:
    """The window name and ``n_fft``, ``win_length`` (samples; both default to ``frame``)."""
    fmt, io, frame, hop = d["format"], d["io"], d["frame"], d["hop"]
    window = d.get("window", "")
    if fmt == "torchscript-stream":
        if io != "waveform":
            raise err("key 'io' must be 'waveform' for format 'torchscript-stream'")
        if frame != hop:
            raise err("key 'frame' must equal 'hop' for format 'torchscript-stream'")
        if "window" in d:
            raise err("key 'window' is not used by format 'torchscript-stream'")
    else:
        if "window" not in d:
            raise err(f"missing key 'window' (needed by format '{fmt}')")
        if window not in WINDOWS:
            raise err(f"key 'window' = {window!r} must be one of {', '.join(WINDOWS)}")
    if io == "stft":
        if fmt != "onnx-stream":
            raise err(f"key 'io' = 'stft' is only supported for format 'onnx-stream', not '{fmt}'")
        for key in ("n_fft", "win_length"):
            if key not in d:
                raise err(f"missing key '{key}' (needed by io 'stft')")
        if d["win_length"] != frame:
            raise err(f"key 'win_length' = {d['win_length']} must equal 'frame' = {frame}")
        if window == "none":
            raise err("key 'window' = 'none' is not allowed with io 'stft'")
    n_fft = d.get("n_fft", frame)
    win_length = d.get("win_length", frame)
    if n_fft < frame:
        raise err(f"key 'n_fft' = {n_fft} is smaller than 'frame' = {frame}")
    return window, n_fft, win_length


def _parse_latency(d: dict, err: _Err) -> tuple[int, int]:
    """``(latency, lookahead)`` in samples; ``latency`` = framing delay (frame − hop, or 0 for
    ``torchscript-stream``) + ``lookahead``, which is derived when the card does not give it."""
    base = 0 if d["format"] == "torchscript-stream" else d["frame"] - d["hop"]
    latency = d["latency"]
    if "lookahead" in d:
        lookahead = d["lookahead"]
        if lookahead < 0:
            raise err("key 'lookahead' must not be negative")
        if latency != base + lookahead:
            raise err(f"key 'latency' = {latency} must equal {base} (framing) + lookahead {lookahead}")
    else:
        lookahead = latency - base
        if lookahead < 0:
            raise err(f"key 'latency' = {latency} is below the framing delay frame − hop = {base}")
    return latency, lookahead


def _parse_onnx_states(s: dict, w: str, err: _Err) -> tuple[OnnxState, ...]:
    """The ``[[stages.states]]`` of stage ``s`` (``w`` names it in messages); shapes must be positive."""
    states = []
    for j, st in enumerate(s.get("states", [])):
        if not st["shape"] or any(n <= 0 for n in st["shape"]):
            raise err(f"key '{w}.states[{j}].shape' must list positive sizes")
        states.append(OnnxState(st["input"], st["output"], tuple(st["shape"])))
    return tuple(states)


def _parse_stages(d: dict, file_names: set[str], err: _Err) -> tuple[Stage, ...]:
    """The ``[[stages]]`` of an ``onnx-stream`` card (at least one; no ``[model]``)."""
    if "model" in d:
        raise err("key 'model' is not used by format 'onnx-stream' (use [[stages]])")
    if not d.get("stages"):
        raise err("missing key 'stages' (format 'onnx-stream' needs at least one stage)")
    stages = []
    for i, s in enumerate(d["stages"]):
        w = f"stages[{i}]"
        if s["file"] not in file_names:
            raise err(f"key '{w}.file' = {s['file']!r} is not listed in [[files]]")
        if s["feed"] not in FEEDS:
            raise err(f"key '{w}.feed' = {s['feed']!r} must be one of {', '.join(FEEDS)}")
        if s["returns"] not in RETURNS:
            raise err(f"key '{w}.returns' = {s['returns']!r} must be one of {', '.join(RETURNS)}")
        out_layout = s.get("output_layout", s["layout"])
        _check_layout(s["layout"], s["feed"], f"{w}.layout", err)
        _check_layout(out_layout, s["returns"], f"{w}.output_layout" if "output_layout" in s else f"{w}.layout", err)
        states = _parse_onnx_states(s, w, err)
        stages.append(
            Stage(s["file"], s["input"], s["output"], s["layout"], out_layout, s["feed"], s["returns"], states)
        )
    return tuple(stages)


def _parse_torch_states(m: dict, fmt: str, err: _Err) -> tuple[TorchState, ...]:
    """The ``[[model.states]]`` (``torchscript-stream`` only): positive shape for one stream, and a
    ``batch_axis`` of size 1."""
    ts_states = []
    if "states" in m:
        if fmt != "torchscript-stream":
            raise err(f"key 'model.states' is only used by format 'torchscript-stream', not '{fmt}'")
        for j, st in enumerate(m["states"]):
            shape = tuple(st["shape"])
            if not shape or any(n <= 0 for n in shape):
                raise err(f"key 'model.states[{j}].shape' must list positive sizes")
            if not 0 <= st["batch_axis"] < len(shape) or shape[st["batch_axis"]] != 1:
                raise err(f"key 'model.states[{j}].batch_axis' must name an axis of size 1 in 'shape'")
            ts_states.append(TorchState(st.get("name", f"state{j}"), shape, st["batch_axis"]))
    return tuple(ts_states)


def _parse_model(d: dict, file_names: set[str], err: _Err) -> ModelSpec:
    """The ``[model]`` table of a window or ``torchscript-stream`` card (no ``[[stages]]``)."""
    fmt = d["format"]
    if "stages" in d:
        raise err(f"key 'stages' is only used by format 'onnx-stream', not '{fmt}'")
    if "model" not in d:
        raise err(f"missing key 'model' (needed by format '{fmt}')")
    m = d["model"]
    if m["file"] not in file_names:
        raise err(f"key 'model.file' = {m['file']!r} is not listed in [[files]]")
    if fmt == "onnx-window":
        for key in ("input", "output"):
            if key not in m:
                raise err(f"missing key 'model.{key}' (needed by format 'onnx-window')")
        _check_layout(m.get("layout", "BN"), "frame", "model.layout", err)
    else:
        for key in ("input", "output", "layout"):
            if key in m:
                raise err(f"key 'model.{key}' is only used by format 'onnx-window'")
    ts_states = _parse_torch_states(m, fmt, err)
    return ModelSpec(m["file"], m.get("input", ""), m.get("output", ""), m.get("layout", "BN"), ts_states)


def parse_card(data: dict, path: Path) -> Card:
    """Validate a parsed TOML card and build a :class:`Card`; raises :class:`CardError`."""
    path = Path(path)

    def err(msg: str) -> CardError:
        return CardError(f"model card {path}: {msg}")

    _check_table(data, _TOP, "", err)
    d = data
    _check_header(d, err)
    fmt, io = d["format"], d["io"]
    frame, hop = d["frame"], d["hop"]
    files = _parse_files(d, err)
    file_names = {f.name for f in files}
    window, n_fft, win_length = _parse_framing(d, err)
    latency, lookahead = _parse_latency(d, err)
    stages: tuple[Stage, ...] = ()
    model: ModelSpec | None = None
    if fmt == "onnx-stream":
        stages = _parse_stages(d, file_names, err)
    else:
        model = _parse_model(d, file_names, err)

    return Card(
        path=path,
        name=d["name"],
        format=fmt,
        description=d.get("description", f"{d['name']} ({fmt} model card)"),
        sample_rate=d["sample_rate"],
        frame=frame,
        hop=hop,
        io=io,
        latency=latency,
        lookahead=lookahead,
        n_fft=n_fft,
        win_length=win_length,
        window=window,
        licence=d["licence"],
        source=d["source"],
        files=files,
        stages=stages,
        model=model,
        raw=data,
    )


def load_card(path: str | Path) -> Card:
    """Read and validate the card at ``path``; raises :class:`CardError`."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"model card {p}: cannot read it ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"model card {p}: not valid TOML ({exc})") from exc
    return parse_card(data, p)


def builtin_card_paths() -> list[Path]:
    """The cards shipped in ``streamsep/cards/``."""
    root = resources.files("streamsep") / "cards"
    if not root.is_dir():
        return []
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml"))


@functools.lru_cache(maxsize=1)
def _builtin_cards() -> dict[str, Card]:
    cards: dict[str, Card] = {}
    for p in builtin_card_paths():
        card = load_card(p)
        if card.name in cards:
            raise CardError(f"model card {p}: name '{card.name}' is already used by {cards[card.name].path}")
        cards[card.name] = card
    return cards


def builtin_cards() -> dict[str, Card]:
    """name → :class:`Card` for every shipped card."""
    return dict(_builtin_cards())


def find_card(name: str | Path) -> Card:
    """A shipped card by name, or a card file by path (``….toml``).

    An unknown name raises :class:`streamsep.modelfiles.ModelFileError` (what ``models pull``
    reports); a malformed card file raises :class:`CardError`.
    """
    s = str(name)
    if s.endswith(".toml"):
        return load_card(s)
    cards = _builtin_cards()
    if s not in cards:
        raise ModelFileError(
            f"no model card named '{s}' (cards: {', '.join(sorted(cards)) or 'none'}; or give the path of a .toml card)"
        )
    return cards[s]


def pull(name: str | Path, dest_dir: str | Path | None = None, progress: bool = True) -> list[Path]:
    """Download the files of the card ``name`` (a built-in card name or a ``.toml`` path).

    Files go to ``dest_dir`` (default: the user cache, ``<cache>/<card name>/``); files already
    there with the right sha256 are kept.  Returns the paths of all of the card's files.
    """
    return pull_files(find_card(name), dest_dir, progress)
