"""MATLAB's ``splitEachLabel``, and the record that lets a checkpoint's split be reopened.

``split_each_label`` splits a dataset (or a path, or a label array) per label;
``split_record`` is what training stores in ``card.training["split"]``; ``reopen_split``
rebuilds exactly that part later, checking that the files are still the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.base import ImageDataset
from zoo.data.subset import DatasetSubset
from zoo.errors import ZooError

__all__ = ["split_each_label", "split_indices", "check_fraction", "split_record", "reopen_split", "matches",
           "part_sha", "part_data", "PARTS"]

#: the parts of a split: ``train`` (the first fraction) and ``val`` (the rest)
PARTS = ("train", "val")


def check_fraction(fraction: Any) -> int | None:
    """The count per label when ``fraction`` is an int from 1 up, None for a proportion in (0, 1); else a ZooError."""
    if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool) and fraction >= 1:
        return int(fraction)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)) or not 0.0 < fraction < 1.0:
        raise ZooError(f"split fraction must be between 0 and 1 (or a whole count per label), not {fraction}")
    return None


def split_indices(
    labels: np.ndarray, fraction: float, *, randomize: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """splitEachLabel on a label array: indices of the first ``fraction`` of each label, and of the rest.

    ``fraction`` below 1 is a proportion (rounded half up per label: 1000 -> 750/250 at
    0.75); an ``int`` from 1 up is a count per label, as in MATLAB. ``randomize=False``
    keeps the dataset order; with ``randomize=True`` the split depends only on ``seed``.
    Both index arrays are sorted.
    """
    labels = np.asarray(labels)
    count = check_fraction(fraction)
    rng = np.random.default_rng(seed)
    first, rest = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if randomize:
            idx = rng.permutation(idx)
        if count is not None:
            if count > len(idx):
                raise ZooError(f"label {label} has {len(idx)} samples, fewer than the {count} asked for per label")
            cut = count
        else:
            cut = int(np.floor(len(idx) * fraction + 0.5))
        first.append(idx[:cut])
        rest.append(idx[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))


def split_each_label(
    data: Any, fraction: float, *, seed: int = 0, randomize: bool = True, adapter: str | None = None
) -> tuple[Any, Any]:
    """MATLAB's ``[first, rest] = splitEachLabel(imds, fraction, 'randomized')``.

    ``data``: a dataset gives two :class:`~zoo.data.subset.DatasetSubset` views (no pixels
    copied); a path is opened first (``adapter``, default: detected); a label array gives
    two sorted index arrays. The rule is :func:`split_indices`'s: per label, seeded.
    """
    check_fraction(fraction)  # before any file is listed
    if isinstance(data, (str, os.PathLike)):
        from zoo.data.adapters import open_dataset

        data = open_dataset(data, adapter)
    if isinstance(data, ImageDataset) or (hasattr(data, "load") and hasattr(data, "labels")):
        first, rest = split_indices(np.asarray(data.labels), fraction, randomize=randomize, seed=seed)
        return DatasetSubset(data, first), DatasetSubset(data, rest)
    return split_indices(data, fraction, randomize=randomize, seed=seed)


# -- the record a checkpoint keeps -------------------------------------------------------------------


def _root(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def part_sha(part: ImageDataset, root: str | os.PathLike) -> str:
    """SHA-256 of the part's sorted "class, sample name" pairs, names relative to ``root``.

    Names come from ``describe`` (no file is read), so the hash holds wherever the data
    folder is reached from.
    """
    base = _root(root)
    if os.path.isfile(base):
        base = os.path.dirname(base)
    prefix = base.rstrip(os.sep) + os.sep
    classes = list(part.classes)
    names = []
    for i, label in enumerate(np.asarray(part.labels)):
        name = os.path.abspath(part.describe(i))
        names.append(f"{classes[int(label)]}\0{name[len(prefix):] if name.startswith(prefix) else name}")
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def split_record(
    train_part: ImageDataset,
    val_part: ImageDataset,
    *,
    data: str | os.PathLike,
    adapter: str,
    fraction: float | None = None,
    seed: int | None = None,
    val_data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """What ``card.training["split"]`` holds (JSON-able), for :func:`reopen_split`.

    A split of ``data`` by ``split_each_label(dataset, fraction, seed=seed)``: pass
    ``fraction`` and ``seed``. A separate validation set (``--val DIR``): pass ``val_data``
    instead (default: ``val_part.root``), ``train_part`` being all of ``data`` and ``val_part``
    all of ``val_data``.
    """
    if val_data is None and fraction is None:  # a separate validation set: its folder, if it knows it
        val_data = getattr(val_part, "root", None)
    if (val_data is None) == (fraction is None):
        raise ZooError("split_record needs either fraction and seed (a split of data) or val_data")
    record: dict[str, Any] = {"data": _root(data), "adapter": str(adapter)}
    if val_data is None:
        record["fraction"] = int(fraction) if float(fraction) >= 1 else float(fraction)
        record["seed"] = int(seed or 0)
    else:
        record["val_data"] = _root(val_data)
    record["train_images"], record["val_images"] = len(train_part), len(val_part)
    record["train_sha"] = part_sha(train_part, record["data"])
    record["val_sha"] = part_sha(val_part, record.get("val_data", record["data"]))
    return record


def _checked(record: Any) -> dict[str, Any]:
    """The record, its fields checked: it comes from a file."""
    if not isinstance(record, dict):
        raise ZooError("the checkpoint's split record is not a table; pass --data to evaluate")
    fields = {"data": str, "adapter": str, "train_images": int, "val_images": int, "train_sha": str, "val_sha": str}
    fields.update({"val_data": str} if "val_data" in record else {"fraction": (int, float), "seed": int})
    for name, kind in fields.items():
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            raise ZooError(f"the checkpoint's split record has no valid '{name}'; pass --data to evaluate")
    return record


def part_data(record: dict[str, Any], part: str) -> str:
    """The folder (or file) a recorded split's ``part`` comes from."""
    return record["val_data"] if part == "val" and "val_data" in record else record["data"]


