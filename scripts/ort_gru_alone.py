#!/usr/bin/env python3
"""Is onnxruntime's small-block penalty for NSNet2 the GRU kernel, or the cache? (one thread)

Three measurements, microseconds per frame, best of three rounds:

1. one ONNX GRU node of NSNet2's size (400 → 400; random weights, 3.8 MB) alone in a session, called
   with 1, 6 and 1000 frames per call: what the kernel itself costs per frame at each call size;
2. the same 6-frame call after touching 0, 8, 12 and 24 MB of other memory between calls: what it
   costs when its weights have to come back from further away;
3. the whole NSNet2 graph (10.7 MB of weights) on the benchmark clip in 6-frame calls, back to back,
   against one whole-file call.

Used in docs/lab/2026-12-01-performance.md.  Usage: ``python scripts/ort_gru_alone.py``.
"""

import time

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from streamsep.bench import bench_input
from streamsep.runtime import set_threads

HIDDEN = 400


def session(graph) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def gru_session() -> ort.InferenceSession:
    rng = np.random.default_rng(0)
    H = HIDDEN
    W = (rng.standard_normal((1, 3 * H, H)) * 0.05).astype(np.float32)
    R = (rng.standard_normal((1, 3 * H, H)) * 0.05).astype(np.float32)
    B = np.zeros((1, 6 * H), np.float32)
    node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "hn"], hidden_size=H)
    graph = helper.make_graph(
        [node],
        "gru",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, H]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, H]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("hn", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(B, "B")],
    )
    return session(graph)


def per_frame(call, frames: int, calls: int, between=None) -> float:
    """Best of three rounds of ``calls`` timed calls (``between`` runs untimed before each)."""
    best = float("inf")
    for _ in range(3):
        spent = 0.0
        for _ in range(calls):
            if between is not None:
                between()
            t = time.perf_counter()
            call()
            spent += time.perf_counter() - t
        best = min(best, spent / (calls * frames))
    return best * 1e6


def main() -> None:
    set_threads(1)
    rng = np.random.default_rng(1)
    s = gru_session()
    h0 = np.zeros((1, 1, HIDDEN), np.float32)
    for T in (1, 6, 1000):
        x = rng.standard_normal((T, 1, HIDDEN)).astype(np.float32)
        us = per_frame(lambda: s.run(None, {"x": x, "h0": h0}), T, 600 if T < 100 else 5)
        print(f"GRU alone, {T:4d} frames per call: {us:5.1f} µs/frame")
    x6 = rng.standard_normal((6, 1, HIDDEN)).astype(np.float32)
    for mb in (0, 8, 12, 24):
        junk = np.ones(max(1, mb * 262144), np.float32)
        us = per_frame(lambda: s.run(None, {"x": x6, "h0": h0}), 6, 400, between=lambda: junk.__imul__(1.0))
        print(f"GRU alone, 6 frames per call, {mb:2d} MB touched between calls: {us:5.1f} µs/frame")

    from streamsep.separators.registry import create

    sep = create("nsnet2")
    x = bench_input(10, 16000, None)
    X, _ = sep.stft.analyze(torch.as_tensor(x)[None], sep.stft.new_analysis_state(1))
    X = X.contiguous()
    T = X.shape[1] // 6 * 6
    blocks = [X[:, i : i + 6].contiguous() for i in range(0, T, 6)]
    state = {"h": torch.zeros(2, 1, sep.hidden), "i": 0}

    def six() -> None:
        _, state["h"] = sep.net.enhance(blocks[state["i"] % len(blocks)], state["h"])
        state["i"] += 1

    whole = X[:, :T].contiguous()
    h = torch.zeros(2, 1, sep.hidden)
    print(
        f"NSNet2 graph, 6 frames per call: {per_frame(six, 6, len(blocks)):5.1f} µs/frame; "
        f"whole file in one call: {per_frame(lambda: sep.net.enhance(whole, h), T, 1):5.1f} µs/frame"
    )


if __name__ == "__main__":
    main()
