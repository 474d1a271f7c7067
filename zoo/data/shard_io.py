"""Finding and reading WebDataset tar shards: local files or any URL ``webdataset`` opens.

* :func:`looks_like_shards` — what ``detect_adapter`` asks: a folder with ``shards.json``, or with
  ``*.tar`` files and no subfolders; a ``.tar`` path; a brace pattern (``data-{000000..000009}.tar``) or a URL.
* :func:`resolve` — the class names and the :class:`Shard` list of a source, from its
  ``shards.json`` (beside the shards, or given) or, for local tars without one, by scanning them.
* :func:`member_table` and :func:`read_member` — random access into a local shard.
* :func:`stream_payloads` — a shard read once from start to end (the training path), one image's
  bytes per listed key, or why it could not be read.
* :func:`buffer_shuffle` — the seeded shuffle within a bounded buffer, as webdataset shuffles.

Torch-free: ``webdataset`` (which imports torch) is imported only to expand patterns and open URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlparse

import numpy as np

from zoo.data.shard_writer import MANIFEST, read_manifest
from zoo.errors import ZooError, first_line
from zoo.preprocess import IMAGE_SUFFIXES

__all__ = ["Shard", "looks_like_shards", "is_url", "expand", "resolve", "member_table", "read_member",
           "stream_payloads", "buffer_shuffle", "split_key", "derived_seed", "why", "MAX_MANIFEST_BYTES"]

MAX_MANIFEST_BYTES = 1 << 30
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters or more: C:\ is a drive, not a URL
_BRACES = re.compile(r"\{[^{}]*(?:\.\.|,)[^{}]*\}")
_TAR_NAME = re.compile(r"([^/\\\s?#]+\.tar)(?!.*\.tar)")
_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext: the key ends at the first dot

T = TypeVar("T")


@dataclass
class Shard:
    """One tar: where it is, and the keys and labels of its samples in tar order."""

    location: str
    keys: list[str]
    labels: np.ndarray
    remote: bool

    @property
    def count(self) -> int:
        return len(self.keys)


def is_url(text: str) -> bool:
    """A URL webdataset opens (``http:``, ``pipe:``, ``s3:`` ...); ``file:`` URLs are local paths."""
    found = _SCHEME.match(text)
    return bool(found) and found[1].lower() != "file"


def looks_like_shards(path: str | os.PathLike) -> bool:
    """Whether ``path`` names WebDataset shards (see the module's docstring)."""
    text = os.fspath(path)
    if is_url(text):
        return True
    local = Path(text).expanduser()
    if local.is_dir():
        if (local / MANIFEST).is_file():
            return True
        with contextlib.suppress(OSError), os.scandir(local) as entries:
            visible = [e for e in entries if not e.name.startswith(".")]
            # tars beside class folders are archives in an image folder, not shards
            return not any(e.is_dir() for e in visible) and any(
                e.name.lower().endswith(".tar") and e.is_file() for e in visible)
        return False
    return text.lower().endswith(".tar") or "::" in text or bool(_BRACES.search(text))


def expand(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The shard locations of ``source``: brace patterns and ``::`` lists expanded, as webdataset does."""
    items = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) else [os.fspath(s) for s in source]
    found: list[str] = []
    for item in items:
        if "::" in item or _BRACES.search(item) and not Path(item).exists():
            from webdataset.shardlists import expand_urls  # imports torch: only for patterns

            found.extend(expand_urls(item))
        else:
            found.append(item)
    return found


def _local(text: str) -> Path:
    return Path(unquote(urlparse(text).path)) if text.lower().startswith("file:") else Path(text).expanduser()


def resolve(source: Any, manifest: str | None = None,
            warn: Callable[[str], None] | None = None) -> tuple[list[str], list[Shard], str]:
    """(classes, shards, where the counts came from) for a shard folder, tar paths or URLs."""
    items = expand(source)
    if not items:
        raise ZooError(f"'{source}' names no shards")
    if len(items) == 1 and not is_url(items[0]) and _local(items[0]).is_dir():
        folder = _local(items[0])
        if manifest is None and not (folder / MANIFEST).is_file():
            tars = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".tar" and p.is_file())
            if not tars:
                raise ZooError(f"'{folder}' holds neither {MANIFEST} nor .tar shards: write shards with "
                               f"'zoo data shard DIR {folder}'")
            return _scan_all([str(p) for p in tars], warn)
        where = manifest or str(folder / MANIFEST)
        listed = _read(where)
        return listed["classes"], _shards(listed, [str(folder / s["name"]) for s in listed["shards"]], where), where
    remote = any(is_url(item) for item in items)
    locations = [item if is_url(item) else str(_local(item)) for item in items]
    for location, item in zip(locations, items):
        if not is_url(item) and not Path(location).is_file():
            raise ZooError(f"shard '{location}' does not exist")
    if manifest is None:
        manifest = _beside(locations[0], remote)
        if not remote and not Path(manifest).is_file():
            return _scan_all(locations, warn)
    listed = _read(manifest, required_for_urls=remote and manifest == _beside(locations[0], remote))
    return listed["classes"], _shards(listed, locations, manifest), manifest


def _beside(location: str, remote: bool) -> str:
    """Where ``shards.json`` lies beside the shard ``location``: its tar name replaced."""
    if not remote:
        return str(Path(location).parent / MANIFEST)
    found = _TAR_NAME.search(location)
    if not found:
        raise ZooError(f"cannot tell the shard's file name in '{location}': shard URLs must name a .tar file")
    return location[: found.start()] + MANIFEST + location[found.end():]


def _read(where: str, *, required_for_urls: bool = False) -> dict[str, Any]:
    """The checked ``shards.json`` at the path or URL ``where``."""
    try:
        if is_url(where):
            from webdataset import gopen  # imports torch: only for URLs

            with contextlib.closing(gopen(where, "rb")) as stream:
                data = stream.read(MAX_MANIFEST_BYTES + 1)
        else:
            with open(_local(where), "rb") as stream:
                data = stream.read(MAX_MANIFEST_BYTES + 1)
        if not data:
            raise OSError("it is empty")
    except Exception as exc:  # noqa: BLE001 - a URL fails in its scheme's own ways
        if required_for_urls:
            raise ZooError(f"shards at URLs need their {MANIFEST} beside them ('{where}' cannot be read: "
                           f"{why(exc)}); 'zoo data shard' writes it: keep it with the shards") from None
        raise ZooError(f"cannot read '{where}': {why(exc)}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ZooError(f"'{where}' is larger than {MAX_MANIFEST_BYTES >> 20} MiB: not a shards.json")
    return read_manifest(data, where)


def _shards(manifest: dict[str, Any], locations: list[str], where: str) -> list[Shard]:
    """The manifest's entries for ``locations``, matched by file name."""
    entries = {entry["name"]: entry for entry in manifest["shards"]}
    shards = []
    for location in locations:
        found = _TAR_NAME.search(location)
        entry = entries.get(found[1] if found else "")
        if entry is None:
            raise ZooError(f"'{location}' is not among the shards listed in '{where}'")
        remote = is_url(location)
        if not remote and not Path(location).is_file():
            raise ZooError(f"shard '{location}' listed in '{where}' is missing: copy it back or write the shards again")
        shards.append(Shard(location, list(entry["keys"]), np.asarray(entry["labels"], dtype=np.int64), remote))
    return shards


def _scan_all(paths: list[str], warn: Callable[[str], None] | None) -> tuple[list[str], list[Shard], str]:
    """Local tars without ``shards.json``: keys and labels (``KEY.cls``) read from every tar, once."""
    shards, left_out = [], 0
    for path in paths:
        keys, labels, _, missing = scan_tar(path, with_labels=True)
        left_out += missing
        shards.append(Shard(path, keys, np.asarray(labels, dtype=np.int64), False))
    if left_out and warn:
        warn(f"left out {left_out} sample(s) without an image or a whole-number .cls label in {len(paths)} shard(s)")
    top = max((int(s.labels.max()) for s in shards if s.count), default=-1)
    if top < 0:
        raise ZooError(f"no labelled image (KEY.jpg with KEY.cls) in the {len(paths)} shard(s) at '{paths[0]}'")
    return [str(i) for i in range(top + 1)], shards, f"scanned {len(paths)} tar file(s)"


def split_key(name: str) -> tuple[str | None, str]:
    """(key, extension) of a tar member name, as webdataset splits it; (None, '') for no extension."""
    found = _KEY.match(name)
    return (found[1], found[2].lower()) if found else (None, "")


def _is_image(ext: str) -> bool:
    return f".{ext}" in IMAGE_SUFFIXES


def scan_tar(path: str, *, with_labels: bool) -> tuple[list[str], list[int], dict[str, tuple[int, int]], int]:
    """(keys, labels, {key: (data offset, size) of its image}, samples left out) of a local tar."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int | None] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, ext = split_key(member.name)
                if not member.isreg() or key is None:
                    continue
                if key not in images and key not in labels:
                    order.append(key)
                if _is_image(ext):
                    images[key] = (member.offset_data, member.size)
                elif ext == "cls" and with_labels:
                    text = tar.extractfile(member).read(32).decode("ascii", "replace").strip()
                    labels[key] = int(text) if text.isdigit() else None
    except (OSError, tarfile.TarError) as exc:
        raise ZooError(f"cannot read shard '{path}': {first_line(exc, 120)}") from None
    if not with_labels:
        return order, [], images, 0
    kept = [k for k in order if k in images and labels.get(k) is not None]
    return kept, [int(labels[k]) for k in kept], images, len(order) - len(kept)


def member_table(shard: Shard) -> list[tuple[int, int] | None]:
    """(offset, size) of each listed sample's image in the local ``shard`` (None: not in the tar)."""
    _, _, images, _ = scan_tar(shard.location, with_labels=False)
    return [images.get(key) for key in shard.keys]


def read_member(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise OSError(f"the shard ends {size - len(data)} bytes short of this image")
    return data


def _open(shard: Shard) -> IO[bytes]:
    if shard.remote:
        from webdataset import gopen

        return gopen(shard.location, "rb")
    return open(shard.location, "rb")


def _tar_images(stream: IO[bytes]) -> Iterator[tuple[str, bytes | None]]:
    """(key, image bytes or None) of each sample of a tar read from start to end."""
    from webdataset.tariterators import tar_file_iterator

    current: str | None = None
    image: bytes | None = None
    for member in tar_file_iterator(stream):
        key, ext = split_key(member["fname"])
        if key is None:
            continue
        if key != current:
            if current is not None:
                yield current, image
            current, image = key, None
        if _is_image(ext):
            image = member["data"]
    if current is not None:
        yield current, image


def stream_payloads(shard: Shard) -> Iterator[bytes | str]:
    """For each of ``shard``'s listed keys in order: its image bytes, or why it cannot be read (text).

    Samples in the tar that are not listed are passed over; a tar that breaks off, or holds a
    listed sample out of order, gives the reason for every listed sample not yet read.
    """
    keys, listed = shard.keys, set(shard.keys)
    done, reason = 0, "not in the shard"
    try:
        with contextlib.closing(_open(shard)) as stream:
            for key, image in _tar_images(stream):
                if done == len(keys):
                    break
                if key != keys[done]:
                    if key in listed:
                        raise OSError(f"the tar holds '{key}' where shards.json lists '{keys[done]}'")
                    continue
                yield image if image is not None else "no image for this key in the shard"
                done += 1
    except Exception as exc:  # noqa: BLE001 - a broken download or tar: its samples are skipped, not fatal
        reason = f"shard unreadable: {why(exc)}"
    for _ in range(done, len(keys)):
        yield reason


def why(exc: BaseException) -> str:
    """A failed read in a few words: webdataset's pipe errors name the command's exit status only."""
    found = re.search(r"exit (-?\d+) \((?:read|write)\)", str(exc))
    return f"the command exited with status {found[1]}" if found else first_line(exc, 120)


def derived_seed(*parts: Any) -> int:
    """A 64-bit seed from ``parts``, the same on every machine and Python."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def buffer_shuffle(items: Iterable[T], size: int, seed: int) -> Iterator[T]:
    """``items`` shuffled within a buffer of ``size``: each incoming item replaces a random one,
    which comes out. The draws depend only on the number of items, so a list of keys and a
    stream of images with those keys come out in the same order."""
    rng = random.Random(seed)
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer
