"""Evaluation: accuracy, per-class precision and recall, confusion matrix (MATLAB ``confusionchart``).

Named ``evaluation`` so that the submodule never shadows the function ``zoo.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from zoo.classifier import Classifier, load
from zoo.data import open_dataset, to_tensors
from zoo.device import pick_device
from zoo.errors import ZooError
from zoo.resolver import kind_of
from zoo.training.plot import save_figure

__all__ = ["evaluate", "Evaluation", "confusion_matrix", "plot_confusion"]


@dataclass
class Evaluation:
    """Results of one evaluation; ``confusion[i, j]`` counts true class i predicted as j."""

    labels: list[str]
    confusion: np.ndarray
    accuracy: float
    precision: list[float | None]  # None where a class was never predicted
    recall: list[float | None]  # None where a class has no samples
    support: list[int]
    images: int
    plot: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy, "images": self.images, "labels": self.labels,
            "per_class": [{"label": label, "precision": p, "recall": r, "support": s}
                          for label, p, r, s in zip(self.labels, self.precision, self.recall, self.support)],
            "confusion": self.confusion.tolist(),
            "plot": None if self.plot is None else str(self.plot),
        }


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def _metrics(matrix: np.ndarray, labels: list[str], plot: Path | None) -> Evaluation:
    total = int(matrix.sum())
    diag = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    return Evaluation(
        labels=labels, confusion=matrix, accuracy=float(diag.sum() / total) if total else 0.0,
        precision=[float(d / p) if p else None for d, p in zip(diag, predicted)],
        recall=[float(d / a) if a else None for d, a in zip(diag, actual)],
        support=[int(a) for a in actual], images=total, plot=plot,
    )


def evaluate(
    model: Any,
    data: str | Path,
    *,
    adapter: str = "folder",
    plot: str | Path | None = None,
    batch_size: int = 256,
    device: str = "auto",
) -> Evaluation:
    """Evaluate a checkpoint (path), registry reference or :class:`~zoo.classifier.Classifier` on ``data``.

    The data's classes are matched to the model's labels by name; a class the model does
    not know is an error. ``plot`` writes a confusion-chart PNG there.
    """
    if isinstance(model, Classifier):
        classifier = model.to(pick_device(device))
    elif kind_of(model) == "checkpoint":
        classifier = load(model, device=pick_device(device))
    else:
        raise ZooError(f"evaluate needs a trained zoo checkpoint (.safetensors), not '{model}'")
    labels = classifier.labels
    dataset = open_dataset(data, adapter)
    unknown = [c for c in dataset.classes if c not in labels]
    if unknown:
        raise ZooError(f"classes in '{data}' unknown to the model: {', '.join(unknown[:8])} "
                       f"(the model knows {', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''})")
    tensors = to_tensors(dataset, classifier.preprocess, classes=labels)
    logits = classifier.logits_of_pixels(tensors.images, batch_size=batch_size)
    matrix = confusion_matrix(tensors.labels.numpy(), logits.argmax(dim=1).numpy(), len(labels))
    result = _metrics(matrix, labels, None)
    if plot is not None:
        result.plot = plot_confusion(plot, result, title=f"{classifier.card.name} on {Path(str(data)).name}")
    return result


def plot_confusion(path: str | Path, result: Evaluation, *, title: str = "") -> Path:
    """A confusion chart like MATLAB's: counts, blue diagonal, red errors, row and column summaries."""
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
