"""The training loop: batches from a data source, one normalisation on the device, clear hooks.

:class:`Trainer` runs MATLAB's ``trainNetwork`` semantics: mini-batches of ``batch_size``
(the last partial batch of an epoch is dropped, as MATLAB does), shuffling by policy,
validation at iteration 1, every ``val_every`` iterations and at the end, a learning-rate
schedule computed from the iteration number (so a resumed run needs no scheduler state).

The training data is a *source* (see :mod:`zoo.data.sources`): a decoded set (RAM or the
memory-mapped decode cache) or a stream decoded in worker processes, giving the batches of
the sample order the trainer chooses (``batches(index_batches, epoch=)``); or a source that
orders itself (WebDataset shards: ``batches_per_epoch(local_batch)`` and
``epoch_batches(epoch, start_batch, local_batch)``, each rank reading its own shards).

Hooks for extensions (distributed training slots in here): override
:meth:`Trainer.batch_order` to shard the sample order, :meth:`Trainer.wrap_model` to wrap
the network (DDP), :meth:`Trainer.reduce` to average metrics across processes, and
``is_main`` to silence output on other ranks. :class:`Callback` objects see every event.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.device import pick_device
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, normalize
from zoo.training.options import TrainOptions
from zoo.training.solver import lr_factor, make_optimizer
from zoo.transfer import set_train_mode

__all__ = ["Trainer", "Callback", "HISTORY_FIELDS"]

# lr: the base rate (MATLAB's); head_lr: the head group's rate (lr * head_lr_factor), equal to lr without one
HISTORY_FIELDS = ("epoch", "iteration", "seconds", "lr", "head_lr", "loss", "accuracy", "val_loss", "val_accuracy")


class Callback:
    """Training events; every method is optional. ``trainer`` exposes state and ``request_stop``."""

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_iteration_end(self, trainer: Trainer, row: dict[str, Any]) -> None: ...
    def on_validation(self, trainer: Trainer, row: dict[str, Any]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


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
    """One training run.

    Args:
        model: the network (moved to ``device``).
        train_data: the training source (a :class:`zoo.data.TensorSet`, a
            :class:`zoo.data.stream.StreamSource` or a shard source).
        val_data: the validation source, or ``None``.
        preprocess: normalisation (mean/std) applied per batch on the device; ``None`` when the
            inputs are not pixels (a frozen backbone's features).
        options: the :class:`TrainOptions`.
        groups: optimizer parameter groups (see :func:`zoo.transfer.param_groups`).
        freeze: ``"backbone"`` keeps the frozen backbone in inference mode.
        augment: optional ``f(uint8 batch, generator) -> uint8 batch`` applied to training batches.
    """

    is_main = True  # the process that prints and writes files (rank 0 under DDP)
    steps_on_empty = False  # DDP: every rank steps on every iteration, an empty batch with zero gradients

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        *,
        val_data: Any = None,
        preprocess: Preprocess | None,
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
        self.model = model.to(self.device)
        # channels-last is faster for conv nets on CPU (pooling, batch norm) and on GPUs (tensor cores)
        self.channels_last = preprocess is not None
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(groups, options)
        self.net = self.wrap_model(self.model)
        #: the network a resumable state holds (the whole network when only its head is trained here)
        self.whole = self.model
        self.train_data = _on_device(train_data, self.device)
        self.val_data = val_data
        n = len(train_data)
        if n == 0:
            raise ZooError("the training set is empty")
        self.batch_size = min(options.batch_size, n)
        self.count_batches()
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

    def count_batches(self) -> None:
        """Set ``batches_per_epoch`` and ``total_iterations`` from ``batch_size`` (the last partial
        batch of an epoch is dropped, as MATLAB does)."""
        if _orders_itself(self.train_data):
            self.batches_per_epoch = self.train_data.batches_per_epoch(self.batch_size)
        else:
            self.batches_per_epoch = len(self.train_data) // self.batch_size
        self.total_iterations = self.options.epochs * self.batches_per_epoch

    # -- hooks for extensions -------------------------------------------------------------

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The module the forward pass runs through (DDP wraps here)."""
        return model

    def batch_order(self, epoch: int) -> torch.Tensor:
        """Sample order for ``epoch`` (0-based), a function of seed and epoch only."""
        n = len(self.train_data)
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

    def epoch_batches(self, epoch: int, start_batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's (pixels, labels) batches of ``epoch`` from batch ``start_batch`` on."""
        if _orders_itself(self.train_data):
            return self.train_data.epoch_batches(epoch, start_batch, self.batch_size)
        order = self.batch_order(epoch)
        size = self.batch_size
        index_batches = [order[b * size:(b + 1) * size] for b in range(start_batch, self.batches_per_epoch)]
        return self.train_data.batches(index_batches, epoch=epoch)

    def _inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(self.device, non_blocking=True)
        if self.preprocess is None:
            return x
        x = normalize(x, self.preprocess)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _set_lr(self) -> float:
        factor = lr_factor(self.options, self.epoch, self.iteration, self.total_iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = group.get("base_lr", self.options.learning_rate) * factor
        return self.options.learning_rate * factor  # MATLAB's "base learning rate" (the head may be faster)

    def head_lr(self, lr: float) -> float:
        """The head's current learning rate: its optimizer group's (``name="head"``), else ``lr``."""
        return next((g["lr"] for g in self.optimizer.param_groups if g.get("name") == "head"), lr)

    def train_step(self, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; returns (loss, correct count) tensors."""
        if self.augment is not None:
            pixels = self.augment(pixels, self.iteration_generator())
        x = self._inputs(pixels)
        y = labels.to(self.device, non_blocking=True)
        logits = self.net(x)
        loss = F.cross_entropy(logits, y) if len(y) else logits.sum() * 0.0  # empty: zero gradients, as DDP needs
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
        total_loss, correct, count = self.evaluate_rows(0, len(self.val_data), batch_size)
        return self.reduce(total_loss / max(count, 1)), self.reduce(correct / max(count, 1))

    @torch.no_grad()
    def evaluate_rows(self, lo: int, hi: int, batch_size: int = 512) -> tuple[float, int, int]:
        """(summed loss, correct, samples) over validation rows ``lo:hi`` (unreadable ones left out)."""
        self.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        chunks = [torch.arange(start, min(start + batch_size, hi)) for start in range(lo, hi, batch_size)]
        try:
            for pixels, labels in self.val_data.batches(chunks):
                if len(labels) == 0:
                    continue
                y = labels.to(self.device)
                logits = self.model(self._inputs(pixels))
                total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
                count += len(labels)
        finally:
            set_train_mode(self.model, self.freeze)
        return total_loss, correct, count

    def _should_validate(self) -> bool:
        if self.val_data is None:
            return False
        it = self.iteration
        return it == 1 or it % self.options.val_every == 0 or it == self.total_iterations

    def run(self) -> Trainer:
        """Train until ``epochs`` are done or a stop is requested (Ctrl-C stops cleanly)."""
        set_train_mode(self.model, self.freeze)
        self._emit("on_train_begin")
        with _StopOnSigint(self):
            while self.epoch < self.options.epochs and not self.stop_requested:
                done = self.iteration - self.epoch * self.batches_per_epoch
                batches = self.epoch_batches(self.epoch, done)
                for pixels, labels in batches:
                    self._one_iteration(pixels, labels)
                    done += 1
                    if self.stop_requested and done < self.batches_per_epoch:
                        break
                getattr(batches, "close", lambda: None)()  # a stream's worker processes end here
                if done >= self.batches_per_epoch:
                    self.epoch += 1
                    self._emit("on_epoch_end", self.epoch)
        self.model.eval()
        self._emit("on_train_end")
        return self

    def _one_iteration(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        lr = self._set_lr()
        t0 = time.perf_counter()
        loss_value = accuracy = float("nan")  # a streamed batch of unreadable files only (named at the end)
        if len(labels) or self.steps_on_empty:
            loss, correct = self.train_step(pixels, labels)
            loss_value, accuracy = float(loss), int(correct) / max(len(labels), 1)
        self.seconds += time.perf_counter() - t0
        self.iteration += 1
        self.images_seen += len(labels)
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
        return {"model": self.whole.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng,
                "epoch": self.epoch, "iteration": self.iteration, "seconds": self.seconds,
                "images_seen": self.images_seen, "history": self.history}

    def load_state(self, state: dict[str, Any]) -> None:
        self.whole.load_state_dict(state["model"])
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


def _orders_itself(source: Any) -> bool:
    """A source that orders and deals its own samples to ranks (WebDataset shards)."""
    return hasattr(source, "epoch_batches")


def _on_device(source: Any, device: torch.device) -> Any:
    """A small in-memory set on a GPU whole (no copy per batch); any other source as it is."""
    if device.type == "cpu" or getattr(source, "mode", None) != "memory" or source.images.numel() >= (1 << 30):
        return source
    return dataclasses.replace(source, images=source.images.to(device), labels=source.labels.to(device))
