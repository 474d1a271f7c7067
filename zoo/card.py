"""The model card: one typed record describing a model, and its three serialisations.

The catalog entry (TOML table), the checkpoint header (safetensors metadata) and the
ONNX ``metadata_props`` all carry the same keys, written and read here and nowhere else.
String-valued serialisations (safetensors, ONNX) hold each non-string value as JSON.

This module imports only the standard library: the torch-free runtime reads cards too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelCard", "WeightSource", "CARD_FORMAT", "CardError"]

CARD_FORMAT = "zoo-card/1"
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
RESIZE_MODES = ("squash", "center-crop")


class CardError(ValueError):
    """A card field with a wrong type or value."""


@dataclass(frozen=True)
class WeightSource:
    """Where one set of pretrained weights for a model comes from.

    Resolution tries, in order: an explicit file, the standard caches (``file`` under
    torch hub's checkpoint directory, ``hf_hub`` in the Hugging Face cache), an installed
    provider (``provider``, a ``"module:attr"`` returning a path), then ``url``.
    """

    tag: str
    file: str = ""  # file name in torch hub's checkpoints directory
    url: str = ""
    sha256: str = ""  # full hex digest; verified whenever known
    hf_hub: str = ""  # Hugging Face repo id (timm weights)
    provider: str = ""  # "module:attr" of a weights-provider plugin
    labels: str = ""  # label set the weights were trained on, e.g. "imagenet"
    key_map: str = ""  # "module:attr" turning a foreign state_dict into the model's keys
    mean: tuple[float, ...] = ()  # input statistics the weights expect, if not the card's
    std: tuple[float, ...] = ()
    license: str = ""

    @classmethod
    def from_table(cls, tag: str, table: dict[str, Any]) -> WeightSource:
        known = {f.name for f in dataclasses.fields(cls)} - {"tag"}
        unknown = set(table) - known
        if unknown:
            raise CardError(f"weights '{tag}': unknown keys {sorted(unknown)}")
        values = dict(table)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(tag=tag, **values)

    def to_table(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if k != "tag" and v not in ("", ())}


@dataclass
class ModelCard:
    """Everything an application needs to know to build, feed and read a model."""

    # identity
    name: str
    source: str = "builtin"  # catalog that declared it: builtin, timm, or a plugin's name
    factory: str = ""  # "module:attr" building the network
    factory_args: dict[str, Any] = field(default_factory=dict)
    task: str = "image-classification"
    summary: str = ""
    license: str = ""
    tags: tuple[str, ...] = ()

    # input config: the one preprocessing used by training, evaluation, prediction, export
    input_size: tuple[int, int] = (224, 224)  # height, width
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    resize_mode: str = "squash"  # squash to input_size (MATLAB), or resize + center-crop
    crop_pct: float = 0.875  # used by center-crop only

    # head config
    num_classes: int = 1000
    labels: tuple[str, ...] = ()  # empty: classes are named by index

    # weight sources, by tag
    weights: dict[str, WeightSource] = field(default_factory=dict)

    # provenance, filled in checkpoints and ONNX files
    training: dict[str, Any] = field(default_factory=dict)  # options and final metrics
    versions: dict[str, str] = field(default_factory=dict)  # zoo, torch, ...
    extra: dict[str, Any] = field(default_factory=dict)  # anything else (export info, hashes)

    def __post_init__(self) -> None:
        self.input_size = _pair(self.input_size, "input_size")
        self.tags = tuple(str(t) for t in self.tags)
        self.labels = tuple(str(label) for label in self.labels)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.channels = int(self.channels)
        self.num_classes = int(self.num_classes)
        if self.channels not in (1, 3):
            raise CardError(f"{self.name}: channels must be 1 or 3, not {self.channels}")
        for key in ("mean", "std"):
            if len(getattr(self, key)) not in (1, self.channels):
                raise CardError(f"{self.name}: {key} needs 1 or {self.channels} values")
        if any(s <= 0 for s in self.std):
            raise CardError(f"{self.name}: std values must be positive")
        if self.interpolation not in INTERPOLATIONS:
            raise CardError(f"{self.name}: interpolation must be one of {', '.join(INTERPOLATIONS)}")
        if self.resize_mode not in RESIZE_MODES:
            raise CardError(f"{self.name}: resize_mode must be one of {', '.join(RESIZE_MODES)}")
        if self.labels and len(self.labels) != self.num_classes:
            raise CardError(
                f"{self.name}: {len(self.labels)} labels for {self.num_classes} classes"
            )
        self.weights = {
            tag: w if isinstance(w, WeightSource) else WeightSource.from_table(tag, w)
            for tag, w in self.weights.items()
        }

    # -- derived -------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        """Labels, or "0", "1", ... when the card has none."""
        return list(self.labels) if self.labels else [str(i) for i in range(self.num_classes)]

    @property
    def channel_mean(self) -> tuple[float, ...]:
        return self.mean * self.channels if len(self.mean) == 1 else self.mean

    @property
    def channel_std(self) -> tuple[float, ...]:
        return self.std * self.channels if len(self.std) == 1 else self.std

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed (labels reset when the class count changes)."""
        if "num_classes" in changes and "labels" not in changes:
            if int(changes["num_classes"]) != self.num_classes:
                changes["labels"] = ()
        return dataclasses.replace(self, **changes)

    # -- catalog (TOML table) --------------------------------------------------------------

    @classmethod
    def from_table(cls, name: str, table: dict[str, Any], *, source: str = "builtin") -> ModelCard:
        """Build a card from a catalog table (``[models.NAME]``)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"name", "source"}
        unknown = set(table) - known
        if unknown:
            raise CardError(f"model '{name}': unknown keys {sorted(unknown)}")
        table = dict(table)
        if int(table.get("channels", 3)) == 1:  # ImageNet statistics make no sense for gray
            table.setdefault("mean", [0.5])
            table.setdefault("std", [0.5])
        try:
            return cls(name=name, source=source, **table)
        except TypeError as exc:
            raise CardError(f"model '{name}': {exc}") from None

    def to_table(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("name", "source"):
                continue
            value = getattr(self, f.name)
            if f.name == "weights":
                value = {tag: w.to_table() for tag, w in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # -- string metadata (safetensors header, ONNX metadata_props) ------------------------

    def to_metadata(self) -> dict[str, str]:
        """Flat str -> str form, for safetensors metadata and ONNX ``metadata_props``."""
        meta = {"format": CARD_FORMAT, "name": self.name, "source": self.source}
        for key, value in self.to_table().items():
            meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ModelCard:
        """Inverse of :meth:`to_metadata`; unknown keys are kept in ``extra``."""
        if meta.get("format") != CARD_FORMAT:
            raise CardError("no zoo model card in this file's metadata")
        string_fields = {f.name for f in dataclasses.fields(cls) if f.type == "str"}
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, raw in meta.items():
            if key == "format":
                continue
            if key in string_fields:
                values[key] = raw
            elif key in known:
                values[key] = json.loads(raw)
            else:
                extra[key] = raw
        card = cls(**values)
        card.extra.update(extra)
        return card


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise CardError(f"{what} must be [height, width], not {value!r}") from None
    if h <= 0 or w <= 0:
        raise CardError(f"{what} must be positive, not {value!r}")
    return (h, w)
