"""The network as data: layers (name, type, output shape) and the edges the data flows along.

Standard library only: the torch tracer (:mod:`zoo.diagram.torch_graph`) and the ONNX reader
(:mod:`zoo.diagram.onnx_graph`) both produce a :class:`NetworkGraph`; layout and drawing read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Layer", "NetworkGraph", "chain", "shape_text", "MERGE_TYPES"]

#: layer types that join branches: a node of one of these with two inputs is a skip connection's end
MERGE_TYPES = frozenset({"add", "iadd", "Add", "cat", "concat", "Concat", "mul", "Mul", "sum", "Sum"})


@dataclass(frozen=True)
class Layer:
    """One node of the diagram: ``name`` (what ``zoo info`` and ``zoo features --layer`` call it),
    ``type`` (a module's class, a function's or an ONNX operator's name) and the output
    ``shape`` of one input, without the batch dimension (empty when unknown)."""

    name: str
    type: str
    shape: tuple[int | str, ...] = ()


@dataclass
class NetworkGraph:
    """Layers in data-flow order (every edge runs from an earlier layer to a later one) and the
    edges ``(source index, target index)`` between them. ``branches_shown`` is False for a chain
    drawn from a layer table because the network could not be traced."""

    title: str
    layers: list[Layer]
    edges: list[tuple[int, int]] = field(default_factory=list)
    branches_shown: bool = True

    def __post_init__(self) -> None:
        self.edges = list(dict.fromkeys((int(a), int(b)) for a, b in self.edges))
        bad = [(a, b) for a, b in self.edges if not 0 <= a < b < len(self.layers)]
        if bad:
            raise ValueError(f"edges must run forward between existing layers: {bad[:3]}")

    def inbound(self, index: int) -> list[int]:
        """The layers whose output ``index`` reads, in the order the edges were given."""
        return [a for a, b in self.edges if b == index]

    def outbound(self, index: int) -> list[int]:
        return [b for a, b in self.edges if a == index]

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def main_path(self) -> set[tuple[int, int]]:
        """The edges of the longest path from the first layer to the last: the main chain. Every
        other edge belongs to a branch or a skip connection beside it."""
        if not self.layers:
            return set()
        depth = [0] * len(self.layers)
        best: dict[int, int] = {}
        for a, b in sorted(self.edges, key=lambda e: (e[1], e[0])):
            if depth[a] + 1 > depth[b]:
                depth[b], best[b] = depth[a] + 1, a
        path, node = set(), len(self.layers) - 1
        while node in best:
            path.add((best[node], node))
            node = best[node]
        return path

    def merges(self) -> list[int]:
        """The layers that join two or more branches (residual additions, concatenations)."""
        return [i for i, layer in enumerate(self.layers) if layer.type in MERGE_TYPES and len(self.inbound(i)) > 1]


def chain(title: str, layers: Iterable[Layer], *, branches_shown: bool = False) -> NetworkGraph:
    """``layers`` one after the other: the fallback when only a layer sequence is known."""
    layers = list(layers)
    return NetworkGraph(title, layers, [(i, i + 1) for i in range(len(layers) - 1)], branches_shown)


def shape_text(shape: Sequence[int | str]) -> str:
    """``64x56x56`` as the diagram shows it (``×``); ``-`` when unknown."""
    return "×".join(str(d) for d in shape) if shape else "-"
