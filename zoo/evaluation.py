"""Evaluation: accuracy, per-class precision and recall, confusion matrix (MATLAB ``confusionchart``).

On a folder, a dataset, a split of either (``split=``), or exactly the validation part a
checkpoint's run held out (``data=None``). Images the model was trained on are counted and
warned about. Named ``evaluation`` so that the submodule never shadows ``zoo.evaluate``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.classifier import Classifier, load
from zoo.confusion_chart import plot_confusion
from zoo.data.adapters import open_dataset
from zoo.data.base import DataWarning, ImageDataset, warn_data
from zoo.data.split import (
    PARTS,
    check_fraction,
    matches,
    part_data,
    reopen_split,
    split_each_label,
)
from zoo.data.subset import DatasetSubset
from zoo.data.sources import open_source
from zoo.data.tensors import skip_message
from zoo.device import pick_device
from zoo.errors import ZooError
from zoo.resolver import kind_of
from zoo.training.options import check_option

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
    #: what was evaluated: data, part ("all", "train", "val" or "subset"), fraction, seed, of_run
    evaluated: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy, "images": self.images, "labels": self.labels, "evaluated": self.evaluated,
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
    data: Any = None,
    *,
    adapter: str = "auto",
    split: float | None = None,
    seed: int = 0,
    part: str | None = None,
    plot: str | Path | None = None,
    batch_size: int = 256,
    device: str = "auto",
    network: Any = None,
    cache: str = "auto",
    workers: int | None = None,
) -> Evaluation:
    """Evaluate a checkpoint (path), registry reference or :class:`~zoo.classifier.Classifier`.

    Args:
        data: a path (opened with ``adapter``; ``"auto"`` detects it), a dataset (e.g. a ``zoo.split_each_label``
            part), or None: exactly the part the checkpoint's run held out for validation
            (its card's split record; ``part="train"`` for the other part).
        split: splitEachLabel ``data`` first, keeping this fraction of each label for the
            ``"train"`` part, and evaluate ``part``.
        seed: the seed of that split.
        part: ``"val"`` (the default: the rest after the first ``split`` of each label) or ``"train"``.
        plot: write a confusion-chart PNG there.
        network: for a checkpoint of a network defined in Python: its ``FILE.py:NAME`` again.
        cache: where the decoded pixels live (:func:`zoo.data.open_source`): memory stays
            bounded whatever the data set's size.
        workers: how many processes decode the images when they are streamed.

    The data's classes are matched to the model's labels by name; a class the model does
    not know is an error. Images the model was trained on (per its split record) are
    counted in one ``DataWarning``.
    """
    batch_size = check_option("batch_size", batch_size)
    if part is not None and part not in PARTS:
        raise ZooError(f"part must be 'val' or 'train', not '{part}'")
    if split is not None:
        check_fraction(split)
        if data is None:
            raise ZooError("split= splits the data given: pass data, or data=None alone for the run's own split")
    elif part is not None and data is not None:
        raise ZooError("part= needs split= (or data=None, for the part of the checkpoint's own split)")
    classifier = _classifier(model, device, network)
    labels = classifier.labels
    record = (classifier.card.training or {}).get("split")
    dataset, evaluated = _dataset(model, classifier, data, adapter, split, seed, part or "val", record)
    unknown = [c for c in dataset.classes if c not in labels]
    if unknown:
        raise ZooError(f"classes in '{evaluated['data']}' unknown to the model: {', '.join(unknown[:8])} "
                       f"(the model knows {', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''})")
    if record is not None and not (evaluated["of_run"] and evaluated["part"] == "val"):
        _warn_overlap(record, dataset)
    source = open_source(dataset, classifier.preprocess, cache=cache, classes=labels, workers=workers,
                         pin_memory=classifier.device.type == "cuda")
    truth, predicted = [], []
    for pixels, batch_labels in source.batches(list(torch.arange(len(source)).split(batch_size))):
        truth.append(batch_labels.numpy())
        predicted.append(classifier.logits_of_pixels(pixels, batch_size=batch_size).argmax(dim=1).numpy())
    if getattr(source, "mode", "") == "none" and source.skipped:
        warn_data(skip_message(source.skipped, len(dataset)), stacklevel=2)
    matrix = confusion_matrix(np.concatenate(truth), np.concatenate(predicted), len(labels))
    result = _metrics(matrix, labels, None)
    result.evaluated = evaluated
    if plot is not None:
        shown = "" if evaluated["part"] == "all" else f" ({evaluated['part']} part)"
        title = f"{classifier.card.name} on {Path(evaluated['data']).name}{shown}"
        result.plot = plot_confusion(plot, result, title=title)
    return result


def _classifier(model: Any, device: str, network: Any = None) -> Classifier:
    if isinstance(model, Classifier):
        return model.to(pick_device(device))
    if kind_of(model) == "checkpoint":
        return load(model, device=pick_device(device), network=network)
    raise ZooError(f"evaluate needs a trained zoo checkpoint (.safetensors), not '{model}'")


def _dataset(model: Any, classifier: Classifier, data: Any, adapter: str, split: float | None, seed: int,
             part: str, record: Any) -> tuple[ImageDataset, dict[str, Any]]:
    """The images to evaluate, and what they are (``Evaluation.evaluated``)."""
    if data is None:
        if record is None:
            name = model if not isinstance(model, Classifier) else classifier.card.name
            raise ZooError(f"'{name}' records no validation split (trained with --split 1, or by an older zoo): "
                           "pass --data DIR to evaluate")
        dataset = reopen_split(record, part)
        where = part_data(record, part)
        return dataset, {"data": where, "part": part, "fraction": record.get("fraction"),
                         "seed": record.get("seed"), "of_run": True, "images": len(dataset)}
    if isinstance(data, (str, os.PathLike)):
        where, dataset = os.path.abspath(os.fspath(data)), open_dataset(data, adapter)
    else:
        where, dataset = data.location, data
    whole = "subset" if isinstance(dataset, DatasetSubset) else "all"
    if split is None:
        return dataset, {"data": where, "part": whole, "fraction": None, "seed": None, "of_run": False,
                         "images": len(dataset)}
    first, rest = split_each_label(dataset, split, seed=seed)
    chosen = first if part == "train" else rest
    if len(chosen) == 0:
        raise ZooError(f"the {part} part of a {split} split of '{where}' holds no images; choose another --split")
    return chosen, {"data": where, "part": part, "fraction": split, "seed": seed, "of_run": False,
                    "images": len(chosen)}


def _warn_overlap(record: Any, dataset: ImageDataset) -> None:
    """One DataWarning when ``dataset`` holds images of the run's training part (recomputed from ``record``)."""
    try:
        if not (isinstance(record, dict) and Path(str(record.get("data"))).exists()):
            return
        with warnings.catch_warnings():  # the training data's own warnings were shown when it was trained
            warnings.simplefilter("ignore", DataWarning)
            trained_part = reopen_split(record, "train", check=False)
        exact = matches(record, "train", trained_part)
    except ZooError:
        return  # a damaged record or unreadable training data: nothing to compare against
    trained = {os.path.abspath(trained_part.describe(i)) for i in range(len(trained_part))}
    used = sum(os.path.abspath(dataset.describe(i)) in trained for i in range(len(dataset)))
    if used:
        note = "" if exact else f" (counted against '{record['data']}' as it is now: it changed since training)"
        warn_data(f"{used} of {len(dataset)} evaluation images were used to train this model; its accuracy on "
                  f"them is optimistic: evaluate on the validation part with --split-of-run{note}", stacklevel=3)
