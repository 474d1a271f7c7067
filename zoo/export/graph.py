"""Structural checks of a written graph: onnx.checker (full), strict shape inference, no ATen fallbacks,
one input, the batch axis; and :func:`tidy_shapes`, which replaces the exporter's ``value_info``.

The dynamo exporter lists every initializer in ``value_info`` too. Any tool that rewrites an
initializer under its own name then leaves a stale shape behind: onnxruntime's
``quantize_dynamic`` transposes a Gemm's weight for MatMul (``head.weight`` [1000, 192] of a ViT
becomes [192, 1000]) and its shape inference fails with "Inferred shape and existing shape
differ in dimension 0: (192) vs (1000)". An exported graph therefore carries only the shapes
onnx's own strict inference derives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx

from zoo.errors import ZooError, first_line

__all__ = ["check_graph", "tidy_shapes", "written_opset", "node_count"]


def check_graph(proto: onnx.ModelProto, fixed_batch: int | None, path: Path | None = None) -> None:
    """Refuse a graph onnx.checker rejects, with ATen fallback operators, more than one input,
    or a batch dimension that is not symbolic (dynamic) or not ``fixed_batch``.

    ``path``: check the file there instead of ``proto`` (weights over 2 GB, kept outside).
    """
    try:
        onnx.checker.check_model(str(path) if path else proto, full_check=True)
        if path is None:
            onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ZooError(f"onnx.checker rejected the graph: {first_line(exc)}") from None
    fallbacks = sorted({n.op_type for n in _all_nodes(proto.graph)
                        if n.op_type == "ATen" or n.domain in ("org.pytorch.aten", "pkg.torch.ops")})
    if fallbacks:
        raise ZooError(f"graph holds ATen fallback operators ({', '.join(fallbacks)})")
    if len(proto.graph.input) != 1:
        raise ZooError(f"graph has {len(proto.graph.input)} inputs, expected 1")
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if fixed_batch is None and (dim.HasField("dim_value") or not dim.dim_param):
        raise ZooError(f"batch dimension was fixed to {dim.dim_value} instead of staying dynamic")
    if fixed_batch is not None and dim.dim_value != fixed_batch:
        raise ZooError(f"batch dimension is {dim.dim_param or dim.dim_value}, expected {fixed_batch}")


def tidy_shapes(proto: onnx.ModelProto, big: bool = False) -> onnx.ModelProto:
    """``proto`` without the exporter's ``value_info``, re-derived by onnx's strict shape inference
    (none for a graph over 2 GB, which inference cannot take in memory)."""
    del proto.graph.value_info[:]
    if big:
        return proto
    try:
        return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ZooError(f"onnx shape inference rejected the graph: {first_line(exc)}") from None


def node_count(proto: onnx.ModelProto) -> int:
    """Nodes of the main graph (subgraphs not counted)."""
    return len(proto.graph.node)


def written_opset(proto: onnx.ModelProto) -> int:
    """The default-domain opset the exporter actually wrote (it may differ from the one asked)."""
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)
