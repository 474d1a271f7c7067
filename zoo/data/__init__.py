"""Datasets: adapters, decoding to one uint8 tensor, per-label splits.

``open_dataset(path, adapter)`` builds an adapter from the catalog (built-in or plugin);
``to_tensors(dataset, pre)`` decodes it once, at the model's size and channels, into one
uint8 tensor (cached on disk for the next run); ``split_each_label`` is MATLAB's
``splitEachLabel``. Samples that cannot be decoded are skipped, named in one warning.

This module only re-exports: ``base`` (the adapter contract, ``DataWarning``),
``adapters`` (choosing and opening an adapter), ``tensors`` (decoding), ``split``.
"""

from __future__ import annotations

from zoo.data.adapters import detect_adapter, open_dataset
from zoo.data.base import DataWarning, ImageDataset
from zoo.data.split import split_each_label
from zoo.data.tensors import TensorSet, decode, to_tensors

__all__ = [
    "ImageDataset",
    "TensorSet",
    "DataWarning",
    "open_dataset",
    "detect_adapter",
    "to_tensors",
    "decode",
    "split_each_label",
]
