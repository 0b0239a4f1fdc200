"""Separator registry: name → factory.  Built-in separators and model cards live side by side.

Factories are imported lazily so that listing models, or using one, never pays for the others.
"""
from __future__ import annotations

import importlib
from typing import Callable

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


def _card_names() -> dict[str, Callable[..., Separator]]:
    """Model cards shipped with streamsep (``streamsep/cards/*.toml``), if that module exists."""
    try:
        cards = importlib.import_module("streamsep.separators.cards")
    except ImportError:
        return {}
    return cards.builtin_card_factories()


def model_names() -> list[str]:
    """Every model name that :func:`create` accepts."""
    return list(BUILTIN) + [n for n in _card_names() if n not in BUILTIN]


class DeviceUnavailableError(RuntimeError):
    """A torch device (CUDA) that this machine does not have."""


def create(name: str, device: str = "cpu", **kwargs) -> Separator:
    """Instantiate the separator called ``name`` on ``device`` ("cpu" or "cuda")."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {device}: torch sees no CUDA device on this machine "
                                         f"(torch {torch.__version__}); use --device cpu")
    if name in BUILTIN:
        target, defaults = BUILTIN[name]
        mod, attr = target.split(":")
        cls = getattr(importlib.import_module(mod), attr)
        return cls(device=device, **{**defaults, **kwargs})
    cards = _card_names()
    if name in cards:
        return cards[name](device=device, **kwargs)
    if name.endswith(".toml"):
        cards_mod = importlib.import_module("streamsep.separators.cards")
        return cards_mod.load_card_file(name)(device=device, **kwargs)
    raise UnknownModelError(f"unknown model '{name}' (known: {', '.join(model_names())})")
