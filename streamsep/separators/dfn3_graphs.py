"""DeepFilterNet3's three ONNX graphs (encoder, ERB decoder, deep-filter decoder) rewritten into one
streaming graph with explicit state and a free batch axis.

The shipped graphs hide all recurrent state: their five GRUs start from zero constants and do not
output their final hidden state, and the causal convolutions pad the time axis with zeros (2 frames
before the ERB and complex features, 4 before ``c0`` in the deep-filter decoder).  This module

* feeds every GRU's initial state from a graph input ``<part>/h<i>_in`` (1, B, 256) and exposes its
  final state as ``<part>/h<i>_out``;
* replaces every time-axis zero ``Pad`` by ``Concat(buffer_in, x)`` and outputs the last frames of
  that concatenation as ``buffer_out`` (so a call on T frames continues the previous call exactly);
* makes the batch axis symbolic and merges the three graphs into one (one onnxruntime call per pass).

Inputs of the merged graph: ``feat_erb`` (B, 1, T, 32), ``feat_spec`` (B, 2, T, 96) and the state
inputs listed by :data:`StreamGraph.state_inputs`; outputs ``m`` (B, 1, T, 32) ERB gains in [0, 1],
``coefs`` (B, T, 96, 10) deep-filter coefficients (5 taps × re/im per bin), ``lsnr`` (B, T, 1) and
the state outputs (same order as the inputs).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamsep.modelfiles import ModelFileError
from streamsep.separators.onnx_edit import prune_graph

HIDDEN = 256
GRAPH_FILES = ("enc.onnx", "erb_dec.onnx", "df_dec.onnx")
PARTS = {"enc.onnx": "enc", "erb_dec.onnx": "erb", "df_dec.onnx": "df"}


@dataclass
class StreamGraph:
    """The merged streaming graph and the names/shapes of its state tensors.

    ``state_shapes[name]`` is the per-stream shape with ``None`` on the batch axis; the batch axis
    is 1 for GRU states (1, B, 256) and 0 for pad buffers (B, C, frames, F).
    """

    model: bytes
    state_inputs: list[str]
    state_outputs: list[str]
    state_shapes: dict[str, tuple]
    batch_axes: list[int]
    config: dict[str, dict[str, str]]


def read_tarball(path: Path) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """The three graphs (file name → bytes) and config.ini (section → key → value) of the tarball."""
    import configparser

    graphs: dict[str, bytes] = {}
    cfg_text = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not member.isfile() or (name not in GRAPH_FILES and name != "config.ini"):
                    continue
                data = tar.extractfile(member).read()
                if name == "config.ini":
                    cfg_text = data.decode()
                else:
                    graphs[name] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelFileError(f"cannot read the DeepFilterNet3 tarball {path}: {exc}") from exc
    missing = [n for n in (*GRAPH_FILES, "config.ini") if n not in graphs and not (n == "config.ini" and cfg_text)]
    if missing:
        raise ModelFileError(f"DeepFilterNet3 tarball {path} lacks {', '.join(missing)}")
    cp = configparser.ConfigParser()
    cp.read_string(cfg_text)
    config = {s: dict(cp[s]) for s in cp.sections()}
    return graphs, config


def _const_ints(g, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    for t in g.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    return None


def _pad_frames(g, pad_node) -> int:
    """Frames of zero padding that a DFN3 time-axis ``Pad`` puts before the input.

    The exporter builds the pads from a constant (0, 0, p, 0) (PyTorch order: last axis first, so
    the time axis gets ``p`` frames before and none after); anything else is not this graph."""
    producers = {o: n for n in g.node for o in n.output}
    stack, seen = [pad_node.input[1]], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        arr = _const_ints(g, name)
        if (
            arr is not None
            and arr.dtype.kind == "i"
            and arr.shape == (4,)
            and arr[0] == 0
            and arr[1] == 0
            and arr[3] == 0
            and arr[2] > 0
        ):
            return int(arr[2])
        n = producers.get(name)
        if n is not None:
            stack.extend(i for i in n.input if i)
    raise ModelFileError(f"DeepFilterNet3 graph: cannot read the padding of {pad_node.name}")


def _stateful(data: bytes, part: str):
    """One graph with GRU states and pad buffers as inputs/outputs; returns (model, [(in, out, shape, axis)])."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    g = model.graph
    states: list[tuple[str, str, tuple, int]] = []
    grus = [n for n in g.node if n.op_type == "GRU"]
    for i, n in enumerate(grus):
        hid = next(helper.get_attribute_value(a) for a in n.attribute if a.name == "hidden_size")
        if hid != HIDDEN:
            raise ModelFileError(f"DeepFilterNet3 {part}: GRU hidden size {hid}, expected {HIDDEN}")
        while len(n.input) < 6:
            n.input.append("")
        while len(n.output) < 2:
            n.output.append("")
        hin, hout = f"{part}_h{i}_in", f"{part}_h{i}_out"
        n.input[5] = hin
        n.output[1] = hout
        states.append((hin, hout, (1, None, HIDDEN), 1))
    value_shapes = {v.name: v for v in list(g.input) + list(g.output)}
    pads = [n for n in g.node if n.op_type == "Pad"]
    for j, n in enumerate(pads):
        p = _pad_frames(g, n)
        x = n.input[0]
        vi = value_shapes.get(x)
        if vi is None:  # an internal tensor (c0 of the df decoder is a graph input there)
            raise ModelFileError(f"DeepFilterNet3 {part}: padded tensor {x} is not a graph input")
        dims = [d.dim_value or None for d in vi.type.tensor_type.shape.dim]
        channels, feats = dims[1], dims[3]
        bin_, bout = f"{part}_pad{j}_in", f"{part}_pad{j}_out"
        idx = list(g.node).index(n)
        g.node.remove(n)
        axis = f"{part}_pad{j}_axis"
        g.initializer.extend(
            [
                helper.make_tensor(f"{part}_pad{j}_starts", TensorProto.INT64, [1], [-p]),
                helper.make_tensor(f"{part}_pad{j}_ends", TensorProto.INT64, [1], [np.iinfo(np.int64).max]),
                helper.make_tensor(axis, TensorProto.INT64, [1], [2]),
            ]
        )
        g.node.insert(idx, helper.make_node("Concat", [bin_, x], [n.output[0]], axis=2, name=f"{part}_pad{j}_concat"))
        g.node.insert(
            idx + 1,
            helper.make_node(
                "Slice",
                [n.output[0], f"{part}_pad{j}_starts", f"{part}_pad{j}_ends", axis],
                [bout],
                name=f"{part}_pad{j}_slice",
            ),
        )
        states.append((bin_, bout, (None, channels, p, feats), 0))
    for hin, hout, shape, _ in states:
        dims = ["B" if d is None else d for d in shape]
        g.input.append(helper.make_tensor_value_info(hin, TensorProto.FLOAT, dims))
        g.output.append(helper.make_tensor_value_info(hout, TensorProto.FLOAT, dims))
    # free the batch axis of the declared inputs/outputs; intermediate shapes are re-inferred
    for v in list(g.input) + list(g.output):
        d = v.type.tensor_type.shape.dim
        if len(d) and v.name not in {s[0] for s in states} | {s[1] for s in states}:
            ax = 0
            d[ax].Clear()
            d[ax].dim_param = "B"
    del g.value_info[:]
    prune_graph(g, {o.name for o in g.output})
    return model, states


