"""``folder`` adapter: DIR/<label>/**/*.<image>, labels from folder names (imageDatastore).

MATLAB's ``imageDatastore(path, 'IncludeSubfolders', true, 'LabelSource', 'foldernames')``.
The walk follows symbolic links but visits each real folder once, so a link loop ends the
walk instead of the program; hidden files and folders (``.DS_Store``, ``._x.jpg``) are
ignored. Files are only listed here: a corrupt file is found when it is decoded, and
``zoo.data.to_tensors`` skips it with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.base import ImageDataset, warn_data
from zoo.errors import ZooError
from zoo.preprocess import IMAGE_SUFFIXES, open_image

__all__ = ["FolderDataset", "list_images"]


def list_images(folder: Path, on_loop: Callable[[Path], None] | None = None) -> list[Path]:
    """Image files under ``folder``, recursively, sorted; each real folder is visited once."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            info = current.stat()
        except OSError:  # dangling link, or a loop the OS refuses to resolve
            if on_loop:
                on_loop(current)
            continue
        if (info.st_dev, info.st_ino) in seen:
            if on_loop:
                on_loop(current)
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    pending.append(Path(entry.path))
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


class FolderDataset(ImageDataset):
    """Every image under ``root/<label>/``, recursively; labels are the folder names, sorted.

    A class folder without images is left out with a warning (as imageDatastore has no
    label for it); a folder with no usable class folder is a ``ZooError``.
    """

    def __init__(self, root: str | Path, *, warn: Callable[[str], None] | None = None) -> None:
        warn = warn or functools.partial(warn_data, stacklevel=3)  # names the line calling open_dataset
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise ZooError(f"data folder '{root}' does not exist")
        if not self.root.is_dir():
            raise ZooError(f"'{root}' is a file, not a folder: give a folder with one subfolder per label")
        try:
            children = sorted(self.root.iterdir())
        except OSError as exc:
            raise ZooError(f"cannot read data folder '{root}': {exc.strerror or exc}") from None
        class_dirs = [p for p in children if not p.name.startswith(".") and _is_dir(p)]
        if not class_dirs:
            loose = sum(1 for p in children if p.suffix.lower() in IMAGE_SUFFIXES)
            hint = f" (it holds {loose} images directly: move them into {root}/<label>/)" if loose else ""
            raise ZooError(f"'{root}' has no class folders{hint}: put images in {root}/<label>/*.png")
        loops: list[str] = []
        empty: list[str] = []
        self.classes: list[str] = []
        self.paths: list[Path] = []
        labels: list[int] = []
        for folder in class_dirs:
            files = list_images(folder, on_loop=lambda p: loops.append(str(p)))
            if not files:
                empty.append(folder.name)
                continue
            labels.extend([len(self.classes)] * len(files))
            self.classes.append(folder.name)
            self.paths.extend(files)
        if loops:
            warn(f"skipped {len(loops)} folder link(s) that loop or dangle: {', '.join(loops)}")
        if not self.classes:
            raise ZooError(f"no class folder in '{root}' holds images ({', '.join(IMAGE_SUFFIXES)})")
        if empty:
            warn(f"left out {len(empty)} class folder(s) without images: {', '.join(empty)}")
        self.labels = np.asarray(labels, dtype=np.int64)

    def load(self, index: int) -> Image.Image:
        return open_image(self.paths[index])

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def fingerprint(self) -> str:
        """Paths, sizes and modification times of every file, and the class names."""
        h = hashlib.sha256(type(self).__name__.encode())
        for path in self.paths:
            try:
                info = path.stat()
                stamp = f"{info.st_size}:{info.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(f"{path}\0{stamp}\0".encode("utf-8", "surrogateescape"))
        h.update("\0".join(self.classes).encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False
