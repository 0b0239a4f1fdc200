"""Streaming ONNX models described by model cards (format ``onnx-stream``), e.g. GTCRN and DTLN.

A card lists one or more *stages* (ONNX graphs) that run in order on every frame, each with
explicit recurrent state tensors (output → input of the next frame).  The frame travels between
stages as a spectrum (``rfft`` of the windowed frame, ``n_fft`` points) or as a time frame
(``frame`` samples); each stage is fed the spectrum, its magnitude or the time frame, and returns
a spectrum, a real mask (multiplied onto the spectrum) or a time frame.

* ``io = "stft"`` (GTCRN): :class:`OnnxStreamFrameSeparator`, a :class:`FrameSeparator`, so the
  engine blends in the model's STFT domain; latency ``win_length − hop (+ lookahead)``.
* ``io = "waveform"`` (DTLN): :class:`OnnxStreamWaveSeparator`, ``process()`` only: frames of
  ``frame`` samples every ``hop``, the stages, then overlap-add; latency ``frame − hop``.

States live in a :class:`TensorState` of numpy arrays shaped ``(B, *model_shape)`` (streams
stacked on a new leading axis), so fork/select come for free.  The upstream graphs have their
batch dimension fixed to 1, so streams run one after another: the cost grows linearly with the
batch (GTCRN ≈ 0.9 ms per stream-frame on one core, DTLN ≈ 0.2 ms per stream-hop).
Sessions use ``intra_op_num_threads = 1`` unless ``threads`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamsep.separators.base import FrameSeparator, Separator, State, TensorState
from streamsep.separators.cards import KIND_LETTERS, Card, Stage
from streamsep.separators.windowed import analysis_synthesis, frame_block, overlap_add


def open_session(path: Path, threads: int | None = None, device: str | torch.device = "cpu"):
    """An ``onnxruntime.InferenceSession`` (CUDA provider when asked and available).

    Threads: ``threads``, else ``$STREAMSEP_ORT_THREADS`` (set by ``--threads``), else one.
    """
    import os

    import onnxruntime as ort

    if threads is None:
        threads = int(os.environ.get("STREAMSEP_ORT_THREADS", "1") or 1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, …)
        from streamsep.modelfiles import ModelFileError

        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {msg[:160]})") from None


def _dims_match(actual: Sequence[Any], declared: Sequence[int]) -> bool:
    """True when shapes agree; symbolic (str/None) ONNX dims match any size."""
    if len(actual) != len(declared):
        return False
    return all(not isinstance(a, int) or a == d for a, d in zip(actual, declared))


def check_tensor(card: Card, session, file: str, name: str, shape: Sequence[int], kind: str) -> None:
    """Raise ``CardError`` unless the graph has an ``kind`` ("input"/"output") ``name`` of ``shape``."""
    nodes = session.get_inputs() if kind == "input" else session.get_outputs()
    by_name = {n.name: n for n in nodes}
    if name not in by_name:
        raise card.error(f"{file} has no {kind} tensor '{name}' (it has: {', '.join(by_name)})")
    actual = list(by_name[name].shape)
    if not _dims_match(actual, shape):
        raise card.error(f"tensor '{name}' of {file} has shape {actual}, the card says {list(shape)}")


class Layout:
    """Converts between a canonical signal array and a card layout such as ``BFTC``.

    Canonical orders: spectrum ``FC`` (real, imag), magnitude/mask ``F``, frame ``N``.
    """

    def __init__(self, layout: str, kind: str, sizes: dict[str, int]) -> None:
        canon = KIND_LETTERS[kind]
        order = [c for c in layout if c in canon]  # canonical letters in layout order
        self.perm = [canon.index(c) for c in order]
        self.inverse = list(np.argsort(self.perm))
        self.shape = [sizes.get(c, 1) if c != "1" else 1 for c in layout]
        self.ordered_shape = [sizes[c] for c in order]

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """Canonical array → model tensor (float32, with unit axes)."""
        return np.ascontiguousarray(np.transpose(x, self.perm).reshape(self.shape), dtype=np.float32)

    def from_model(self, y: np.ndarray) -> np.ndarray:
        """Model tensor → canonical array."""
        return np.transpose(np.reshape(y, self.ordered_shape), self.inverse)


class OnnxWindowRunner:
    """Runs an ``onnx-window`` card's graph on windows (M, frame) → (M, frame)."""

    def __init__(
        self, card: Card, files: dict[str, Path], threads: int | None = None, device: str | torch.device = "cpu"
    ) -> None:
        m = card.model
        self.session = open_session(files[m.file], threads, device)
        self.layout = Layout(m.layout, "frame", {"B": 1, "T": 1, "N": card.frame})
        check_tensor(card, self.session, m.file, m.input, self.layout.shape, "input")
        check_tensor(card, self.session, m.file, m.output, self.layout.shape, "output")
        for node in self.session.get_inputs():
            if node.name != m.input:
                raise card.error(f"input tensor '{node.name}' of {m.file} is not described by the card")
        self.input, self.output = m.input, m.output
        # a symbolic batch dimension lets all windows run in one call
        b_axis = m.layout.find("B")
        shape = {n.name: n.shape for n in self.session.get_inputs()}[m.input]
        self.batched = b_axis >= 0 and not isinstance(shape[b_axis], int)
        self.b_axis = b_axis

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        if self.batched:
            shape = list(self.layout.shape)
            shape[self.b_axis] = windows.shape[0]
            x = np.ascontiguousarray(windows.reshape(shape), dtype=np.float32)
            y = self.session.run([self.output], {self.input: x})[0]
            return np.asarray(y, dtype=np.float32).reshape(windows.shape)
        out = np.empty_like(windows, dtype=np.float32)
        for i, w in enumerate(windows):
            y = self.session.run([self.output], {self.input: self.layout.to_model(w)})[0]
            out[i] = self.layout.from_model(y)
        return out


