"""The card an exported file carries in ``metadata_props``: the model's card plus export facts.

The keys are exactly a checkpoint header's (:meth:`zoo.card.ModelCard.to_metadata`); the
export facts (exporter, opset written, source and its sha256, input layout, batch, GFLOPs,
parity, int8 figures) go in ``extra``, and the versions that made the file in ``versions``.
"""

from __future__ import annotations

from typing import Any

import onnx
import onnxruntime
import torch

from zoo._version import __version__
from zoo.card import ModelCard
from zoo.export.report import ExportReport
from zoo.flops import gflops_per_image

__all__ = ["exported_card", "with_int8", "set_metadata"]


def exported_card(card: ModelCard, model: torch.nn.Module, report: ExportReport, *, source: str,
                  source_sha256: str) -> ModelCard:
    """``card`` with the export facts of ``report`` and the versions that wrote the file."""
    extra = dict(card.extra)
    extra.update({
        "exporter": report.exporter,
        "opset": report.opset_written,
        "source": source,
        "source_sha256": source_sha256,
        "input_layout": "NHWC uint8 pixels, normalised inside" if report.embedded_preprocessing
        else "NCHW float32, normalised",
        "output": "logits",
        "batch": report.batch,
        "gflops_per_image": round(gflops_per_image(model, card), 6),
    })
    if report.optimization:
        extra["optimization"] = {k: v for k, v in report.optimization.items() if k != "fused"}
    if report.max_abs_diff is not None:
        extra["parity_max_abs_diff"] = float(f"{report.max_abs_diff:.3g}")
    versions = {**card.versions, "zoo": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    return card.replace(versions=versions, extra=extra)


QUANTIZATION = {"int8": "int8 static QDQ, per-channel weights (onnxruntime.quantization)",
                "int8-dynamic": "int8 dynamic, MatMul/Gemm/Attention weights (onnxruntime.quantization)"}


def with_int8(card: ModelCard, figures: dict[str, Any]) -> ModelCard:
    """The exported card of the int8 file: how it was quantized and what that measured."""
    int8 = {k: v for k, v in figures.items() if k not in ("calibration", "summary")}
    return card.replace(extra={**card.extra, "quantization": QUANTIZATION[figures.get("format", "int8")],
                               "int8": int8})


def set_metadata(proto: onnx.ModelProto, card: ModelCard) -> None:
    """Replace the file's ``metadata_props`` with ``card``; name the producer and the model."""
    del proto.metadata_props[:]
    for key, value in card.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "zoo"
    proto.doc_string = f"{card.name}: {card.summary}" if card.summary else card.name
