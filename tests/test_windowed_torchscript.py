"""Windowed (``onnx-window``, ``torchscript-window``) and ``torchscript-stream`` adapters, tested
with small real models built here, whose exact outputs are known."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import tomli_w
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from streamsep.separators import registry
from streamsep.separators.card_factory import load_card_file
from streamsep.separators.cards import CardError
from streamsep.separators.torchscript import TorchScriptStreamSeparator
from streamsep.separators.windowed import WindowedSeparator


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_file(tmp_path: Path, weights: Path, **fields) -> Path:
    """Write a card for ``weights``; ``fields`` are top-level keys (``model`` without ``file``)."""
    data = {
        "name": "test-model",
        "sample_rate": 16000,
        "licence": "MIT",
        "source": "https://example.org/x",
        "io": "waveform",
        **fields,
        "files": [{"name": weights.name, "url": weights.as_uri(), "sha256": sha(weights)}],
    }
    data["model"] = {**data.get("model", {}), "file": weights.name}
    path = tmp_path / f"{weights.stem}-{len(list(tmp_path.glob('*.toml')))}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def run(sep, x: np.ndarray, hops: list[int]) -> np.ndarray:
    """Stream ``x`` (B, L) through ``sep`` in blocks cycling through ``hops`` hops."""
    state, out, i, k = sep.new_state(x.shape[0]), [], 0, 0
    while i < x.shape[1]:
        n = min(hops[k % len(hops)] * sep.hop, x.shape[1] - i)
        y, state = sep.process(x[:, i : i + n], state)
        out.append(y)
        i, k = i + n, k + 1
    return np.concatenate(out, axis=1)


def delayed(x: np.ndarray, d: int) -> np.ndarray:
    return np.concatenate([np.zeros((x.shape[0], d), x.dtype), x[:, : x.shape[1] - d]], axis=1)


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (0.1 * rng.standard_normal((3, 40 * 160))).astype(np.float32)


# -- models --------------------------------------------------------------------------------------------
class Gain(nn.Module):
    def __init__(self, g: float) -> None:
        super().__init__()
        self.g = g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g * x


class Delay(nn.Module):
    """Delays each window by ``d`` samples inside the window (a model with lookahead ``d``)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.d, 0))[:, : x.shape[1]]


class FirStream(nn.Module):
    """Streaming FIR y[n] = Σ h[k]·x[n−k] (state: the last K−1 inputs, batch on axis 0) plus a
    running input energy per stream (state on batch axis 1)."""

    def __init__(self, taps: list[float]) -> None:
        super().__init__()
        self.register_buffer("h", torch.tensor(taps, dtype=torch.float32).flip(0).reshape(1, 1, -1))
        self.k = len(taps)

    def forward(self, x: torch.Tensor, hist: torch.Tensor, energy: torch.Tensor):
        buf = torch.cat([hist, x], dim=1)
        y = F.conv1d(buf.unsqueeze(1), self.h).squeeze(1)
        return y, buf[:, buf.shape[1] - (self.k - 1) :], energy + (x * x).sum(dim=1).reshape(1, -1, 1)


def script(module: nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


def onnx_gain(path: Path, n: int, shape: list, g: float = 2.0) -> Path:
    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, shape)
    gain = helper.make_tensor("g", TensorProto.FLOAT, [], [g])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["audio", "g"], ["enhanced"])], "gain", [x], [y], initializer=[gain]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# -- torchscript-window -------------------------------------------------------------------------------
