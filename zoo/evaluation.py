"""Evaluation: accuracy, per-class precision and recall, confusion matrix (MATLAB ``confusionchart``).

Named ``evaluation`` so that the submodule never shadows the function ``zoo.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.classifier import Classifier, load
from zoo.confusion_chart import plot_confusion
from zoo.data import open_dataset, to_tensors
from zoo.device import pick_device
from zoo.errors import ZooError
from zoo.resolver import kind_of

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
