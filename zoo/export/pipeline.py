"""The export, in order: options, exporter, graph checks, parity, optimisation (parity again), metadata, int8,
then one atomic move.

Everything happens in a hidden temporary folder beside the output (:func:`zoo.atomic.atomic_dir`);
only a fully checked file is moved into place, durably, so a failed export writes nothing, and a
full disk or read-only folder ends as one :class:`~zoo.errors.OutputError` naming the output.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from zoo.atomic import REFUSED, atomic_dir, clean_stale, publish
from zoo.card import ModelCard
from zoo.errors import ZooError, os_errno, write_error
from zoo.export.exporters import export_graph, save, too_big
from zoo.export.graph import check_graph, tidy_shapes, written_opset
from zoo.export.inputs import RawPixelInput
from zoo.export.metadata import exported_card, set_metadata, with_int8
from zoo.export.optimize import optimize_graph
from zoo.export.options import ExportOptions, default_out, onnx_path
from zoo.export.parity import check_parity
from zoo.export.quantize import quantize_int8
from zoo.export.report import ExportReport
from zoo.resolver import kind_of, resolve
from zoo.weights.files import sha256_of

__all__ = ["export", "export_model"]


def export(ref: str | os.PathLike, out: str | os.PathLike | None = None, *, network: Any = None,
           **options: Any) -> ExportReport:
    """Export a registry model or a checkpoint to one ONNX file that carries its card.

    Args:
        ref: a registry name (``digitnet``, ``timm/resnet18``) or a ``.safetensors`` checkpoint.
        out: the ONNX file (default: beside a checkpoint, or ``NAME.onnx`` here).
        network: for a checkpoint of a network defined in Python: its ``FILE.py:NAME`` again.

    Keyword options (:class:`~zoo.export.options.ExportOptions`, all checked before any work):
        opset: ONNX opset to ask for (default 18); the one written is checked and reported.
        batch: ``"dynamic"`` (default) or a fixed batch size.
        quantize: ``"int8"`` (static QDQ), ``"int8-dynamic"``, or ``"auto"``: the fastest of both within
            ``max_accuracy_drop`` points, refused with the measured figures when none is (:mod:`zoo.export.quantize`).
        max_accuracy_drop: accuracy points ``quantize="auto"`` may lose (default 1).
        optimize: ``"auto"`` (default), ``"none"``, ``"basic"``, ``"extended"`` or ``"transformer"``
            (:mod:`zoo.export.optimize`); the optimised graph is checked against torch again.
        embed_preprocessing: the graph takes uint8 NHWC pixels and normalises inside.
        check: compare onnxruntime with torch on random and real images; fail above tolerance.
        exporter: ``"auto"`` (dynamo, then TorchScript with a warning), ``"dynamo"`` or ``"torchscript"``.
        tolerance: largest accepted ``max|ort - torch| / max(1, max|torch|)`` (default 1e-4).
        calibration: image folder (``DIR/<class>/*``) for int8 calibration and accuracy.
        calibration_size: images used to calibrate int8 (default 64).
    """
    opts = ExportOptions(**options)
    target = None if out is None else onnx_path(out)
    model, card = resolve(ref, network=network)
    source_sha256 = sha256_of(ref) if kind_of(ref) == "checkpoint" else ""
    return _export(model, card, target or default_out(ref, card, opts.quantize), opts, source=str(ref),
                   source_sha256=source_sha256)


def export_model(model: torch.nn.Module, card: ModelCard, out: str | os.PathLike, *, source: str = "",
                 source_sha256: str = "", **options: Any) -> ExportReport:
    """Export a torch module described by ``card``; ``options`` are :func:`export`'s."""
    opts = ExportOptions(**options)
    return _export(model, card, onnx_path(out), opts, source=source or card.name, source_sha256=source_sha256)


def _export(model: torch.nn.Module, card: ModelCard, out: Path, opts: ExportOptions, *, source: str,
            source_sha256: str) -> ExportReport:
    started = time.perf_counter()
    model.eval()
    clean_stale(out.parent, only=out.name)  # what a killed export of this file left
    report = ExportReport(path=out, model=card.name, opset_requested=opts.opset,
                          batch=str(opts.fixed_batch or "dynamic"),
                          embedded_preprocessing=opts.embed_preprocessing)
    net = RawPixelInput(model, card).eval() if opts.embed_preprocessing else model
    big = too_big(model)
    with atomic_dir(out) as tmp:
        proto = _export_graph(net, card, tmp, opts, big, report, out)
        report.opset_written = written_opset(proto)
        if report.opset_written != opts.opset:
            report.notes.append(f"asked for opset {opts.opset}, the {report.exporter} exporter wrote "
                                f"{report.opset_written}")
        if opts.check and big:
            report.notes.append("parity check skipped: model over 2 GB")
        elif opts.check:
            check_parity(net, proto.SerializeToString(), card, opts, report)
        proto = _optimize(net, proto, card, opts, report, tmp, big)

        final_card = exported_card(card, model, report, source=source, source_sha256=source_sha256)
        final = tmp / "final.onnx"
        set_metadata(proto, final_card)
        save(proto, final, big, out.name)
        if opts.quantize:
            report.quantization = quantize_int8(final, tmp / "int8.onnx", card, fmt=opts.quantize,
                                                calibration=opts.calibration, calibration_size=opts.calibration_size,
                                                workdir=tmp, max_drop=opts.max_accuracy_drop)
            int8 = onnx.load(str(tmp / "int8.onnx"))
            set_metadata(int8, with_int8(final_card, report.quantization))
            save(int8, final, False, out.name)
        _move_into_place(tmp, final, out, big)
    report.size_bytes = out.stat().st_size
    report.seconds = time.perf_counter() - started
    return report


def _optimize(net: torch.nn.Module, proto: onnx.ModelProto, card: ModelCard, opts: ExportOptions,
              report: ExportReport, tmp: Path, big: bool) -> onnx.ModelProto:
    """``proto`` optimised at ``opts.optimize``, checked like the exporter's graph and against torch again;
    the exporter's graph, with a warning, when the optimiser fails or its graph does not match torch."""
    if opts.optimize == "none":
        return proto
    if big:
        report.notes.append("graph optimisation skipped: model over 2 GB")
        return proto
    parity = copy.copy(report)
    parity.notes = list(report.notes)
    try:
        optimized, facts = optimize_graph(proto, opts.optimize, tmp)
        if facts["level"] == "none":
            return proto
        optimized = tidy_shapes(optimized)
        check_graph(optimized, opts.fixed_batch)
        if opts.check:
            check_parity(net, optimized.SerializeToString(), card, opts, report)
    except ZooError as exc:
        for name in ("max_abs_diff", "tolerance", "checked_batches", "real_images", "notes"):
            setattr(report, name, getattr(parity, name))  # the exporter's graph's figures stand
        reason = f"--optimize {opts.optimize}: {exc}; the graph is kept as exported"
        warnings.warn(reason, stacklevel=4)
        report.notes.append(reason)
        return proto
    report.optimization = facts
    return optimized


def _export_graph(net: torch.nn.Module, card: ModelCard, tmp: Path, opts: ExportOptions, big: bool,
                  report: ExportReport, out: Path) -> onnx.ModelProto:
    """:func:`export_graph`; when the exporters could not write their file, the output's :class:`OutputError`
    (they report their failures as one :class:`ZooError`, with the OS error in its text)."""
    try:
        return export_graph(net, card, tmp, opts, big, report)
    except ZooError as exc:
        if os_errno(exc) in REFUSED:
            raise write_error(out, exc) from exc
        raise


def _move_into_place(tmp: Path, final: Path, out: Path, big: bool) -> None:
    """``final`` to ``out`` (and the weights beside it when over 2 GB); an earlier big export's
    weights file goes, since a small file is self-contained."""
    data = out.with_name(out.name + ".data")
    if big:
        publish(tmp / data.name, data)
    elif data.exists():
        data.unlink()
    publish(final, out)
