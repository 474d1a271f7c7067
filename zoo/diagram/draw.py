"""Drawing a placed network with matplotlib: boxes (name, type, output shape), curved arrows.

Like MATLAB's ``plot(lgraph)``, top-down; branches side by side, and every edge off the main
chain (branches, skip connections) in its own colour and column. The figure grows with the rows
and columns, up to :data:`MAX_HEIGHT_IN` by :data:`MAX_WIDTH_IN`; a larger network is drawn
smaller to fit (:func:`network_figure` returns the scale; :func:`zoo.diagram.write_diagram` warns).
"""

from __future__ import annotations

from typing import Any

from zoo.diagram.graph import MERGE_TYPES, NetworkGraph, shape_text
from zoo.diagram.layout import Placement

__all__ = ["network_figure", "category", "MAX_HEIGHT_IN", "MAX_WIDTH_IN", "DPI"]

BOX_W, BOX_H, ROW_H = 2.35, 0.5, 0.78  # inches at full size: a layer's box, and the row pitch
MARGIN, TITLE_H = 0.3, 0.85
MAX_HEIGHT_IN, MAX_WIDTH_IN = 250.0, 60.0  # 31,250 x 7,500 pixels at DPI
DPI = 125
NAME_PT, DETAIL_PT = 8.5, 7.3
EDGE, BRANCH = "#4d4d4d", "#D95319"  # the main chain's arrows; branches and skip connections

#: box fill per kind of layer
COLORS = {
    "input": "#e6e6e6", "convolution": "#cfe2f3", "normalization": "#fff2cc", "activation": "#fce5cd",
    "pooling": "#d9ead3", "fully connected": "#d9d2e9", "merge": "#f4cccc", "reshape": "#eeeeee", "other": "#ffffff",
}
_KEYWORDS = (  # the first that a lowercased type contains decides
    ("input", ("input",)), ("merge", ()), ("normalization", ("norm",)), ("convolution", ("conv",)),
    ("pooling", ("pool", "mean")), ("fully connected", ("linear", "gemm", "matmul")),
    ("activation", ("relu", "gelu", "silu", "sigmoid", "swish", "tanh", "softmax", "elu", "mish", "clip")),
    ("reshape", ("flatten", "reshape", "view", "permute", "transpose", "squeeze", "unbind")),
)


def category(layer_type: str, inputs: int = 1) -> str:
    """The kind of a layer type: convolution, normalization, activation, pooling, ...; ``merge``
    for an addition, concatenation or product of ``inputs`` > 1 branches."""
    if layer_type in MERGE_TYPES:
        return "merge" if inputs > 1 else "other"
    lowered = layer_type.lower()
    return next((kind for kind, words in _KEYWORDS if any(w in lowered for w in words)), "other")


def network_figure(graph: NetworkGraph, placement: Placement) -> tuple[Any, float]:
    """The diagram as a matplotlib ``Figure`` (no pyplot), and the scale it is drawn at (1.0: full
    size; less when the network needed more than the maximum figure)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads

    columns = placement.right - placement.left
    natural_w = columns * BOX_W + 2 * MARGIN
    natural_h = placement.rows * ROW_H + TITLE_H + 2 * MARGIN
    scale = min(1.0, MAX_HEIGHT_IN / natural_h, MAX_WIDTH_IN / natural_w)
    width, height = max(natural_w, 4.2) * scale, natural_h * scale
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1), label="diagram")
    ax.set_xlim(0, width / scale)
    ax.set_ylim(height / scale, 0)  # inches at full size, y downwards
    ax.axis("off")
    left = (width / scale - columns * BOX_W) / 2 - placement.left * BOX_W

    def at(x: float, row: float) -> tuple[float, float]:
        return left + x * BOX_W, MARGIN + TITLE_H + row * ROW_H + BOX_H / 2

    _title(ax, graph, width / scale, scale)
    main = graph.main_path()
    for edge, route in zip(graph.edges, placement.routes, strict=True):
        _arrow(ax, [at(x, r) for x, r in route], branch=edge not in main, scale=scale)
    for i, layer in enumerate(graph.layers):
        _box(ax, at(placement.x[i], placement.row[i]), layer, category(layer.type, len(graph.inbound(i))), scale)
    return fig, scale


def _title(ax: Any, graph: NetworkGraph, width: float, scale: float) -> None:
    """The network's name; its size and input; what orange means, or that branches are missing."""
    merges = len(graph.merges())
    detail = f"{len(graph.layers)} layers"
    if graph.layers and graph.layers[0].type == "Input":
        detail += f"  ·  input {shape_text(graph.layers[0].shape)}"
    if merges:
        detail += f"  ·  {merges} merges"
    note = "" if graph.branches_shown else "could not be traced: branches are not shown"
    if merges and graph.branches_shown:
        note = "orange: branches and skip connections"
    ax.text(width / 2, MARGIN + 0.15, _fit(graph.title, 48), ha="center", va="center", fontsize=12 * scale,
            weight="bold")
    ax.text(width / 2, MARGIN + 0.42, detail, ha="center", va="center", fontsize=8 * scale, color="#555555")
    ax.text(width / 2, MARGIN + 0.6, note, ha="center", va="center", fontsize=7.5 * scale,
            color=BRANCH if graph.branches_shown else "#b00000")


def _box(ax: Any, centre: tuple[float, float], layer: Any, kind: str, scale: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    x, y = centre
    ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=COLORS[kind], edgecolor="#7f7f7f", linewidth=0.8 * scale, zorder=3))
    ax.text(x, y - 0.1, _fit(layer.name, 28), ha="center", va="center", fontsize=NAME_PT * scale, weight="bold",
            zorder=4)
    ax.text(x, y + 0.12, f"{_fit(layer.type, 20)}  ·  {_fit(shape_text(layer.shape), 16)}", ha="center",
            va="center", fontsize=DETAIL_PT * scale, color="#333333", zorder=4)


def _arrow(ax: Any, points: list[tuple[float, float]], *, branch: bool, scale: float) -> None:
    """From the bottom of the first box to the top of the last, through each waypoint's row as a
    vertical run, with S-shaped curves between rows."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    (x0, y0), *middle, (x1, y1) = points
    verts, codes = [(x0, y0 + BOX_H / 2)], [Path.MOVETO]
    runs = [((x, y - BOX_H / 2), (x, y + BOX_H / 2)) for x, y in middle] + [((x1, y1 - BOX_H / 2), None)]
    for start, end in runs:
        (ax_, ay), (bx, by) = verts[-1], start
        bend = (by - ay) / 2
        verts += [(ax_, ay + bend), (bx, by - bend), start]
        codes += [Path.CURVE4] * 3
        if end is not None:
            verts.append(end)
            codes.append(Path.LINETO)
    ax.add_patch(FancyArrowPatch(path=Path(verts, codes), arrowstyle="-|>", mutation_scale=9 * scale,
                                 color=BRANCH if branch else EDGE, linewidth=(1.3 if branch else 1.0) * scale,
                                 shrinkA=0, shrinkB=0, zorder=2 if branch else 1))


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its end (the most specific part of a path)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
