"""The training loop: in-memory uint8 tensors, one normalisation on the device, clear hooks.

:class:`Trainer` runs MATLAB's ``trainNetwork`` semantics: mini-batches of ``batch_size``
(the last partial batch of an epoch is dropped, as MATLAB does), shuffling by policy,
validation at iteration 1, every ``val_every`` iterations and at the end, a learning-rate
schedule computed from the iteration number (so a resumed run needs no scheduler state).

Hooks for extensions (distributed training slots in here): override
:meth:`Trainer.batch_order` to shard the sample order, :meth:`Trainer.wrap_model` to wrap
the network (DDP), :meth:`Trainer.reduce` to average metrics across processes, and
``is_main`` to silence output on other ranks. :class:`Callback` objects see every event.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.device import pick_device
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, normalize
from zoo.training.options import TrainOptions
from zoo.transfer import set_train_mode

__all__ = ["Trainer", "Callback", "make_optimizer", "lr_factor", "HISTORY_FIELDS"]

# lr: the base rate (MATLAB's); head_lr: the head group's rate (lr * head_lr_factor), equal to lr without one
HISTORY_FIELDS = ("epoch", "iteration", "seconds", "lr", "head_lr", "loss", "accuracy", "val_loss", "val_accuracy")


class Callback:
    """Training events; every method is optional. ``trainer`` exposes state and ``request_stop``."""

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_iteration_end(self, trainer: Trainer, row: dict[str, Any]) -> None: ...
    def on_validation(self, trainer: Trainer, row: dict[str, Any]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


def make_optimizer(groups: list[dict[str, Any]], options: TrainOptions) -> torch.optim.Optimizer:
    """sgdm, adam or rmsprop with MATLAB's decay factors and coupled L2 regularisation."""
    lr, l2 = options.learning_rate, options.l2
    if options.solver == "sgdm":
        return torch.optim.SGD(groups, lr=lr, momentum=options.momentum, weight_decay=l2)
    if options.solver == "adam":  # GradientDecayFactor 0.9, SquaredGradientDecayFactor 0.999
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=l2)
    # rmsprop: SquaredGradientDecayFactor 0.9, Epsilon 1e-8
    return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-8, weight_decay=l2)


def lr_factor(options: TrainOptions, epoch: int, iteration: int, total: int) -> float:
    """Multiplier of the base learning rate at 0-based ``epoch`` and ``iteration`` (of ``total``)."""
    if options.lr_schedule == "piecewise":
        return options.lr_drop_factor ** (epoch // options.lr_drop_period)
    if options.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * iteration / max(1, total)))
    return 1.0


