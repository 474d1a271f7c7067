"""``zoo bench``: latency and throughput of one model under several runtimes, side by side.

Runtimes: ``torch`` (eager, ``inference_mode``), ``torch-compile`` (``torch.compile``, default
mode; compile time is excluded and reported apart), ``onnxruntime`` (the model exported
to a temporary ONNX file, or the given ``.onnx`` file, on the provider ``auto`` picks) and
``onnxruntime-int8`` (exported with ``quantize="auto"``: the fastest int8 format within
``max_accuracy_drop`` points, calibrated on a checkpoint's recorded training data or on the
bundled sample photos; export and quantization are timed apart, as setup).
Each cell runs warm-up calls, then timed calls until ``iters`` or ``seconds`` is reached,
on the same random normalised input. GFLOP/s uses torch's FlopCounterMode (multiply-add = 2),
or the figure the ONNX file recorded at export.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ResourceError, ZooError, first_line
from zoo.values import real, shown, whole

__all__ = ["bench", "BenchResult", "RUNTIMES", "PROVIDERS", "MAX_THREADS", "option_problem"]

RUNTIMES = ("torch", "torch-compile", "onnxruntime", "onnxruntime-int8")
PROVIDERS = ("auto", "cpu", "cuda")  # or an onnxruntime provider's own name
MAX_THREADS = 1024
#: whole-number options: (lowest, highest, what the value must be)
_WHOLE = {"iters": (1, math.inf, "a whole number from 1 up"), "warmup": (0, math.inf, "a whole number from 0 up"),
          "threads": (1, MAX_THREADS, f"a whole number from 1 to {MAX_THREADS}")}
_LISTS = {"batches": "whole numbers from 1 up, separated by commas (1,32)",
          "runtimes": f"one or more of {', '.join(RUNTIMES)}, separated by commas",
          "providers": f"one or more of {', '.join(PROVIDERS)} or onnxruntime's provider names, separated by commas"}


@dataclass
class BenchResult:
    """One runtime at one batch size."""

    runtime: str
    provider: str  # where it ran: "torch cpu, 2 threads", "CPUExecutionProvider", ...
    batch: int
    median_ms: float  # per batch
    p90_ms: float
    images_per_s: float
    gflops_per_s: float | None
    calls: int
    setup_s: float = 0.0  # export or compile time, not in the timings
    vs_torch: float | None = None  # throughput ratio to torch eager at this batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the bench option ``name`` (``"must be ..., not ..."``), or None:
    the one rule behind :func:`bench` and the ``zoo bench`` flags. Lists are sequences or comma-separated text."""
    if name in _LISTS:
        items = _items(value)
        ok = bool(items) and all(_item_ok(name, i) for i in items)
        return None if ok else f"must be {_LISTS[name]}, not {shown(value)}"
    if name in _WHOLE:
        low, high, requirement = _WHOLE[name]
        ok = whole(value, low, high) is not None
        return None if ok else f"must be {requirement}, not {shown(value)}"
    if name == "seconds":
        seconds = real(value)
        ok = seconds is not None and seconds > 0
        return None if ok else f"must be a positive number of seconds, not {shown(value)}"
    raise KeyError(name)


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return list(value) if isinstance(value, Sequence) else []


def _item_ok(name: str, item: Any) -> bool:
    if name == "batches":
        number = int(item) if isinstance(item, str) and item.isdigit() else item
        return whole(number, 1) is not None
    if name == "runtimes":
        return item in RUNTIMES
    key = str(item).lower().removesuffix("executionprovider")
    return key in PROVIDERS or str(item) in _available_providers()


def _available_providers() -> list[str]:
    import onnxruntime  # only for a provider named in full

    return onnxruntime.get_available_providers()


def _check(**options: Any) -> None:
    for name, value in options.items():
        problem = None if value is None and name == "threads" else option_problem(name, value)
        if problem:
            flag = {"batches": "batch", "runtimes": "runtime"}.get(name, name)
            raise ZooError(f"--{flag} {problem}")


