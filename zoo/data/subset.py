"""``DatasetSubset``: some samples of a dataset, as a dataset (what ``split_each_label`` returns).

A view: it holds the parent and sorted indices, never pixels. A subset of a subset is a
subset of the first parent. Its fingerprint is the parent's and the indices, so the same
part of the same files (a run's validation part, reopened) hits the same decode-cache entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

from zoo.data.base import ImageDataset
from zoo.errors import ZooError

__all__ = ["DatasetSubset"]


class DatasetSubset(ImageDataset):
    """The samples of ``parent`` at ``indices`` (sorted, duplicates dropped); classes are the parent's.

    Attributes:
        parent: the full dataset (never itself a subset).
        indices: int64 indices into ``parent``, sorted.
    """

    def __init__(self, parent: ImageDataset, indices: Sequence[int] | np.ndarray) -> None:
        idx = np.unique(np.asarray(indices, dtype=np.int64).reshape(-1))
        if len(idx) and (idx[0] < 0 or idx[-1] >= len(parent)):
            raise ZooError(f"subset indices must lie in 0..{len(parent) - 1}, not {idx[0]}..{idx[-1]}")
        if isinstance(parent, DatasetSubset):  # one level of delegation, whatever the nesting
            idx, parent = parent.indices[idx], parent.parent
        self.parent = parent
        self.indices = idx
        self.classes = list(parent.classes)
        self.labels = np.asarray(parent.labels, dtype=np.int64)[idx]

    def load(self, index: int) -> Image.Image:
        return self.parent.load(int(self.indices[index]))

    def describe(self, index: int) -> str:
        return self.parent.describe(int(self.indices[index]))

    def fingerprint(self) -> str:
        """The parent's fingerprint and these indices."""
        h = hashlib.sha256(b"DatasetSubset\0")
        h.update(self.parent.fingerprint().encode())
        h.update(self.indices.astype("<i8").tobytes())
        return h.hexdigest()

    @property
    def location(self) -> str:
        return self.parent.location

    def __repr__(self) -> str:
        return f"DatasetSubset({len(self)} of {len(self.parent)} samples of {type(self.parent).__name__})"
