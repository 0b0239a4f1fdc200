"""Model-card test helpers shared by test_cards.py and test_config_faults.py: a tiny stateful ONNX
model built on the spot and an honest card for it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a tiny stateful ONNX model built here: y = 0.5·x + s, s' = x (per frame of 4 samples) -------
def tiny_onnx(path: Path, n: int = 4, state_shape=(1, 4)) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, list(state_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    s_out = helper.make_tensor_value_info("s_out", TensorProto.FLOAT, list(state_shape))
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Mul", ["x", "half"], ["xh"]),
        helper.make_node("Add", ["xh", "s"], ["y"]),
        helper.make_node("Identity", ["x"], ["s_out"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [x, s], [y, s_out], initializer=[half])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_card(model: Path, **over) -> dict:
    card = {
        "name": "tiny",
        "format": "onnx-stream",
        "sample_rate": 16000,
        "io": "waveform",
        "frame": 4,
        "hop": 4,
        "window": "none",
        "latency": 0,
        "licence": "MIT",
        "source": "https://example.org/tiny",
        "files": [{"name": model.name, "url": model.as_uri(), "sha256": sha(model)}],
        "stages": [
            {
                "file": model.name,
                "input": "x",
                "output": "y",
                "layout": "BN",
                "feed": "frame",
                "returns": "frame",
                "states": [{"input": "s", "output": "s_out", "shape": [1, 4]}],
            }
        ],
    }
    card.update(over)
    return card
