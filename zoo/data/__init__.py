"""Datasets: adapters, decoding to one uint8 tensor, per-label splits.

``open_dataset(path, adapter)`` builds an adapter from the catalog (built-in or plugin);
``to_tensors(dataset, pre)`` decodes it once, at the model's size and channels, into one
uint8 tensor (cached on disk for the next run); ``split_each_label`` is MATLAB's
``splitEachLabel``, giving two ``DatasetSubset`` views of a dataset. Samples that cannot be
decoded are skipped, named in one warning.

This module only re-exports: ``base`` (the adapter contract, ``DataWarning``),
``adapters`` (choosing and opening an adapter), ``tensors`` (decoding), ``subset`` (views),
``split`` (splitEachLabel and the split record a checkpoint keeps).
"""

from __future__ import annotations

from zoo.data.adapters import detect_adapter, open_dataset
from zoo.data.base import DataWarning, ImageDataset
from zoo.data.split import reopen_split, split_each_label, split_record
from zoo.data.subset import DatasetSubset
from zoo.data.tensors import TensorSet, decode, to_tensors

__all__ = [
    "ImageDataset",
    "DatasetSubset",
    "TensorSet",
    "DataWarning",
    "open_dataset",
    "detect_adapter",
    "to_tensors",
    "decode",
    "split_each_label",
    "split_record",
    "reopen_split",
]
