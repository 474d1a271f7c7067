"""Structural checks of a written graph: onnx.checker, no ATen fallbacks, one input, the batch axis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx

from zoo.errors import ZooError, first_line

__all__ = ["check_graph", "written_opset"]


def check_graph(proto: onnx.ModelProto, fixed_batch: int | None, path: Path | None = None) -> None:
    """Refuse a graph onnx.checker rejects, with ATen fallback operators, more than one input,
    or a batch dimension that is not symbolic (dynamic) or not ``fixed_batch``.

    ``path``: check the file there instead of ``proto`` (weights over 2 GB, kept outside).
    """
    try:
        onnx.checker.check_model(str(path) if path else proto, full_check=False)
    except onnx.checker.ValidationError as exc:
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
