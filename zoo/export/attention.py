"""Multi-head self-attention as one onnxruntime ``Attention`` node, on the graphs zoo's exporters write.

onnxruntime's transformer optimizer (``onnxruntime.transformers``) recognises attention in
Hugging Face graphs (separate Q, K, V projections, TorchScript exporter); it fuses nothing of
timm's attention as the dynamo exporter writes it (one ``qkv`` projection, ``unbind`` as
Slice + Squeeze, ``scaled_dot_product_attention`` decomposed into Shape / Reshape / Transpose
plumbing, two scale ``Mul`` and a Softmax). :func:`fuse_attention` finds that pattern::

    x -> MatMul(W [C, 3C]) -> Add(b [3C]) -> Reshape([B, N, 3, H, D]) -> Transpose(2, 0, 3, 1, 4)
      -> ... two MatMul, one Softmax, scale Mul/Div by constants ... -> Transpose(0, 2, 1, 3) -> Reshape([B, N, C])

and replaces it with ``com.microsoft.Attention(x, W, b, num_heads=H, scale=s)``, whose packed
weight layout (Q, K, V blocks, heads contiguous inside each) is exactly timm's ``qkv`` Linear.
A region is fused only when every node in it is plumbing of that kind, it reads nothing from
outside but the projection and constants, nothing outside reads its intermediate values, and
the scale constants multiply to ``1/sqrt(D)`` or a plain constant. The export's parity check
against torch runs on the fused file afterwards.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["fuse_attention", "drop_unused_initializers"]

_PLUMBING = {"Slice", "Squeeze", "Unsqueeze", "Shape", "Concat", "Reshape", "Transpose", "Mul", "Div", "MatMul",
             "Softmax", "Gather", "Cast", "Identity"}
_MAX_REGION = 80  # nodes between the head split and the head merge


class _Graph:
    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in graph.node:
            for i in n.input:
                self.consumers[i].append(n)
        self.inits = {t.name: t for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant" and node.attribute:
            return numpy_helper.to_array(node.attribute[0].t) if node.attribute[0].HasField("t") else None
        return None

    def only_consumer(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None


def _attr(node: onnx.NodeProto, name: str) -> object:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def fuse_attention(model: onnx.ModelProto) -> int:
    """Replace each timm-style self-attention block of ``model`` (in place); return how many were fused."""
    fused = 0
    while True:  # one at a time: each fusion changes the graph's maps
        g = _Graph(model.graph)
        match = next((m for m in (_match(g, n) for n in g.graph.node if n.op_type == "Transpose") if m), None)
        if match is None:
            break
        _replace(model, g, *match)
        fused += 1
    if fused:
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        drop_unused_initializers(model)
    return fused


def _match(g: _Graph, split: onnx.NodeProto) -> tuple | None:
    if list(_attr(split, "perm") or ()) != [2, 0, 3, 1, 4]:
        return None
    reshape = g.producer.get(split.input[0])
    if reshape is None or reshape.op_type != "Reshape" or g.only_consumer(reshape.output[0]) is not split:
        return None
    shape = g.const(reshape.input[1])
    if shape is None or shape.shape != (5,) or int(shape[2]) != 3:
        return None
    heads, head_size = int(shape[3]), int(shape[4])
    add = g.producer.get(reshape.input[0])
    if add is None or add.op_type != "Add" or g.only_consumer(add.output[0]) is not reshape:
        return None
    bias_name = next((i for i in add.input if g.const(i) is not None), None)
    matmul = g.producer.get(next((i for i in add.input if i != bias_name), ""))
    if bias_name is None or matmul is None or matmul.op_type != "MatMul" or \
            g.only_consumer(matmul.output[0]) is not add or matmul.input[1] not in g.inits:
        return None
    weight, bias = g.const(matmul.input[1]), g.const(bias_name)
    hidden = heads * head_size
    if weight is None or weight.ndim != 2 or weight.shape[1] != 3 * hidden or bias is None or bias.shape != (3 * hidden,):
        return None
    region = _region(g, split)
    if region is None:
        return None
    nodes, merge, end = region
    scale = _scale(g, nodes)
    if scale is None:
        return None
    return matmul, add, reshape, split, nodes, merge, end, bias_name, heads, scale


def _region(g: _Graph, split: onnx.NodeProto) -> tuple | None:
    """The nodes from the head split to the head merge (Transpose 0,2,1,3 then Reshape), if self-contained."""
    seen: dict[int, onnx.NodeProto] = {}
    frontier, merge = list(split.output), None
    while frontier:
        name = frontier.pop()
        if name in g.outputs:
            return None
        for node in g.consumers.get(name, []):
            if id(node) in seen:
                continue
            if node.op_type == "Transpose" and list(_attr(node, "perm") or ()) == [0, 2, 1, 3]:
                if merge is not None and merge is not node:
                    return None
                merge = node
                continue
            if node.op_type not in _PLUMBING or len(seen) >= _MAX_REGION:
                return None
            seen[id(node)] = node
            frontier.extend(node.output)
    if merge is None:
        return None
    end = g.only_consumer(merge.output[0])
    if end is None or end.op_type != "Reshape":
        return None
    nodes = list(seen.values())
    inside = {o for n in nodes for o in n.output} | set(split.output)
    ops = [n.op_type for n in nodes]
    if ops.count("Softmax") != 1 or ops.count("MatMul") != 2 or merge.input[0] not in inside:
        return None
    for node in nodes:  # reads only the region, constants and shapes of the region
        if any(i and i not in inside and g.const(i) is None for i in node.input):
            return None
        if node.op_type == "Softmax" and _attr(node, "axis") not in (None, -1, 3):
            return None
    return nodes, merge, end


def _scale(g: _Graph, nodes: list[onnx.NodeProto]) -> float | None:
    """The product of the scalar constants the scores are multiplied (or divided) by, or None if not scalar."""
    scale = 1.0
    for node in nodes:
        if node.op_type not in ("Mul", "Div"):
            continue
        values = [g.const(i) for i in node.input]
        constant = values[1] if values[1] is not None else values[0]
        if constant is None or constant.size != 1 or (node.op_type == "Div" and values[1] is None):
            return None
        if constant.dtype.kind in "iub":  # shape arithmetic, not the scores
            continue
        value = float(constant.reshape(()))
        scale *= value if node.op_type == "Mul" else 1.0 / value
    return scale


def _replace(model: onnx.ModelProto, g: _Graph, matmul, add, reshape, split, nodes, merge, end, bias_name, heads,
             scale) -> None:
    attention = helper.make_node("Attention", [matmul.input[0], matmul.input[1], bias_name], [end.output[0]],
                                 name=f"zoo_attention_{end.output[0]}", domain="com.microsoft", num_heads=heads,
                                 scale=float(scale))
    gone = {id(n) for n in (matmul, add, reshape, split, merge, end, *nodes)}
    kept = []
    for node in model.graph.node:
        if node is matmul:
            kept.append(attention)
        if id(node) not in gone:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    _drop_value_info(model, {o for n in (matmul, add, reshape, split, merge, *nodes) for o in n.output})


def _drop_value_info(model: onnx.ModelProto, names: set[str]) -> None:
    keep = [v for v in model.graph.value_info if v.name not in names]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove initializers no node (nor subgraph) reads, and Constant nodes no one reads."""
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for node in model.graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                used |= {i for n in sub.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
