"""Small edits of ONNX graphs shared by the separators that rewrite shipped models (NSNet2, DFN3)."""

from __future__ import annotations


def prune_graph(g, keep_outputs: set[str]) -> None:
    """Drop nodes whose outputs nothing uses (nor ``keep_outputs`` names), then initializers no node
    reads.  Edits the ``onnx.GraphProto`` ``g`` in place; repeats until nothing more is dead."""
    while True:
        used = {i for n in g.node for i in n.input} | keep_outputs
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
