"""The separator protocol: what the refiner and the streaming engine need from a model.

A separator maps a (noisy) mixture to an estimate, in blocks of whole hops, for ``B`` parallel
streams at once, carrying recurrent state between calls.  Two kinds exist:

* **Frame-domain** separators (``frame_domain = True``: NSNet2, the spectral suppressor, GTCRN)
  expose :meth:`FrameSeparator.analyze`, :meth:`FrameSeparator.step` and
  :meth:`FrameSeparator.synthesize`.  The engine analyses the mixture once, runs every refinement
  step on the same STFT frames (blending ``Z = r·X + (1−r)·Y``) and synthesises only the last step,
  so ``K`` steps add no latency over one step.
* **Waveform** separators (RNNoise, DTLN, bring-your-own models) expose only :meth:`process`;
  the engine blends waveforms and delay-aligns the mixture, so each step adds ``latency`` samples.

State handling for candidates: :meth:`fork` repeats every stream ``copies`` times *consecutively*
(stream ``b`` becomes rows ``b*copies … b*copies+copies−1``), :meth:`select` keeps the rows named
by an index vector.  States are opaque to callers; separators whose state is a tuple of tensors /
arrays with the batch on a known axis get fork/select for free from :class:`TensorState`.

Units: sample rate in Hz; ``hop``, ``latency`` and block lengths in samples at ``sample_rate``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streamsep.state import State, TensorState, as_index  # noqa: F401 (re-exported)


class Separator(ABC):
    """A streaming, stateful, batched separator (see the module docstring)."""

    #: registry name, e.g. ``"nsnet2"``
    name: str = "separator"
    #: sample rate in Hz
    sample_rate: int = 16000
    #: samples per call unit; blocks passed to :meth:`process` are whole multiples of it
    hop: int = 160
    #: algorithmic latency of :meth:`process` in samples (output delayed by exactly this much)
    latency: int = 0
    #: True when analyze/step/synthesize are available (blend in the separator's frame domain)
    frame_domain: bool = False
    #: one-line description shown by ``streamsep models``
    description: str = ""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    # -- state -----------------------------------------------------------------------------
    @abstractmethod
    def new_state(self, batch: int) -> State:
        """A fresh state for ``batch`` parallel streams."""

    def fork(self, state: State, copies: int) -> State:
        """Repeat every stream ``copies`` times consecutively (B → B·copies)."""
        return state.fork(copies)

    def select(self, state: State, index: Sequence[int] | np.ndarray | torch.Tensor) -> State:
        """Keep the streams named by ``index`` (B → len(index))."""
        return state.select(index)

    def state_is_finite(self, state: State) -> bool:
        """False when the state is poisoned (NaN/Inf); the engine then resets the chain."""
        fn = getattr(state, "is_finite", None)
        return bool(fn()) if fn is not None else True

    # -- processing --------------------------------------------------------------------------
    @abstractmethod
    def process(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Process ``x`` of shape (B, n·hop), float32, at ``sample_rate``.

        Returns the estimate of the same shape, delayed by ``latency`` samples, and the new state.
        """

    def info(self) -> dict:
        """Rate, hop and latency for listings and reports."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "hop": self.hop,
            "latency": self.latency,
            "latency_ms": 1000.0 * self.latency / self.sample_rate,
            "frame_domain": self.frame_domain,
            "device": str(self.device),
            "description": self.description,
        }


class FrameSeparator(Separator):
    """A separator that works on STFT frames and exposes its frame domain to the engine.

    Subclasses set ``n_fft``, ``win_length`` and ``hop`` and implement :meth:`step`; analysis and
    synthesis come from :class:`streamsep.stft.StreamingSTFT`.  ``latency = win_length − hop``.
    """

    frame_domain = True
    n_fft: int = 320
    win_length: int = 320

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        from streamsep.stft import StreamingSTFT

        self.stft = StreamingSTFT(self.n_fft, self.win_length, self.hop, device=self.device)
        self.latency = self.stft.latency

    @property
    def n_bins(self) -> int:
        """Number of frequency bins per frame (n_fft//2 + 1)."""
        return self.n_fft // 2 + 1

    @abstractmethod
    def new_model_state(self, batch: int) -> State:
        """A fresh state of the network alone (no STFT buffers)."""

    @abstractmethod
    def step(self, frames: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One network pass on complex frames (B, T, F) → enhanced frames (B, T, F), new state."""

    def new_state(self, batch: int) -> State:
        """Full state for :meth:`process`: analysis buffer, network state, synthesis buffer."""
        return _ProcessState(
            self.stft.new_analysis_state(batch),
            self.new_model_state(batch),
            self.stft.new_synthesis_state(batch),
        )

    def fork(self, state: State, copies: int) -> State:
        if isinstance(state, _ProcessState):
            return _ProcessState(state.ana.fork(copies), self.fork(state.model, copies), state.syn.fork(copies))
        return state.fork(copies)

    def select(self, state: State, index) -> State:
        if isinstance(state, _ProcessState):
            return _ProcessState(state.ana.select(index), self.select(state.model, index), state.syn.select(index))
        return state.select(index)

    def state_is_finite(self, state: State) -> bool:
        if isinstance(state, _ProcessState):
            return state.ana.is_finite() and super().state_is_finite(state.model) and state.syn.is_finite()
        return super().state_is_finite(state)

    def analyze(self, x: torch.Tensor, ana_state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """STFT of ``x`` (B, n·hop) → complex frames (B, n, F), streaming."""
        return self.stft.analyze(x, ana_state)

    def synthesize(self, frames: torch.Tensor, syn_state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Complex frames (B, n, F) → waveform (B, n·hop), streaming overlap-add."""
        return self.stft.synthesize(frames, syn_state)

    @torch.inference_mode()
    def process(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.device)
        X, ana = self.analyze(xt, state.ana)
        Y, model = self.step(X, state.model)
        y, syn = self.synthesize(Y, state.syn)
        return y.cpu().numpy(), _ProcessState(ana, model, syn)


@dataclass
class _ProcessState:
    ana: TensorState
    model: State
    syn: TensorState

    def is_finite(self) -> bool:
        return self.ana.is_finite() and getattr(self.model, "is_finite", lambda: True)() and self.syn.is_finite()
