#!/usr/bin/env python3
"""onnxruntime alone: NSNet2's stateful graph whole-file against 6-frame blocks (one thread).

Prints microseconds per frame, best and median of 10 rounds, for one call over 1000 frames and for
the same frames in 6-frame calls with the GRU states carried (what the engine does at 1024-sample
host blocks).  Used in docs/lab/2026-12-01-performance.md to separate onnxruntime's own block-wise cost from the
engine's Python glue.  Usage: python scripts/ort_block_cost.py [frames_per_block]
"""

import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

from streamsep.separators.nsnet2 import nsnet2_onnx_path, stateful_onnx


def main() -> None:
    per = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    graph, hidden = stateful_onnx(nsnet2_onnx_path(16000))
    o = ort.SessionOptions()
    o.intra_op_num_threads = o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(graph, o, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feat = (rng.standard_normal((1, 1000, 161)) - 3.0).astype(np.float32)  # log10-power-like values
    h = np.zeros((1, 1, hidden), np.float32)
    whole, blocks = [], []
    for _ in range(10):
        t = time.perf_counter()
        sess.run(None, {"input": feat, "h0_in": h, "h1_in": h})
        whole.append((time.perf_counter() - t) / 1000 * 1e6)
        t = time.perf_counter()
        h0 = h1 = h
        for i in range(0, 1000, per):
            _, h0, h1 = sess.run(None, {"input": feat[:, i : i + per], "h0_in": h0, "h1_in": h1})
        blocks.append((time.perf_counter() - t) / 1000 * 1e6)
    print(
        f"whole file: {min(whole):.0f} µs/frame (median {statistics.median(whole):.0f}); "
        f"{per}-frame blocks: {min(blocks):.0f} µs/frame (median {statistics.median(blocks):.0f}); "
        f"ratio {min(blocks) / min(whole):.2f}"
    )


if __name__ == "__main__":
    main()
