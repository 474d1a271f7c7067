"""The confusion chart (MATLAB ``confusionchart``): counts, row recall and column precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from zoo.training.plot import save_figure

__all__ = ["plot_confusion"]


def plot_confusion(path: str | Path, result: Any, *, title: str = "") -> Path:
    """``result``: a :class:`zoo.evaluation.Evaluation`. A confusion chart like MATLAB's: counts, blue diagonal, red errors, row and column summaries."""
    m = result.confusion
    n = len(result.labels)
    side = min(16.0, 3.0 + 0.55 * n)
    fig = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(n, 1.4), height_ratios=(n, 1.4))
    ax = fig.add_subplot(grid[0, 0])
    row_ax = fig.add_subplot(grid[0, 1], sharey=ax)
    col_ax = fig.add_subplot(grid[1, 0], sharex=ax)
    blue = LinearSegmentedColormap.from_list("right", ["#ffffff", "#0072BD"])
    red = LinearSegmentedColormap.from_list("wrong", ["#ffffff", "#D95319"])
    peak = max(1, int(m.max()))
    for i in range(n):
        for j in range(n):
            count = int(m[i, j])
            shade = (blue if i == j else red)(0.15 + 0.85 * count / peak) if count else (1, 1, 1, 1)
            ax.add_patch(_square(j, i, shade))
            if count:
                dark = count / peak > 0.55
                ax.text(j, i, str(count), ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xticks(range(n), result.labels, rotation=45 if max(map(len, result.labels)) > 3 else 0, ha="right" if max(map(len, result.labels)) > 3 else "center")
    ax.set_yticks(range(n), result.labels)
    ax.set_ylabel("True Class")
    ax.tick_params(labelbottom=False)
    for summary_ax, values, horizontal in ((row_ax, result.recall, True), (col_ax, result.precision, False)):
        for k, value in enumerate(values):
            x, y = (0, k) if horizontal else (k, 0)
            if value is not None:
                summary_ax.add_patch(_square(x, y, blue(0.15 + 0.85 * value), width=1.0 if horizontal else 1.0))
                summary_ax.text(x, y, f"{100 * value:.1f}%", ha="center", va="center", fontsize=8,
                                color="white" if value > 0.55 else "black")
        summary_ax.tick_params(left=False, labelleft=False, bottom=not horizontal, labelbottom=not horizontal)
    row_ax.set_xlim(-0.5, 0.5)
    row_ax.set_xticks([])
    row_ax.set_title("Recall", fontsize=9)
    col_ax.set_ylim(0.5, -0.5)
    col_ax.set_yticks([0], ["Precision"])
    col_ax.tick_params(left=False, labelleft=True)
    col_ax.set_xticks(range(n), result.labels, rotation=45 if max(map(len, result.labels)) > 3 else 0,
                      ha="right" if max(map(len, result.labels)) > 3 else "center")
    col_ax.set_xlabel("Predicted Class")
    for a in (ax, row_ax, col_ax):
        for spine in a.spines.values():
            spine.set_color("0.7")
    fig.suptitle(f"{title}  -  accuracy {100 * result.accuracy:.2f}% ({result.images} images)" if title
                 else f"accuracy {100 * result.accuracy:.2f}%")
    return save_figure(fig, path)


def _square(x: float, y: float, color: Any, width: float = 1.0) -> Any:
    return Rectangle((x - width / 2, y - 0.5), width, 1.0, facecolor=color, edgecolor="0.85", linewidth=0.5)
