"""Data-parallel training on torch.distributed: torchrun's launcher, DDP, gloo on CPU, NCCL on CUDA.

* :mod:`zoo.distributed.job` — this worker's rank and world, and the options that travel to
  the workers (torch-free: the command line reads it while parsing).
* :mod:`zoo.distributed.env` — process-group set-up with a bounded timeout and the metric
  all-reduce.
* :mod:`zoo.distributed.trainer` — :class:`DistributedTrainer`, the single-process trainer
  through its hooks (DDP wrap, per-epoch deterministic sharding, reduced metrics).
* :mod:`zoo.distributed.launch` — ``--nproc N``: torch's elastic launcher in-process; every
  failure becomes one line.

The click options shared by ``zoo train`` and ``zoo finetune`` (``--nproc``, ...) are the
CLI's: :mod:`zoo.cli.distributed`.

Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from zoo.distributed.job import DEFAULT_TIMEOUT, DistEnv, configure, current, is_distributed, is_main

__all__ = [
    "DEFAULT_TIMEOUT", "DistEnv", "all_reduce_mean", "all_reduce_sum", "barrier", "configure", "current",
    "is_distributed", "is_main", "state_hash", "trainer_class",
]

_COLLECTIVES = ("all_reduce_mean", "all_reduce_sum", "barrier", "state_hash")


def __getattr__(name: str) -> Any:
    """The collectives, imported on first use (they need torch)."""
    if name in _COLLECTIVES:
        from zoo.distributed import env  # torch: only when a collective is used

        return getattr(env, name)
    raise AttributeError(f"module 'zoo.distributed' has no attribute {name!r}")


def trainer_class() -> type:
    """The trainer for this process: distributed inside a multi-process job, else the plain one."""
    from zoo.distributed.trainer import trainer_class as pick  # torch: importing zoo.distributed stays torch-free

    return pick()