class _StopOnSigint:
    """The first Ctrl-C asks the loop to stop after the current iteration; a second one aborts."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: Any = None

    def __enter__(self) -> _StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.request_stop("interrupted")

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class Trainer:
    """One training run over in-memory tensor sets.

    Args:
        model: the network (moved to ``device``).
        train_images, train_labels: uint8 (N, C, H, W) and int64 (N,) tensors.
        val_images, val_labels: the validation set, or ``None``.
        preprocess: normalisation (mean/std) applied per batch on the device.
        options: the :class:`TrainOptions`.
        groups: optimizer parameter groups (see :func:`zoo.transfer.param_groups`).
        freeze: ``"backbone"`` keeps frozen batch-norm statistics fixed.
        augment: optional ``f(uint8 batch, generator) -> uint8 batch`` applied to training batches.
    """

    is_main = True  # the process that prints and writes files (rank 0 under DDP)

    def __init__(
        self,
        model: nn.Module,
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        *,
        val_images: torch.Tensor | None = None,
        val_labels: torch.Tensor | None = None,
        preprocess: Preprocess,
        options: TrainOptions,
        groups: list[dict[str, Any]],
        freeze: str = "none",
        augment: Any = None,
        callbacks: Sequence[Callback] = (),
        device: torch.device | None = None,
    ) -> None:
        self.options = options
        self.device = device or pick_device(options.device)
        self.preprocess = preprocess
        self.freeze = freeze
        self.augment = augment
        self.callbacks = list(callbacks)
        # channels-last is faster for conv nets on CPU (pooling, batch norm) and on GPUs (tensor cores)
        self.channels_last = True
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(groups, options)
        self.net = self.wrap_model(self.model)
        # Small sets live on the device whole; large ones move batch by batch.
        keep_on_device = self.device.type == "cpu" or train_images.numel() < (1 << 30)
        self.images = train_images.to(self.device) if keep_on_device else train_images
        self.labels = train_labels.to(self.device)
        self.val_images = val_images
        self.val_labels = val_labels
        n = int(self.labels.shape[0])
        if n == 0:
            raise ZooError("the training set is empty")
        self.batch_size = min(options.batch_size, n)
        self.batches_per_epoch = n // self.batch_size
        self.total_iterations = options.epochs * self.batches_per_epoch
        # position: epochs and iterations completed
        self.epoch = 0
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0  # training time, excluding validation, accumulated across resumes
        self.images_seen = 0
        self.val_seconds = 0.0  # validation time in this process
        self.stop_requested = False
        self.stop_reason = ""
        self.last_val: tuple[float, float] | None = None

    # -- hooks for extensions -------------------------------------------------------------

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The module the forward pass runs through (DDP wraps here)."""
        return model

    def batch_order(self, epoch: int) -> torch.Tensor:
        """Sample order for ``epoch`` (0-based), a function of seed and epoch only."""
        n = int(self.labels.shape[0])
        shuffle = self.options.shuffle
        if shuffle == "never":
            return torch.arange(n)
        generator = torch.Generator().manual_seed(self.options.seed * 1_000_003 + (epoch if shuffle == "every-epoch" else 0))
        return torch.randperm(n, generator=generator)

    def reduce(self, value: float) -> float:
        """Combine a metric across processes (identity for one process)."""
        return value

    def request_stop(self, reason: str = "stopped") -> None:
        self.stop_requested = True
        self.stop_reason = reason

    # -- the loop ---------------------------------------------------------------------------

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, event, None)  # duck-typed callbacks may define only some events
            if method is not None:
                method(self, *args)

    def _inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        x = normalize(pixels.to(self.device, non_blocking=True), self.preprocess)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _set_lr(self) -> float:
        factor = lr_factor(self.options, self.epoch, self.iteration, self.total_iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = group.get("base_lr", self.options.learning_rate) * factor
        return self.options.learning_rate * factor  # MATLAB's "base learning rate" (the head may be faster)

    def head_lr(self, lr: float) -> float:
        """The head's current learning rate: its optimizer group's (``name="head"``), else ``lr``."""
        return next((g["lr"] for g in self.optimizer.param_groups if g.get("name") == "head"), lr)

    def train_step(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the samples ``index``; returns (loss, correct count) tensors."""
        pixels = self.images[index]
        if self.augment is not None:
            pixels = self.augment(pixels, self.iteration_generator())
        x = self._inputs(pixels)
        y = self.labels[index.to(self.labels.device)]
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct = (logits.detach().argmax(dim=1) == y).sum()
        return loss.detach(), correct

    def iteration_generator(self) -> torch.Generator:
        """A generator seeded by seed and iteration (augmentation that survives a resume)."""
        return torch.Generator().manual_seed(self.options.seed * 7_919 + self.iteration)

    @torch.no_grad()
    def validate(self, batch_size: int = 512) -> tuple[float, float]:
        """(loss, accuracy) on the validation set, in eval mode."""
        assert self.val_images is not None and self.val_labels is not None
        self.model.eval()
        total_loss, correct, n = 0.0, 0, int(self.val_labels.shape[0])
        try:
            for start in range(0, n, batch_size):
                x = self._inputs(self.val_images[start:start + batch_size])
                y = self.val_labels[start:start + batch_size].to(self.device)
                logits = self.model(x)
                total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
        finally:
            set_train_mode(self.model, self.freeze)
        return self.reduce(total_loss / n), self.reduce(correct / n)

    def _should_validate(self) -> bool:
        if self.val_images is None:
            return False
        it = self.iteration
        return it == 1 or it % self.options.val_every == 0 or it == self.total_iterations

    def run(self) -> Trainer:
        """Train until ``epochs`` are done or a stop is requested (Ctrl-C stops cleanly)."""
        set_train_mode(self.model, self.freeze)
        self._emit("on_train_begin")
        with _StopOnSigint(self):
            while self.epoch < self.options.epochs and not self.stop_requested:
                order = self.batch_order(self.epoch)
                start_batch = self.iteration - self.epoch * self.batches_per_epoch
                for b in range(start_batch, self.batches_per_epoch):
                    if self.stop_requested:
                        break
                    self._one_iteration(order[b * self.batch_size:(b + 1) * self.batch_size])
                else:
                    self.epoch += 1
                    self._emit("on_epoch_end", self.epoch)
        self.model.eval()
        self._emit("on_train_end")
        return self

    def _one_iteration(self, index: torch.Tensor) -> None:
        lr = self._set_lr()
        t0 = time.perf_counter()
        loss, correct = self.train_step(index)
        loss_value, accuracy = float(loss), int(correct) / len(index)
        self.seconds += time.perf_counter() - t0
        self.iteration += 1
        self.images_seen += len(index)
        row = {"epoch": self.epoch + 1, "iteration": self.iteration, "seconds": round(self.seconds, 4),
               "lr": lr, "head_lr": self.head_lr(lr), "loss": self.reduce(loss_value),
               "accuracy": self.reduce(accuracy), "val_loss": None, "val_accuracy": None}
        if self._should_validate():
            t1 = time.perf_counter()
            row["val_loss"], row["val_accuracy"] = self.last_val = self.validate()
            self.val_seconds += time.perf_counter() - t1
        self.history.append(row)
        self._emit("on_iteration_end", row)
        if row["val_loss"] is not None:
            self._emit("on_validation", row)

    # -- resumable state ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit for bit (see zoo.training.state)."""
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng,
                "epoch": self.epoch, "iteration": self.iteration, "seconds": self.seconds,
                "images_seen": self.images_seen, "history": self.history}

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        self.seconds, self.images_seen = float(state["seconds"]), int(state["images_seen"])
        self.history = list(state["history"])
        for row in reversed(self.history):
            if row.get("val_loss") is not None:
                self.last_val = (row["val_loss"], row["val_accuracy"])
                break
