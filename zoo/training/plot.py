"""``training-progress.png``: MATLAB's training-progress plot, and ``history.csv``."""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.atomic import atomic_path

__all__ = ["write_history", "read_history", "plot_progress", "progress_figure", "save_figure", "smooth"]

ACC_COLOR, LOSS_COLOR = "#0072BD", "#D95319"
VAL_LINE_MIN = 4  # fewer validation points are drawn as markers only: two points are no trend


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG durably and atomically, with the user's default file permissions;
    a failed write is one :class:`~zoo.errors.OutputError` naming ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_history(path: str | Path, history: Sequence[dict[str, Any]], fields: Sequence[str]) -> Path:
    """One row per iteration; validation columns are empty where no validation ran."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
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


def plot_progress(path: str | Path, history: Sequence[dict[str, Any]], *, batches_per_epoch: int, title: str = "",
                  summary: dict[str, Any] | None = None) -> Path:
    """Write the training-progress PNG (see :func:`progress_figure`) to ``path``."""
    return save_figure(progress_figure(history, batches_per_epoch=batches_per_epoch, title=title, summary=summary),
                       path)


def progress_figure(history: Sequence[dict[str, Any]], *, batches_per_epoch: int, title: str = "",
                    summary: dict[str, Any] | None = None) -> Any:
    """Accuracy (%) and loss against iteration, with a results panel on the right; a matplotlib ``Figure``.

    ``history``: rows with ``HISTORY_FIELDS`` (accuracies as fractions, validation values None
    where none ran). ``summary`` fills the results panel; every key is optional and a missing
    one is not shown (the history supplies validation results, epochs, iterations and time):

    - ``val_accuracy``, ``val_loss``: final validation results (accuracy a fraction 0..1)
    - ``status``: why training ended ("Max epochs completed", "Stopped by user", ...)
    - ``start_time`` (text), ``elapsed_s`` (seconds)
    - ``epochs``, ``max_epochs``, ``iterations``, ``max_iterations``, ``iterations_per_epoch``
    - ``val_every``: validation frequency in iterations
    - ``learning_rate``, ``head_learning_rate`` (shown when it differs), ``lr_schedule``
    - ``hardware``: e.g. "NVIDIA H200 (cuda:0)"

    The axes are labelled ``accuracy``, ``loss``, ``epoch`` and ``panel`` (``Axes.get_label()``).
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads
    from matplotlib.ticker import MaxNLocator, MultipleLocator

    rows = [r for r in history if r.get("iteration") is not None]
    its = [int(r["iteration"]) for r in rows]
    val = [r for r in rows if r.get("val_accuracy") is not None]
    fig = Figure(figsize=(12.5, 7), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(3.3, 1), height_ratios=(3, 2))
    ax_acc = fig.add_subplot(grid[0, 0], label="accuracy")
    ax_loss = fig.add_subplot(grid[1, 0], sharex=ax_acc, label="loss")
    panel = fig.add_subplot(grid[:, 1], label="panel")

    first, last = (its[0], its[-1]) if its else (1, 1)
    margin = max(0.5, 0.03 * (last - first))
    n = len(rows)
    few = n <= 3
    weight = min(0.95, max(0.6, 1 - 20 / max(1, n)))  # longer runs smooth over more iterations
    raw_style = {"alpha": 0.6 if few else (0.35 if n <= 200 else 0.2), "linewidth": 1.0 if n <= 200 else 0.5,
                 "marker": "o" if few else None, "markersize": 4}
    val_marker = 5 if len(val) <= 30 else 3.5
    series = (
        (ax_acc, [100 * r["accuracy"] for r in rows], [100 * r["val_accuracy"] for r in val], "Accuracy (%)",
         ACC_COLOR),
        (ax_loss, [r["loss"] for r in rows], [r["val_loss"] for r in val], "Loss", LOSS_COLOR),
    )
    epochs_drawn = bool(batches_per_epoch) and batches_per_epoch < last <= 40 * batches_per_epoch
    for ax, train, valid, label, color in series:
        ax.plot(its, train, color=color, label="Training", **raw_style)
        ax.plot(its, smooth(train, weight), color=color, linewidth=1.8, label="Training (smoothed)")
        if val:
            v_its = [int(r["iteration"]) for r in val]
            joined = len(val) >= VAL_LINE_MIN
            ax.plot(v_its, valid, color="black", linestyle="--" if joined else "none", linewidth=1, marker="o",
                    markersize=val_marker, label="Validation", zorder=4)
            ax.plot(v_its[-1:], valid[-1:], color="black", linestyle="none", marker="o", markersize=8,
                    markerfacecolor="white", markeredgewidth=1.6, label="Final validation", zorder=5)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if epochs_drawn:
            for edge in range(batches_per_epoch, last, batches_per_epoch):
                ax.axvline(edge, color="0.55", linewidth=0.7, linestyle=":", zorder=1)
    ax_acc.set_xlim(max(0.0, first - margin), last + margin)
    ax_acc.xaxis.set_major_locator(_integer_ticks(MaxNLocator))
    ax_acc.set_ylim(-2, 102)  # 0 % and 100 % lines stay visible
    ax_acc.yaxis.set_major_locator(MultipleLocator(20))
    ax_acc.tick_params(labelbottom=False)
    losses = [v for v in [r["loss"] for r in rows] + [r["val_loss"] for r in val]
              if v is not None and math.isfinite(v)]
    top = 1.08 * max(losses) if losses and max(losses) > 0 else 1.0
    ax_loss.set_ylim(-0.02 * top, top)  # a loss near 0 does not lie on the frame
    ax_loss.set_xlabel("Iteration")
    if batches_per_epoch:
        epoch_ax = ax_acc.secondary_xaxis("top", functions=(lambda x: x / batches_per_epoch,
                                                            lambda e: e * batches_per_epoch))
        epoch_ax.set_label("epoch")
        epoch_ax.xaxis.set_major_locator(_integer_ticks(MaxNLocator))
        epoch_ax.set_xlabel("Epoch")
    _panel(panel, _facts(rows, val, batches_per_epoch, summary or {}))
    handles = _legend_handles(few, len(val), epochs_drawn)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=9, frameon=False)
    if title:
        fig.suptitle(textwrap.shorten(title, 110, placeholder="..."), fontsize=13)
    return fig


