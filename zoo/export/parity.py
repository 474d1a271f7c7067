"""Parity: onnxruntime (CPU) against torch on random inputs and real photos, with a float32 floor.

The largest absolute difference must stay within ``tolerance x max(1, max|torch logits|)``, or,
for networks that amplify rounding, within :data:`FLOAT32_FLOOR_FACTOR` times torch's own
float32 error (its distance from a float64 evaluation of the same network,
:func:`float32_error`: the rounding floor), whichever is larger: onnxruntime is another float32
evaluation, with other kernels, and may land a few times farther from the exact result than
torch does. The report says so in a note when the floor decided. A wrong graph misses by far
more; ``tolerance=0`` demands exact equality and skips the floor.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from zoo.card import ModelCard
from zoo.errors import ZooError, first_line
from zoo.export.inputs import example_input, model_input, sample_pixels
from zoo.export.options import ExportOptions
from zoo.export.report import ExportReport
from zoo.runtime.providers import make_session

__all__ = ["check_parity", "float32_error", "CHECK_BATCHES", "FLOAT32_FLOOR_FACTOR"]

CHECK_BATCHES = (1, 3)  # a dynamic batch runs at 1 and 3: neither is the traced size
FLOAT32_FLOOR_FACTOR = 10.0


def check_parity(net: torch.nn.Module, onnx_bytes: bytes, card: ModelCard, opts: ExportOptions,
                 report: ExportReport) -> None:
    """Compare at batch 1 and 3 (or the fixed batch); fill the report's parity fields or raise."""
    raw = opts.embed_preprocessing
    session, _ = make_session(onnx_bytes, "cpu")
    real = model_input(sample_pixels(card), card, raw=raw)
    batches = (opts.fixed_batch,) if opts.fixed_batch else CHECK_BATCHES
    inputs = [example_input(card, b, raw, seed=10 + b).numpy() for b in batches]
    for start in range(0, len(real), batches[-1]):
        chunk = real[start:start + batches[-1]]
        if opts.fixed_batch and len(chunk) != opts.fixed_batch:
            continue
        inputs.append(np.ascontiguousarray(chunk))
    worst, scale = 0.0, 1.0
    for x in inputs:
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        try:
            got = session.run(None, {session.get_inputs()[0].name: x})[0]
        except Exception as exc:  # noqa: BLE001
            raise ZooError(f"onnxruntime failed at batch {len(x)}: {first_line(exc)}") from None
        if got.shape != expected.shape:
            raise ZooError(f"onnxruntime output {got.shape} differs from torch's {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
        scale = max(scale, float(np.max(np.abs(expected))))
    report.max_abs_diff = worst
    report.tolerance = opts.tolerance * scale
    report.checked_batches = tuple(sorted({len(x) for x in inputs}))
    report.real_images = len(real)
    if worst > report.tolerance:
        # onnxruntime's error is of the order of torch's own float32 error (other kernels:
        # Winograd, fused batch norm); an order of magnitude above that floor is what no
        # faithful export exceeds, and what a wrong graph far exceeds.
        floor = float32_error(net, inputs) if opts.tolerance > 0 else 0.0
        if worst > FLOAT32_FLOOR_FACTOR * floor:
            raise ZooError(
                f"onnxruntime differs from torch by {worst:.2e} (tolerance {report.tolerance:.1e}; torch's "
                f"own float32 error {floor:.1e}); try --opset 17 or the other exporter, or --no-check"
            )
        report.notes.append(
            f"parity {worst:.2e} is over the tolerance but within {FLOAT32_FLOOR_FACTOR:g}x torch's own float32 error "
            f"({floor:.2e} against float64): the network amplifies rounding, the export is faithful"
        )


def float32_error(net: torch.nn.Module, inputs: list[np.ndarray]) -> float:
    """Largest |torch float32 - torch float64| over ``inputs``: the rounding floor of any parity check."""
    exact = copy.deepcopy(net).to(torch.float64).eval()
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            t = torch.from_numpy(x)
            try:
                reference = exact(t.to(torch.float64) if t.is_floating_point() else t)
            except RuntimeError:  # a graph that hard-codes float32 (embedded preprocessing): no floor
                return 0.0
            worst = max(worst, float((net(t).to(torch.float64) - reference).abs().max()))
    return worst