@pytest.mark.parametrize("window", ["sqrt-hann", "rect"])
@pytest.mark.parametrize("frame,hop", [(512, 128), (512, 160), (320, 160)])
def test_window_gain_is_exact(tmp_path, signal, window, frame, hop):
    model = script(Gain(0.5), tmp_path / "gain.pt")
    path = card_file(
        tmp_path, model, format="torchscript-window", frame=frame, hop=hop, window=window, latency=frame - hop
    )
    sep = registry.create(str(path), model_path=model)
    assert isinstance(sep, WindowedSeparator) and sep.latency == frame - hop
    x = signal[:, : signal.shape[1] // hop * hop]
    for hops in ([1], [3, 1, 4]):
        y = run(sep, x, hops)
        np.testing.assert_allclose(y, 0.5 * delayed(x, sep.latency), atol=1e-6)


@pytest.mark.parametrize("window", ["sqrt-hann", "rect"])
def test_window_lookahead_latency_by_impulse(tmp_path, window):
    d = 32
    model = script(Delay(d), tmp_path / "delay.pt")
    path = card_file(
        tmp_path, model, format="torchscript-window", frame=512, hop=128, window=window, lookahead=d, latency=384 + d
    )
    sep = load_card_file(path)(model_path=model)
    assert sep.latency == 416
    x = np.zeros((1, 128 * 30), np.float32)
    x[0, 1000] = 1.0
    y = run(sep, x, [2])[0]
    peak = int(np.argmax(np.abs(y)))
    assert peak == 1000 + sep.latency
    assert y[peak] > 0.5
    assert np.abs(np.delete(y, peak)).max() < 1e-6


def test_window_batch_and_fork_select(tmp_path, signal):
    model = script(Gain(-1.5), tmp_path / "gain.pt")
    sep = load_card_file(
        card_file(tmp_path, model, format="torchscript-window", frame=512, hop=128, window="sqrt-hann", latency=384)
    )(model_path=model)
    x = signal[:, : 40 * 128]
    together = run(sep, x, [5])
    for b in range(3):
        np.testing.assert_allclose(together[b], run(sep, x[b : b + 1], [2])[0], atol=1e-6)
    # fork stream 0 into 2 candidates, keep the one fed the true input
    state = sep.new_state(1)
    y1, state = sep.process(x[:1, :1280], state)
    forked = sep.fork(state, 2)
    yc, forked = sep.process(np.concatenate([x[1:2, 1280:2560], x[:1, 1280:2560]]), forked)
    y3, _ = sep.process(x[:1, 2560:], sep.select(forked, [1]))
    np.testing.assert_allclose(np.concatenate([y1[0], yc[1], y3[0]]), together[0], atol=1e-6)


def test_bad_torchscript_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip archive at all")
    factory = load_card_file(
        card_file(tmp_path, junk, format="torchscript-window", frame=256, hop=128, window="rect", latency=128)
    )
    with pytest.raises(CardError, match="junk.pt is not a loadable TorchScript module"):
        factory(model_path=junk)


# -- onnx-window -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,layout,batched", [(["batch", 512], "BN", True), ([1, 1, 512], "B1N", False)])
def test_onnx_window_gain(tmp_path, signal, shape, layout, batched):
    model = onnx_gain(tmp_path / "gain.onnx", 512, shape)
    path = card_file(
        tmp_path,
        model,
        format="onnx-window",
        frame=512,
        hop=128,
        window="sqrt-hann",
        latency=384,
        model={"input": "audio", "output": "enhanced", "layout": layout},
    )
    sep = registry.create(str(path), model_path=model)
    assert sep.runner.batched is batched
    x = signal[:, : 40 * 128]
    y = run(sep, x, [1, 6])
    np.testing.assert_allclose(y, 2.0 * delayed(x, 384), atol=1e-5)


def test_onnx_window_card_lying_about_frame(tmp_path):
    model = onnx_gain(tmp_path / "gain.onnx", 512, ["batch", 512])
    path = card_file(
        tmp_path,
        model,
        format="onnx-window",
        frame=256,
        hop=128,
        window="rect",
        latency=128,
        model={"input": "audio", "output": "enhanced"},
    )
    with pytest.raises(
        CardError, match=r"tensor 'audio' of gain.onnx has shape \['batch', 512\], the card says \[1, 256\]"
    ):
        load_card_file(path)(model_path=model)


# -- torchscript-stream ---------------------------------------------------------------------------------
TAPS = [0.0, 0.0, 0.0, 1.0, 0.5]  # a 3-sample delay plus an echo: latency 3


def fir_card(tmp_path: Path) -> tuple[Path, Path]:
    model = script(FirStream(TAPS), tmp_path / "fir.pt")
    path = card_file(
        tmp_path,
        model,
        format="torchscript-stream",
        frame=64,
        hop=64,
        latency=3,
        model={
            "states": [
                {"name": "hist", "shape": [1, 4], "batch_axis": 0},
                {"name": "energy", "shape": [1, 1, 1], "batch_axis": 1},
            ]
        },
    )
    return model, path


def test_torchscript_stream_fir_exact(tmp_path, signal):
    model, path = fir_card(tmp_path)
    sep = registry.create(str(path), model_path=model)
    assert isinstance(sep, TorchScriptStreamSeparator) and (sep.hop, sep.latency) == (64, 3)
    x = signal[:, : 100 * 64]
    expect = np.stack([np.convolve(row, TAPS)[: x.shape[1]] for row in x])
    for hops in ([1], [7, 2, 1]):
        np.testing.assert_allclose(run(sep, x, hops), expect, atol=1e-6)
    imp = np.zeros((1, 640), np.float32)
    imp[0, 100] = 1.0
    assert int(np.argmax(run(sep, imp, [1])[0])) == 100 + sep.latency


def test_torchscript_stream_fork_select(tmp_path, signal):
    model, path = fir_card(tmp_path)
    sep = load_card_file(path)(model_path=model)
    x = signal[:2, : 30 * 64]
    state = sep.new_state(2)
    y1, state = sep.process(x[:, :640], state)
    forked = sep.fork(state, 3)  # rows: stream0 ×3, stream1 ×3
    assert [tuple(t.shape) for t in forked.tensors] == [(6, 4), (1, 6, 1)]
    block = np.repeat(x[:, 640:1280], 3, axis=0)
    block[[0, 2, 3, 4]] *= -0.5  # only rows 1 (stream 0) and 5 (stream 1) get the true input
    yc, forked = sep.process(block, forked)
    state = sep.select(forked, [1, 5])
    y3, state = sep.process(x[:, 1280:], state)
    expect = np.stack([np.convolve(row, TAPS)[: x.shape[1]] for row in x])
    np.testing.assert_allclose(np.concatenate([y1, yc[[1, 5]], y3], axis=1), expect, atol=1e-6)
    energy = state.tensors[1][0, :, 0].numpy()
    np.testing.assert_allclose(energy, (x.astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)


def test_torchscript_stream_card_checks(tmp_path):
    model = script(FirStream(TAPS), tmp_path / "fir.pt")
    with pytest.raises(CardError, match="'frame' must equal 'hop'"):
        load_card_file(card_file(tmp_path, model, format="torchscript-stream", frame=128, hop=64, latency=3))
    with pytest.raises(CardError, match=r"model.states\[0\].batch_axis"):
        load_card_file(
            card_file(
                tmp_path,
                model,
                format="torchscript-stream",
                frame=64,
                hop=64,
                latency=3,
                model={"states": [{"shape": [2, 4], "batch_axis": 0}]},
            )
        )
    # cards that do not fit the module are caught by a dry run at load time
    forgets = load_card_file(
        card_file(
            tmp_path,
            model,
            format="torchscript-stream",
            frame=64,
            hop=64,
            latency=3,
            model={"states": [{"shape": [1, 4], "batch_axis": 0}]},
        )
    )
    with pytest.raises(CardError, match="fir.pt does not run as the card describes it"):
        forgets(model_path=model)
    wrong = load_card_file(
        card_file(
            tmp_path,
            model,
            format="torchscript-stream",
            frame=64,
            hop=64,
            latency=3,
            model={"states": [{"shape": [1, 6], "batch_axis": 0}, {"shape": [1, 1, 1], "batch_axis": 1}]},
        )
    )
    with pytest.raises(CardError, match=r"fir.pt: forward returned a block of shape \(1, 66\) for input \(1, 64\)"):
        wrong(model_path=model)


def test_torchscript_window_shape_mismatch(tmp_path):

    class Crop(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :100]

    model = script(Crop(), tmp_path / "crop.pt")
    factory = load_card_file(
        card_file(tmp_path, model, format="torchscript-window", frame=256, hop=128, window="rect", latency=128)
    )
    with pytest.raises(CardError, match=r"crop.pt returned shape \(1, 100\) for input \(1, 256\)"):
        factory(model_path=model)
