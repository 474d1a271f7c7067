"""Graph optimisation at export (``--optimize``): onnxruntime's offline optimiser, and transformer fusions.

Levels:

- ``none``: the exporter's graph as it is.
- ``basic``: onnxruntime's basic level, saved (``SessionOptions.optimized_model_filepath``):
  constant folding, redundant-node elimination, Conv+BatchNorm/Add/Mul folding. These rewrites
  run before onnxruntime partitions the graph between providers and write only standard ONNX
  operators, so the file stays portable (any provider, any ONNX runtime).
- ``extended``: basic, then onnxruntime's extended fusions (FusedMatMul, SkipLayerNormalization,
  Conv+activation, ...). They run after partitioning, for nodes the CPU provider took, and write
  ``com.microsoft`` operators: the file is for onnxruntime (CPU; CUDA implements most of them).
  The layout level (``ORT_ENABLE_ALL``: NCHWc) is hardware-specific and never saved; the
  runtime applies it when it loads a file.
- ``transformer``: :func:`zoo.export.attention.fuse_attention` (each self-attention block as one
  ``com.microsoft.Attention``), then ``onnxruntime.transformers``' LayerNorm, SkipLayerNorm,
  GELU and bias fusions (``optimize_model``, graph-level only, ``opt_level=0``). For onnxruntime.
- ``auto``: ``transformer`` for a graph with LayerNormalization and attention (a Softmax fed by a
  MatMul), else ``basic``.

The export's parity check against torch runs again on the optimised graph.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import onnx

from zoo.errors import ZooError, first_line
from zoo.export.attention import fuse_attention

__all__ = ["optimize_graph", "is_transformer", "resolve_level", "LEVELS"]

LEVELS = ("auto", "none", "basic", "extended", "transformer")


def is_transformer(proto: onnx.ModelProto) -> bool:
    """LayerNormalization and an attention-score Softmax (fed by a MatMul) in the main graph."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    ops = {n.op_type for n in proto.graph.node}
    attention = any(n.op_type == "Softmax" and getattr(producer.get(n.input[0]), "op_type", "") == "MatMul"
                    for n in proto.graph.node)
    return attention and bool(ops & {"LayerNormalization", "SkipLayerNormalization"})


def resolve_level(level: str, proto: onnx.ModelProto) -> str:
    """``auto`` made concrete for ``proto``; other levels unchanged."""
    if level != "auto":
        return level
    return "transformer" if is_transformer(proto) else "basic"


def optimize_graph(proto: onnx.ModelProto, level: str, workdir: Path) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """``proto`` optimised at ``level`` (``auto`` resolved here), and what that did: level, node counts, fusions."""
    level = resolve_level(level, proto)
    before = _ops(proto)
    if level == "none":
        return proto, {"level": "none", "nodes_before": sum(before.values()), "nodes_after": sum(before.values())}
    try:
        if level in ("basic", "extended"):
            optimized = _onnxruntime_offline(proto, level, workdir)
        else:
            optimized = _transformer(proto, workdir)
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - optimiser internals raise anything
        raise ZooError(f"--optimize {level} failed: {type(exc).__name__}: {first_line(exc)}") from None
    after = _ops(optimized)
    fused = {op: n for op, n in sorted(after.items()) if op.startswith("com.microsoft.") or op not in before}
    return optimized, {"level": level, "nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
                       "fused": fused}


def _ops(proto: onnx.ModelProto) -> Counter:
    return Counter((f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type)
                   for n in proto.graph.node)


def _onnxruntime_offline(proto: onnx.ModelProto, level: str, workdir: Path) -> onnx.ModelProto:
    import onnxruntime  # the optimiser itself

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = {"basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    target = workdir / f"optimized-{level}.onnx"
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(target))
    if level == "basic":
        foreign = sorted({n.domain for n in optimized.graph.node if n.domain not in ("", "ai.onnx")})
        if foreign:
            raise ZooError(f"--optimize basic wrote non-standard operators ({', '.join(foreign)})")
    return _keep_identity(proto, optimized)


def _transformer(proto: onnx.ModelProto, workdir: Path) -> onnx.ModelProto:
    from onnxruntime.transformers.optimizer import optimize_model  # the fusions themselves

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    fuse_attention(model)
    # optimize_model checks that "pytorch" produced the graph (it did; zoo renames the producer later)
    model.producer_name = "pytorch"
    source = workdir / "transformer-in.onnx"
    onnx.save_model(model, str(source))
    quiet = logging.getLogger("onnxruntime.transformers")
    old = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            fused = optimize_model(str(source), model_type="vit", num_heads=0, hidden_size=0, opt_level=0,
                                   use_gpu=False, only_onnxruntime=False)
    finally:
        quiet.setLevel(old)
    _declare_domains(fused.model)
    return _keep_identity(proto, fused.model)


def _declare_domains(proto: onnx.ModelProto) -> None:
    """An opset import for every operator domain the graph uses (the fusions do not always add ``com.microsoft``)."""
    declared = {o.domain for o in proto.opset_import}
    for domain in sorted({n.domain for n in proto.graph.node} - declared - {"ai.onnx"}):
        proto.opset_import.append(onnx.helper.make_opsetid(domain, 1))


def _keep_identity(original: onnx.ModelProto, optimized: onnx.ModelProto) -> onnx.ModelProto:
    """The optimised graph with the original's names of inputs/outputs, metadata and producer."""
    del optimized.metadata_props[:]
    optimized.metadata_props.extend(original.metadata_props)
    optimized.producer_name = original.producer_name
    optimized.producer_version = original.producer_version
    optimized.doc_string = original.doc_string
    return optimized
