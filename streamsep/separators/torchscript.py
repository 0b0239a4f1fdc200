"""TorchScript models described by model cards (``torchscript-stream``, ``torchscript-window``).

Modules are loaded with :func:`torch.jit.load` (never unpickled with ``torch.load``).

* ``torchscript-stream``: ``forward(x_block, *states) -> (y_block, *states)`` with ``x_block``
  (B, n·hop) float32 and states shaped as the card says (batch on ``batch_axis``).  The card's
  ``latency`` is the module's own delay in samples.
* ``torchscript-window``: ``forward(windows) -> windows``, (M, frame) → (M, frame), stateless; the
  framing and overlap-add are :class:`streamsep.separators.windowed.WindowedSeparator`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamsep.separators.base import Separator, State, TensorState
from streamsep.separators.cards import Card


def load_module(card: Card, path: Path, device: str | torch.device) -> torch.jit.ScriptModule:
    """Load a TorchScript file onto ``device`` in eval mode; a non-TorchScript file → ``CardError``."""
    try:
        module = torch.jit.load(str(path), map_location=torch.device(device))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise card.error(f"{path.name} is not a loadable TorchScript module ({first})") from exc
    return module.eval()


def _dry_run(card: Card, call, shape: tuple[int, ...]) -> None:
    """Check the module against the card once at load time with zeros; mismatch → ``CardError``."""
    from streamsep.separators.cards import CardError

    try:
        y = call()
    except CardError:
        raise
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise card.error(f"{card.model.file} does not run as the card describes it ({first})") from exc
    if tuple(np.shape(y)) != shape:
        raise card.error(f"{card.model.file} returned shape {tuple(np.shape(y))} for input {shape}")


class TorchScriptWindowRunner:
    """Runs a ``torchscript-window`` module on windows (M, frame) → (M, frame)."""

    def __init__(self, card: Card, files: dict[str, Path], device: str | torch.device = "cpu") -> None:
        self.card = card
        self.device = torch.device(device)
        self.module = load_module(card, files[card.model.file], self.device)
        _dry_run(card, lambda: self(np.zeros((1, card.frame), np.float32)), (1, card.frame))

    @torch.inference_mode()
    def __call__(self, windows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)
        y = self.module(x)
        if not isinstance(y, torch.Tensor):
            raise self.card.error(f"{self.card.model.file}: forward must return one tensor, got {type(y).__name__}")
        return y.detach().to("cpu", torch.float32).numpy()


class TorchScriptStreamSeparator(Separator):
    """A scripted streaming module ``forward(x_block, *states) -> (y_block, *states)``."""

    def __init__(self, card: Card, files: dict[str, Path], device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.card = card
        self.name, self.description = card.name, card.description
        self.sample_rate, self.hop, self.latency = card.sample_rate, card.hop, card.latency
        self.states = card.model.states
        self.module = load_module(card, files[card.model.file], self.device)
        _dry_run(card, lambda: self.process(np.zeros((1, card.hop), np.float32), self.new_state(1))[0], (1, card.hop))

    def new_state(self, batch: int) -> TensorState:
        tensors = []
        for s in self.states:
            shape = list(s.shape)
            shape[s.batch_axis] = batch
            tensors.append(torch.zeros(shape, dtype=torch.float32, device=self.device))
        return TensorState(tensors, [s.batch_axis for s in self.states], {"batch": batch})

    @torch.inference_mode()
    def process(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] % self.hop:
            raise ValueError(f"{self.name}: block of shape {x.shape} is not (B, n·{self.hop})")
        if x.shape[0] != state.batch:
            raise ValueError(f"{self.name}: {x.shape[0]} streams in the block but a state for {state.batch}")
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        res = self.module(xt, *state.tensors)
        if isinstance(res, torch.Tensor):
            res = (res,)
        if len(res) != 1 + len(self.states):
            raise self.card.error(
                f"{self.card.model.file}: forward returned {len(res)} values, "
                f"the card expects the block and {len(self.states)} state(s)"
            )
        y, new = res[0], list(res[1:])
        if tuple(y.shape) != x.shape:
            raise self.card.error(
                f"{self.card.model.file}: forward returned a block of shape {tuple(y.shape)} for input {x.shape}"
            )
        for s, t, old in zip(self.states, new, state.tensors):
            if t.shape != old.shape:
                raise self.card.error(
                    f"{self.card.model.file}: state '{s.name}' came back with shape "
                    f"{tuple(t.shape)}, the card says {tuple(old.shape)}"
                )
        return y.detach().to("cpu", torch.float32).numpy(), TensorState(
            new, [s.batch_axis for s in self.states], {"batch": x.shape[0]}
        )
