"""Decode a dataset once, at the model's size and channels, into uint8 pixels in RAM or on disk.

``to_tensors`` runs every sample through ``zoo.preprocess.to_pixels`` (the one preprocessing
that training, evaluation, prediction and export share), ``CHUNK`` samples at a time: into RAM
(``cache="memory"``), or appended to the decode cache's file and memory-mapped from it
(``cache="disk"``), so RAM holds one chunk whatever the size of the set. It adds the
skipped-files warning and relabelling by a training set's classes. Skipped: files that cannot
be decoded, and files over ``ZOO_MAX_IMAGE_PIXELS`` (``ImageTooLarge``), the warning saying which
and why. A :class:`TensorSet` gives the training loop its batches by index (``batches``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import UnidentifiedImageError

from zoo import settings
from zoo.data import cache as decode_cache
from zoo.data.base import ImageDataset, warn_data
from zoo.errors import OutputError, ZooError
from zoo.preprocess import ImageTooLarge, Preprocess

__all__ = ["TensorSet", "decode_chunks", "to_tensors", "relabel", "skip_message", "skip_reason"]

#: how many unreadable files one warning names before it only counts the rest
MAX_NAMED = 50
#: samples decoded between two writes (about 38 MB of pixels at 224 x 224 RGB)
CHUNK = 256


@dataclass
class TensorSet:
    """A decoded dataset: uint8 images (N, C, H, W) at the model's size, int64 labels.

    ``images`` is a torch tensor in RAM (``cache="memory"``) or over the memory-mapped decode
    cache (``"disk"``): indexing a batch reads only its rows.
    """

    images: Any  # torch.Tensor uint8
    labels: Any  # torch.Tensor int64
    classes: list[str]
    #: dataset index of each row (rows of unreadable samples are left out)
    indices: np.ndarray | None = None
    #: "path (reason)" of the samples that could not be decoded
    skipped: list[str] = field(default_factory=list)
    #: where the pixels live: "memory" or "disk"
    mode: str = "memory"
    #: the decode cache's key of a "disk" set ("" in memory): what derived caches key on
    cache_key: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batches(self, index_batches: Sequence[Any], *, epoch: int = 0) -> Iterator[tuple[Any, Any]]:
        """(uint8 pixels, int64 labels) for each tensor of row indices, in order (``epoch`` is unused:
        decoded pixels do not change; streamed sources draw their crops by it)."""
        for index in index_batches:
            rows = index.to(self.labels.device) if hasattr(index, "to") else index
            yield self.images[index], self.labels[rows]


def decode_chunks(
    dataset: ImageDataset,
    pre: Preprocess,
    skipped: list[str],
    *,
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode every sample, ``chunk`` (default ``CHUNK``) at a time: (uint8 (n, C, H, W) rows, their
    dataset indices) of the readable ones; the unreadable are appended to ``skipped`` as "path (reason)".
    The rows array is reused: copy or write it before taking the next chunk."""
    chunk = chunk or CHUNK
    height, width = pre.input_size
    total = len(dataset)
    rows = np.empty((min(chunk, total), pre.channels, height, width), dtype=np.uint8)
    kept: list[int] = []
    for i in range(total):
        try:
            pixels = pre.pixels(dataset.load(i))
        except ImageTooLarge as exc:  # over ZOO_MAX_IMAGE_PIXELS: skipped like a corrupt file, saying why
            skipped.append(f"{dataset.describe(i)} ({exc.reason})")
        except (ZooError, MemoryError):
            raise
        except Exception as exc:  # a corrupt file raises whatever its decoder raises
            skipped.append(f"{dataset.describe(i)} ({skip_reason(exc, dataset.describe(i))})")
        else:
            rows[len(kept)] = pixels.transpose(2, 0, 1)
            kept.append(i)
        if len(kept) == len(rows):
            yield rows, np.asarray(kept, dtype=np.int64)
            kept = []
        if progress is not None and (i + 1) % chunk == 0:
            progress(i + 1, total)
    if kept:
        yield rows[:len(kept)], np.asarray(kept, dtype=np.int64)
    if progress is not None:
        progress(total, total)