def bench(
    ref: str | os.PathLike,
    *,
    batches: Sequence[int] | str = (1, 32),
    runtimes: Sequence[str] | str = ("torch", "onnxruntime"),
    iters: int = 200,
    seconds: float = 2.0,
    warmup: int = 3,
    threads: int | None = None,
    providers: str = "auto",
    device: str = "auto",
    onnx_file: str | os.PathLike | None = None,
    network: Any = None,
    max_accuracy_drop: float = 1.0,
) -> list[BenchResult]:
    """Time ``ref`` (registry name, checkpoint or ONNX file) under each runtime and batch size.

    Args:
        batches: batch sizes to time (a sequence, or comma-separated text: ``"1,32"``).
        runtimes: any of ``torch``, ``torch-compile``, ``onnxruntime``, ``onnxruntime-int8``, as a sequence or
            comma-separated text (an ONNX ``ref`` allows only ``onnxruntime``).
        iters, seconds: each cell stops at whichever comes first (at least 3 timed calls).
        warmup: untimed calls first.
        threads: CPU threads for both torch and onnxruntime, 1 to 1024 (default: each runtime's own).
        providers: onnxruntime providers (``auto``, ``cpu``, ``cuda``).
        device: torch's device: ``auto`` (CUDA when torch sees a GPU), ``cpu`` or ``cuda``.
        onnx_file: an already exported file to time for the onnxruntime runtime.
        network: for a checkpoint of a network defined in Python: its ``FILE.py:NAME`` again.
        max_accuracy_drop: accuracy points ``onnxruntime-int8``'s choice of format may lose (default 1).

    Every option is checked (:func:`option_problem`) before anything is loaded.
    """
    from zoo.resolver import kind_of, resolve_card

    _check(batches=batches, runtimes=runtimes, iters=iters, seconds=seconds, warmup=warmup, threads=threads,
           providers=providers)
    if device not in ("auto", "cpu", "cuda"):
        raise ZooError(f"--device must be auto, cpu or cuda, not '{device}'")
    batches = [int(b) for b in _items(batches)]
    runtimes = _items(runtimes)
    is_onnx = kind_of(ref) == "onnx"
    if is_onnx and set(runtimes) - {"onnxruntime"}:
        raise ZooError(f"'{ref}' is an ONNX file: only --runtime onnxruntime applies (bench the checkpoint for torch)")
    card = resolve_card(ref)
    results: list[BenchResult] = []
    model = None
    gflops = card.extra.get("gflops_per_image")
    if not is_onnx:
        import torch

        from zoo.flops import (
            gflops_per_image,  # torch: an ONNX file is benched without it
        )
        from zoo.resolver import resolve

        if threads:
            torch.set_num_threads(int(threads))
        model, card = resolve(ref, network=network)
        model.eval()
        gflops = gflops_per_image(model, card)
    inputs = {b: _random_input(card, b) for b in batches}

    for runtime in runtimes:
        if runtime.startswith("onnxruntime"):
            int8 = {"max_accuracy_drop": max_accuracy_drop} if runtime == "onnxruntime-int8" else None
            results += _bench_onnxruntime(None if int8 else (ref if is_onnx else onnx_file), ref, inputs, card,
                                          gflops, iters=iters, seconds=seconds, warmup=warmup, threads=threads,
                                          providers=providers, network=network, int8=int8)
        else:
            results += _bench_torch(model, runtime, inputs, gflops, device=device, iters=iters, seconds=seconds,
                                    warmup=warmup)
    eager = {r.batch: r.images_per_s for r in results if r.runtime == "torch"}
    for r in results:
        if r.batch in eager:
            r.vs_torch = r.images_per_s / eager[r.batch]
    return results


def _random_input(card: Any, batch: int) -> np.ndarray:
    h, w = card.input_size
    return np.random.default_rng(batch).standard_normal((batch, card.channels, h, w)).astype(np.float32)


def _time(call: Callable[[], Any], *, iters: int, seconds: float, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < iters and (len(times) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _result(runtime: str, provider: str, batch: int, times: list[float], gflops: Any, setup: float) -> BenchResult:
    median = float(np.median(times))
    throughput = batch / median
    return BenchResult(runtime=runtime, provider=provider, batch=batch, median_ms=median * 1e3,
                       p90_ms=float(np.percentile(times, 90)) * 1e3, images_per_s=throughput,
                       gflops_per_s=float(gflops) * throughput if gflops else None, calls=len(times), setup_s=setup)


def _bench_torch(model: Any, runtime: str, inputs: dict[int, np.ndarray], gflops: Any, *, device: str,
                 **timing: Any) -> list[BenchResult]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ResourceError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    net = model.to(device)
    setup = 0.0
    if runtime == "torch-compile":
        net = torch.compile(net)
    where = f"torch {device}, {torch.get_num_threads()} threads" if device == "cpu" else f"torch {device}"
    out = []
    for batch, x in inputs.items():
        tensor = torch.from_numpy(x).to(device)

        def call() -> Any:
            with torch.inference_mode():
                y = net(tensor)
            if device == "cuda":
                torch.cuda.synchronize()
            return y

        if runtime == "torch-compile":
            start = time.perf_counter()
            try:
                call()  # compiles (per new shape)
            except Exception as exc:  # noqa: BLE001 - inductor needs a C++ compiler and more
                raise ZooError(f"torch.compile failed: {type(exc).__name__}: {first_line(exc)}") from None
            setup = time.perf_counter() - start
        out.append(_result(runtime, where, batch, _time(call, **timing), gflops, setup))
    return out


def _bench_onnxruntime(onnx_path: Any, ref: Any, inputs: dict[int, np.ndarray], card: Any, gflops: Any, *,
                       threads: int | None, providers: str, network: Any = None, int8: dict | None = None,
                       **timing: Any) -> list[BenchResult]:
    from zoo.runtime.providers import make_session

    setup, runtime, fmt = 0.0, "onnxruntime-int8" if int8 else "onnxruntime", ""
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        if onnx_path is None:
            from zoo.export import export
            from zoo.export.options import default_calibration

            start = time.perf_counter()
            quantize = {"quantize": "auto", "calibration": default_calibration(ref), **int8} if int8 else {}
            report = export(ref, Path(tmp) / "model.onnx", check=False, network=network, **quantize)
            onnx_path, fmt = report.path, report.quantization.get("format", "")
            setup = time.perf_counter() - start
        session, provider = make_session(onnx_path, providers, threads=threads)
        provider = f"{provider}, {fmt}" if fmt else provider
        graph_input = session.get_inputs()[0]
        raw = graph_input.type == "tensor(uint8)"
        out = []
        for batch, x in inputs.items():
            if raw:  # embedded preprocessing: feed pixels
                x = np.random.default_rng(batch).integers(0, 256, (batch, *card.input_size, card.channels), dtype=np.uint8)
            feed = {graph_input.name: x}
            try:
                session.run(None, feed)
            except Exception as exc:  # noqa: BLE001 - a fixed-batch file
                raise ZooError(f"'{onnx_path}' cannot run batch {batch}: {first_line(exc, 160)}") from None
            out.append(_result(runtime, provider, batch,
                               _time(lambda: session.run(None, feed), **timing), gflops, setup))
    return out
