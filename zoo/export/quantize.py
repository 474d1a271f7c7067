"""Static int8 quantization of an exported file, calibrated on a few training images, and measured.

onnxruntime's quantization pre-processing (shape inference + graph optimisation) runs first:
without it, quantized ResNets did not run here. Static QDQ (uint8 activations, int8
per-channel weights) is the path for CNNs; ``quantize_dynamic`` made conv nets ~4x slower.
Size, speed and accuracy are measured on this machine, because int8 accuracy depends on
the CPU (VNNI or not).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from zoo.card import ModelCard
from zoo.data import open_dataset
from zoo.errors import ZooError, first_line
from zoo.export.inputs import model_input, sample_pixels
from zoo.preprocess import Preprocess
from zoo.runtime.providers import make_session

__all__ = ["quantize_int8", "calibration_set", "compare_models"]


def calibration_set(card: ModelCard, folder: str | os.PathLike | None, *, calibration_size: int = 64,
                    eval_size: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """uint8 NHWC pixels to calibrate on, pixels and labels (or None) to measure on, and a description.

    A labelled folder (``DIR/<class>/*``) gives a seeded sample of ``calibration_size``
    images to calibrate on and up to ``eval_size`` other images to measure accuracy on.
    Without one, the bundled sample photographs calibrate (fine for ImageNet models only).
    """
    if folder is None:
        pixels = sample_pixels(card)
        return pixels, pixels, None, f"{len(pixels)} bundled sample photos (pass --calibration DIR for real data)"
    pre = Preprocess.from_card(card)
    dataset = open_dataset(folder)
    names = card.class_names
    missing = [c for c in dataset.classes if c not in names]
    if missing:
        raise ZooError(f"calibration folder classes {missing[:3]} are not labels of '{card.name}' ({names[:5]}...)")
    to_model = np.asarray([names.index(c) for c in dataset.classes])
    order = np.random.default_rng(seed).permutation(len(dataset))
    calib_idx, eval_idx = order[:calibration_size], order[calibration_size:calibration_size + eval_size]
    h, w = pre.input_size
    calib = np.stack([pre.pixels(dataset.load(int(i))) for i in calib_idx]) if len(calib_idx) else \
        np.empty((0, h, w, pre.channels), np.uint8)
    if len(eval_idx) == 0:
        eval_idx = calib_idx
    evals = np.stack([pre.pixels(dataset.load(int(i))) for i in eval_idx])
    labels = to_model[np.asarray(dataset.labels)[eval_idx]]
    return calib, evals, labels, f"{len(calib)} images from {folder}, accuracy on {len(evals)} others"


def quantize_int8(fp32_path: Path, out_path: Path, card: ModelCard, *, calibration: Any = None,
                  calibration_size: int = 64, workdir: Path | None = None) -> dict[str, Any]:
    """Write the static-int8 version of ``fp32_path`` to ``out_path``; return measured figures."""
    calib, evals, labels, described = calibration_set(card, calibration, calibration_size=calibration_size)
    session, _ = make_session(fp32_path, "cpu")
    input_name = session.get_inputs()[0].name
    feeds = [_feed(session, card, calib[i:i + 8]) for i in range(0, len(calib), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    workdir = Path(workdir or out_path.parent)
    prepped = workdir / "prepped.onnx"
    try:
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
    except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the original then
        prepped = fp32_path
    try:
        quantize_static(str(prepped), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"CalibTensorRangeSymmetric": False})
    except Exception as exc:  # noqa: BLE001
        raise ZooError(f"int8 quantization failed: {type(exc).__name__}: {first_line(exc)}") from None
    figures = compare_models(fp32_path, out_path, card, evals, labels)
    figures["calibration"] = described
    return figures


def compare_models(fp32_path: Path, int8_path: Path, card: ModelCard, pixels: np.ndarray,
                   labels: np.ndarray | None, *, repeats: int = 20) -> dict[str, Any]:
    """Size, speed (batch 1 and 32, onnxruntime CPU) and accuracy of the fp32 and int8 files."""
    out: dict[str, Any] = {
        "size_fp32_mb": round(os.path.getsize(fp32_path) / 1e6, 3),
        "size_int8_mb": round(os.path.getsize(int8_path) / 1e6, 3),
    }
    predictions, speed = {}, {}
    for tag, path in (("fp32", fp32_path), ("int8", int8_path)):
        session, _ = make_session(path, "cpu")
        name = session.get_inputs()[0].name
        x = _feed(session, card, pixels)
        predictions[tag] = np.concatenate(
            [session.run(None, {name: x[i:i + 64]})[0].argmax(1) for i in range(0, len(x), 64)])
        for batch in (1, 32):
            xb = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
            speed[(tag, batch)] = _median_seconds(functools.partial(session.run, None, {name: xb}), repeats) / batch
    out["top1_agreement"] = round(float(np.mean(predictions["fp32"] == predictions["int8"])), 4)
    if labels is not None:
        out["accuracy_fp32"] = round(float(np.mean(predictions["fp32"] == labels)), 4)
        out["accuracy_int8"] = round(float(np.mean(predictions["int8"] == labels)), 4)
        out["accuracy_change_points"] = round(100 * (out["accuracy_int8"] - out["accuracy_fp32"]), 2)
    for batch in (1, 32):
        out[f"img_per_s_fp32_b{batch}"] = round(1 / speed[("fp32", batch)], 1)
        out[f"img_per_s_int8_b{batch}"] = round(1 / speed[("int8", batch)], 1)
        out[f"speedup_b{batch}"] = round(speed[("fp32", batch)] / speed[("int8", batch)], 2)
    return out


def _feed(session: Any, card: ModelCard, pixels: np.ndarray) -> np.ndarray:
    """Pixels as ``session``'s graph takes them (uint8 NHWC with embedded preprocessing)."""
    return model_input(pixels, card, raw=session.get_inputs()[0].type == "tensor(uint8)")


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
