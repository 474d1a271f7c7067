"""MATLAB's ``splitEachLabel``: per-label splits of a labelled set, by proportion or count."""

from __future__ import annotations

import numpy as np

from zoo.errors import ZooError

__all__ = ["split_each_label"]


def split_each_label(
    labels: np.ndarray, fraction: float, *, randomize: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """splitEachLabel: indices of the first ``fraction`` of each label, and of the rest.

    ``fraction`` below 1 is a proportion (rounded half up per label: 1000 -> 750/250 at
    0.75); an ``int`` from 1 up is a count per label, as in MATLAB. ``randomize=False``
    keeps the dataset order; with ``randomize=True`` the split depends only on ``seed``.
    Both index arrays are sorted.
    """
    labels = np.asarray(labels)
    count = None
    if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool) and fraction >= 1:
        count = int(fraction)
    elif not 0.0 < fraction < 1.0:
        raise ZooError(f"split fraction must be between 0 and 1 (or a count per label), not {fraction}")
    rng = np.random.default_rng(seed)
    first, rest = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if randomize:
            idx = rng.permutation(idx)
        if count is not None:
            if count > len(idx):
                raise ZooError(f"label {label} has {len(idx)} samples, fewer than the {count} asked for per label")
            cut = count
        else:
            cut = int(np.floor(len(idx) * fraction + 0.5))
        first.append(idx[:cut])
        rest.append(idx[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))
