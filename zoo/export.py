"""ONNX export: one self-describing file, checked structurally and against torch before it is written.

The file's ``metadata_props`` are the model card (:meth:`zoo.card.ModelCard.to_metadata`,
the same keys as a checkpoint header) plus export facts in ``extra`` (exporter, opset
written, source checkpoint's sha256, input layout, parity figures). Nothing reaches the
output path until every check passed (temporary folder beside it, then ``os.replace``).

Traps handled (from the exporters' trackers): ``dynamo=`` is always passed explicitly; the
dynamo exporter specialises a dynamic axis traced at size 1, so tracing uses batch 2 and
the written graph is checked for a symbolic batch dimension and run at batch 1 and 3; the
dynamo exporter writes weights to ``FILE.onnx.data`` by default, so the file is re-saved
with every tensor inside (unless over protobuf's 2 GB); the opset actually written is read
back; graphs with ATen fallback nodes are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.card import ModelCard
from zoo.errors import ZooError

__all__ = ["export", "export_model", "ExportReport", "EXPORTERS", "DEFAULT_OPSET", "sample_images"]

EXPORTERS = ("dynamo", "torchscript")
DEFAULT_OPSET = 18
TRACE_BATCH = 2
CHECK_BATCHES = (1, 3)
_PROTOBUF_LIMIT = 2**31 - 2**26  # stay clear of protobuf's 2 GiB ceiling


@dataclass
class ExportReport:
    """What an export did and measured."""

    path: Path
    model: str
    exporter: str = ""
    opset_requested: int = DEFAULT_OPSET
    opset_written: int = 0
    batch: str = "dynamic"
    embedded_preprocessing: bool = False
    max_abs_diff: float | None = None  # onnxruntime vs torch, all checked inputs
    tolerance: float | None = None
    checked_batches: tuple[int, ...] = ()
    real_images: int = 0
    size_bytes: int = 0
    seconds: float = 0.0
    quantization: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("file", str(self.path)),
            ("model", self.model),
            ("exporter", self.exporter),
            ("opset", f"{self.opset_written} (asked {self.opset_requested})"),
            ("batch", self.batch),
            ("input", "uint8 NHWC pixels (preprocessing inside)" if self.embedded_preprocessing
             else "float32 NCHW, normalised"),
            ("size", f"{self.size_bytes / 1e6:.2f} MB"),
        ]
        if self.max_abs_diff is not None:
            rows.append(("parity", f"max |ort - torch| = {self.max_abs_diff:.2e} (tolerance {self.tolerance:.1e}) "
                                   f"at batch {', '.join(map(str, self.checked_batches))}, "
                                   f"random + {self.real_images} real images"))
        else:
            rows.append(("parity", "not checked (--no-check)"))
        for key, value in self.quantization.items():
            rows.append((f"int8 {key}", str(value)))
        rows.extend(("note", note) for note in self.notes)
        rows.append(("time", f"{self.seconds:.1f} s"))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def export(
    ref: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    batch: str | int = "dynamic",
    quantize: str | None = None,
    embed_preprocessing: bool = False,
    check: bool = True,
    exporter: str = "auto",
    tolerance: float = 1e-4,
    calibration: str | os.PathLike | None = None,
    calibration_size: int = 64,
) -> ExportReport:
    """Export a registry model or a checkpoint to one ONNX file that carries its card.

    Args:
        ref: a registry name (``digitnet``, ``timm/resnet18``) or a ``.safetensors`` checkpoint.
        out: the ONNX file (default: beside a checkpoint, or ``NAME.onnx`` here).
        opset: ONNX opset to ask for; the one written is checked and reported.
        batch: ``"dynamic"`` (default) or a fixed batch size.
        quantize: ``"int8"`` for static int8 quantization (see :mod:`zoo.quantize`).
        embed_preprocessing: the graph takes uint8 NHWC pixels and normalises inside.
        check: compare onnxruntime with torch on random and real images; fail above tolerance.
        exporter: ``"auto"`` (dynamo, then TorchScript with a warning), ``"dynamo"`` or ``"torchscript"``.
        tolerance: largest accepted ``max|ort - torch| / max(1, max|torch|)``.
        calibration: image folder (``DIR/<class>/*``) for int8 calibration and accuracy.
        calibration_size: images used to calibrate int8.
    """
    from zoo.resolver import kind_of, resolve

    _validate_options(opset, batch, quantize, exporter)
    model, card = resolve(ref)
    from zoo.weights.files import sha256_of

    source_sha256 = sha256_of(ref) if kind_of(ref) == "checkpoint" else ""
    return export_model(model, card, out or _default_out(ref, card, quantize), source=str(ref),
                        source_sha256=source_sha256, opset=opset, batch=batch, quantize=quantize,
                        embed_preprocessing=embed_preprocessing, check=check, exporter=exporter,
                        tolerance=tolerance, calibration=calibration, calibration_size=calibration_size)


def export_model(
    model: Any,
    card: ModelCard,
    out: str | os.PathLike,
    *,
    source: str = "",
    source_sha256: str = "",
    opset: int = DEFAULT_OPSET,
    batch: str | int = "dynamic",
    quantize: str | None = None,
    embed_preprocessing: bool = False,
    check: bool = True,
    exporter: str = "auto",
    tolerance: float = 1e-4,
    calibration: str | os.PathLike | None = None,
    calibration_size: int = 64,
) -> ExportReport:
    """Export a torch module described by ``card`` (see :func:`export` for the options)."""
    started = time.perf_counter()
    import torch

    import zoo

    fixed_batch = _validate_options(opset, batch, quantize, exporter)
    model.eval()
    ref = source or card.name
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ZooError(f"the output file must end in .onnx, not '{out.name}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = ExportReport(path=out, model=card.name, opset_requested=int(opset),
                          batch=str(fixed_batch) if fixed_batch else "dynamic",
                          embedded_preprocessing=embed_preprocessing)

    net = RawPixelInput(model, card) if embed_preprocessing else model
    trace_batch = fixed_batch or TRACE_BATCH
    example = example_input(card, trace_batch, embed_preprocessing)
    big = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > _PROTOBUF_LIMIT
    order = [e for e in (("dynamo", "torchscript") if exporter == "auto" else (exporter,))]

    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        proto = None
        failures: list[str] = []
        for name in order:
            try:
                proto = _export_with(name, net, example, tmp / f"{name}.onnx", int(opset), fixed_batch)
                _check_graph(proto, fixed_batch, big, tmp / f"{name}.onnx")
                report.exporter = name
                break
            except ZooError as exc:
                failures.append(f"{name}: {exc}")
            except Exception as exc:  # noqa: BLE001 - exporter internals raise anything
                failures.append(f"{name}: {_reason(exc)}")
            if name != order[-1]:
                warnings.warn(f"{failures[-1]}; falling back to the {order[-1]} exporter", stacklevel=2)
                report.notes.append(f"fell back after {failures[-1]}")
        if proto is None:
            raise ZooError(f"export of '{card.name}' failed: {'; '.join(failures)}")
        report.opset_written = _opset(proto)
        if report.opset_written != int(opset):
            report.notes.append(f"asked for opset {opset}, the {report.exporter} exporter wrote {report.opset_written}")
        fp32_bytes = None if big else proto.SerializeToString()

        if check:
            if fp32_bytes is None:
                report.notes.append("parity check skipped: model over 2 GB")
            else:
                _check_parity(net, fp32_bytes, card, embed_preprocessing, fixed_batch, tolerance, report)

        exported_card = _exported_card(card, report, source_sha256, ref, zoo.__version__, torch.__version__, model)
        _set_metadata(proto, exported_card)
        final = tmp / "final.onnx"
        _save(proto, final, big, out.name)
        if quantize == "int8":
            from zoo.quantize import quantize_int8

            int8 = tmp / "int8.onnx"
            report.quantization = quantize_int8(final, int8, card, calibration=calibration,
                                                calibration_size=calibration_size, workdir=tmp)
            exported_card.extra["quantization"] = "int8 static QDQ (onnxruntime.quantization)"
            exported_card.extra["int8"] = {k: v for k, v in report.quantization.items() if k != "calibration"}
            import onnx

            qproto = onnx.load(str(int8))
            _set_metadata(qproto, exported_card)
            _save(qproto, final, False, out.name)
        for stale in (out.with_name(out.name + ".data"),):
            if not big and stale.exists():
                stale.unlink()  # an earlier big export's weights; this file is self-contained
        if big:
            os.replace(tmp / (out.name + ".data"), out.with_name(out.name + ".data"))
        os.replace(final, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.size_bytes = out.stat().st_size
    report.seconds = time.perf_counter() - started
    return report


# -- building blocks -----------------------------------------------------------------------


def RawPixelInput(model: Any, card: ModelCard) -> Any:  # noqa: N802 - a module factory
    """Wrap ``model`` so it takes uint8 N x H x W x C pixels and normalises inside the graph."""
    import torch
    from torch import nn

    class _RawPixels(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            mean = torch.tensor(card.channel_mean, dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.tensor(card.channel_std, dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer("scale", 1.0 / (255.0 * std))
            self.register_buffer("shift", mean / std)

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.permute(0, 3, 1, 2).to(torch.float32)
            return self.model(x * self.scale - self.shift)

    return _RawPixels().eval()


def example_input(card: ModelCard, batch: int, raw_pixels: bool, *, seed: int = 0) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    h, w = card.input_size
    if raw_pixels:
        return torch.randint(0, 256, (batch, h, w, card.channels), dtype=torch.uint8, generator=g)
    return torch.randn(batch, card.channels, h, w, generator=g)


def _export_with(name: str, net: Any, example: Any, path: Path, opset: int, fixed_batch: int | None) -> Any:
    import onnx
    import torch

    kwargs: dict[str, Any] = dict(input_names=["input"], output_names=["logits"], opset_version=opset)
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        if name == "dynamo":
            dynamic = None if fixed_batch else ({0: torch.export.Dim("batch", min=1, max=65536)},)
            program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes=dynamic,
                                        verbose=False, **kwargs)
            program.save(str(path), external_data=False if _small(net) else True)
        else:
            dynamic_axes = None if fixed_batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
            torch.onnx.export(net, (example,), str(path), dynamo=False, dynamic_axes=dynamic_axes,
                              do_constant_folding=True, **kwargs)
    return onnx.load(str(path))


def _small(net: Any) -> bool:
    return sum(p.numel() * p.element_size() for p in net.state_dict().values()) <= _PROTOBUF_LIMIT


class _quiet:
    """Silence the exporters' console chatter (progress lines on stdout)."""

    def __enter__(self) -> None:
        import contextlib
        import io

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(contextlib.redirect_stderr(io.StringIO()))

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


def _check_graph(proto: Any, fixed_batch: int | None, big: bool, path: Path) -> None:
    """onnx.checker, no ATen fallbacks, a symbolic (or the fixed) batch dimension."""
    import onnx

    try:
        onnx.checker.check_model(str(path) if big else proto, full_check=False)
    except onnx.checker.ValidationError as exc:
        raise ZooError(f"onnx.checker rejected the graph: {_first_line(exc)}") from None
    fallbacks = sorted({n.op_type for n in _all_nodes(proto.graph)
                        if n.op_type == "ATen" or n.domain in ("org.pytorch.aten", "pkg.torch.ops")})
    if fallbacks:
        raise ZooError(f"graph holds ATen fallback operators ({', '.join(fallbacks)})")
    if len(proto.graph.input) != 1:
        raise ZooError(f"graph has {len(proto.graph.input)} inputs, expected 1")
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if fixed_batch is None and (dim.HasField("dim_value") or not dim.dim_param):
        raise ZooError(f"batch dimension was fixed to {dim.dim_value} instead of staying dynamic")
    if fixed_batch is not None and dim.dim_value != fixed_batch:
        raise ZooError(f"batch dimension is {dim.dim_param or dim.dim_value}, expected {fixed_batch}")


def _all_nodes(graph: Any) -> Any:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def _opset(proto: Any) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def sample_images(channels: int = 3) -> list[Any]:
    """A few real photographs that install with scikit-learn / scikit-image (none downloaded).

    Used as "real" inputs for parity checks; read straight from the packages' data folders.
    """
    import importlib.util

    from zoo.preprocess import open_image

    files: list[Path] = []
    for package, names in (("sklearn", ("datasets/images/china.jpg", "datasets/images/flower.jpg")),
                           ("skimage", ("data/chelsea.png", "data/coffee.png", "data/astronaut.png",
                                        "data/camera.png"))):
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            root = Path(list(spec.submodule_search_locations)[0])
            files += [root / n for n in names if (root / n).is_file()]
    images = [open_image(f) for f in files]
    if not images:  # no photo packages: deterministic synthetic scenes instead
        from PIL import Image

        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:96, 0:128]
        for k in range(3):
            base = np.stack([(xx * (k + 1)) % 256, (yy * (k + 2)) % 256, (xx + yy) % 256], -1)
            noise = rng.integers(0, 40, base.shape)
            images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return images


FLOAT32_FLOOR_FACTOR = 10.0


def _check_parity(net: Any, onnx_bytes: bytes, card: ModelCard, raw: bool, fixed_batch: int | None,
                  tolerance: float, report: ExportReport) -> None:
    """onnxruntime vs torch at batch 1 and 3 (or the fixed batch) on random and real images."""
    import torch

    from zoo.preprocess import Preprocess, normalize
    from zoo.runtime.providers import make_session

    session, _ = make_session(onnx_bytes, "cpu")
    pre = Preprocess.from_card(card)
    pixels = np.stack([pre.pixels(im) for im in sample_images(card.channels)])
    real = pixels if raw else normalize(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)), pre)
    batches = (fixed_batch,) if fixed_batch else CHECK_BATCHES
    inputs = [example_input(card, b, raw, seed=10 + b).numpy() for b in batches]
    for start in range(0, len(real), batches[-1]):
        chunk = real[start:start + batches[-1]]
        if fixed_batch and len(chunk) != fixed_batch:
            continue
        inputs.append(np.ascontiguousarray(chunk))
    worst, scale = 0.0, 1.0
    for x in inputs:
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        try:
            got = session.run(None, {session.get_inputs()[0].name: x})[0]
        except Exception as exc:  # noqa: BLE001
            raise ZooError(f"onnxruntime failed at batch {len(x)}: {_first_line(exc)}") from None
        if got.shape != expected.shape:
            raise ZooError(f"onnxruntime output {got.shape} differs from torch's {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
        scale = max(scale, float(np.max(np.abs(expected))))
    report.max_abs_diff = worst
    report.tolerance = tolerance * scale
    report.checked_batches = tuple(sorted({len(x) for x in inputs}))
    report.real_images = len(real)
    if worst > report.tolerance:
        # Some networks amplify rounding so much that torch's own float32 result is this far from
        # exact arithmetic. onnxruntime is another float32 evaluation (other kernels: Winograd,
        # fused batch norm), whose error is of that order too; an order of magnitude above the
        # floor is what no faithful export exceeds, and what a wrong graph far exceeds.
        # Only where torch itself cannot meet the tolerance; --tolerance 0 asks for exact equality.
        floor = _float32_error(net, inputs) if tolerance > 0 else 0.0
        if floor <= report.tolerance or worst > FLOAT32_FLOOR_FACTOR * floor:
            raise ZooError(
                f"onnxruntime differs from torch by {worst:.2e} (tolerance {report.tolerance:.1e}; torch's "
                f"own float32 error {floor:.1e}); try --opset 17 or the other exporter, or --no-check"
            )
        report.notes.append(
            f"parity {worst:.2e} is over the tolerance but within {FLOAT32_FLOOR_FACTOR:g}x torch's own float32 error "
            f"({floor:.2e} against float64): the network amplifies rounding, the export is faithful"
        )


def _float32_error(net: Any, inputs: list[np.ndarray]) -> float:
    """Largest |torch float32 - torch float64| over ``inputs``: the rounding floor of any parity check."""
    import copy

    import torch

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


def _exported_card(card: ModelCard, report: ExportReport, sha256: str, ref: Any, zoo_version: str,
                   torch_version: str, model: Any) -> ModelCard:
    import onnx
    import onnxruntime

    extra = dict(card.extra)
    extra.update({
        "exporter": report.exporter,
        "opset": report.opset_written,
        "source": str(ref),
        "source_sha256": sha256,
        "input_layout": "NHWC uint8 pixels, normalised inside" if report.embedded_preprocessing
        else "NCHW float32, normalised",
        "output": "logits",
        "batch": report.batch,
        "gflops_per_image": round(gflops_per_image(model, card), 6),
    })
    if report.max_abs_diff is not None:
        extra["parity_max_abs_diff"] = float(f"{report.max_abs_diff:.3g}")
    versions = {**card.versions, "zoo": zoo_version, "torch": torch_version, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    return card.replace(versions=versions, extra=extra)


def gflops_per_image(model: Any, card: ModelCard) -> float:
    """Forward GFLOPs for one image (multiply-add counted as 2), by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = example_input(card, 1, False)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def _set_metadata(proto: Any, card: ModelCard) -> None:
    del proto.metadata_props[:]
    for key, value in card.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "zoo"
    proto.doc_string = f"{card.name}: {card.summary}" if card.summary else card.name


def _save(proto: Any, path: Path, big: bool, final_name: str) -> None:
    import onnx

    if big:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=final_name + ".data", size_threshold=1024)
    else:
        onnx.save_model(proto, str(path), save_as_external_data=False)


def _validate_options(opset: int, batch: str | int, quantize: str | None, exporter: str) -> int | None:
    if quantize not in (None, "", "int8"):
        raise ZooError(f"--quantize takes int8, not '{quantize}'")
    if exporter not in ("auto", *EXPORTERS):
        raise ZooError(f"exporter must be auto, dynamo or torchscript, not '{exporter}'")
    if not 7 <= int(opset) <= 23:
        raise ZooError(f"opset {opset} is outside what the exporters write (7 to 23); 18 is a good choice")
    fixed = _parse_batch(batch)
    if fixed and quantize:
        raise ZooError("--quantize int8 needs a dynamic batch (calibration and measurement use several sizes)")
    return fixed


def _parse_batch(batch: str | int) -> int | None:
    if isinstance(batch, int) or str(batch).isdigit():
        value = int(batch)
        if value < 1:
            raise ZooError(f"--batch must be 'dynamic' or a positive number, not {batch}")
        return value
    if str(batch).lower() == "dynamic":
        return None
    raise ZooError(f"--batch must be 'dynamic' or a positive number, not '{batch}'")


def _default_out(ref: Any, card: ModelCard, quantize: str | None) -> Path:
    suffix = ".int8.onnx" if quantize else ".onnx"
    path = Path(str(ref))
    if path.suffix.lower() == ".safetensors":
        return path.with_name(path.stem + suffix)
    return Path(card.name.replace("/", "_").replace(":", "_") + suffix)


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _reason(exc: BaseException) -> str:
    """The innermost cause of an exporter error, as ``Type: first line``."""
    seen = {id(exc)}
    while (exc.__cause__ or exc.__context__) is not None and id(exc.__cause__ or exc.__context__) not in seen:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen.add(id(exc))
    return f"{type(exc).__name__}: {_first_line(exc)}"
