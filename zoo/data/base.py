"""What every part of ``zoo.data`` shares: the adapter contract and the data warning.

``ImageDataset`` is the contract every dataset adapter (built-in or plugin) fulfils;
``DataWarning`` is the warning for samples zoo worked around, issued by ``warn_data``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from abc import ABC, abstractmethod
from collections import Counter

import numpy as np
from PIL import Image

from zoo.errors import ZooWarning

__all__ = ["ImageDataset", "DataWarning", "warn_data"]


class DataWarning(ZooWarning):
    """A problem with some samples that zoo worked around (files skipped, folders left out)."""


def warn_data(message: str, stacklevel: int = 2) -> None:
    """Issue ``message`` as a ``DataWarning``; ``stacklevel`` counts from the caller, as in ``warnings.warn``.

    Adapters take a ``warn`` callback; their default is ``functools.partial(warn_data,
    stacklevel=N)`` with N chosen so the warning names the line in the user's code.
    """
    warnings.warn(message, DataWarning, stacklevel=stacklevel + 1)


class ImageDataset(ABC):
    """A labelled set of images: class names, one integer label per sample, decoding on demand.

    Adapters are built by their catalog factory as ``factory(path, **options)``.
    """

    #: class names, index i names label i
    classes: list[str]
    #: one label index per sample
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label_names(self) -> np.ndarray:
        """Each sample's class name (numpy str array): MATLAB's ``imds.Labels``."""
        return np.asarray(self.classes, dtype=str)[np.asarray(self.labels, dtype=np.int64)]

    @abstractmethod
    def load(self, index: int) -> Image.Image:
        """Decode sample ``index`` (raises ``OSError`` when the sample is unreadable)."""

    @abstractmethod
    def describe(self, index: int) -> str:
        """A human name for sample ``index`` (its path), for warnings."""

    def fingerprint(self) -> str:
        """Identity of the samples for the decode cache; adapters of files include sizes and mtimes."""
        h = hashlib.sha256()
        for i in range(len(self)):
            name = self.describe(i)
            try:  # a sample named by its file: its size and mtime too, so an edit invalidates the cache
                info = os.stat(name)
                name = f"{name}\0{info.st_size}:{info.st_mtime_ns}"
            except (OSError, ValueError):
                pass
            h.update(name.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        h.update(",".join(self.classes).encode())
        return h.hexdigest()

    @property
    def location(self) -> str:
        """Where the samples come from: the adapter's ``root`` or ``path`` (absolute), else its type's name."""
        for attr in ("root", "path"):
            value = getattr(self, attr, None)
            if isinstance(value, (str, os.PathLike)):
                return os.path.abspath(os.fspath(value))
        return type(self).__name__

    def counts(self) -> dict[str, int]:
        """Samples per class name, in class order."""
        counted = Counter(int(i) for i in self.labels)
        return {name: counted.get(i, 0) for i, name in enumerate(self.classes)}
