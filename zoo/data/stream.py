"""Sets too large for memory: decode per sample in DataLoader workers instead of ``to_tensors``.

``fits_in_memory(dataset, pre)`` says which way to go; ``StreamingSet`` is a torch
``Dataset`` giving ``(uint8 C x H x W tensor, label)``; ``skip_unreadable`` is the
``collate_fn`` that drops samples that could not be decoded (they come back as None).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from zoo.data.base import ImageDataset
from zoo.errors import ZooError
from zoo.preprocess import Preprocess

__all__ = ["fits_in_memory", "StreamingSet", "skip_unreadable"]


def fits_in_memory(dataset: ImageDataset, pre: Preprocess, limit_bytes: int = 4 << 30) -> bool:
    """True when the decoded uint8 set stays under ``limit_bytes`` (default 4 GiB)."""
    height, width = pre.input_size
    return len(dataset) * pre.channels * height * width <= limit_bytes


class StreamingSet:
    """A torch map-style dataset over ``dataset`` at the model's size; unreadable samples are None."""

    def __init__(self, dataset: ImageDataset, pre: Preprocess) -> None:
        self.dataset = dataset
        self.pre = pre
        self.labels = np.asarray(dataset.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            pixels = self.pre.pixels(self.dataset.load(int(index)))
        except (ZooError, MemoryError):
            raise
        except Exception:  # noqa: BLE001 - a corrupt file: dropped by skip_unreadable
            return None
        return torch.from_numpy(np.array(pixels.transpose(2, 0, 1), order="C")), int(self.labels[index])


def skip_unreadable(batch: list[Any]) -> Any:
    """``collate_fn`` for ``StreamingSet``: stacks the readable samples, drops the rest."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    images, labels = zip(*kept)
    return torch.stack(images), torch.as_tensor(labels, dtype=torch.int64)
