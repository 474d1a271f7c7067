"""What an export did and measured (:class:`ExportReport`), and failures as one readable line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.export.options import DEFAULT_OPSET

__all__ = ["ExportReport"]


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
    optimization: dict[str, Any] = field(default_factory=dict)  # level, nodes_before, nodes_after, fused
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
            batches = ", ".join(map(str, self.checked_batches))
            rows.append(("parity", (f"max |ort - torch| = {self.max_abs_diff:.2e} (tolerance {self.tolerance:.1e}) "
                                    f"at batch {batches}, random + {self.real_images} real images")))
        else:
            rows.append(("parity", "not checked (--no-check)"))
        if self.optimization:
            o = self.optimization
            fused = ", ".join(f"{op.removeprefix('com.microsoft.')} {n}" for op, n in o.get("fused", {}).items())
            rows.append(("optimize", f"{o['level']}: {o['nodes_before']} -> {o['nodes_after']} nodes"
                                     + (f" ({fused})" if fused else "")))
        for key, value in self.quantization.items():
            if key == "candidates":
                rows.extend(("int8 candidate", v["summary"]) for v in value.values())
            elif key != "summary":
                rows.append((f"int8 {key}", str(value)))
        rows.extend(("note", note) for note in self.notes)
        rows.append(("time", f"{self.seconds:.1f} s"))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
