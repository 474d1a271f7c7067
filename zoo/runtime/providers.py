"""onnxruntime sessions: provider choice (CUDA when it really works, else CPU) and tuned options.

onnxruntime-gpu lists ``CUDAExecutionProvider`` whether or not a GPU and the CUDA libraries
are present, and silently falls back to the CPU when they are not. So "auto" first asks the
driver (``libcuda``) for a device, then builds the session and reads back which provider
the session actually holds; a session asked for "cuda" by name that got the CPU is an error.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

from zoo.errors import ResourceError, ZooError, first_line

__all__ = ["cuda_device_count", "make_session", "session_options", "PROVIDER_NAMES"]

PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports (0 without a driver or a GPU); no torch needed."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
        except AttributeError:
            return 0
        return int(count.value)
    return 0


def session_options(*, threads: int | None = None) -> ort.SessionOptions:
    """Options measured fastest for small CNNs here: full graph optimisation, one inter-op thread,
    intra-op threads = physical cores (onnxruntime's default) unless ``threads`` says otherwise."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 4  # fatal only: errors are raised, and zoo prints those as one line
    return options


def _requested(providers: str | Sequence[str]) -> list[str]:
    if isinstance(providers, str):
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    names: list[str] = []
    for p in providers:
        key = p.lower().removesuffix("executionprovider")
        if key == "auto":
            names += _auto()
        elif key in PROVIDER_NAMES:
            names.append(PROVIDER_NAMES[key])
        elif p in ort.get_available_providers():
            names.append(p)
        else:
            raise ZooError(f"unknown provider '{p}': use auto, cpu, cuda or one of {', '.join(ort.get_available_providers())}")
    if "CPUExecutionProvider" not in names:
        names.append("CPUExecutionProvider")
    return list(dict.fromkeys(names))


def _auto() -> list[str]:
    if "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(model: str | os.PathLike | bytes, providers: str | Sequence[str] = "auto", *,
                 threads: int | None = None) -> tuple[Any, str]:
    """An InferenceSession and the name of the provider that runs it (CUDA or CPU)."""
    names = _requested(providers)
    if "CUDAExecutionProvider" in names:
        try:
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels torch brings, when present
        except Exception:  # noqa: BLE001 - a failed preload only means CUDA may not load
            pass
        ort.set_default_logger_severity(4)  # a GPU without CUDA libraries: fall back quietly
    try:
        session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model), session_options(threads=threads), providers=names
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several exception types
        source = "the model bytes" if isinstance(model, bytes) else f"'{model}'"
        raise ZooError(f"onnxruntime cannot load {source}: {first_line(exc)}") from None
    finally:
        if "CUDAExecutionProvider" in names:
            ort.set_default_logger_severity(2)
    running = session.get_providers()[0]
    if running != "CUDAExecutionProvider" and _asks_for_cuda(providers):
        raise ResourceError(f"CUDA was asked for, but onnxruntime runs on the CPU: {_why_no_cuda()}; "
                            f"use providers 'auto' or 'cpu' to run on the CPU")
    return session, running


def _asks_for_cuda(providers: str | Sequence[str]) -> bool:
    """Whether the caller named CUDA itself ('auto' only takes it where it works)."""
    named = providers.split(",") if isinstance(providers, str) else providers
    return any(p.strip().lower().removesuffix("executionprovider") == "cuda" for p in named)


def _why_no_cuda() -> str:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime has no CUDA provider (install onnxruntime-gpu instead of onnxruntime)"
    if cuda_device_count() == 0:
        return "the CUDA driver reports no GPU"
    return "its CUDA provider could not load the CUDA or cuDNN libraries ('zoo doctor' shows the versions)"
