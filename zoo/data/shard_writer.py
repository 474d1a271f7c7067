"""Writing WebDataset tar shards, and the ``shards.json`` that describes them.

``write_shards(dataset, out, shard_size)`` writes ``OUT/shard-000000.tar``, ... with each sample
as ``KEY.<ext>`` (the image file's own bytes, never re-encoded) and ``KEY.cls`` (the label index
as text), the layout timm and OpenCLIP train from; plus ``OUT/shards.json``: the format version,
the class names and, per shard, its file name, sample count, keys and labels, so a reader knows
counts and labels without opening a tar. ``read_manifest`` checks such a file.

Samples are shuffled (seeded) before they are dealt into shards: a shard then holds a mix of
classes, as a training stream read shard by shard needs. Every file is decoded once to check it;
unreadable ones are left out, named in one warning.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.atomic import atomic_dir, fsync, new_temp, publish
from zoo.data.base import ImageDataset, warn_data
from zoo.data.tensors import skip_reason, skip_message
from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge, open_image

__all__ = ["write_shards", "read_manifest", "MANIFEST", "FORMAT", "VERSION", "shard_name"]

MANIFEST = "shards.json"
FORMAT = "zoo-shards"
VERSION = 1
_NAME = re.compile(r"^[^/\\\x00]+\.tar$")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def write_shards(
    dataset: ImageDataset,
    out: str | os.PathLike,
    shard_size: int,
    *,
    overwrite: bool = False,
    shuffle: bool = True,
    seed: int = 0,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Write ``dataset`` as tar shards of ``shard_size`` samples into the folder ``out``; returns ``out``.

    ``out`` appears whole or not at all (written to a temporary sibling, then renamed); an
    existing non-empty ``out`` is replaced only when it holds an earlier ``shards.json`` and
    ``overwrite`` is given. ``shuffle``: deal the samples into shards in a seeded random order
    (``seed``), else in the dataset's order. ``warn`` receives the unreadable-files line.
    """
    warn = warn or functools.partial(warn_data, stacklevel=3)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ZooError(f"--shard-size must be a whole number from 1 up, not {shard_size!r}")
    out = Path(out).expanduser()
    _check_target(out, overwrite)
    order = np.arange(len(dataset))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(dataset))
    with atomic_dir(out) as temp:
        shards, skipped = _write_all(dataset, order, temp, shard_size)
        if skipped:
            warn(skip_message(skipped, len(dataset)))
        if not shards:
            raise ZooError(f"none of the {len(dataset)} images could be read; first: {skipped[0]}")
        manifest = {"format": FORMAT, "version": VERSION, "classes": list(dataset.classes),
                    "samples": sum(s["count"] for s in shards), "shards": shards}
        (temp / MANIFEST).write_text(json.dumps(manifest, separators=(",", ":")) + "\n", encoding="utf-8")
        fsync(temp / MANIFEST)
        _replace(temp, out)
    return out


def _write_all(dataset: ImageDataset, order: np.ndarray, folder: Path, shard_size: int) -> tuple[list[dict], list[str]]:
    """Every readable sample into ``folder``'s shards: (their manifest entries, the skipped)."""
    shards: list[dict[str, Any]] = []
    skipped: list[str] = []
    written = 0
    tar, entry = None, None
    try:
        for index in order:
            sample = _sample_bytes(dataset, int(index), skipped)
            if sample is None:
                continue
            if tar is None:
                entry = {"name": shard_name(len(shards)), "count": 0, "keys": [], "labels": []}
                tar = tarfile.open(folder / entry["name"], "w", format=tarfile.PAX_FORMAT)
            key, label = f"{written:09d}", int(dataset.labels[index])
            _add(tar, f"{key}.{sample[1]}", sample[0])
            _add(tar, f"{key}.cls", str(label).encode())
            entry["keys"].append(key)
            entry["labels"].append(label)
            entry["count"] += 1
            written += 1
            if entry["count"] == shard_size:
                shards.append(_close(tar, folder, entry))
                tar = None
        if tar is not None:
            shards.append(_close(tar, folder, entry))
            tar = None
    finally:
        if tar is not None:
            tar.close()
    return shards, skipped


