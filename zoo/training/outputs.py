"""A run folder's outputs: a new run replaces an earlier one whole, never half.

A run writes ``model.safetensors``, ``history.csv`` and ``training-progress.png``;
``zoo evaluate`` adds ``confusion-matrix.png`` beside the checkpoint. Training into a folder
that holds an earlier run warns first, and once the new run has saved, removes the earlier
run's outputs that it did not rewrite, so no stale picture sits beside the new model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from zoo.errors import ZooWarning

__all__ = ["RUN_OUTPUTS", "warn_if_replacing", "remove_stale"]

RUN_OUTPUTS = ("model.safetensors", "history.csv", "training-progress.png", "confusion-matrix.png")


class RunReplacedWarning(ZooWarning):
    """Training writes into a folder that holds an earlier run."""


def warn_if_replacing(out: Path) -> None:
    """Warn when ``out`` holds an earlier run's model (its outputs are replaced at the end)."""
    import warnings

    earlier = out / "model.safetensors"
    if earlier.is_file():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier.stat().st_mtime))
        warnings.warn(f"'{out}' holds a run from {when}; this run replaces it when it finishes "
                      f"(give another output folder to keep it)", RunReplacedWarning, stacklevel=4)


def remove_stale(out: Path, written: Iterable[Path]) -> list[Path]:
    """Remove the earlier run's outputs in ``out`` that this run did not write."""
    keep = {Path(p).name for p in written}
    removed = []
    for name in RUN_OUTPUTS:
        path = out / name
        if name not in keep and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
