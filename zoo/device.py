"""Which torch device a command runs on: MATLAB's ExecutionEnvironment (auto, cpu, cuda)."""

from __future__ import annotations

from typing import Any

from zoo.errors import ResourceError, ZooError

__all__ = ["DEVICES", "pick_device"]

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str) -> Any:
    """The ``torch.device`` for ``name``: ``auto`` is CUDA when available, else the CPU;
    ``cuda`` without a GPU is a one-line error."""
    import torch  # here, not at the top: option checking imports DEVICES without torch

    if name not in DEVICES:
        raise ZooError(f"--device must be one of {', '.join(DEVICES)}, not {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ResourceError("--device cuda asked for, but torch sees no CUDA GPU; use --device auto or cpu")
    return torch.device(name)