def _facts(rows: list[dict[str, Any]], val: list[dict[str, Any]], per_epoch: int,
           summary: dict[str, Any]) -> dict[str, Any]:
    """What the history knows, overridden by ``summary``."""
    known: dict[str, Any] = {}
    if rows:
        known.update(epochs=int(rows[-1]["epoch"]), iterations=int(rows[-1]["iteration"]))
        if rows[-1].get("seconds") is not None:
            known["elapsed_s"] = rows[-1]["seconds"]
    if val:
        known.update(val_accuracy=val[-1]["val_accuracy"], val_loss=val[-1]["val_loss"])
    if per_epoch:
        known["iterations_per_epoch"] = per_epoch
    return known | {k: v for k, v in summary.items() if v is not None}


def _panel(ax: Any, facts: dict[str, Any]) -> None:
    """MATLAB's results panel: sections of ``label: value`` lines."""
    ax.axis("off")
    sections = (
        ("Results", [("Validation accuracy", _percent(facts.get("val_accuracy"))),
                     ("Validation loss", _number(facts.get("val_loss"))),
                     ("Training finished", _capital(facts.get("status")))]),
        ("Training time", [("Start time", facts.get("start_time")),
                           ("Elapsed time", _duration(facts.get("elapsed_s")))]),
        ("Training cycle", [("Epoch", _of(facts.get("epochs"), facts.get("max_epochs"))),
                            ("Iteration", _of(facts.get("iterations"), facts.get("max_iterations"))),
                            ("Iterations per epoch", facts.get("iterations_per_epoch")),
                            ("Validation frequency", _every(facts.get("val_every")))]),
        ("Other information", [("Hardware", facts.get("hardware")),
                               ("Learning rate", _number(facts.get("learning_rate"))),
                               ("Head learning rate", _head_lr(facts)),
                               ("Learning-rate schedule", facts.get("lr_schedule"))]),
    )
    y = 0.0
    for heading, lines in sections:
        shown = [(k, str(v)) for k, v in lines if v not in (None, "")]
        if not shown:
            continue
        ax.annotate(heading, (0, 1), xycoords="axes fraction", xytext=(0, -y), textcoords="offset points",
                    fontsize=10.5, fontweight="bold", va="top")
        y += 17
        for key, value in shown:
            text = textwrap.fill(f"{key}: {value}", 34, subsequent_indent="    ")
            ax.annotate(text, (0, 1), xycoords="axes fraction", xytext=(6, -y), textcoords="offset points",
                        fontsize=9, va="top", linespacing=1.3)
            y += 14 * (text.count("\n") + 1)
        y += 9


def _integer_ticks(locator: Any) -> Any:
    """Whole numbers only, even when the view holds a single one (1 iteration, 1 epoch)."""
    return locator(integer=True, steps=[1, 2, 2.5, 5, 10], min_n_ticks=1)


def _legend_handles(few: bool, validation: int, epochs: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    marker = {"marker": "o", "markersize": 4} if few else {}
    handles = [Line2D([], [], color=ACC_COLOR, linewidth=1.8, label="Training accuracy (smoothed)"),
               Line2D([], [], color=ACC_COLOR, alpha=0.5, label="Training accuracy", **marker),
               Line2D([], [], color=LOSS_COLOR, linewidth=1.8, label="Training loss (smoothed)"),
               Line2D([], [], color=LOSS_COLOR, alpha=0.5, label="Training loss", **marker)]
    if validation:
        handles += [Line2D([], [], color="black", linestyle="--" if validation >= VAL_LINE_MIN else "none",
                           linewidth=1, marker="o", markersize=5, label="Validation"),
                    Line2D([], [], color="black", linestyle="none", marker="o", markersize=8,
                           markerfacecolor="white", markeredgewidth=1.6, label="Final validation")]
    if epochs:
        handles.append(Line2D([], [], color="0.55", linewidth=0.7, linestyle=":", label="Epoch boundary"))
    return handles


def _capital(text: Any) -> str | None:
    return None if not text else str(text)[:1].upper() + str(text)[1:]


def _percent(value: Any) -> str | None:
    return None if value is None else f"{100 * float(value):.2f} %"


def _number(value: Any) -> str | None:
    return None if value is None else f"{float(value):.4g}"


def _of(value: Any, total: Any) -> str | None:
    if value is None:
        return None
    return f"{int(value)} of {int(total)}" if total is not None else str(int(value))


def _every(value: Any) -> str | None:
    return None if value is None else f"every {int(value)} iterations"


def _head_lr(facts: dict[str, Any]) -> str | None:
    head, base = facts.get("head_learning_rate"), facts.get("learning_rate")
    return None if head is None or (base is not None and float(head) == float(base)) else _number(head)


def _duration(seconds: Any) -> str | None:
    if seconds is None:
        return None
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"
