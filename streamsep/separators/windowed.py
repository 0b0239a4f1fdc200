"""Stateless windowed models (formats ``onnx-window`` and ``torchscript-window``) and the framing
and overlap-add helpers shared with the streaming ONNX adapter.

The adapter keeps the last ``frame − hop`` input samples, cuts a window of ``frame`` samples every
``hop``, weights it with the analysis window, runs the model on all windows of a block as one batch,
weights the outputs with the synthesis window and overlap-adds them.  Window choices (card key
``window``): ``sqrt-hann`` (sqrt-Hann analysis, synthesis from :func:`streamsep.stft.synthesis_window`
so analysis·synthesis overlap-adds to one), ``rect`` (no analysis weighting; synthesis normalised so
the windows overlap-add to one, i.e. ``hop/frame`` when ``hop`` divides ``frame``), ``none`` (raw frames in, outputs summed as they are).

Latency: ``frame − hop`` samples from the framing plus the model's own ``lookahead``; the
separator reports the card's ``latency``, which the card loader has checked equals that sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from streamsep.separators.base import Separator, State, TensorState
from streamsep.separators.cards import Card
from streamsep.stft import sqrt_hann, synthesis_window


def analysis_synthesis(window: str, frame: int, hop: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(analysis, synthesis) float32 windows of ``frame`` samples for a card ``window`` name."""
    if window == "none":
        return None, None
    ana = sqrt_hann(frame) if window == "sqrt-hann" else np.ones(frame)
    return ana.astype(np.float32), synthesis_window(ana, hop).astype(np.float32)


def frame_block(prev: np.ndarray, x: np.ndarray, frame: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``frame`` samples every ``hop`` over ``[prev, x]``: (B, n, frame), new ``prev``.

    ``prev`` holds the last ``frame − hop`` samples (B, frame − hop); ``x`` is (B, n·hop).
    """
    buf = np.concatenate([prev, x.astype(np.float32, copy=False)], axis=1)
    n = x.shape[1] // hop
    idx = np.arange(n)[:, None] * hop + np.arange(frame)[None, :]
    keep = frame - hop
    return buf[:, idx], np.ascontiguousarray(buf[:, buf.shape[1] - keep :]) if keep else buf[:, :0]


def overlap_add(frames: np.ndarray, tail: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlap-add frames (B, n, frame) at ``hop`` onto the carried ``tail`` (B, frame − hop).

    Returns the finished samples (B, n·hop) and the new tail.
    """
    B, n, frame = frames.shape
    acc = np.zeros((B, (n - 1) * hop + frame), dtype=np.float32)
    acc[:, : tail.shape[1]] += tail
    for i in range(n):
        acc[:, i * hop : i * hop + frame] += frames[:, i]
    return acc[:, : n * hop], np.ascontiguousarray(acc[:, n * hop :])


class WindowedSeparator(Separator):
    """A stateless windowed model behind ``process()``; ``runner`` maps (M, frame) → (M, frame)."""

    def __init__(
        self, card: Card, runner: Callable[[np.ndarray], np.ndarray], device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(device)
        self.card, self.runner = card, runner
        self.name, self.description = card.name, card.description
        self.sample_rate, self.hop, self.frame = card.sample_rate, card.hop, card.frame
        self.latency = card.latency
        self.overlap = card.frame - card.hop
        self.ana, self.syn = analysis_synthesis(card.window, card.frame, card.hop)

    def new_state(self, batch: int) -> TensorState:
        z = np.zeros((batch, self.overlap), np.float32)
        return TensorState([z, z.copy()], [0, 0], {"batch": batch})

    def process(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] % self.hop:
            raise ValueError(f"{self.name}: block of shape {x.shape} is not (B, n·{self.hop})")
        if x.shape[0] != state.batch:
            raise ValueError(f"{self.name}: {x.shape[0]} streams in the block but a state for {state.batch}")
        frames, inbuf = frame_block(state.tensors[0], x, self.frame, self.hop)
        B, n, _ = frames.shape
        if self.ana is not None:
            frames = frames * self.ana
        y = np.asarray(self.runner(frames.reshape(B * n, self.frame)), dtype=np.float32)
        if y.shape != (B * n, self.frame):
            raise ValueError(f"{self.name}: the model returned shape {y.shape} for windows {(B * n, self.frame)}")
        y = y.reshape(B, n, self.frame)
        if self.syn is not None:
            y = y * self.syn
        out, tail = overlap_add(y, state.tensors[1], self.hop)
        return out, TensorState([inbuf, tail], [0, 0], {"batch": B})
