"""The confusion chart (MATLAB ``confusionchart``): counts, row recall and column precision.

Proportions hold from 2 to a few hundred classes: the matrix side grows with the class count up
to a bound, the recall and precision strips are a fixed fraction of it, cell text scales with the
cells and disappears (colour stays) when cells get too small, and x labels are rotated only
when they would not fit a cell horizontally.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from zoo.training.plot import save_figure

__all__ = ["plot_confusion", "confusion_figure", "layout"]

STRIP = 0.12  # the summary strips' thickness as a fraction of the matrix side
MIN_TEXT_CELL = 18.0  # points: smaller cells show colour only (the strips keep small text down to 8)
LABEL_CHARS = 20  # longer class names are shortened


def layout(n: int, labels: list[str]) -> dict[str, float]:
    """Sizes (inches, points) for ``n`` classes: matrix side, strip, cell, fonts, label rotation."""
    side = min(12.5, max(3.5, 0.5 * n + 1.5))
    cell_pt = 72 * side / max(1, n)
    longest = max((len(label) for label in labels), default=1)
    tick_fs = min(10.0, max(5.0, 0.6 * cell_pt))
    rotation = 0.0 if longest * tick_fs * 0.62 <= 0.9 * cell_pt else 90.0
    label_in = longest * tick_fs * 0.62 / 72
    return {
        "side": side,
        "strip": max(0.45, STRIP * side),
        "cell_pt": cell_pt,
        "text_fs": min(12.0, max(6.0, 0.3 * cell_pt)) if cell_pt >= MIN_TEXT_CELL else 0.0,
        "strip_fs": min(9.0, max(5.0, 0.65 * cell_pt)) if cell_pt >= 8 else 0.0,
        "dpi": 100.0 if cell_pt >= 20 else 150.0,  # small text stays legible
        "tick_fs": tick_fs,
        "rotation": rotation,
        "left_in": label_in + 0.55,
        "bottom_in": (label_in if rotation else tick_fs / 72) + 0.6,
    }


def confusion_figure(result: Any, *, title: str = "") -> Any:
    """The chart of a :class:`zoo.evaluation.Evaluation` as a matplotlib ``Figure`` (no pyplot).

    The axes are labelled ``matrix``, ``recall`` and ``precision`` (``Axes.get_label()``).
    """
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    m = result.confusion
    labels = [_short(str(label)) for label in result.labels]
    n = len(labels)
    size = layout(n, labels)
    side, strip = size["side"], size["strip"]
    width = min(16.0, side + strip + size["left_in"] + 0.5)
    height = min(16.0, side + strip + size["bottom_in"] + 0.8)
    fig = Figure(figsize=(width, height), dpi=size["dpi"], layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(side, strip), height_ratios=(side, strip))
    ax = fig.add_subplot(grid[0, 0], label="matrix")
    row_ax = fig.add_subplot(grid[0, 1], sharey=ax, label="recall")
    col_ax = fig.add_subplot(grid[1, 0], sharex=ax, label="precision")
    blue = LinearSegmentedColormap.from_list("right", ["#ffffff", "#0072BD"])
    red = LinearSegmentedColormap.from_list("wrong", ["#ffffff", "#D95319"])
    peak = max(1, int(m.max()))
    colors = [[(1.0, 1.0, 1.0, 1.0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            count = int(m[i, j])
            if count:
                colors[i][j] = (blue if i == j else red)(0.15 + 0.85 * count / peak)
                if size["text_fs"]:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=size["text_fs"],
                            color="white" if count / peak > 0.55 else "black")
    ax.imshow(colors, aspect="auto", interpolation="nearest")
    _grid_lines(ax, n, n)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(n), labels, fontsize=size["tick_fs"])
    ax.set_ylabel("True Class")
    ax.tick_params(bottom=False, labelbottom=False)

    strip_fs = size["strip_fs"]
    recall = [blue(0.15 + 0.85 * v) if v is not None else (1, 1, 1, 1) for v in result.recall]
    precision = [blue(0.15 + 0.85 * v) if v is not None else (1, 1, 1, 1) for v in result.precision]
    row_ax.imshow([[c] for c in recall], aspect="auto", interpolation="nearest", extent=(-0.5, 0.5, n - 0.5, -0.5))
    col_ax.imshow([precision], aspect="auto", interpolation="nearest", extent=(-0.5, n - 0.5, 0.5, -0.5))
    _grid_lines(row_ax, 1, n)
    _grid_lines(col_ax, n, 1)
    narrow = size["cell_pt"] < 40  # precision text turns upright in narrow columns
    for k in range(n):
        if strip_fs and result.recall[k] is not None:
            row_ax.text(0, k, f"{100 * result.recall[k]:.1f}%", ha="center", va="center", fontsize=strip_fs,
                        color="white" if result.recall[k] > 0.55 else "black")
        if strip_fs and result.precision[k] is not None:
            col_ax.text(k, 0, f"{100 * result.precision[k]:.1f}%", ha="center", va="center", fontsize=strip_fs,
                        rotation=90 if narrow else 0, color="white" if result.precision[k] > 0.55 else "black")
    row_ax.set_xlim(-0.5, 0.5)
    row_ax.set_xticks([])
    row_ax.tick_params(left=False, labelleft=False)
    row_ax.set_title("Recall", fontsize=9)
    col_ax.set_ylim(0.5, -0.5)
    col_ax.set_yticks([0], ["Precision"], fontsize=9)
    col_ax.tick_params(left=False)
    col_ax.set_xticks(range(n), labels, fontsize=size["tick_fs"], rotation=size["rotation"],
                      ha="center" if not size["rotation"] else "right", rotation_mode="anchor" if size["rotation"]
                      else "default", va="top" if not size["rotation"] else "center")
    col_ax.set_xlabel("Predicted Class")
    for a in (ax, row_ax, col_ax):
        for spine in a.spines.values():
            spine.set_color("0.7")
    text = f"accuracy {100 * result.accuracy:.2f}% ({result.images} images)"
    fig.suptitle(textwrap.shorten(f"{title}  -  {text}" if title else text, int(width * 72 / 7), placeholder="..."),
                 fontsize=12)
    return fig


def plot_confusion(path: str | Path, result: Any, *, title: str = "") -> Path:
    """``result``: a :class:`zoo.evaluation.Evaluation`. A confusion chart like MATLAB's: counts, blue diagonal, red errors, row and column summaries."""
    return save_figure(confusion_figure(result, title=title), path)


def _grid_lines(ax: Any, columns: int, rows: int) -> None:
    """Thin light cell borders (left out when cells are only a few pixels)."""
    if max(columns, rows) > 60:
        return
    for x in range(1, columns):
        ax.axvline(x - 0.5, color="0.85", linewidth=0.5)
    for y in range(1, rows):
        ax.axhline(y - 0.5, color="0.85", linewidth=0.5)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
