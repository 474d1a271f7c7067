"""Datasets: adapters, decoding to one uint8 tensor, per-label splits.

``open_dataset(path, adapter)`` builds an adapter from the catalog (built-in or plugin);
``to_tensors(dataset, pre)`` decodes it once, at the model's size and channels, into one
uint8 tensor (cached on disk for the next run); ``split_each_label`` is MATLAB's
``splitEachLabel``. Samples that cannot be decoded are skipped, named in one warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.base import ImageDataset
from zoo.errors import ZooError, ZooWarning
from zoo.registry import dataset_info, import_object
from zoo.preprocess import Preprocess

__all__ = [
    "ImageDataset",
    "TensorSet",
    "DataWarning",
    "open_dataset",
    "detect_adapter",
    "to_tensors",
    "decode",
    "split_each_label",
]

#: how many unreadable files one warning names before it only counts the rest
MAX_NAMED = 50


class DataWarning(ZooWarning):
    """A problem with some samples that zoo worked around (files skipped, folders left out)."""


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


@dataclass
class TensorSet:
    """A decoded dataset: uint8 images (N, C, H, W) at the model's size, int64 labels."""

    images: Any  # torch.Tensor uint8
    labels: Any  # torch.Tensor int64
    classes: list[str]
    #: dataset index of each row (rows of unreadable samples are left out)
    indices: np.ndarray | None = None
    #: "path (reason)" of the samples that could not be decoded
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> TensorSet:
        import torch

        rows = np.asarray(indices, dtype=np.int64)
        idx = torch.as_tensor(rows)
        kept = None if self.indices is None else self.indices[rows]
        return TensorSet(self.images[idx], self.labels[idx], self.classes, kept, list(self.skipped))


def detect_adapter(path: str | Path) -> str:
    """The built-in adapter for ``path``: ``digits`` (make-digits folder), ``idx`` or ``folder``."""
    path = Path(path).expanduser()
    if path.is_dir():
        from zoo.data.digits import METADATA_FILE

        if (path / METADATA_FILE).is_file():
            return "digits"
        if any("idx3-ubyte" in p.name for p in path.iterdir() if p.is_file()):
            return "idx"
    elif "idx3-ubyte" in path.name:
        return "idx"
    elif path.suffix.lower() == ".csv":
        return "csvlist"
    return "folder"


def open_dataset(path: str | Path, adapter: str | None = "folder", **options: Any) -> ImageDataset:
    """Open ``path`` with a dataset adapter from the catalog (built-in or plugin).

    ``adapter=None`` (or ``"auto"``) picks one with ``detect_adapter``. Options go to the
    adapter's factory.
    """
    if adapter in (None, "auto"):
        adapter = detect_adapter(path)
    info = dataset_info(adapter)
    factory = import_object(info.factory, owner=f"{info.source} catalog, dataset '{info.name}'")
    dataset = factory(path, **options)
    if not isinstance(dataset, ImageDataset):
        raise ZooError(f"dataset adapter '{adapter}' returned {type(dataset).__name__}, not an ImageDataset")
    if len(dataset) == 0:
        raise ZooError(f"'{path}' holds no images")
    return dataset