class StageChain:
    """The card's stages with their sessions; runs one frame of one stream."""

    def __init__(
        self, card: Card, files: dict[str, Path], threads: int | None = None, device: str | torch.device = "cpu"
    ) -> None:
        self.card = card
        self.n_fft, self.frame = card.n_fft, card.frame
        sizes = {"B": 1, "T": 1, "F": card.n_bins, "C": 2, "N": card.frame}
        self.stages: list[tuple[Stage, Any, Layout, Layout, list[str], list[str]]] = []
        for st in card.stages:
            sess = open_session(files[st.file], threads, device)
            ins, outs = Layout(st.layout, st.feed, sizes), Layout(st.output_layout, st.returns, sizes)
            check_tensor(card, sess, st.file, st.input, ins.shape, "input")
            check_tensor(card, sess, st.file, st.output, outs.shape, "output")
            for s in st.states:
                check_tensor(card, sess, st.file, s.input, s.shape, "input")
                check_tensor(card, sess, st.file, s.output, s.shape, "output")
            described = {st.input} | {s.input for s in st.states}
            for node in sess.get_inputs():
                if node.name not in described:
                    raise card.error(f"input tensor '{node.name}' of {st.file} is not described by the card")
            out_names = [st.output] + [s.output for s in st.states]
            self.stages.append((st, sess, ins, outs, [s.input for s in st.states], out_names))
        self.state_shapes = [s.shape for st in card.stages for s in st.states]

    def new_states(self, batch: int) -> list[np.ndarray]:
        """Zero states, one array ``(batch, *shape)`` per state tensor."""
        return [np.zeros((batch, *shape), dtype=np.float32) for shape in self.state_shapes]

    def run(
        self, spec: np.ndarray | None, frame: np.ndarray | None, states: list[np.ndarray], out: str
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Run all stages on one frame given as ``spec`` (F,) complex or ``frame`` (N,) real.

        ``states`` are this stream's state arrays (model shapes).  Returns the result as a
        spectrum (``out="spectrum"``) or time frame (``out="frame"``) and the new states.
        """
        new_states: list[np.ndarray] = []
        k = 0
        for st, sess, ins, outs, state_in, out_names in self.stages:
            if st.feed == "frame":
                if frame is None:
                    frame = np.fft.irfft(spec, n=self.n_fft)[: self.frame]
                x = frame
            else:
                if spec is None:
                    spec = np.fft.rfft(frame, n=self.n_fft)
                x = np.stack([spec.real, spec.imag], axis=-1) if st.feed == "spectrum" else np.abs(spec)
            feeds = {st.input: ins.to_model(x)}
            for name in state_in:
                feeds[name] = states[k]
                k += 1
            res = sess.run(out_names, feeds)
            y = outs.from_model(res[0])
            new_states.extend(res[1:])
            if st.returns == "spectrum":
                spec, frame = y[..., 0] + 1j * y[..., 1], None
            elif st.returns == "mask":
                if spec is None:
                    spec = np.fft.rfft(frame, n=self.n_fft)
                spec, frame = spec * y, None
            else:
                spec, frame = None, y
        if out == "spectrum":
            return (spec if spec is not None else np.fft.rfft(frame, n=self.n_fft)), new_states
        return (frame if frame is not None else np.fft.irfft(spec, n=self.n_fft)[: self.frame]), new_states


def _run_streams(chain: StageChain, n_states: int, states: list[np.ndarray], b: int, spec, frame, out: str):
    """Run ``chain`` for stream ``b``, writing its new states into ``states`` in place."""
    y, new = chain.run(spec, frame, [states[k][b] for k in range(n_states)], out)
    for k in range(n_states):
        states[k][b] = new[k]
    return y


class OnnxStreamFrameSeparator(FrameSeparator):
    """An ``onnx-stream`` card with STFT I/O: the engine blends in the model's frame domain."""

    def __init__(
        self, card: Card, files: dict[str, Path], device: str | torch.device = "cpu", threads: int = 1
    ) -> None:
        self.card = card
        self.name, self.description = card.name, card.description
        self.sample_rate, self.hop = card.sample_rate, card.hop
        self.n_fft, self.win_length = card.n_fft, card.win_length
        super().__init__(device)
        if card.window == "rect":
            from streamsep.stft import StreamingSTFT

            self.stft = StreamingSTFT(
                self.n_fft, self.win_length, self.hop, window=np.ones(self.win_length), device=self.device
            )
        self.latency = self.stft.latency + card.lookahead
        self.chain = StageChain(card, files, threads, device)
        self.n_states = len(self.chain.state_shapes)

    def new_model_state(self, batch: int) -> TensorState:
        return TensorState(self.chain.new_states(batch), [0] * self.n_states, {"batch": batch})

    def step(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Complex frames (B, T, F) → enhanced frames (B, T, F); runs the graphs B·T times."""
        X = frames.detach().to("cpu").numpy()
        B, T, _ = X.shape
        if B != state.batch:
            raise ValueError(f"{self.name}: {B} streams of frames but a state for {state.batch}")
        states = [s.copy() for s in state.tensors]
        Y = np.empty(X.shape, dtype=np.complex64)
        for t in range(T):
            for b in range(B):
                Y[b, t] = _run_streams(self.chain, self.n_states, states, b, X[b, t], None, "spectrum")
        return torch.from_numpy(Y).to(frames.device), TensorState(states, [0] * self.n_states, {"batch": B})


class OnnxStreamWaveSeparator(Separator):
    """An ``onnx-stream`` card with waveform I/O: frames every ``hop``, stages, overlap-add."""

    def __init__(
        self, card: Card, files: dict[str, Path], device: str | torch.device = "cpu", threads: int = 1
    ) -> None:
        super().__init__(device)
        self.card = card
        self.name, self.description = card.name, card.description
        self.sample_rate, self.hop, self.frame = card.sample_rate, card.hop, card.frame
        self.latency = card.latency
        self.ana, self.syn = analysis_synthesis(card.window, card.frame, card.hop)
        self.chain = StageChain(card, files, threads, device)
        self.n_states = len(self.chain.state_shapes)
        self.overlap = card.frame - card.hop

    def new_state(self, batch: int) -> TensorState:
        bufs = [np.zeros((batch, self.overlap), np.float32), np.zeros((batch, self.overlap), np.float32)]
        return TensorState(bufs + self.chain.new_states(batch), [0] * (2 + self.n_states), {"batch": batch})

    def process(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] % self.hop:
            raise ValueError(f"{self.name}: block of shape {x.shape} is not (B, n·{self.hop})")
        B = x.shape[0]
        if B != state.batch:
            raise ValueError(f"{self.name}: {B} streams in the block but a state for {state.batch}")
        frames, inbuf = frame_block(state.tensors[0], x, self.frame, self.hop)
        if self.ana is not None:
            frames = frames * self.ana
        states = [s.copy() for s in state.tensors[2:]]
        out = np.empty(frames.shape, dtype=np.float32)
        for i in range(frames.shape[1]):
            for b in range(B):
                out[b, i] = _run_streams(self.chain, self.n_states, states, b, None, frames[b, i], "frame")
        if self.syn is not None:
            out *= self.syn
        y, tail = overlap_add(out, state.tensors[1], self.hop)
        return y, TensorState([inbuf, tail] + states, [0] * (2 + self.n_states), {"batch": B})
