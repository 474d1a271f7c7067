"""The training loop under DDP: the single-process :class:`~zoo.training.loop.Trainer` through its hooks.

``--batch-size`` stays the *global* mini-batch (MATLAB's MiniBatchSize): each of W workers
takes its 1/W slice of every global batch, DDP averages the gradients, so an iteration is
the same optimizer step as one process on the whole batch (batch-norm statistics aside,
unless ``--sync-bn``). Iterations, learning-rate schedule, validation points and history
rows are those of a single-process run.
"""

from __future__ import annotations

import gc
import json
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zoo.atomic import write_file
from zoo.distributed import env as dist_env
from zoo.errors import ResourceError, ZooError, ZooWarning
from zoo.training.loop import Trainer

__all__ = ["DistributedTrainer", "shard_order", "trainer_class", "DEBUG_DIR_ENV", "FAIL_AT_ENV"]

DEBUG_DIR_ENV = "ZOO_DIST_DEBUG_DIR"  # each rank writes rank<R>.json (weights hash) there at the end
FAIL_AT_ENV = "ZOO_DIST_FAIL_AT"  # "RANK:ITERATION[:exit|hang]": that worker exits (code 3) or hangs there


def shard_order(order: torch.Tensor, batches: int, local_batch: int, world: int, rank: int) -> torch.Tensor:
    """Rank ``rank``'s samples: its ``local_batch`` slice of each of ``batches`` global batches.

    ``order`` is the epoch's global sample order (identical on every rank); global batch b is
    ``order[b*G:(b+1)*G]`` with ``G = local_batch * world``; the result is ``batches * local_batch`` long.
    """
    used = order[: batches * local_batch * world].reshape(batches, world, local_batch)
    return used[:, rank, :].reshape(-1)


def trainer_class() -> type[Trainer]:
    """:class:`DistributedTrainer` inside a multi-process job, else the plain :class:`Trainer`."""
    return DistributedTrainer if dist_env.is_distributed() else Trainer


