"""Batched stream state: :class:`TensorState` holds the carried tensors of a batch of streams
(separator recurrences, STFT overlap buffers) and can fork and select streams."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

State = Any


def as_index(index: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    """Normalise an index vector to a 1-D int64 numpy array."""
    if isinstance(index, torch.Tensor):
        index = index.detach().cpu().numpy()
    return np.asarray(index, dtype=np.int64).reshape(-1)


@dataclass
class TensorState:
    """A state made of tensors/arrays that all carry the batch on axis ``batch_axis[i]``.

    ``tensors`` may mix torch tensors and numpy arrays.  ``extra`` holds per-state data that is not
    batched (for example a frame counter) and is shallow-copied by fork/select.
    """

    tensors: list
    batch_axis: list[int]
    extra: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        """Number of streams (rows) in this state."""
        if not self.tensors:
            return int(self.extra.get("batch", 0))
        t, ax = self.tensors[0], self.batch_axis[0]
        return int(t.shape[ax])

    def fork(self, copies: int) -> TensorState:
        """Repeat each stream ``copies`` times consecutively (B → B·copies)."""
        out = []
        for t, ax in zip(self.tensors, self.batch_axis):
            if isinstance(t, torch.Tensor):
                out.append(torch.repeat_interleave(t, copies, dim=ax))
            else:
                out.append(np.repeat(t, copies, axis=ax))
        extra = dict(self.extra)
        if "batch" in extra:
            extra["batch"] = extra["batch"] * copies
        return TensorState(out, list(self.batch_axis), extra)

    def select(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> TensorState:
        """Keep the streams named by ``index`` (in that order)."""
        idx = as_index(index)
        out = []
        for t, ax in zip(self.tensors, self.batch_axis):
            if isinstance(t, torch.Tensor):
                out.append(torch.index_select(t, ax, torch.as_tensor(idx, device=t.device)))
            else:
                out.append(np.take(t, idx, axis=ax))
        extra = dict(self.extra)
        if "batch" in extra:
            extra["batch"] = len(idx)
        return TensorState(out, list(self.batch_axis), extra)

    def is_finite(self) -> bool:
        """True when no tensor of the state holds NaN or Inf (a poisoned state is not)."""
        # a finite sum proves every element finite (one cheap reduction per block); a non-finite
        # sum may be an overflow of large finite values, so the exact test decides then
        for t in self.tensors:
            if isinstance(t, torch.Tensor):
                if t.is_floating_point():
                    if not math.isfinite(float(t.sum())) and not bool(torch.isfinite(t).all()):
                        return False
                elif t.is_complex():
                    if not bool(torch.isfinite(t).all()):
                        return False
            elif np.issubdtype(np.asarray(t).dtype, np.floating):
                if not math.isfinite(float(np.sum(t))) and not np.isfinite(t).all():
                    return False
            elif np.issubdtype(np.asarray(t).dtype, np.inexact):
                if not np.isfinite(t).all():
                    return False
        return True
