"""Choosing and building a dataset adapter: ``detect_adapter`` and ``open_dataset``.

Adapters are declared in catalogs like models (``registry.toml``, plugins); ``open_dataset``
imports the one named through ``zoo.registry.import_object``, which refuses any reference
that no installed catalog declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo import settings
from zoo.data.base import ImageDataset
from zoo.data.digits.adapter import METADATA_FILE
from zoo.data.shard_io import looks_like_shards
from zoo.errors import ZooError
from zoo.registry import dataset_info, import_object

__all__ = ["detect_adapter", "open_dataset"]


def detect_adapter(path: str | Path) -> str:
    """The adapter for ``path``: ``digits`` (make-digits folder), ``idx``, ``webdataset`` (a folder with
    ``shards.json`` or ``.tar`` files, a ``.tar`` path, a brace pattern or a URL), ``csvlist`` (a .csv)
    or ``folder``."""
    if looks_like_shards(path) and not (Path(path).expanduser() / METADATA_FILE).is_file():
        return "webdataset"
    path = Path(path).expanduser()
    if path.is_dir():
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
    settings.max_image_pixels()  # a bad ZOO_MAX_IMAGE_PIXELS: one error here, not one per image read
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
