"""Separators built from model cards: :func:`build` opens a card's model in the matching runner
(ONNX streaming, windowed ONNX/TorchScript, TorchScript streaming); :class:`CardFactory` is what the
registry hands out for a card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamsep.separators.base import Separator
from streamsep.separators.cards import Card, _builtin_cards, load_card


def build(card: Card, device: str = "cpu", model_path: str | Path | None = None, **kwargs: Any) -> Separator:
    """Resolve and check the card's files, open the model, return the separator."""
    from streamsep import modelfiles

    files = modelfiles.resolve(card, model_path)
    if card.format == "onnx-stream":
        from streamsep.separators import onnx_stream

        cls = onnx_stream.OnnxStreamFrameSeparator if card.io == "stft" else onnx_stream.OnnxStreamWaveSeparator
        return cls(card, files, device=device, **kwargs)
    if card.format == "onnx-window":
        from streamsep.separators import onnx_stream, windowed

        return windowed.WindowedSeparator(
            card, onnx_stream.OnnxWindowRunner(card, files, device=device, **kwargs), device=device
        )
    from streamsep.separators import torchscript, windowed

    if card.format == "torchscript-window":
        return windowed.WindowedSeparator(card, torchscript.TorchScriptWindowRunner(card, files, device), device=device)
    return torchscript.TorchScriptStreamSeparator(card, files, device=device, **kwargs)


class CardFactory:
    """``factory(device="cpu", model_path=None, **kwargs) -> Separator`` for one card."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.__doc__ = card.description

    def __call__(self, device: str = "cpu", model_path: str | Path | None = None, **kwargs: Any) -> Separator:
        return build(self.card, device=device, model_path=model_path, **kwargs)

    def __repr__(self) -> str:
        return f"CardFactory({self.card.name!r}, {str(self.card.path)!r})"


def load_card_file(path: str | Path) -> CardFactory:
    """A factory for the user's own card at ``path`` (validated now, model opened on call)."""
    return CardFactory(load_card(path))


def builtin_card_factories() -> dict[str, CardFactory]:
    """name → factory for every shipped card (used lazily by the registry)."""
    return {name: CardFactory(card) for name, card in _builtin_cards().items()}
