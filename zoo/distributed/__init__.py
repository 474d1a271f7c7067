"""Data-parallel training on torch.distributed: torchrun's launcher, DDP, gloo on CPU, NCCL on CUDA.

* :mod:`zoo.distributed.env` — this worker's rank and world, process-group set-up with a
  bounded timeout, rank-0 helpers and the metric all-reduce.
* :mod:`zoo.distributed.trainer` — :class:`DistributedTrainer`, the single-process trainer
  through its hooks (DDP wrap, per-epoch deterministic sharding, reduced metrics).
* :mod:`zoo.distributed.launch` — ``--nproc N``: torch's elastic launcher in-process; every
  failure becomes one line.

The click options shared by ``zoo train`` and ``zoo finetune`` (``--nproc``, ...) are the
CLI's: :mod:`zoo.cli.distributed`.

Importing this package does not import torch.
"""

from __future__ import annotations

from zoo.distributed.env import (
    DEFAULT_TIMEOUT,
    DistEnv,
    all_reduce_mean,
    all_reduce_sum,
    barrier,
    configure,
    current,
    is_distributed,
    is_main,
    state_hash,
)

__all__ = [
    "DEFAULT_TIMEOUT", "DistEnv", "all_reduce_mean", "all_reduce_sum", "barrier", "configure", "current",
    "is_distributed", "is_main", "state_hash", "trainer_class",
]


def trainer_class() -> type:
    """The trainer for this process: distributed inside a multi-process job, else the plain one."""
    from zoo.distributed.trainer import trainer_class as pick  # torch: importing zoo.distributed stays torch-free

    return pick()

