"""The graph of an ONNX file, read with ``onnx`` alone (no torch): operators, tensors, shapes.

Layers are the operators that compute on data from the graph's input; edges follow the tensors
between them. Weights (initializers), constants and shape arithmetic (integer and boolean
tensors: ``Shape``, ``Gather`` of dimensions, ``Concat`` of sizes) are no layers; ``Identity``
is folded into the edges. Shapes come from ONNX shape inference, without the batch dimension.
Names are the module paths the exporter recorded (``layer1.0.conv1``), else the node's name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.diagram.graph import Layer, NetworkGraph
from zoo.errors import ZooError, first_line

__all__ = ["onnx_graph"]

FOLDED = frozenset({"Identity", "Dropout"})  # pass data on unchanged at inference
_NOT_DATA = frozenset({6, 7, 9, 8, 12, 13})  # INT32, INT64, BOOL, STRING, UINT32, UINT64: shapes and masks


def onnx_graph(path: str | Path, title: str | None = None, *, warn: Callable[[str], None]) -> NetworkGraph:
    """Read ``path`` (no external weight data is needed) and return its layers and edges; ``warn``
    gets a line when shape inference fails (the diagram then lacks the shapes it could not find)."""
    import onnx  # here: only an ONNX diagram needs it

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ZooError(f"ONNX file '{path}' does not exist") from None
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for bytes that are no ONNX model
        raise ZooError(f"'{path}' is not an ONNX model: {type(exc).__name__}") from None
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - a graph inference cannot follow: drawn without the shapes it lacks
        warn(f"ONNX shape inference failed on '{path}' ({first_line(exc, 100)}): some shapes are not shown")
    return _graph(model.graph, title or path.stem)


def _graph(graph: Any, title: str) -> NetworkGraph:
    types = _tensor_types(graph)
    weights = {t.name for t in graph.initializer}
    layers: list[Layer] = []
    edges: list[tuple[int, int]] = []
    comes_from: dict[str, list[int]] = {}  # tensor name -> the layers its value comes from
    for value in graph.input:
        if value.name not in weights:
            comes_from[value.name] = [len(layers)]
            layers.append(Layer("input" if len(graph.input) - len(weights) <= 1 else value.name, "Input",
                                types.get(value.name, (None, ()))[1]))
    names = _Names(graph.node)
    for index, node in enumerate(graph.node):
        sources = list(dict.fromkeys(i for name in node.input if name for i in comes_from.get(name, ())))
        data_outputs = [o for o in node.output if o and types.get(o, (None,))[0] not in _NOT_DATA]
        if not sources or not data_outputs:
            continue  # weights, constants, shape arithmetic
        if node.op_type in FOLDED:
            for output in data_outputs:
                comes_from[output] = sources
            continue
        for output in data_outputs:
            comes_from[output] = [len(layers)]
        edges.extend((source, len(layers)) for source in sources)
        layers.append(Layer(names.name_for(index, node), node.op_type, types.get(data_outputs[0], (None, ()))[1]))
    return NetworkGraph(title, layers, edges)


def _tensor_types(graph: Any) -> dict[str, tuple[int | None, tuple[int | str, ...]]]:
    """Tensor name -> (element type, shape without the batch dimension); what inference found."""
    found = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else _symbol(d.dim_param) for d in tensor.shape.dim)
        found[value.name] = (tensor.elem_type or None, dims[1:] if tensor.HasField("shape") else ())
    return found


def _symbol(name: str) -> str:
    """A named dimension as the exporter called it (``batch``); ``?`` for one inference made up (``unk__3``)."""
    return "?" if not name or name.startswith("unk__") else name


class _Names:
    """A node's name from the module path its exporter recorded: the dynamo exporter's
    ``pkg.torch.onnx.name_scopes``, or the TorchScript exporter's ``/layer1/layer1.0/conv1/Conv``.
    A path that holds other layers (``layer1.0``) or several operators gets the operator:
    ``layer1.0.add``, ``fc.linear``."""

    def __init__(self, nodes: Any) -> None:
        self.paths = [_module_path(node) for node in nodes]
        known = [path for path, _ in self.paths if path]
        self.shared = {p.rsplit(".", i)[0] for p in known for i in range(1, p.count(".") + 1)}
        self.shared |= {p for p in known if known.count(p) > 1}
        self.seen: dict[str, int] = {}

    def name_for(self, index: int, node: Any) -> str:
        path, operator = self.paths[index]
        if not path and not operator:
            base = node.name or node.op_type
        elif not path or path in self.shared:
            base = f"{path}.{operator}" if path else operator
        else:
            base = path
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        return base if count == 0 else f"{base}_{count}"


def _module_path(node: Any) -> tuple[str, str]:
    """(module path, operator) as the exporter recorded them; ("", "") when it recorded none."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parts = [str(p) for p in ast.literal_eval(scopes)]
        except (ValueError, SyntaxError):
            parts = []
        if parts:
            return ".".join(p for p in parts[:-1] if p), _operator(parts[-1])
    if node.name.startswith("/"):
        parts = [p for p in node.name.split("/") if p]
        modules = parts[:-1]  # ['layer1', 'layer1.0', 'conv1']: keep 'layer1.0', which already says 'layer1'
        scopes = [p for p, inner in zip(modules, [*modules[1:], ""]) if not inner.startswith(p + ".")]
        return ".".join(scopes), _operator(parts[-1]) if parts else ""
    return "", ""


def _operator(text: str) -> str:
    """``add`` of ``Add``, ``Add_3`` or ``add_1``."""
    return re.sub(r"_\d+$", "", text).strip("_").lower()
