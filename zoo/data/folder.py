"""``folder`` adapter: DIR/<label>/**/*.<image>, labels from folder names (imageDatastore)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.base import ImageDataset
from zoo.errors import ZooError
from zoo.runtime.preprocess import open_image

__all__ = ["FolderDataset", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class FolderDataset(ImageDataset):
    """Every image under ``root/<label>/``, recursively; labels sorted by name."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ZooError(f"data folder '{root}' does not exist or is not a folder")
        class_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise ZooError(f"'{root}' has no class folders: put images in {root}/<label>/*.png")
        self.classes = [d.name for d in class_dirs]
        self.paths: list[Path] = []
        labels: list[int] = []
        for index, folder in enumerate(class_dirs):
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise ZooError(f"class folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self.paths.extend(files)
            labels.extend([index] * len(files))
        self.labels = np.asarray(labels, dtype=np.int64)

    def load(self, index: int) -> Image.Image:
        return open_image(self.paths[index])

    def describe(self, index: int) -> str:
        return str(self.paths[index])
