"""What the user sees while training: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from zoo.training.loop import Callback, Trainer

__all__ = ["make_progress", "LiveProgress", "PlainProgress", "summary_line"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes:02d}:{sec:02d}"


class _Clock(Callback):
    """Wall time and an estimate of the time left (iterations plus validations)."""

    def on_train_begin(self, trainer: Trainer) -> None:
        self.start = time.perf_counter()
        self.start_iteration = trainer.iteration

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def time_left(self, trainer: Trainer) -> float | None:
        done = trainer.iteration - self.start_iteration
        if done < 1:
            return None
        return self.elapsed() / done * (trainer.total_iterations - trainer.iteration)


def summary_line(trainer: Trainer, seconds: float) -> str:
    """One line for the end of training."""
    last = trainer.history[-1] if trainer.history else {}
    rate = trainer.images_seen / trainer.seconds if trainer.seconds else 0.0
    val = ""
    if trainer.last_val is not None:
        val = f", validation {_pct(trainer.last_val[1])} (loss {trainer.last_val[0]:.4f})"
    status = "stopped" if trainer.stop_requested else "done"
    return (f"{status}: {trainer.epoch} epoch(s), {trainer.iteration} iterations in {seconds:.1f} s "
            f"({rate:,.0f} images/s); mini-batch accuracy {_pct(last.get('accuracy'))}{val}")


class PlainProgress(_Clock):
    """MATLAB's verbose table: a line at iteration 1, every validation and at each epoch's end."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_train_begin(self, trainer: Trainer) -> None:
        super().on_train_begin(trainer)
        base = trainer.options.learning_rate
        head = next((g.get("base_lr", base) for g in trainer.optimizer.param_groups if g.get("name") == "head"), base)
        self.head_column = not math.isclose(head, base)  # a faster (or slower) head: show its rate too
        self._print(f"{'epoch':>7} {'iteration':>11} {'elapsed':>8} {'loss':>8} {'accuracy':>9} "
                    f"{'val loss':>9} {'val acc':>8} {'lr':>9}" + (f" {'head lr':>9}" if self.head_column else ""))

    def _line(self, trainer: Trainer, row: dict[str, Any]) -> None:
        val_loss = "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
        head = f" {row.get('head_lr', row['lr']):>9.3g}" if self.head_column else ""
        self._print(f"{row['epoch']:>3}/{trainer.options.epochs:<3} {row['iteration']:>5}/{trainer.total_iterations:<5} "
                    f"{_duration(self.elapsed()):>8} {row['loss']:>8.4f} {_pct(row['accuracy']):>9} "
                    f"{val_loss:>9} {_pct(row['val_accuracy']):>8} {row['lr']:>9.3g}{head}")

    def on_iteration_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        at_epoch_end = row["iteration"] % trainer.batches_per_epoch == 0
        if row["iteration"] == 1 or row["val_loss"] is not None or at_epoch_end:
            self._line(trainer, row)

    def on_train_end(self, trainer: Trainer) -> None:
        self._print(summary_line(trainer, self.elapsed()))


class LiveProgress(_Clock):
    """A rich progress bar: epoch, iteration, loss, accuracy, validation accuracy, time left."""

    def on_train_begin(self, trainer: Trainer) -> None:
        super().on_train_begin(trainer)

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  val {task.fields[val]}"),
            TextColumn("[dim]{task.fields[elapsed]} elapsed, {task.fields[left]} left"),
            refresh_per_second=4,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=trainer.total_iterations, completed=trainer.iteration,
            epoch=f"{trainer.epoch + 1}/{trainer.options.epochs}", loss="-", acc="-",
            val=_pct(trainer.last_val[1]) if trainer.last_val else "-", elapsed="00:00", left="?")

    def on_iteration_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        left = self.time_left(trainer)
        fields = {"epoch": f"{row['epoch']}/{trainer.options.epochs}", "loss": f"{row['loss']:.4f}",
                  "acc": _pct(row["accuracy"]), "elapsed": _duration(self.elapsed()),
                  "left": "?" if left is None else _duration(left)}
        if row["val_accuracy"] is not None:
            fields["val"] = _pct(row["val_accuracy"])
        self.progress.update(self.task, completed=row["iteration"], **fields)

    def on_train_end(self, trainer: Trainer) -> None:
        self.progress.stop()
        print(summary_line(trainer, self.elapsed()), flush=True)


def make_progress(progress: bool | None) -> Callback | None:
    """``None``: a live bar on a terminal, plain lines otherwise; ``True``: the same; ``False``: silent."""
    if progress is False:
        return None
    return LiveProgress() if sys.stdout.isatty() else PlainProgress()
