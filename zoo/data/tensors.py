"""Decode a dataset once, at the model's size and channels, into one uint8 tensor.

``decode`` runs every sample through ``zoo.preprocess.to_pixels`` (the one preprocessing
that training, evaluation, prediction and export share); ``to_tensors`` adds the decode
cache, the skipped-files warning and relabelling by a training set's classes. Skipped: files
that cannot be decoded, and files over ``ZOO_MAX_IMAGE_PIXELS`` (``ImageTooLarge``), the warning
saying which and why.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import UnidentifiedImageError

from zoo import settings
from zoo.data import cache as decode_cache
from zoo.data.base import ImageDataset, warn_data
from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge, Preprocess

__all__ = ["TensorSet", "decode", "to_tensors"]

#: how many unreadable files one warning names before it only counts the rest
MAX_NAMED = 50


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
        import torch  # not at the top: `import zoo.data` stays torch-free for `zoo data make-digits`

        rows = np.asarray(indices, dtype=np.int64)
        idx = torch.as_tensor(rows)
        kept = None if self.indices is None else self.indices[rows]
        return TensorSet(self.images[idx], self.labels[idx], self.classes, kept, list(self.skipped))


def decode(
    dataset: ImageDataset,
    pre: Preprocess,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every sample: uint8 (N, C, H, W) of the readable ones, their indices, the skipped."""
    height, width = pre.input_size
    total = len(dataset)
    images = np.empty((total, pre.channels, height, width), dtype=np.uint8)
    kept = np.empty(total, dtype=np.int64)
    skipped: list[str] = []
    count = 0
    for i in range(total):
        try:
            pixels = pre.pixels(dataset.load(i))
        except ImageTooLarge as exc:  # over ZOO_MAX_IMAGE_PIXELS: skipped like a corrupt file, saying why
            skipped.append(f"{dataset.describe(i)} ({exc.reason})")
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
    import torch  # not at the top: `import zoo.data` stays torch-free for `zoo data make-digits`

    entry = None
    key = _cache_key(dataset, pre) if cache else ""
    if cache:
        entry = decode_cache.read(key)
    if entry is None:
        images, kept, skipped = decode(dataset, pre, progress=progress)
        labels = np.asarray(dataset.labels, dtype=np.int64)[kept]
        entry = decode_cache.CacheEntry(images, labels, kept, list(dataset.classes), skipped)
        if len(kept) and cache:
            decode_cache.write(key, entry)
    if entry.skipped:
        # the default warning names the line that called to_tensors
        (on_skip or functools.partial(warn_data, stacklevel=2))(_skip_message(entry.skipped, len(dataset)))
    if len(entry.indices) == 0:
        raise ZooError(f"none of the {len(dataset)} samples could be read; first: {entry.skipped[0]}")
    labels, names = entry.labels, list(entry.classes)
    if classes is not None:
        labels, names = _relabel(labels, names, list(classes))
    return TensorSet(torch.from_numpy(entry.images), torch.from_numpy(labels), names, entry.indices, entry.skipped)


def _cache_key(dataset: ImageDataset, pre: Preprocess) -> str:
    """The decode cache's key, with the pixel limit when it is not the default: an image skipped
    as too large under one limit is read under a higher one."""
    key = decode_cache.cache_key(dataset, pre)
    limit = settings.max_image_pixels()
    if limit == settings.DEFAULT_MAX_IMAGE_PIXELS:
        return key
    return hashlib.sha256(f"{key}\0max_image_pixels={limit}".encode()).hexdigest()[:32]


def _relabel(labels: np.ndarray, names: list[str], target: list[str]) -> tuple[np.ndarray, list[str]]:
    unknown = [n for n in names if n not in target]
    if unknown:
        raise ZooError(f"classes {', '.join(unknown)} are not among the training classes ({', '.join(target)})")
    mapping = np.asarray([target.index(n) for n in names], dtype=np.int64)
    return mapping[labels], target


def _reason(exc: Exception, name: str) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(exc).replace(repr(name), "").replace(name, "").strip(" :'\"") or type(exc).__name__
    return text.splitlines()[0][:80]


def _skip_message(skipped: list[str], total: int) -> str:
    named = "; ".join(skipped[:MAX_NAMED])
    more = f"; and {len(skipped) - MAX_NAMED} more" if len(skipped) > MAX_NAMED else ""
    too_large = sum("ZOO_MAX_IMAGE_PIXELS limit" in item for item in skipped)
    hint = (f" ({too_large} over the pixel limit: raise ZOO_MAX_IMAGE_PIXELS to read them, 0 lifts it)"
            if too_large else "")
    return f"skipped {len(skipped)} of {total} images that cannot be read{hint}: {named}{more}"
