"""Datasets: adapters, decoding to one uint8 tensor, per-label splits.

``open_dataset(path, adapter)`` builds an adapter from the catalog (built-in or plugin);
``to_tensors(dataset, pre)`` decodes it once, at the model's size and channels, into uint8
pixels memory-mapped from the decode cache (or held in RAM); ``open_source`` chooses between
that and decoding from the files in worker processes (``--cache``); ``split_each_label`` is MATLAB's
``splitEachLabel``, giving two ``DatasetSubset`` views of a dataset. Samples that cannot be
decoded are skipped, named in one warning.

This module only re-exports: ``base`` (the adapter contract, ``DataWarning``),
``adapters`` (choosing and opening an adapter), ``tensors`` (decoding), ``sources`` (where
training batches come from), ``subset`` (views),
``split`` (splitEachLabel and the split record a checkpoint keeps).
"""

from __future__ import annotations

from zoo.data.adapters import detect_adapter, open_dataset
from zoo.data.base import DataWarning, ImageDataset
from zoo.data.split import reopen_split, split_each_label, split_record
from zoo.data.subset import DatasetSubset
from zoo.data.sources import CACHE_MODES, open_source
from zoo.data.tensors import TensorSet, to_tensors

__all__ = [
    "ImageDataset",
    "DatasetSubset",
    "TensorSet",
    "DataWarning",
    "open_dataset",
    "detect_adapter",
    "to_tensors",
    "open_source",
    "CACHE_MODES",
    "split_each_label",
    "split_record",
    "reopen_split",
]
