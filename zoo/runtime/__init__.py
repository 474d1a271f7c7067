"""The torch-free runtime: zoo ONNX files on onnxruntime, with numpy and Pillow only.

    from zoo.runtime import Predictor
    p = Predictor("digitnet.onnx")          # CUDA when it works, else CPU: see p.provider
    p.predict("seven.png").label             # '7'

The file carries its labels and preprocessing (``metadata_props``), so nothing else is needed.
This package imports numpy, onnxruntime, Pillow, :mod:`zoo.card` and :mod:`zoo.errors` only.
Names are imported on first use, so ``zoo.preprocess`` (shared with training) does
not pull in onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Predictor",
    "Prediction",
    "Preprocess",
    "IMAGE_SUFFIXES",
    "make_session",
    "cuda_device_count",
    "open_image",
    "to_pixels",
    "normalize",
    "softmax",
]

_LAZY = {
    "Predictor": "zoo.runtime.predictor",
    "Prediction": "zoo.prediction",
    "IMAGE_SUFFIXES": "zoo.preprocess",
    "softmax": "zoo.prediction",
    "make_session": "zoo.runtime.providers",
    "cuda_device_count": "zoo.runtime.providers",
    "Preprocess": "zoo.preprocess",
    "open_image": "zoo.preprocess",
    "to_pixels": "zoo.preprocess",
    "normalize": "zoo.preprocess",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
