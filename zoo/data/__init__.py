"""Datasets: adapters, decoding to one uint8 tensor, per-label splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.base import ImageDataset
from zoo.errors import ZooError
from zoo.registry import dataset_info, import_object
from zoo.runtime.preprocess import Preprocess

__all__ = ["ImageDataset", "TensorSet", "open_dataset", "to_tensors", "split_each_label"]


@dataclass
class TensorSet:
    """A decoded dataset: uint8 images (N, C, H, W) at the model's size, int64 labels."""

    images: Any  # torch.Tensor uint8
    labels: Any  # torch.Tensor int64
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> TensorSet:
        import torch

        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return TensorSet(self.images[idx], self.labels[idx], self.classes)


def open_dataset(path: str | Path, adapter: str = "folder", **options: Any) -> ImageDataset:
    """Open ``path`` with a dataset adapter from the catalog (built-in or plugin)."""
    info = dataset_info(adapter)
    factory = import_object(info.factory, owner=f"{info.source} catalog, dataset '{info.name}'")
    dataset = factory(path, **options)
    if not isinstance(dataset, ImageDataset):
        raise ZooError(f"dataset adapter '{adapter}' returned {type(dataset).__name__}, not an ImageDataset")
    if len(dataset) == 0:
        raise ZooError(f"'{path}' holds no images")
    return dataset


def to_tensors(dataset: ImageDataset, pre: Preprocess) -> TensorSet:
    """Decode every sample once, at the model's size and channels, into one uint8 tensor."""
    import torch

    height, width = pre.input_size
    images = np.empty((len(dataset), height, width, pre.channels), dtype=np.uint8)
    for i in range(len(dataset)):
        images[i] = pre.pixels(dataset.load(i))
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return TensorSet(tensor, torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64)), list(dataset.classes))


def split_each_label(
    labels: np.ndarray, fraction: float, *, randomize: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """splitEachLabel: indices of the first ``fraction`` of each label, and of the rest."""
    if not 0.0 < fraction < 1.0:
        raise ZooError(f"split fraction must be between 0 and 1, not {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    first, rest = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if randomize:
            idx = rng.permutation(idx)
        cut = int(round(len(idx) * fraction))
        first.append(idx[:cut])
        rest.append(idx[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))