def decode(
    dataset: ImageDataset,
    pre: Preprocess,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every sample: uint8 (N, C, H, W) of the readable ones, their indices, the skipped."""
    height, width = pre.input_size
    fast = getattr(dataset, "uint8_images", None)
    if fast is not None and pre.channels == 1:
        array = fast()  # (N, H, W) already decoded, as an IDX file is
        if array.shape[1:] == (height, width):
            return np.array(array[:, None], order="C"), np.arange(len(array), dtype=np.int64), []
    total = len(dataset)
    images = np.empty((total, pre.channels, height, width), dtype=np.uint8)
    kept = np.empty(total, dtype=np.int64)
    skipped: list[str] = []
    count = 0
    for i in range(total):
        try:
            pixels = pre.pixels(dataset.load(i))
        except (ZooError, MemoryError):
            raise
        except Exception as exc:  # a corrupt file raises whatever its decoder raises
            skipped.append(f"{dataset.describe(i)} ({_reason(exc, dataset.describe(i))})")
        else:
            images[count] = pixels.transpose(2, 0, 1)
            kept[count] = i
            count += 1
        if progress is not None and (i + 1) % 256 == 0:
            progress(i + 1, total)
    if progress is not None:
        progress(total, total)
    return images[:count], kept[:count], skipped


def to_tensors(
    dataset: ImageDataset,
    pre: Preprocess,
    *,
    cache: bool = True,
    classes: Sequence[str] | None = None,
    on_skip: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TensorSet:
    """Decode every sample once, at the model's size and channels, into one uint8 tensor.

    Args:
        dataset: any adapter's dataset.
        pre: the model's preprocessing (``Preprocess.from_card(card)``); only its size,
            channels and resize settings matter here, normalisation comes later.
        cache: read and write the decode cache (``<zoo cache>/data``); a second call on the
            same unchanged files reads no image file.
        classes: label the rows by this class list (a validation folder with the training
            set's classes); a class not in it is an error.
        on_skip: receives the one-line message naming unreadable samples (which are left
            out, labels kept aligned); default: a ``DataWarning``.
        progress: called as ``progress(done, total)`` while decoding.
    """
    import torch

    from zoo.data import cache as decode_cache

    entry = None
    key = decode_cache.cache_key(dataset, pre) if cache else ""
    if cache:
        entry = decode_cache.read(key)
    if entry is None:
        images, kept, skipped = decode(dataset, pre, progress=progress)
        labels = np.asarray(dataset.labels, dtype=np.int64)[kept]
        entry = decode_cache.CacheEntry(images, labels, kept, list(dataset.classes), skipped)
        if len(kept) and cache:
            decode_cache.write(key, entry)
    if entry.skipped:
        (on_skip or _warn)(_skip_message(entry.skipped, len(dataset)))
    if len(entry.indices) == 0:
        raise ZooError(f"none of the {len(dataset)} samples could be read; first: {entry.skipped[0]}")
    labels, names = entry.labels, list(entry.classes)
    if classes is not None:
        labels, names = _relabel(labels, names, list(classes))
    return TensorSet(torch.from_numpy(entry.images), torch.from_numpy(labels), names, entry.indices, entry.skipped)


def _relabel(labels: np.ndarray, names: list[str], target: list[str]) -> tuple[np.ndarray, list[str]]:
    unknown = [n for n in names if n not in target]
    if unknown:
        raise ZooError(f"classes {', '.join(unknown)} are not among the training classes ({', '.join(target)})")
    mapping = np.asarray([target.index(n) for n in names], dtype=np.int64)
    return mapping[labels], target


def _reason(exc: Exception, name: str) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(exc).replace(repr(name), "").replace(name, "").strip(" :'\"") or type(exc).__name__
    return text.splitlines()[0][:80]


def _skip_message(skipped: list[str], total: int) -> str:
    named = "; ".join(skipped[:MAX_NAMED])
    more = f"; and {len(skipped) - MAX_NAMED} more" if len(skipped) > MAX_NAMED else ""
    return f"skipped {len(skipped)} of {total} images that cannot be read: {named}{more}"


def split_each_label(
    labels: np.ndarray, fraction: float, *, randomize: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """splitEachLabel: indices of the first ``fraction`` of each label, and of the rest.

    ``fraction`` below 1 is a proportion (rounded half up per label: 1000 -> 750/250 at
    0.75); an ``int`` from 1 up is a count per label, as in MATLAB. ``randomize=False``
    keeps the dataset order; with ``randomize=True`` the split depends only on ``seed``.
    Both index arrays are sorted.
    """
    labels = np.asarray(labels)
    count = None
    if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool):
        count = int(fraction)
        if count < 1:
            raise ZooError(f"split fraction must be between 0 and 1 (or a count per label), not {fraction}")
    elif not 0.0 < fraction < 1.0:
        raise ZooError(f"split fraction must be between 0 and 1 (or a count per label), not {fraction}")
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
