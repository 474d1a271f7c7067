"""The process group of a torch.distributed job, and the few collectives zoo needs.

Where this process stands in the job (rank, world size, the options that travel to the workers)
is :mod:`zoo.distributed.job`, torch-free; its names are re-exported here. In a process without
a job every collective here is a no-op.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from zoo.device import pick_device
from zoo.distributed.job import (
    DEFAULT_TIMEOUT,
    LOST_CONTACT_EXIT,
    MAX_TIMEOUT_S,
    DistEnv,
    LostContact,
    configure,
    current,
    is_distributed,
    is_main,
    settings,
)
from zoo.errors import ResourceError, ZooError

__all__ = [
    "DistEnv", "DEFAULT_TIMEOUT", "LOST_CONTACT_EXIT", "MAX_TIMEOUT_S", "LostContact", "current", "is_distributed", "is_main", "configure", "settings",
    "setup", "device_for", "barrier", "all_reduce_sum", "all_reduce_mean", "broadcast_buffers",
    "state_hash", "comm_error_message",
]

# -- process group ---------------------------------------------------------------------------

def device_for(name: str) -> Any:
    """The device of this worker: ``cuda:LOCAL_RANK`` on GPUs, else the CPU."""
    device = pick_device(name)
    if device.type == "cuda":
        local = current().local_rank
        if local >= torch.cuda.device_count():
            raise ResourceError(f"worker with LOCAL_RANK={local} has no GPU: torch sees {torch.cuda.device_count()}; "
                           f"use --nproc {torch.cuda.device_count()} or fewer, or --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device


def setup(device: Any) -> DistEnv:
    """Join the job's process group (NCCL on CUDA, gloo on the CPU) once; returns this worker's place."""
    env = current()
    if not env.active or dist.is_initialized():
        return env
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise ZooError("WORLD_SIZE>1 but MASTER_ADDR/MASTER_PORT are not set; start workers with torchrun or --nproc")
    backend = "nccl" if getattr(device, "type", "cpu") == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=settings()["timeout"])}
    if backend == "nccl":
        kwargs["device_id"] = device
    try:
        dist.init_process_group(**kwargs)
    except (RuntimeError, ValueError, TimeoutError) as exc:
        raise ZooError(f"worker {env.rank} could not join the process group ({backend}): {comm_error_message(exc)}") from None
    atexit.register(_destroy)
    return env


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def comm_error_message(exc: BaseException) -> str:
    """The gist of a backend error: gloo and NCCL wrap one sentence in source paths and C++ frames."""
    for line in str(exc).splitlines():
        line = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\]\s*", "", line.strip())
        if line and not line.startswith(("Exception raised from", "frame #")):
            return line.split(". ")[0].rstrip(".")[:200]
    return type(exc).__name__


# -- collectives (all no-ops in a single process) ------------------------------------------

def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], device: Any = "cpu") -> list[float]:
    """Element-wise sum over all workers, in float64, with one collective."""
    if not _initialized():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_mean(value: float, device: Any = "cpu") -> float:
    """Mean of a scalar over all workers."""
    if not _initialized():
        return value
    return all_reduce_sum([value], device)[0] / dist.get_world_size()


def broadcast_buffers(module: Any, src: int = 0) -> None:
    """Give every worker rank ``src``'s buffers (batch-norm running statistics)."""
    if not _initialized():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src)


def state_hash(module: Any) -> str:
    """SHA-256 over a module's state_dict (names, dtypes, shapes and bytes), for equality checks."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
