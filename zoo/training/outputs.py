"""A run folder's outputs: a new run replaces an earlier one whole, never half, and a failed
write never loses the trained model.

A run writes ``model.safetensors``, ``history.csv`` and ``training-progress.png``;
``zoo evaluate`` adds ``confusion-matrix.png`` beside the checkpoint. Training into a folder
that holds an earlier run warns first, and once the new run has saved, removes the earlier
run's outputs that it did not rewrite, so no stale picture sits beside the new model.
When the model cannot be written to the run folder (disk full, read-only), it is saved in
zoo's cache or the temporary folder instead, and the error names where.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.atomic import LOCK_FILE, clean_stale, folder_lock
from zoo.checkpoint import save
from zoo.errors import OutputError, ZooWarning

__all__ = ["RUN_OUTPUTS", "run_folder", "warn_if_replacing", "remove_stale", "save_model", "model_kept"]

RUN_OUTPUTS = ("model.safetensors", "history.csv", "training-progress.png", "confusion-matrix.png")


@contextlib.contextmanager
def run_folder(out: Path) -> Iterator[Path]:
    """Hold ``out`` for one run: created when missing, locked so a second run there fails at once
    (:class:`zoo.errors.BusyError`), and cleared of the temporaries killed runs left behind.
    A folder this run created and leaves empty (it failed before writing) is removed again."""
    created = not out.exists()
    try:
        with folder_lock(out):
            clean_stale(out)
            yield out
    finally:
        if created:
            _remove_if_empty(out)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        if {p.name for p in folder.iterdir()} <= {LOCK_FILE}:
            (folder / LOCK_FILE).unlink(missing_ok=True)
            folder.rmdir()


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


def save_model(out: Path, net: Any, card: Any) -> Path:
    """Save the trained model as ``out/model.safetensors``; when that write fails, save it where
    there is room and raise the write's :class:`OutputError` naming that place."""
    try:
        return save(out / "model.safetensors", net, card)
    except OutputError as exc:
        raise OutputError(f"{exc}; {_keep_elsewhere(net, card)}") from None


@contextlib.contextmanager
def model_kept(model: Path) -> Iterator[None]:
    """Writes after the model's: a failure says the model itself is saved."""
    try:
        yield
    except OutputError as exc:
        raise OutputError(f"{exc} (the trained model is saved: {model})") from None


def _keep_elsewhere(net: Any, card: Any) -> str:
    name = f"{card.name.replace('/', '-').replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    tried = []
    for folder in (settings.cache_dir() / "rescued", Path(tempfile.gettempdir()) / "zoo-rescued"):
        target = folder / f"{name}.safetensors"
        try:
            save(target, net, card)
        except (OutputError, OSError):
            tried.append(str(folder))
            continue
        return f"the trained model is kept in {target} instead: move it where you want it"
    return f"it could not be kept elsewhere either (tried {', '.join(tried)}): the trained weights are lost"
