"""Measuring int8 candidates against the fp32 file, and ``--quantize auto``'s choice between them.

Each candidate is timed with onnxruntime on the CPU at batch 1 and 32 (median of ``repeats``
calls, after one warm-up) and run on the measurement images. Its accuracy drop, in points, is
``accuracy(fp32) - accuracy(int8)`` on labelled images (never below 0), or, without labels, the
share of images whose top-1 class differs from fp32's (``100 x (1 - agreement)``). ``auto`` keeps
the candidate fastest at batch 1 among those within ``--max-accuracy-drop``; when none is, it
refuses with every candidate's drop and speed in one line.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.card import ModelCard
from zoo.errors import ZooError
from zoo.export.inputs import model_input
from zoo.runtime.providers import make_session

__all__ = ["measure_candidates", "choose", "drop_points", "feed"]

SPEED_BATCHES = (1, 32)


def measure_candidates(fp32_path: Path, written: dict[str, Path | str], card: ModelCard, pixels: np.ndarray,
                       labels: np.ndarray | None, *, repeats: int = 20) -> dict[str, dict[str, Any]]:
    """Figures of each candidate (``written``: format -> file, or the reason it could not be written)."""
    fp32 = _measure(fp32_path, card, pixels, repeats)
    out: dict[str, dict[str, Any]] = {}
    for fmt, path in written.items():
        if not isinstance(path, Path):
            out[fmt] = {"format": fmt, "error": str(path), "summary": f"{fmt}: failed ({path})"}
            continue
        try:
            int8 = _measure(path, card, pixels, repeats)
        except Exception as exc:  # noqa: BLE001 - a quantized graph onnxruntime cannot run
            out[fmt] = {"format": fmt, "error": f"onnxruntime cannot run it: {type(exc).__name__}",
                        "summary": f"{fmt}: does not run"}
            continue
        out[fmt] = _figures(fmt, fp32_path, path, fp32, int8, labels)
    return out


def drop_points(figures: dict[str, Any]) -> float:
    """The accuracy drop the budget is measured in (see the module's docstring)."""
    if "accuracy_change_points" in figures:
        return max(0.0, -float(figures["accuracy_change_points"]))
    return round(100 * (1 - float(figures["top1_agreement"])), 2)


def choose(measured: dict[str, dict[str, Any]], max_drop: float) -> dict[str, Any]:
    """The fastest candidate (batch 1) within ``max_drop`` points; a one-line refusal naming every figure otherwise."""
    fit = [m for m in measured.values() if "error" not in m and m["drop_points"] <= max_drop]
    if not fit:
        figures = "; ".join(m["summary"] for m in measured.values())
        raise ZooError(f"--quantize auto: no int8 format is within --max-accuracy-drop {max_drop:g} points "
                       f"({figures}); nothing written")
    return max(fit, key=lambda m: m["img_per_s_int8_b1"])


def _figures(fmt: str, fp32_path: Path, path: Path, fp32: dict, int8: dict, labels: np.ndarray | None) -> dict:
    out: dict[str, Any] = {
        "format": fmt,
        "size_fp32_mb": round(os.path.getsize(fp32_path) / 1e6, 3),
        "size_int8_mb": round(os.path.getsize(path) / 1e6, 3),
        "top1_agreement": round(float(np.mean(fp32["top1"] == int8["top1"])), 4),
    }
    if labels is not None:
        out["accuracy_fp32"] = round(float(np.mean(fp32["top1"] == labels)), 4)
        out["accuracy_int8"] = round(float(np.mean(int8["top1"] == labels)), 4)
        out["accuracy_change_points"] = round(100 * (out["accuracy_int8"] - out["accuracy_fp32"]), 2)
        out["measured_on"] = f"{len(labels)} labelled images"
    else:
        out["measured_on"] = f"{len(fp32['top1'])} unlabelled images (agreement with fp32)"
    for batch in SPEED_BATCHES:
        out[f"img_per_s_fp32_b{batch}"] = round(batch / fp32[batch], 1)
        out[f"img_per_s_int8_b{batch}"] = round(batch / int8[batch], 1)
        out[f"speedup_b{batch}"] = round(fp32[batch] / int8[batch], 2)
    out["drop_points"] = drop_points(out)
    out["summary"] = (f"{fmt}: drop {out['drop_points']:g} points, {out['speedup_b1']:g}x fp32 at batch 1 "
                      f"({out['img_per_s_int8_b1']:g} img/s), {out['speedup_b32']:g}x at batch 32")
    return out


def feed(session: Any, card: ModelCard, pixels: np.ndarray) -> np.ndarray:
    """Pixels as ``session``'s graph takes them (uint8 NHWC with embedded preprocessing)."""
    return model_input(pixels, card, raw=session.get_inputs()[0].type == "tensor(uint8)")


def _measure(path: Path, card: ModelCard, pixels: np.ndarray, repeats: int) -> dict[Any, Any]:
    """Top-1 classes on ``pixels`` and median seconds per call at each of :data:`SPEED_BATCHES`."""
    session, _ = make_session(path, "cpu")
    name = session.get_inputs()[0].name
    x = feed(session, card, pixels)
    top1 = np.concatenate([session.run(None, {name: x[i:i + 64]})[0].argmax(1) for i in range(0, len(x), 64)])
    out: dict[Any, Any] = {"top1": top1}
    for batch in SPEED_BATCHES:
        xb = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
        out[batch] = _median_seconds(functools.partial(session.run, None, {name: xb}), repeats)
    return out


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
