"""Decode once: decoded uint8 datasets kept under ``<zoo cache>/data`` for the next run.

One entry is two files named by a key: ``<key>.npy`` (the images, uint8 N x C x H x W,
memory-mapped on load) and ``<key>.json`` (labels, classes, kept indices, skipped files).
The key hashes the dataset's fingerprint (for file adapters: every path with its size and
modification time) and the pixel-shaping part of the preprocessing (size, channels,
interpolation, resize mode, crop); mean and std act after the cache, so models that differ
only in normalisation share an entry. Both files are written to temporary names and
renamed, the JSON last, so a reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo import settings
from zoo.atomic import atomic_path
from zoo.data.base import ImageDataset
from zoo.errors import OutputError
from zoo.preprocess import Preprocess

__all__ = ["CacheEntry", "cache_key", "cache_folder", "read", "write", "clear"]

#: 2: IDX sets decode through zoo.preprocess.to_pixels too (1 skipped it at the model's size)
FORMAT = 2


@dataclass
class CacheEntry:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    indices: np.ndarray  # int64 (N,), the dataset indices kept
    classes: list[str]
    skipped: list[str]  # "path (reason)" of samples that could not be decoded


def cache_folder() -> Path:
    return settings.cache_dir() / "data"


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
    return h.hexdigest()[:32]


def read(key: str) -> CacheEntry | None:
    """The cached entry, or None when it is missing or unreadable (then the caller decodes)."""
    folder = cache_folder()
    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        images = np.load(folder / f"{key}.npy", mmap_mode="c", allow_pickle=False)
        labels = np.asarray(meta["labels"], dtype=np.int64)
        indices = np.asarray(meta["indices"], dtype=np.int64)
        if meta.get("format") != FORMAT or list(images.shape) != meta["shape"] or images.dtype != np.uint8:
            return None
        if len(labels) != images.shape[0] or len(indices) != images.shape[0]:
            return None
        return CacheEntry(images, labels, indices, list(meta["classes"]), list(meta.get("skipped", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(key: str, entry: CacheEntry) -> Path | None:
    """Store ``entry``; returns the image file, or None when the cache folder is not writable."""
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / f"{key}.npy", lambda fh: np.save(fh, np.ascontiguousarray(entry.images)))
        meta: dict[str, Any] = {
            "format": FORMAT,
            "shape": list(entry.images.shape),
            "classes": entry.classes,
            "labels": entry.labels.tolist(),
            "indices": entry.indices.tolist(),
            "skipped": entry.skipped,
        }
        text = json.dumps(meta, separators=(",", ":")).encode()
        _write_atomic(folder / f"{key}.json", lambda fh: fh.write(text))
    except (OSError, OutputError):  # a read-only or full cache costs speed, not the run
        return None
    return folder / f"{key}.npy"


def clear() -> int:
    """Delete every cached dataset; returns the number of files removed."""
    removed = 0
    folder = cache_folder()
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix in (".npy", ".json") or ".tmp" in path.name:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def _write_atomic(path: Path, write_to: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write_to(fh)