def _sample_bytes(dataset: ImageDataset, index: int, skipped: list[str]) -> tuple[bytes, str] | None:
    """(bytes, extension) of sample ``index``, checked by decoding them; None (and named in
    ``skipped``) when unreadable. A file-backed adapter (``paths``) gives its files' bytes; any
    other adapter's images are stored as PNG (lossless)."""
    name = dataset.describe(index)
    paths = getattr(dataset, "paths", None)
    try:
        if paths is not None:
            path = Path(paths[index])
            data, ext = path.read_bytes(), path.suffix.lower().lstrip(".")
            probe = io.BytesIO(data)
            probe.name = name
            open_image(probe)
        else:
            buffer = io.BytesIO()
            dataset.load(index).save(buffer, format="PNG")
            data, ext = buffer.getvalue(), "png"
    except ImageTooLarge as exc:
        skipped.append(f"{name} ({exc.reason})")
        return None
    except (ZooError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises whatever its decoder raises
        skipped.append(f"{name} ({skip_reason(exc, name)})")
        return None
    return data, ext


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0  # the same samples give the same bytes
    tar.addfile(info, io.BytesIO(data))


def _close(tar: tarfile.TarFile, folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    tar.close()
    fsync(folder / entry["name"])  # a shard is costly to make again: on disk before the rename
    return entry


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ZooError(f"'{out}' is a file: give a folder to write the shards into")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise ZooError(f"'{out}' is not empty and holds no {MANIFEST}: choose a new or empty folder")
        if not overwrite:
            raise ZooError(f"'{out}' already holds shards: pass --overwrite to replace them, or choose another folder")
    if not out.parent.is_dir():
        raise ZooError(f"the parent folder of '{out}' does not exist")


def _replace(temp: Path, out: Path) -> None:
    """Publish ``temp`` as ``out``; an earlier ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = new_temp(out, folder=True)
        os.replace(out, old)
    publish(temp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(text: str | bytes, where: str) -> dict[str, Any]:
    """The checked contents of a ``shards.json`` read from ``where``; a ``ZooError`` says what is wrong."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise _bad(where, f"not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(where, f"no \"format\": \"{FORMAT}\"")
    if manifest.get("version") != VERSION:
        raise _bad(where, f"version {manifest.get('version')!r}, this zoo reads version {VERSION}")
    classes = manifest.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _bad(where, "\"classes\" must be a list of class names")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        raise _bad(where, "\"shards\" must be a list of shards")
    for number, shard in enumerate(shards):
        problem = _shard_problem(shard, len(classes))
        if problem:
            raise _bad(where, f"shard {number}: {problem}")
    return manifest


def _shard_problem(shard: Any, classes: int) -> str | None:
    if not isinstance(shard, dict):
        return "not an object"
    name, count, keys, labels = (shard.get(k) for k in ("name", "count", "keys", "labels"))
    if not isinstance(name, str) or not _NAME.match(name) or name in (".tar", "..tar"):
        return f"\"name\" must be a file name ending in .tar, not {name!r}"
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return f"\"count\" must be a whole number, not {count!r}"
    if not isinstance(keys, list) or len(keys) != count or not all(isinstance(k, str) and k for k in keys):
        return f"\"keys\" must be {count} keys"
    if not isinstance(labels, list) or len(labels) != count:
        return f"\"labels\" must be {count} labels"
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < classes for v in labels):
        return f"\"labels\" must be class indices from 0 to {classes - 1}"
    return None


def _bad(where: str, problem: str) -> ZooError:
    return ZooError(f"'{where}' is not a shards.json zoo can read: {problem}; write the shards again "
                    f"with 'zoo data shard DIR OUT'")
