"""``training-progress.png``: MATLAB's training-progress plot, and ``history.csv``."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_history", "read_history", "plot_progress", "smooth"]


def _atomic(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = _atomic(path)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_history(path: str | Path, history: Sequence[dict[str, Any]], fields: Sequence[str]) -> Path:
    """One row per iteration; validation columns are empty where no validation ran."""
    path = Path(path)
    tmp = _atomic(path)
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
            writer.writeheader()
            for row in history:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_history(path: str | Path) -> list[dict[str, Any]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (None if v == "" else float(v)) for k, v in row.items()} for row in rows]


def smooth(values: Sequence[float], weight: float = 0.6) -> list[float]:
    """Exponential smoothing with bias correction (the dark curve of MATLAB's plot)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** i))
    return out


def plot_progress(path: str | Path, history: Sequence[dict[str, Any]], *, batches_per_epoch: int, title: str = "") -> Path:
    """Accuracy (%) and loss against iteration: raw and smoothed training curves, validation points."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads

    its = [r["iteration"] for r in history]
    val = [r for r in history if r.get("val_accuracy") is not None]
    fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    ax_acc, ax_loss = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    series = (
        (ax_acc, [100 * r["accuracy"] for r in history], [100 * r["val_accuracy"] for r in val], "Accuracy (%)", "#0072BD"),
        (ax_loss, [r["loss"] for r in history], [r["val_loss"] for r in val], "Loss", "#D95319"),
    )
    for ax, train, valid, label, color in series:
        ax.plot(its, train, color=color, alpha=0.25, linewidth=0.8, label="Training")
        ax.plot(its, smooth(train), color=color, linewidth=1.6, label="Training (smoothed)")
        if val:
            ax.plot([r["iteration"] for r in val], valid, "--o", color="black", markersize=3.5,
                    linewidth=1, markerfacecolor="black", label="Validation")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        last = its[-1] if its else 1
        for edge in range(batches_per_epoch, last, batches_per_epoch):
            ax.axvline(edge, color="0.6", linewidth=0.6, linestyle=":")
        ax.set_xlim(0, max(1, last))
    ax_acc.set_ylim(0, 100)
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_loss.set_ylim(bottom=0)
    ax_loss.set_xlabel("Iteration")
    if history and batches_per_epoch:
        top = ax_acc.secondary_xaxis("top", functions=(lambda x: x / batches_per_epoch, lambda e: e * batches_per_epoch))
        top.set_xlabel("Epoch")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