def reopen_split(record: Any, part: str = "val", *, check: bool = True) -> ImageDataset:
    """The ``part`` (``"val"`` or ``"train"``) of a run's split, from its :func:`split_record`.

    Reopens the data, splits it again by the same rule and, with ``check``, compares the
    hash: files added, removed or renamed since training are a ``ZooError`` saying so.
    """
    if part not in PARTS:
        raise ZooError(f"part must be 'val' or 'train', not '{part}'")
    record = _checked(record)
    path = part_data(record, part)
    if not Path(path).exists():
        raise ZooError(f"the data this model was trained with, '{path}', is gone; pass --data DIR to evaluate")
    from zoo.data.adapters import open_dataset

    dataset = open_dataset(path, record["adapter"])
    if "val_data" in record:
        chosen: ImageDataset = dataset
    else:
        first, rest = split_each_label(dataset, record["fraction"], seed=record["seed"])
        chosen = first if part == "train" else rest
    if check and part_sha(chosen, path) != record[f"{part}_sha"]:
        raise ZooError(_changed_message(record, part, path, len(dataset)))
    return chosen


def matches(record: dict[str, Any], part: str, dataset: ImageDataset) -> bool:
    """Whether ``dataset`` holds exactly the samples of the record's ``part``."""
    return part_sha(dataset, part_data(record, part)) == record[f"{part}_sha"]


def _changed_message(record: dict[str, Any], part: str, path: str, now: int) -> str:
    """``now``: how many images the data holds today (the part's source: all of it)."""
    was = record[f"{part}_images"] if "val_data" in record else record["train_images"] + record["val_images"]
    if now != was:
        changed = f"{abs(now - was)} image(s) {'added' if now > was else 'removed'}: {now} now, {was} then"
    else:
        changed = "files renamed, replaced or relabelled"
    how = "" if "val_data" in record else f" --split {record['fraction']} --seed {record['seed']} --part {part}"
    return (f"'{path}' changed since training ({changed}), so the run's {part} part cannot be rebuilt; "
            f"restore the files, or evaluate the data as it is now with --data {path}{how}")