def build_stream_graph(path: Path) -> StreamGraph:
    """Read the tarball at ``path`` and build the merged streaming graph (about a second)."""
    import onnx
    from onnx import compose

    graphs, config = read_tarball(path)
    models, all_states = {}, []
    for fname in GRAPH_FILES:
        m, st = _stateful(graphs[fname], PARTS[fname])
        m = compose.add_prefix(m, f"{PARTS[fname]}/", rename_inputs=False, rename_outputs=False)
        models[PARTS[fname]] = m
        all_states += st
    enc, erb, df = models["enc"], models["erb"], models["df"]
    # encoder outputs feed the decoders; merge enc+erb first (emb, e0..e3), then +df (emb, c0).
    # The decoders' inputs named like the encoder's outputs are renamed so compose can wire them.
    for dec, part in ((erb, "erb"), (df, "df")):
        ren = {i.name: f"{part}:{i.name}" for i in dec.graph.input if i.name in ("emb", "e0", "e1", "e2", "e3", "c0")}
        for n in dec.graph.node:
            for k, name in enumerate(n.input):
                if name in ren:
                    n.input[k] = ren[name]
        for i in dec.graph.input:
            if i.name in ren:
                i.name = ren[i.name]
    ir = max(enc.ir_version, erb.ir_version, df.ir_version)
    for m in (enc, erb, df):
        m.ir_version = ir
    # the df decoder's second output is an unnamed sigmoid ("235"): only coefs is needed
    df_out = [o.name for o in df.graph.output if o.name == "coefs" or o.name.startswith("df_")]
    erb_out = [o.name for o in erb.graph.output]
    enc_out = [o.name for o in enc.graph.output]
    m1 = compose.merge_models(
        enc, erb, io_map=[(n, f"erb:{n}") for n in ("emb", "e0", "e1", "e2", "e3")], outputs=enc_out + erb_out
    )
    m2 = compose.merge_models(
        m1,
        df,
        io_map=[("emb", "df:emb"), ("c0", "df:c0")],
        outputs=[o for o in enc_out + erb_out if o not in ("e0", "e1", "e2", "e3", "emb", "c0")] + df_out,
    )
    prune_graph(m2.graph, {o.name for o in m2.graph.output})
    onnx.checker.check_model(m2)
    buf = io.BytesIO()
    onnx.save(m2, buf)
    return StreamGraph(
        model=buf.getvalue(),
        state_inputs=[s[0] for s in all_states],
        state_outputs=[s[1] for s in all_states],
        state_shapes={s[0]: s[2] for s in all_states},
        batch_axes=[s[3] for s in all_states],
        config=config,
    )
