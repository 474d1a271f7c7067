"""What a finished run reports: its metrics, the plot's results panel, what it started from."""

from __future__ import annotations

from typing import Any

from zoo.card import ModelCard
from zoo.training.options import TrainOptions

__all__ = ["run_metrics", "plot_summary", "started_from"]


def plot_summary(trainer: Any, metrics: dict[str, Any], options: TrainOptions,
                  groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The final-results panel of the training-progress plot."""
    rates = {g.get("name"): g["base_lr"] for g in groups}
    return {
        "val_accuracy": metrics["val_acc"], "elapsed_s": metrics["seconds"], "epochs": metrics["epochs"],
        "max_epochs": options.epochs, "iterations": metrics["iterations"],
        "iterations_per_epoch": trainer.batches_per_epoch,
        "learning_rate": rates.get("backbone", options.learning_rate),
        "head_learning_rate": rates.get("head"), "hardware": metrics["device"],
        "status": "stopped early" if trainer.stop_requested else "max epochs completed",
    }


def run_metrics(trainer: Any, run_seconds: float, prepare_seconds: float, *, resumed: bool, train_images: int,
             val_images: int, device: Any) -> dict[str, Any]:
    """Mean mini-batch accuracy and loss over the last epoch; validation at the final iteration."""
    last_epoch = trainer.history[-trainer.batches_per_epoch:]
    seconds = trainer.seconds if resumed else run_seconds - trainer.val_seconds
    return {
        "train_acc": round(sum(r["accuracy"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "train_loss": round(sum(r["loss"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "val_acc": None if trainer.last_val is None else round(trainer.last_val[1], 6),
        "val_loss": None if trainer.last_val is None else round(trainer.last_val[0], 6),
        "epochs": trainer.epoch,
        "iterations": trainer.iteration,
        "seconds": round(run_seconds, 3),
        "prepare_seconds": round(prepare_seconds, 3),
        "images_per_s": round(trainer.images_seen / max(1e-9, seconds), 1),
        "train_images": train_images,
        "val_images": val_images,
        "device": str(device),
    }


def started_from(card: ModelCard) -> str:
    """What training started from: a weight tag, a checkpoint path, or ``none``."""
    pretrained = card.extra.get("pretrained")
    if not isinstance(pretrained, dict):
        return "none"
    return pretrained["path"] if pretrained.get("tag") == "checkpoint" else str(pretrained.get("tag", "none"))
