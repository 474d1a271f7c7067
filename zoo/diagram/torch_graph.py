"""The graph of a torch module: torch.fx symbolic tracing, then shape propagation on one input.

Layers are the leaf modules (modules without submodules, the rows of ``zoo info``'s table, and
the modules timm registers as not to be traced through) and the functional operations that
carry data, such as the residual ``add``, ``cat``, ``flatten`` and ``mul``. Plumbing is folded
away: ``getattr``/``size`` arithmetic, values that do not depend on the input (a parameter
reshaped), ``nn.Identity``, a dropout of p=0, a tuple's ``getitem``, ``contiguous``/``to``.
A network that cannot be traced (control flow on tensor values) is drawn as the chain of its
layer table, with a warning that branches are not shown.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from zoo.diagram.graph import Layer, NetworkGraph, chain
from zoo.errors import ZooError, first_line

__all__ = ["module_graph", "trace_graph", "table_graph"]

#: functions and methods that move or relabel data without computing: folded into the edges
PLUMBING = frozenset({"getattr", "contiguous", "to", "type", "type_as", "float", "half", "double", "clone",
                      "detach", "_assert", "identity", "requires_grad_"})


def module_graph(model: Any, input_shape: tuple[int, ...], title: str, *, warn: Callable[[str], None]) -> NetworkGraph:
    """The traced graph of ``model`` on one input of ``input_shape`` (C, H, W); the layer table's
    chain, with a one-line ``warn``, when tracing fails."""
    try:
        return trace_graph(model, input_shape, title)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, RuntimeError... on dynamic code
        try:
            graph = table_graph(model, input_shape, title)
        except Exception as failed:  # noqa: BLE001 - the network itself fails on this input: say so, not a bug
            size = "x".join(map(str, input_shape))
            raise ZooError(f"cannot draw '{title}': it does not run on one {size} input "
                           f"({type(failed).__name__}: {first_line(failed, 120)})") from failed
        warn(f"'{title}' could not be traced ({type(exc).__name__}: {first_line(exc, 120)}); drawn as the "
             f"chain of its {len(graph.layers) - 1} layers in the order they ran: branches are not shown")
        return graph


def trace_graph(model: Any, input_shape: tuple[int, ...], title: str) -> NetworkGraph:
    """Trace ``model`` with torch.fx and propagate one zero input of ``input_shape`` through it."""
    # torch: only when a diagram of a torch module is drawn
    import torch
    from torch.fx import GraphModule
    from torch.fx.passes.shape_prop import ShapeProp

    tracer = _scoped_tracer()
    fx_graph = tracer.trace(model)
    traced = GraphModule(tracer.root, fx_graph)
    was_training = model.training
    traced.eval()
    try:
        with torch.no_grad():
            ShapeProp(traced).propagate(torch.zeros(1, *input_shape, device=_device(model)))
    finally:
        model.train(was_training)
    return _from_fx(traced, title)


def table_graph(model: Any, input_shape: tuple[int, ...], title: str) -> NetworkGraph:
    """The layers of ``zoo info``'s table in the order they ran, as a chain after the input."""
    from zoo.summary import layer_table  # torch: only on this fallback

    shape = SimpleNamespace(channels=input_shape[0], input_size=tuple(input_shape[1:]))  # all the table reads
    table = layer_table(model, shape)
    ran = [row for row in table.rows if row.output_shape]  # layers that never ran (an unused head) are no step
    layers = [Layer("input", "Input", tuple(input_shape))] + [Layer(r.name, r.type, tuple(r.output_shape)) for r in ran]
    return chain(title, layers)


def _device(model: Any) -> Any:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else "cpu"


