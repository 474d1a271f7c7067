"""int8 quantization of an exported file: static QDQ calibrated on the user's images, or dynamic; measured.

onnxruntime's quantization pre-processing (shape inference + graph optimisation) runs first:
without it, quantized ResNets did not run here. Static QDQ (uint8 activations, int8
per-channel weights) is the path for CNNs; dynamic quantization is limited to MatMul, Gemm and
Attention (on convolutions it made conv nets ~4x slower): it suits transformers and large
fully-connected layers. Size, speed and accuracy are measured on this machine
(:mod:`zoo.export.int8_choice`), because both depend on the CPU (VNNI or not).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from zoo.card import ModelCard
from zoo.data import open_dataset
from zoo.errors import ZooError, first_line
from zoo.export.inputs import sample_pixels
from zoo.export.int8_choice import choose, feed, measure_candidates
from zoo.preprocess import Preprocess
from zoo.runtime.providers import make_session

__all__ = ["quantize_int8", "calibration_set", "compare_models", "write_format", "FORMATS", "DYNAMIC_OPS"]

#: the int8 formats ``auto`` measures: static QDQ (uint8 activations, int8 per-channel weights, calibrated)
#: and dynamic (int8 weights, activations quantized per call; MatMul/Gemm/Attention only, where it pays)
FORMATS = ("int8", "int8-dynamic")
DYNAMIC_OPS = ("MatMul", "Gemm", "Attention")


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


def quantize_int8(fp32_path: Path, out_path: Path, card: ModelCard, *, fmt: str = "int8", calibration: Any = None,
                  calibration_size: int = 64, workdir: Path | None = None, max_drop: float = 1.0) -> dict[str, Any]:
    """Write the int8 version of ``fp32_path`` to ``out_path`` in ``fmt``; return measured figures.

    ``fmt``: ``int8`` (static QDQ), ``int8-dynamic``, or ``auto``: each of :data:`FORMATS` written and
    measured, the fastest at batch 1 within ``max_drop`` accuracy points kept
    (:func:`zoo.export.int8_choice.choose`, which refuses with every candidate's figures when none is).
    """
    calib, evals, labels, described = calibration_set(card, calibration, calibration_size=calibration_size)
    workdir = Path(workdir or out_path.parent)
    formats = FORMATS if fmt == "auto" else (fmt,)
    written: dict[str, Path | str] = {}
    for name in formats:
        path = workdir / f"{name}.onnx"
        try:
            write_format(name, fp32_path, path, card, calib, workdir)
            written[name] = path
        except ZooError as exc:
            if fmt != "auto":
                raise
            written[name] = str(exc)  # a candidate that could not be written is listed as such
    measured = measure_candidates(fp32_path, written, card, evals, labels)
    best = choose(measured, max_drop) if fmt == "auto" else measured[fmt]
    Path(written[best["format"]]).replace(out_path)
    best = {**best, "calibration": described}
    if fmt == "auto":
        best["candidates"] = {m["format"]: m for m in measured.values()}  # every format's figures
    return best


def write_format(fmt: str, fp32_path: Path, out_path: Path, card: ModelCard, calib: np.ndarray,
                 workdir: Path) -> None:
    """``fp32_path`` as ``fmt`` int8 (static QDQ calibrated on ``calib``, or dynamic) at ``out_path``."""
    prepped = _pre_process(fp32_path, workdir / f"prepped-{fmt}.onnx")
    try:
        with _quiet_root_logger():
            if fmt == "int8-dynamic":
                quantize_dynamic(str(prepped), str(out_path), weight_type=QuantType.QInt8, per_channel=False,
                                 op_types_to_quantize=list(DYNAMIC_OPS))
            else:
                quantize_static(str(prepped), str(out_path), _reader(fp32_path, card, calib), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax,
                                extra_options={"CalibTensorRangeSymmetric": False})
    except Exception as exc:  # noqa: BLE001
        raise ZooError(f"{fmt} quantization failed: {type(exc).__name__}: {first_line(exc)}") from None


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer warns through the root logger about what it skips (a LayerNorm weight per
    channel): internal notes, not the user's to act on. Errors still show. A handler of our own for the
    duration keeps ``logging.warning`` from configuring the root logger for the rest of the process."""
    root = logging.getLogger()
    old = root.level
    errors = logging.StreamHandler()
    errors.setLevel(logging.ERROR)
    root.addHandler(errors)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(old)
        root.removeHandler(errors)


def _pre_process(fp32_path: Path, prepped: Path) -> Path:
    """onnxruntime's pre-processing; its symbolic shape inference first (it knows the ``com.microsoft``
    operators a transformer graph holds, which onnx's does not), then without it, else the file as it is."""
    for skip_symbolic in (False, True):
        try:
            quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=skip_symbolic)
            return prepped
        except Exception:  # noqa: BLE001,S112 - pre-processing is an optimisation; the next way, then none
            continue
    return fp32_path


def _reader(fp32_path: Path, card: ModelCard, calib: np.ndarray) -> CalibrationDataReader:
    session, _ = make_session(fp32_path, "cpu")
    input_name = session.get_inputs()[0].name
    feeds = [feed(session, card, calib[i:i + 8]) for i in range(0, len(calib), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def compare_models(fp32_path: Path, int8_path: Path, card: ModelCard, pixels: np.ndarray,
                   labels: np.ndarray | None, *, repeats: int = 20) -> dict[str, Any]:
    """Size, speed (batch 1 and 32, onnxruntime CPU) and accuracy of the fp32 and int8 files."""
    return measure_candidates(fp32_path, {"int8": int8_path}, card, pixels, labels, repeats=repeats)["int8"]
