"""The exporter: torch's dynamo exporter (TorchScript if it fails), and saving one file.

``dynamo=`` is always passed explicitly (torch 2.9 changed its default). The dynamo exporter
specialises a dynamic axis traced at size 1 (pytorch#149065), so a dynamic batch is traced
at :data:`TRACE_BATCH` with a symbolic ``batch`` dimension. It writes weights to
``FILE.onnx.data`` by default; :func:`save` writes one self-contained file instead, unless
the weights pass protobuf's 2 GB limit.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from zoo.card import ModelCard
from zoo.errors import ZooError, first_line
from zoo.export.graph import check_graph, tidy_shapes
from zoo.export.inputs import example_input
from zoo.export.options import ExportOptions
from zoo.export.report import ExportReport

__all__ = ["export_graph", "save", "too_big", "TRACE_BATCH"]

TRACE_BATCH = 2
_PROTOBUF_LIMIT = 2**31 - 2**26  # stay clear of protobuf's 2 GiB ceiling


def too_big(model: torch.nn.Module) -> bool:
    """Whether the weights pass protobuf's limit for one file (they then go to ``FILE.onnx.data``)."""
    return sum(p.numel() * p.element_size() for p in model.state_dict().values()) > _PROTOBUF_LIMIT


def export_graph(net: torch.nn.Module, card: ModelCard, workdir: Path, opts: ExportOptions, big: bool,
                 report: ExportReport) -> onnx.ModelProto:
    """The first graph, of ``opts.exporters`` in order, that exports and passes :func:`check_graph`.

    Each failure before the last exporter warns and adds a note; all failing raises.
    """
    example = example_input(card, opts.fixed_batch or TRACE_BATCH, opts.embed_preprocessing)
    failures: list[str] = []
    for name in opts.exporters:
        path = workdir / f"{name}.onnx"
        try:
            proto = tidy_shapes(_export_with(name, net, example, path, opts.opset, opts.fixed_batch, big), big)
            check_graph(proto, opts.fixed_batch, path if big else None)
            report.exporter = name
            return proto
        except ZooError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - exporter internals raise anything
            failures.append(f"{name}: {_reason(exc)}")
        if name != opts.exporters[-1]:
            fallback = f"{failures[-1]}; falling back to the {opts.exporters[-1]} exporter"
            warnings.warn(fallback, stacklevel=4)  # at the caller of export() / export_model()
            report.notes.append(f"fell back after {failures[-1]}")
    raise ZooError(f"export of '{card.name}' failed: {'; '.join(failures)}")


def _export_with(name: str, net: torch.nn.Module, example: torch.Tensor, path: Path, opset: int,
                 fixed_batch: int | None, big: bool) -> onnx.ModelProto:
    kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["logits"], "opset_version": opset}
    with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),  # the exporters' chatter
          contextlib.redirect_stderr(io.StringIO())):
        warnings.simplefilter("ignore")
        if name == "dynamo":
            dynamic = None if fixed_batch else ({0: torch.export.Dim("batch", min=1, max=65536)},)
            program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes=dynamic,
                                        verbose=False, **kwargs)
            program.save(str(path), external_data=big)
        else:
            dynamic_axes = None if fixed_batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
            torch.onnx.export(net, (example,), str(path), dynamo=False, dynamic_axes=dynamic_axes,
                              do_constant_folding=True, **kwargs)
    return onnx.load(str(path))


def save(proto: onnx.ModelProto, path: Path, big: bool, final_name: str) -> None:
    """One self-contained file; over 2 GB, weights in ``final_name.data`` beside it."""
    if big:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=final_name + ".data", size_threshold=1024)
    else:
        onnx.save_model(proto, str(path), save_as_external_data=False)


def _reason(exc: BaseException) -> str:
    """The innermost cause of an exporter error, as ``Type: first line``."""
    seen = {id(exc)}
    while (exc.__cause__ or exc.__context__) is not None and id(exc.__cause__ or exc.__context__) not in seen:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen.add(id(exc))
    return f"{type(exc).__name__}: {first_line(exc)}"