def _scoped_tracer() -> Any:
    """An fx tracer that stops at modules without submodules and at timm's leaf modules, wraps timm's
    untraceable functions, and notes in ``node.meta["zoo_caller"]`` the module each function ran in."""
    from torch import fx

    leaves, functions = _timm_notrace()

    class ScopedTracer(fx.Tracer):
        def __init__(self) -> None:
            super().__init__(autowrap_functions=functions)
            self.caller = ""

        def is_leaf_module(self, module: Any, qualified_name: str) -> bool:
            # a module without submodules is one row of zoo info's layer table: one layer here too
            childless = next(module.children(), None) is None
            return childless or isinstance(module, leaves) or super().is_leaf_module(module, qualified_name)

        def call_module(self, module: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            outer = self.caller
            try:
                self.caller = self.path_of_module(module)
            except NameError:  # a module that is not an attribute of the model: keep the caller's scope
                pass
            try:
                return super().call_module(module, forward, args, kwargs)
            finally:
                self.caller = outer

        def create_node(self, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(*args, **kwargs)
            node.meta["zoo_caller"] = self.caller
            return node

    return ScopedTracer()


def _timm_notrace() -> tuple[tuple[type, ...], tuple[Callable, ...]]:
    """The module classes and functions timm registers as not traceable; none where timm is not
    imported yet (a timm model has imported it: importing it for other models costs seconds)."""
    timm_layers = sys.modules.get("timm.layers")
    if timm_layers is None:
        return (), ()
    functions = timm_layers.get_notrace_functions()
    return tuple(timm_layers.get_notrace_modules()), tuple(f for f in functions if callable(f))


def _from_fx(traced: Any, title: str) -> NetworkGraph:
    """Keep the nodes that compute on data from the input; fold plumbing into the edges."""
    modules = dict(traced.named_modules())
    layers: list[Layer] = []
    edges: list[tuple[int, int]] = []
    kept: dict[Any, list[int]] = {}  # fx node -> the layer indices its value comes from
    names = _Names()
    for node in traced.graph.nodes:
        if node.op in ("output", "get_attr"):
            continue
        if node.op == "placeholder":
            if not layers:  # the image; other arguments keep their defaults
                kept[node] = [len(layers)]
                layers.append(Layer("input", "Input", _shape(node)))
            continue
        sources = list(dict.fromkeys(i for arg in node.all_input_nodes for i in kept.get(arg, ())))
        if not sources or not _carries_tensor(node):
            continue  # a constant, or shape arithmetic: not data flow
        kind = _kind(node, modules)
        if _is_plumbing(node, kind, modules):
            kept[node] = sources
            continue
        kept[node] = [len(layers)]
        edges.extend((source, len(layers)) for source in sources)
        layers.append(Layer(names.name_for(node, kind), kind, _shape(node)))
    return NetworkGraph(title, layers, edges)


def _kind(node: Any, modules: dict[str, Any]) -> str:
    """A module's class name, a function's name (``add``, ``flatten``) or a method's."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    if node.op == "call_function":
        if node.target is operator.getitem:
            return "getitem"
        return getattr(node.target, "__name__", str(node.target)).strip("_") or str(node.target)
    return str(node.target)


def _is_plumbing(node: Any, kind: str, modules: dict[str, Any]) -> bool:
    if node.op == "call_module":  # nothing, or a dropout that drops nothing
        module = modules[node.target]
        return kind == "Identity" or (kind.startswith("Dropout") and getattr(module, "p", None) == 0)
    if kind == "getitem":  # an element of a module's tuple output; slicing a tensor is computing
        return not _is_tensor_meta(node.args[0].meta.get("tensor_meta"))
    return kind in PLUMBING


def _is_tensor_meta(meta: Any) -> bool:
    """A tensor's ``TensorMetadata`` (a named tuple: tell it from a tuple of them by its fields)."""
    return meta is not None and hasattr(meta, "shape") and hasattr(meta, "dtype")


def _carries_tensor(node: Any) -> bool:
    meta = node.meta.get("tensor_meta")
    if _is_tensor_meta(meta):
        return True
    if isinstance(meta, (tuple, list)):
        return any(_is_tensor_meta(m) for m in meta)
    return isinstance(meta, dict) and any(_is_tensor_meta(m) for m in meta.values())


def _shape(node: Any) -> tuple[int, ...]:
    """The output shape without the batch dimension (a tuple output: its first tensor's)."""
    meta = node.meta.get("tensor_meta")
    if _is_tensor_meta(meta):
        pass
    elif isinstance(meta, (tuple, list)):
        meta = next((m for m in meta if _is_tensor_meta(m)), None)
    elif isinstance(meta, dict):
        meta = next((m for m in meta.values() if _is_tensor_meta(m)), None)
    return tuple(int(d) for d in meta.shape[1:]) if _is_tensor_meta(meta) else ()


class _Names:
    """Layer names: a module's path (``layer1.0.conv1``, a second call ``layer1.0.relu_1``) or a
    function's, prefixed by the module it ran in (``layer1.0.add``); unique within a graph."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def name_for(self, node: Any, kind: str) -> str:
        if node.op == "call_module":
            base = str(node.target)
        else:
            scope = node.meta.get("zoo_caller", "")
            base = f"{scope}.{kind}" if scope else kind
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        return base if count == 0 else f"{base}_{count}"
