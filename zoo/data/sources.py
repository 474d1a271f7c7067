"""Where a data set's batches come from: pixels decoded once (disk or RAM), or streamed from the files.

``open_source(dataset, pre, cache=...)`` picks by ``--cache``:

* ``disk``: decoded once into zoo's decode cache, chunk by chunk, and memory-mapped from it. RAM
  holds a batch; the file's pages are the kernel's to keep or evict, so the set may exceed RAM.
* ``memory``: decoded into RAM (the cache untouched): small sets, or a cache that cannot be written.
* ``none``: decoded from the source files every epoch in ``DataLoader`` worker processes
  (:class:`zoo.data.stream.StreamSource`); nothing is stored.
* ``auto`` (the default): ``disk`` when the cache already holds the set, or when its decoded size
  fits the cache budget (:func:`zoo.settings.cache_budget`: ``ZOO_CACHE_BUDGET``, default 50 GiB,
  at most half the free space) and the cache can be written; otherwise ``none``, saying why once.

A training part with random-resized crops (``--augment crop``) is streamed whatever the mode: its
crops are drawn from the full-resolution files, which no cache of model-sized pixels holds.
Every source gives ``batches(index_batches, epoch=)`` of (uint8 pixels, int64 labels), ``labels``,
``classes``, ``indices``, ``skipped`` and ``mode``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.data import cache as decode_cache
from zoo.data.base import ImageDataset, warn_data
from zoo.data.tensors import to_tensors
from zoo.errors import OutputError, ZooError
from zoo.preprocess import Preprocess

__all__ = ["CACHE_MODES", "open_source", "choose_mode"]

CACHE_MODES = ("auto", "memory", "disk", "none")


def choose_mode(dataset: ImageDataset, pre: Preprocess, cache: str) -> tuple[str, str]:
    """(the mode ``cache`` means for this data set, why ``auto`` did not cache it or "")."""
    if cache not in CACHE_MODES:
        raise ZooError(f"--cache must be one of {', '.join(CACHE_MODES)}, not {cache!r}")
    if cache != "auto":
        return cache, ""
    budget = settings.cache_budget()  # first: a bad ZOO_CACHE_BUDGET is an error even when the set is cached
    if decode_cache.has(decode_cache.cache_key(dataset, pre)):
        return "disk", ""
    folder = decode_cache.cache_folder()
    if not _writable(folder):
        return "none", f"the decode cache cannot be written ({folder} is read-only or not yours)"
    needed = decode_cache.entry_bytes(len(dataset), pre)
    if needed > budget:
        return "none", (f"the decoded set ({_size(needed)}) is over the decode cache's budget ({_size(budget)}: "
                        f"ZOO_CACHE_BUDGET, at most half the free space)")
    return "disk", ""


def open_source(
    dataset: ImageDataset,
    pre: Preprocess,
    *,
    cache: str = "auto",
    classes: Sequence[str] | None = None,
    crop: tuple[float, float] | None = None,
    flip: bool = False,
    seed: int = 0,
    workers: int | None = None,
    pin_memory: bool = False,
    on_skip: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """The batches of ``dataset`` at ``pre``'s size: a :class:`~zoo.data.tensors.TensorSet` (``disk``,
    ``memory``) or a :class:`~zoo.data.stream.StreamSource` (``none``, or any mode with ``crop``).

    ``classes`` relabels by a training set's classes; ``crop``, ``flip``, ``seed``, ``workers`` and
    ``pin_memory`` go to the stream (a flip without a crop is the training loop's, on batches). When ``auto`` streams, or cannot write the cache, a
    ``DataWarning`` says why, once.
    """
    on_skip = on_skip or functools.partial(warn_data, stacklevel=2)
    mode, why = choose_mode(dataset, pre, cache)
    if crop is None and mode in ("disk", "memory"):
        try:
            return to_tensors(dataset, pre, cache=mode, classes=classes, on_skip=on_skip, progress=progress)
        except OutputError as exc:
            if cache != "auto":
                raise
            why = f"the decode cache cannot be written ({exc})"
    if why:
        warn_data(f"{why}: decoding from the image files every epoch (--cache none); "
                  f"set ZOO_CACHE_BUDGET or ZOO_CACHE, or pass --cache disk or memory, to decode once", stacklevel=2)
    from zoo.data.stream import StreamSource  # torch: only when streaming

    return StreamSource(dataset, pre, crop=crop, seed=seed, workers=workers, pin_memory=pin_memory, classes=classes,
                        flip=flip)


def _writable(folder: Path) -> bool:
    """Whether ``folder``, or the nearest folder above it that exists, takes new files."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK) and not _read_only_mount(folder)


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