class DistributedTrainer(Trainer):
    """A :class:`Trainer` for one worker of a DDP job (same arguments)."""

    steps_on_empty = True

    def __init__(self, model: nn.Module, *args: Any, options: Any, device: Any = None, **kwargs: Any) -> None:
        self.dist = dist_env.current()
        device = dist_env.device_for(options.device)
        dist_env.setup(device)
        self.is_main = self.dist.is_main
        self.world = self.dist.world_size
        self.rank = self.dist.rank
        self.sync_bn = dist_env.settings()["sync_bn"]
        if self.sync_bn and device.type != "cuda":
            raise ResourceError("--sync-bn needs CUDA GPUs (torch's SyncBatchNorm has no CPU kernels); "
                           "leave it out for CPU workers")
        self._fail_at = _parse_fail_at(os.environ.get(FAIL_AT_ENV, ""), self.rank)
        super().__init__(model, *args, options=options, device=device, **kwargs)
        global_batch = self.batch_size
        if global_batch < self.world:
            raise ZooError(f"--batch-size {global_batch} is smaller than the {self.world} workers; "
                           f"use --batch-size {self.world} or more")
        self.batch_size = global_batch // self.world  # per worker; batches_per_epoch stays global
        if hasattr(self.train_data, "epoch_batches"):  # shards: each rank reads its own, counted by the source
            self.count_batches()
        if self.is_main and self.batch_size * self.world != global_batch:
            warnings.warn(f"--batch-size {global_batch} is not a multiple of {self.world} workers; "
                          f"each iteration uses {self.batch_size * self.world} images", ZooWarning, stacklevel=2)

    # -- hooks -------------------------------------------------------------------------------------

    def wrap_model(self, model: nn.Module) -> nn.Module:
        if self.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # keeps the same Parameter objects
        if not any(p.requires_grad for p in model.parameters()):
            raise ZooError("nothing to train: every parameter is frozen")
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        try:
            return DistributedDataParallel(model, device_ids=device_ids)  # buffers follow rank 0 each forward
        except RuntimeError as exc:
            raise ZooError(f"worker {self.rank}: DDP set-up failed: {dist_env.comm_error_message(exc)}") from None

    def batch_order(self, epoch: int) -> torch.Tensor:
        order = super().batch_order(epoch)  # a function of seed and epoch: the same on every rank
        return shard_order(order, self.batches_per_epoch, self.batch_size, self.world, self.rank)

    def reduce(self, value: float) -> float:
        return dist_env.all_reduce_mean(value, self._comm_device())

    # -- the loop ------------------------------------------------------------------------------------

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def request_stop(self, reason: str = "stopped") -> None:
        """Ctrl-C or a callback: noted here, acted on by all workers after the same iteration."""
        self._stop_pending = reason

    def _one_iteration(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        if self._fail_at is not None and self.iteration + 1 >= self._fail_at[0]:
            print(f"[{FAIL_AT_ENV}] worker {self.rank} {self._fail_at[1]}s at iteration {self.iteration + 1}", flush=True)
            if self._fail_at[1] == "hang":
                time.sleep(10**6)
            os._exit(3)
        super()._one_iteration(pixels, labels)
        self.images_seen += len(labels) * (self.world - 1)  # count every worker's images
        pending = getattr(self, "_stop_pending", None)
        (votes,) = dist_env.all_reduce_sum([1.0 if pending else 0.0], self._comm_device())
        if votes:  # every rank leaves the loop at the same iteration, or DDP would wait forever
            self.stop_requested, self.stop_reason = True, pending or "interrupted"

    @torch.no_grad()
    def validate(self, batch_size: int = 512) -> tuple[float, float]:
        """Each worker validates its share with rank 0's buffers; sums are all-reduced."""
        dist_env.broadcast_buffers(self.model)
        n = len(self.val_data)
        lo, hi = n * self.rank // self.world, n * (self.rank + 1) // self.world
        total_loss, correct, count = self.evaluate_rows(lo, hi, batch_size)
        total_loss, correct, count = dist_env.all_reduce_sum([total_loss, correct, count], self._comm_device())
        return total_loss / max(count, 1), correct / max(count, 1)

    def run(self) -> Trainer:
        try:
            super().run()
            dist_env.broadcast_buffers(self.model)  # every rank ends with rank 0's weights and statistics
        except (RuntimeError, TimeoutError) as exc:
            if not _is_comm_error(exc):
                raise
            raise dist_env.LostContact(f"worker {self.rank} lost contact with the other workers at iteration "
                           f"{self.iteration + 1} ({dist_env.comm_error_message(exc)})") from None
        finally:
            self._release_wrapper()
        self._write_debug()
        return self

    def _release_wrapper(self) -> None:
        """Drop the DDP wrapper (and its reducer) now: alive when the process group is destroyed at
        exit, it made about one gloo worker in five abort ('terminate called without an active exception')."""
        self.net = self.model
        gc.collect()

    def _write_debug(self) -> None:
        folder = os.environ.get(DEBUG_DIR_ENV)
        if not folder:
            return
        path = Path(folder) / f"rank{self.rank}.json"
        record = {"rank": self.rank, "world_size": self.world, "iterations": self.iteration,
                  "local_batch": self.batch_size, "state_sha256": dist_env.state_hash(self.model)}
        write_file(path, json.dumps(record) + "\n")


def _parse_fail_at(spec: str, rank: int) -> tuple[int, str] | None:
    """``RANK:ITERATION[:exit|hang]`` -> (iteration, how) for that rank, else None."""
    if not spec:
        return None
    parts = spec.split(":")
    try:
        who, when, how = int(parts[0]), int(parts[1]), (parts[2] if len(parts) > 2 else "exit")
    except (ValueError, IndexError):
        raise ZooError(f"{FAIL_AT_ENV} must be RANK:ITERATION[:exit|hang], not {spec!r}") from None
    if how not in ("exit", "hang"):
        raise ZooError(f"{FAIL_AT_ENV} must be RANK:ITERATION[:exit|hang], not {spec!r}")
    return (when, how) if who == rank else None


def _is_comm_error(exc: BaseException) -> bool:
    """Raised by a collective (DDP's or ours), or names a transport failure."""
    if isinstance(exc, (getattr(dist, "DistError", ()), TimeoutError)):
        return True
    for frame in traceback.extract_tb(exc.__traceback__):
        path = frame.filename.replace("\\", "/")
        if "/torch/distributed/" in path or "/torch/nn/parallel/" in path:
            return True
    text = str(exc).lower()
    return any(word in text for word in ("gloo", "nccl", "connection", "peer", "timeout", "timed out", "socket"))