def to_tensors(
    dataset: ImageDataset,
    pre: Preprocess,
    *,
    cache: bool | str = "disk",
    classes: Sequence[str] | None = None,
    on_skip: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TensorSet:
    """Decode every sample once, at the model's size and channels.

    Args:
        dataset: any adapter's dataset.
        pre: the model's preprocessing (``Preprocess.from_card(card)``); only its size,
            channels and resize settings matter here, normalisation comes later.
        cache: ``"disk"`` (or True): read the decode cache (``<zoo cache>/data``), or decode into
            it chunk by chunk, and memory-map the pixels from it; a second call on the same
            unchanged files reads no image file. ``"memory"`` (or False): decode into RAM,
            the cache untouched. A cache that cannot be written raises ``OutputError``.
        classes: label the rows by this class list (a validation folder with the training
            set's classes); a class not in it is an error.
        on_skip: receives the one-line message naming unreadable samples (which are left
            out, labels kept aligned); default: a ``DataWarning``.
        progress: called as ``progress(done, total)`` while decoding.
    """
    import torch  # not at the top: `import zoo.data` stays torch-free for `zoo data make-digits`

    mode = {True: "disk", False: "memory"}.get(cache, cache)  # type: ignore[arg-type]
    if mode not in ("disk", "memory"):
        raise ZooError(f"to_tensors decodes into 'disk' or 'memory', not {cache!r}")
    key = decode_cache.cache_key(dataset, pre) if mode == "disk" else ""
    entry = _decode_to_disk(dataset, pre, key, progress) if key else _decode_in_memory(dataset, pre, progress)
    if entry.skipped:
        # the default warning names the line that called to_tensors
        (on_skip or functools.partial(warn_data, stacklevel=2))(skip_message(entry.skipped, len(dataset)))
    if len(entry.indices) == 0:
        raise ZooError(f"none of the {len(dataset)} samples could be read; first: {entry.skipped[0]}")
    labels, names = entry.labels, list(entry.classes)
    if classes is not None:
        labels, names = relabel(labels, names, list(classes))
    return TensorSet(torch.from_numpy(entry.images), torch.from_numpy(labels), names, entry.indices, entry.skipped,
                     mode, key)


def _decode_in_memory(dataset: ImageDataset, pre: Preprocess, progress: Any) -> decode_cache.CacheEntry:
    height, width = pre.input_size
    images = np.empty((len(dataset), pre.channels, height, width), dtype=np.uint8)
    kept, skipped, count = [], [], 0
    for rows, indices in decode_chunks(dataset, pre, skipped, progress=progress):
        images[count:count + len(rows)] = rows
        count += len(rows)
        kept.append(indices)
    indices = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    labels = np.asarray(dataset.labels, dtype=np.int64)[indices]
    return decode_cache.CacheEntry(images[:count], labels, indices, list(dataset.classes), skipped)


def _decode_to_disk(dataset: ImageDataset, pre: Preprocess, key: str, progress: Any) -> decode_cache.CacheEntry:
    """The cached entry, decoding into the cache first when it has none (one chunk in RAM at a time)."""
    entry = decode_cache.read(key)
    if entry is not None:
        return entry
    _check_room(decode_cache.entry_bytes(len(dataset), pre))
    kept: list[np.ndarray] = []
    skipped: list[str] = []
    with decode_cache.writing(key) as fh:
        for rows, indices in decode_chunks(dataset, pre, skipped, progress=progress):
            fh.write(np.ascontiguousarray(rows).data)
            kept.append(indices)
    indices = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    labels = np.asarray(dataset.labels, dtype=np.int64)[indices]
    height, width = pre.input_size
    shape = (len(indices), pre.channels, height, width)
    if not len(indices):  # nothing readable: no entry (the caller names the files)
        return decode_cache.CacheEntry(np.empty(shape, np.uint8), labels, indices, list(dataset.classes), skipped)
    decode_cache.write_meta(key, shape, labels, indices, list(dataset.classes), skipped)
    entry = decode_cache.read(key)
    if entry is None:
        raise OutputError(f"the decode cache entry just written to {decode_cache.cache_folder()} cannot be read back; "
                          f"use --cache memory or none, or set ZOO_CACHE to another folder")
    return entry


def _check_room(needed: int) -> None:
    """Refuse before decoding when the cache's disk lacks room for the decoded set."""
    folder = decode_cache.cache_folder()
    free = settings.free_bytes(folder)
    if needed > free:
        raise OutputError(f"the decoded data set needs {needed / 2**30:.2f} GiB in the decode cache, but only "
                          f"{free / 2**30:.2f} GiB are free at {folder}; free space there, set ZOO_CACHE to "
                          f"another disk, or use --cache none (decode from the files each epoch)")


def relabel(labels: np.ndarray, names: list[str], target: list[str]) -> tuple[np.ndarray, list[str]]:
    """``labels`` (indices into ``names``) as indices into ``target``; a class not in it is an error."""
    unknown = [n for n in names if n not in target]
    if unknown:
        raise ZooError(f"classes {', '.join(unknown)} are not among the training classes ({', '.join(target)})")
    mapping = np.asarray([target.index(n) for n in names], dtype=np.int64)
    return mapping[labels], target


def skip_reason(exc: Exception, name: str) -> str:
    """Why a sample could not be decoded, in a few words without its name."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(exc).replace(repr(name), "").replace(name, "").strip(" :'\"") or type(exc).__name__
    return text.splitlines()[0][:80]


def skip_message(skipped: list[str], total: int) -> str:
    """The one line naming unreadable samples: the first ``MAX_NAMED``, then a count."""
    named = "; ".join(skipped[:MAX_NAMED])
    more = f"; and {len(skipped) - MAX_NAMED} more" if len(skipped) > MAX_NAMED else ""
    too_large = sum("ZOO_MAX_IMAGE_PIXELS limit" in item for item in skipped)
    hint = (f" ({too_large} over the pixel limit: raise ZOO_MAX_IMAGE_PIXELS to read them, 0 lifts it)"
            if too_large else "")
    return f"skipped {len(skipped)} of {total} images that cannot be read{hint}: {named}{more}"
