"""``csvlist`` dataset adapter: a CSV of ``path,label`` rows, paths relative to the CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.base import ImageDataset
from zoo.errors import ZooError
from zoo.preprocess import open_image


class CsvListDataset(ImageDataset):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ZooError(f"CSV list '{path}' does not exist")
        rows = []
        with open(self.path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or row[0].startswith("#") or (lineno == 1 and row[:2] == ["path", "label"]):
                    continue
                if len(row) < 2:
                    raise ZooError(f"{self.path}:{lineno}: expected 'path,label', got {row!r}")
                rows.append((self.path.parent / row[0].strip(), row[1].strip()))
        if not rows:
            raise ZooError(f"CSV list '{path}' has no rows")
        self.classes = sorted({label for _, label in rows})
        index = {name: i for i, name in enumerate(self.classes)}
        self.paths = [p for p, _ in rows]
        self.labels = np.asarray([index[label] for _, label in rows], dtype=np.int64)

    def load(self, index: int) -> Image.Image:
        return open_image(self.paths[index])

    def describe(self, index: int) -> str:
        return str(self.paths[index])
