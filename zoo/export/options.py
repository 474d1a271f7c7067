"""Every export option checked once, before any work: a typo fails in a second, not after an export.

:class:`ExportOptions` holds the keyword options of :func:`zoo.export.export` (and of the
``zoo export`` flags behind them), with their defaults, and checks them when created;
:func:`onnx_path` and :func:`default_out` decide where the file goes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.card import ModelCard
from zoo.errors import ZooError
from zoo.values import real, shown, whole

__all__ = ["ExportOptions", "onnx_path", "default_out", "option_problem", "EXPORTERS", "DEFAULT_OPSET",
           "QUANTIZE", "OPTIMIZE", "default_calibration"]

QUANTIZE = ("int8", "int8-dynamic", "auto")  # int8: static QDQ; auto: the fastest within --max-accuracy-drop
OPTIMIZE = ("auto", "none", "basic", "extended", "transformer")  # zoo.export.optimize.LEVELS
EXPORTERS = ("dynamo", "torchscript")  # tried in this order by exporter="auto"
DEFAULT_OPSET = 18
OPSETS = (7, 23)  # what torch's exporters write


@dataclass(frozen=True)
class ExportOptions:
    """The options of one export, with their defaults; creating one checks them all.

    Raises :class:`ZooError`, naming the ``zoo export`` flag, on the first bad value.
    :func:`zoo.export.export` documents what each option means.
    """

    opset: int = DEFAULT_OPSET
    batch: str | int = "dynamic"  # or a fixed batch size (fixed_batch)
    quantize: str | None = None  # one of QUANTIZE
    embed_preprocessing: bool = False
    check: bool = True
    exporter: str = "auto"  # or one of EXPORTERS
    tolerance: float = 1e-4
    calibration: str | os.PathLike | None = None
    calibration_size: int = 64
    optimize: str = "auto"  # one of OPTIMIZE
    max_accuracy_drop: float = 1.0  # points, for quantize="auto"
    fixed_batch: int | None = field(init=False, default=None)  # None: a dynamic batch

    def __post_init__(self) -> None:
        if self.quantize not in (None, "", *QUANTIZE):
            raise ZooError(f"--quantize takes {', '.join(QUANTIZE)}, not '{self.quantize}' (int8 formats)")
        if self.optimize not in OPTIMIZE:
            raise ZooError(f"--optimize takes {', '.join(OPTIMIZE)}, not '{self.optimize}'")
        if self.exporter not in ("auto", *EXPORTERS):
            raise ZooError(f"exporter must be auto, dynamo or torchscript, not '{self.exporter}'")
        for name in ("opset", "batch", "tolerance", "max_accuracy_drop"):
            problem = option_problem(name, getattr(self, name))
            if problem:
                raise ZooError(f"--{name.replace('_', '-')} {problem}")
        fixed = None if str(self.batch).strip().lower() == "dynamic" else int(self.batch)
        if fixed and self.quantize:
            raise ZooError(f"--quantize {self.quantize} needs a dynamic batch (calibration and measurement use several sizes)")
        if _count(self.calibration_size, 1) is None:
            raise ZooError(f"int8 needs at least one calibration image, not {self.calibration_size}")
        normal = {"opset": int(self.opset), "quantize": self.quantize or None, "tolerance": float(self.tolerance),
                  "calibration_size": int(self.calibration_size), "fixed_batch": fixed,
                  "max_accuracy_drop": float(self.max_accuracy_drop)}
        for name, value in normal.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def exporters(self) -> tuple[str, ...]:
        """The exporters to try, in order."""
        return EXPORTERS if self.exporter == "auto" else (self.exporter,)


def onnx_path(out: str | os.PathLike) -> Path:
    """``out`` as a path, refused unless it names an ``.onnx`` file."""
    path = Path(out)
    if path.suffix.lower() != ".onnx":
        raise ZooError(f"the output file must end in .onnx, not '{path.name}'")
    return path


def default_out(ref: Any, card: ModelCard, quantize: str | None) -> Path:
    """Beside a checkpoint (``model.onnx``, ``model.int8.onnx``), else ``NAME.onnx`` here."""
    suffix = ".int8.onnx" if quantize else ".onnx"
    path = Path(str(ref))
    if path.suffix.lower() == ".safetensors":
        return path.with_name(path.stem + suffix)
    return Path(card.name.replace("/", "_").replace(":", "_") + suffix)


def default_calibration(ref: Any) -> str | None:
    """The folder a checkpoint records as its training data, when it still exists; else None."""
    from zoo.resolver import kind_of  # the resolver: only when asked

    if kind_of(ref) != "checkpoint":
        return None
    from zoo.checkpoint import read_card

    data = read_card(ref).training.get("data")
    return str(data) if data and Path(str(data)).is_dir() else None


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``opset``, ``batch``, ``tolerance`` or ``max_accuracy_drop`` (``"must be ..., not ..."``),
    or None: the one rule behind :class:`ExportOptions` and the ``zoo export`` flags."""
    if name == "opset":
        ok = _count(value, OPSETS[0], OPSETS[1]) is not None
        return None if ok else (f"must be a whole number from {OPSETS[0]} to {OPSETS[1]} (what the exporters "
                                f"write; {DEFAULT_OPSET} is a good choice), not {shown(value)}")
    if name == "batch":
        ok = str(value).strip().lower() == "dynamic" or _count(value, 1) is not None
        return None if ok else f"must be 'dynamic' or a whole number from 1 up, not {shown(value)}"
    if name == "tolerance":
        number = real(value)
        ok = number is not None and number >= 0
        return None if ok else (f"must be 0 (exact equality) or a positive finite number, not {shown(value)}; "
                                "--no-check skips the comparison")
    if name == "max_accuracy_drop":
        number = real(value)
        ok = number is not None and 0 <= number <= 100
        return None if ok else f"must be a number of accuracy points from 0 to 100, not {shown(value)}"
    raise KeyError(name)


def _count(value: Any, low: int, high: float = math.inf) -> int | None:
    """:func:`zoo.values.whole`, digits given as text included (``--batch 8``)."""
    return whole(int(value) if isinstance(value, str) and value.strip().isdigit() else value, low, high)
