"""Decode once: decoded uint8 datasets kept under ``<zoo cache>/data`` and memory-mapped from there.

One entry is two files named by a key: ``<key>.pixels`` (the images, raw uint8 rows N x C x H x W,
written chunk by chunk as they are decoded, so RAM never holds the whole set) and ``<key>.json``
(shape, labels, classes, kept indices, skipped files). A reader maps the pixels file: its pages
are file-backed, the kernel's to evict, so a set larger than RAM trains from it.
The key hashes the dataset's fingerprint (for file adapters: every path with its size and
modification time) and the pixel-shaping part of the preprocessing (size, channels,
interpolation, resize mode, crop); mean and std act after the cache, so models that differ
only in normalisation share an entry. Both files are written to temporary names and
renamed, the JSON last, so a reader never sees half an entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from zoo import settings
from zoo.atomic import atomic_path, clean_stale, write_file
from zoo.data.base import ImageDataset
from zoo.errors import write_error
from zoo.preprocess import Preprocess

__all__ = ["CacheEntry", "cache_key", "cache_folder", "has", "read", "writing", "write_meta", "entry_bytes", "clear"]

#: 3: raw pixels written in chunks and memory-mapped (2 was one .npy written whole)
FORMAT = 3


@dataclass
class CacheEntry:
    images: np.ndarray  # uint8 (N, C, H, W): memory-mapped from the cache, or in RAM
    labels: np.ndarray  # int64 (N,)
    indices: np.ndarray  # int64 (N,), the dataset indices kept
    classes: list[str]
    skipped: list[str]  # "path (reason)" of samples that could not be decoded


def cache_folder(kind: str = "data") -> Path:
    """``<zoo cache>/data`` (decoded pixels) or ``<zoo cache>/features`` (a frozen backbone's outputs)."""
    return settings.cache_dir() / kind


def entry_bytes(count: int, pre: Preprocess) -> int:
    """Bytes the decoded pixels of ``count`` samples take at ``pre``'s size and channels."""
    height, width = pre.input_size
    return count * pre.channels * height * width


def cache_key(dataset: ImageDataset, pre: Preprocess) -> str:
    """Hash of what decides the decoded pixels: the samples and the pixel-shaping config."""
    shaping = {
        "format": FORMAT,
        "adapter": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
        "input_size": list(pre.input_size),
        "channels": pre.channels,
        "interpolation": pre.interpolation,
        "resize_mode": pre.resize_mode,
        "crop_pct": pre.crop_pct if pre.resize_mode == "center-crop" else None,
        "crop_mode": pre.crop_mode if pre.resize_mode == "center-crop" else None,
    }
    h = hashlib.sha256(dataset.fingerprint().encode())
    h.update(np.asarray(dataset.labels, dtype=np.int64).tobytes())
    h.update("\0".join(dataset.classes).encode("utf-8", "surrogateescape"))
    h.update(json.dumps(shaping, sort_keys=True).encode())
    h.update(_reader_code(type(dataset)))
    limit = settings.max_image_pixels()
    if limit != settings.DEFAULT_MAX_IMAGE_PIXELS:  # an image skipped as too large under one limit is read under another
        h.update(f"\0max_image_pixels={limit}".encode())
    return h.hexdigest()[:32]


def _reader_code(adapter: type) -> bytes:
    """The compiled code of the adapter's methods from outside zoo: a user's reader (MATLAB's
    ReadFcn, a subclass overriding ``load``) edited under the same class name decodes anew."""
    h = hashlib.sha256()
    for klass in adapter.__mro__:
        if klass.__module__.split(".")[0] in ("zoo", "builtins", "typing", "abc"):
            continue
        for name, value in sorted(vars(klass).items()):
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is not None:
                h.update(name.encode())
                h.update(_code_bytes(code))
    return h.digest()


def _code_bytes(code: Any) -> bytes:
    """A code object's bytecode, names and constants, nested functions included."""
    nested = b"".join(_code_bytes(c) for c in code.co_consts if hasattr(c, "co_code"))
    plain = repr([sorted(map(repr, c)) if isinstance(c, frozenset) else c  # set order varies per process
                  for c in code.co_consts if not hasattr(c, "co_code")])
    return code.co_code + repr(code.co_names).encode() + plain.encode() + nested


def has(key: str, kind: str = "data") -> bool:
    """Whether an entry is stored under ``key`` (without reading it: :func:`read` checks it)."""
    folder = cache_folder(kind)
    return (folder / f"{key}.json").is_file() and (folder / f"{key}.pixels").is_file()


def read(key: str, kind: str = "data") -> CacheEntry | None:
    """The cached entry, its pixels memory-mapped; None when it is missing or unreadable (then the
    caller decodes)."""
    folder = cache_folder(kind)
    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        shape = tuple(int(v) for v in meta["shape"])
        dtype = np.dtype(meta.get("dtype", "uint8"))
        pixels = folder / f"{key}.pixels"
        if meta.get("format") != FORMAT or len(shape) < 2 or pixels.stat().st_size != math.prod(shape) * dtype.itemsize:
            return None
        labels = np.asarray(meta["labels"], dtype=np.int64)
        indices = np.asarray(meta["indices"], dtype=np.int64)
        if len(labels) != shape[0] or len(indices) != shape[0] or shape[0] == 0:
            return None
        # copy-on-write: reads come from the file's pages; torch may wrap it without a warning
        images = np.memmap(pixels, dtype=dtype, mode="c", shape=shape)
        return CacheEntry(images, labels, indices, list(meta["classes"]), list(meta.get("skipped", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def writing(key: str, kind: str = "data") -> Iterator[IO[bytes]]:
    """A binary file to append the entry's rows to, renamed into place when the block ends
    well (then call :func:`write_meta`). Raises ``OutputError`` when the cache cannot be written."""
    folder = cache_folder(kind)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc, elsewhere="ZOO_CACHE") from None
    clean_stale(folder)  # what runs killed while decoding left behind
    with atomic_path(folder / f"{key}.pixels") as tmp, open(tmp, "wb") as fh:
        yield fh


def write_meta(key: str, shape: tuple[int, ...], labels: np.ndarray, indices: np.ndarray, classes: list[str],
               skipped: list[str], *, kind: str = "data", dtype: str = "uint8") -> None:
    """Complete the entry whose pixels :func:`writing` stored (the JSON last: a reader needs both)."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "dtype": dtype,
        "shape": [int(v) for v in shape],
        "classes": list(classes),
        "labels": np.asarray(labels).tolist(),
        "indices": np.asarray(indices).tolist(),
        "skipped": list(skipped),
    }
    write_file(cache_folder(kind) / f"{key}.json", json.dumps(meta, separators=(",", ":")))


def clear() -> int:
    """Delete every cached dataset and feature set; returns the number of files removed."""
    removed = 0
    for kind in ("data", "features"):
        folder = cache_folder(kind)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.suffix in (".pixels", ".npy", ".json") or ".tmp" in path.name:
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed
