"""The model card: one typed record describing a model, and its three serialisations.

The catalog entry (TOML table), the checkpoint header (safetensors metadata) and the
ONNX ``metadata_props`` all carry the same keys, written and read here and nowhere else.
String-valued serialisations (safetensors, ONNX) hold each non-string value as JSON.

A file is data, never code. A card read from a file (:meth:`ModelCard.from_metadata`)
never carries what builds a network (``factory``, ``factory_args``) or finds weights
(``weights``: providers and key maps are code references): those come only from the
installed catalog that the file's ``name`` and ``source`` point to
(:func:`zoo.registry.catalog_card`). Every field is type- and range-checked on the way in.

This module imports only the standard library: the torch-free runtime reads cards too.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from typing import Any

from zoo.values import real

__all__ = ["ModelCard", "WeightSource", "CARD_FORMAT", "CardError", "CATALOG_ONLY", "MAX_CLASSES", "MAX_SIDE"]

CARD_FORMAT = "zoo-card/1"
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
RESIZE_MODES = ("squash", "center-crop")
CROP_MODES = ("center", "squash", "border")  # timm's crop_mode, used by center-crop only
CATALOG_ONLY = ("factory", "factory_args", "weights")  # code references: never written to or read from files
MAX_CLASSES = 100_000  # ImageNet-21k has 21,843; a larger head is a typo or a memory bomb
MAX_SIDE = 8192  # pixels per side of the model input
MAX_LAYERS = 1000  # layers of a layer-array network
MIN_STD, MAX_STAT = 1e-6, 1e6  # pixels are x / 255: past these, normalised float32 input overflows
MIN_CROP_PCT = 0.5  # a smaller crop fraction resizes each image to more than twice the input size first
_MAX_NAME = 200
_MAX_LABEL = 1000


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
            raise CardError(f"weights {tag!r:.60}: unknown keys {sorted(unknown)}")
        values = dict(table)
        for key in ("mean", "std"):
            if key in values:
                values[key] = _floats(values[key], f"weights {tag!r:.60}: {key}")
        return cls(tag=tag, **values)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "str" and not isinstance(value, str):
                raise CardError(f"weights {self.tag!r:.60}: {f.name} must be a string, not {value!r:.60}")

    def to_table(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if k != "tag" and v not in ("", ())}


@dataclass
class ModelCard:
    """Everything an application needs to know to build, feed and read a model."""

    # identity
    name: str
    source: str = "builtin"  # catalog that declared it: builtin, timm, or a plugin's name
    distribution: str = ""  # the pip distribution of that catalog, for "pip install ..." hints
    factory: str = ""  # "module:attr" building the network (catalogs only)
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
    resize_mode: str = "squash"  # squash to input_size (MATLAB), or timm's eval resize + crop
    crop_pct: float = 0.875  # used by center-crop only
    crop_mode: str = "center"  # used by center-crop only: timm's center, squash or border

    # head config
    num_classes: int = 1000
    labels: tuple[str, ...] = ()  # empty: classes are named by index

    # weight sources, by tag
    weights: dict[str, WeightSource] = field(default_factory=dict)

    # a network defined as a layer array (source "layers"): the layers as data, rebuilt by
    # zoo's own layer builder (zoo.layers); empty for catalog models
    layers: tuple[dict[str, Any], ...] = ()

    # provenance, filled in checkpoints and ONNX files
    training: dict[str, Any] = field(default_factory=dict)  # options and final metrics
    versions: dict[str, str] = field(default_factory=dict)  # zoo, torch, ...
    extra: dict[str, Any] = field(default_factory=dict)  # anything else (export info, hashes)

    def __post_init__(self) -> None:
        self.name = _name(self.name, "name")
        where = self.name
        for key in ("source", "distribution", "factory", "task", "summary", "license"):
            if not isinstance(getattr(self, key), str):
                raise CardError(f"{where}: {key} must be a string, not {type(getattr(self, key)).__name__}")
        if self.source:
            self.source = _name(self.source, "source")
        self.tags = tuple(_strings(self.tags, f"{where}: tags", limit=_MAX_NAME))
        self.labels = tuple(_strings(self.labels, f"{where}: labels", limit=_MAX_LABEL))
        self.input_size = _pair(self.input_size, f"{where}: input_size")
        self.channels = _integer(self.channels, f"{where}: channels")
        self.num_classes = _integer(self.num_classes, f"{where}: num_classes")
        self.mean = _floats(self.mean, f"{where}: mean")
        self.std = _floats(self.std, f"{where}: std")
        self.crop_pct = _crop_pct(self.crop_pct, f"{where}: crop_pct")
        if self.channels not in (1, 3):
            raise CardError(f"{where}: channels must be 1 or 3, not {self.channels}")
        if not 1 <= self.num_classes <= MAX_CLASSES:
            raise CardError(f"{where}: num_classes must be between 1 and {MAX_CLASSES:,}, not {self.num_classes}")
        for key in ("mean", "std"):
            if len(getattr(self, key)) not in (1, self.channels):
                raise CardError(f"{where}: {key} needs 1 or {self.channels} values")
        if not all(MIN_STD <= s <= MAX_STAT for s in self.std):
            raise CardError(f"{where}: std values must be positive, in [{MIN_STD:g}, {MAX_STAT:g}], "
                            f"not {list(self.std)}")
        if not all(abs(m) <= MAX_STAT for m in self.mean):
            raise CardError(f"{where}: mean values must lie in [-{MAX_STAT:g}, {MAX_STAT:g}], not {list(self.mean)}")
        if self.interpolation not in INTERPOLATIONS:
            raise CardError(f"{where}: interpolation must be one of {', '.join(INTERPOLATIONS)}")
        if self.resize_mode not in RESIZE_MODES:
            raise CardError(f"{where}: resize_mode must be one of {', '.join(RESIZE_MODES)}")
        if self.crop_mode not in CROP_MODES:
            raise CardError(f"{where}: crop_mode must be one of {', '.join(CROP_MODES)}")
        if self.labels and len(self.labels) != self.num_classes:
            raise CardError(f"{where}: {len(self.labels)} labels for {self.num_classes} classes")
        for key in ("factory_args", "weights", "training", "versions", "extra"):
            if not isinstance(getattr(self, key), dict) or not all(isinstance(k, str) for k in getattr(self, key)):
                raise CardError(f"{where}: {key} must be a table with string keys")
        self.layers = _layer_list(self.layers, f"{where}: layers")
        self.weights = {
            tag: w if isinstance(w, WeightSource) else WeightSource.from_table(tag, _table(w, f"weights {tag!r:.60}"))
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
    def from_table(cls, name: str, table: dict[str, Any], *, source: str = "builtin",
                   distribution: str = "") -> ModelCard:
        """Build a card from a catalog table (``[models.NAME]``)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"name", "source", "distribution"}
        unknown = set(table) - known
        if unknown:
            raise CardError(f"model {name!r:.60}: unknown keys {sorted(unknown)}")
        table = dict(table)
        if table.get("channels", 3) == 1:  # ImageNet statistics make no sense for gray
            table.setdefault("mean", [0.5])
            table.setdefault("std", [0.5])
        try:
            return cls(name=name, source=source, distribution=distribution, **table)
        except TypeError as exc:
            raise CardError(f"model {name!r:.60}: {exc}") from None

    def to_table(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("name", "source", "distribution"):
                continue
            value = getattr(self, f.name)
            if f.name == "weights":
                value = {tag: w.to_table() for tag, w in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # -- string metadata (safetensors header, ONNX metadata_props) ------------------------

    def to_metadata(self) -> dict[str, str]:
        """Flat str -> str form, for safetensors metadata and ONNX ``metadata_props``.

        Everything but :data:`CATALOG_ONLY`: a file names its model, the catalog builds it.
        """
        meta = {"format": CARD_FORMAT, "name": self.name, "source": self.source, "distribution": self.distribution}
        for key, value in self.to_table().items():
            if key not in CATALOG_ONLY and not (key == "layers" and not value):
                meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ModelCard:
        """Inverse of :meth:`to_metadata`, for untrusted files: every value is checked, and
        :data:`CATALOG_ONLY` keys (older files wrote them) are ignored. Unknown keys are kept
        in ``extra`` as plain strings."""
        if not isinstance(meta, dict) or meta.get("format") != CARD_FORMAT:
            raise CardError("no zoo model card in this file's metadata")
        string_fields = {f.name for f in dataclasses.fields(cls) if f.type == "str"}
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, raw in meta.items():
            if key == "format" or key in CATALOG_ONLY:
                continue
            if not isinstance(key, str) or not isinstance(raw, str):
                raise CardError("card metadata must map strings to strings")
            if key in string_fields:
                values[key] = raw
            elif key in known:
                try:
                    values[key] = json.loads(raw)
                except (ValueError, RecursionError):
                    raise CardError(f"card field '{key}' is not valid JSON") from None
            else:
                extra[key] = raw
        if "name" not in values:
            raise CardError("the card names no model")
        try:
            card = cls(**values)
        except TypeError as exc:
            raise CardError(f"malformed card: {exc}") from None
        card.extra.update(extra)
        return card


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CardError(f"{what} must be [height, width], not {value!r:.60}")
    h, w = (_integer(v, what) for v in value)
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise CardError(f"{what} must be between 1 and {MAX_SIDE} pixels per side, not {value!r}")
    return (h, w)


def _crop_pct(value: Any, what: str) -> float:
    """center-crop first resizes to ``floor(side / crop_pct)``: at most twice the side (timm's are 0.875 to 1.15)."""
    number = real(value)
    if number is None or not MIN_CROP_PCT <= number <= 2:
        raise CardError(f"{what} must be a number in [{MIN_CROP_PCT}, 2], not {value!r:.60}")
    return number


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CardError(f"{what} must be an integer, not {value!r:.60}")
    return int(value)


def _floats(values: Any, what: str) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= 3:
        raise CardError(f"{what} must be a list of 1 to 3 numbers, not {values!r:.60}")
    found = tuple(real(v) for v in values)
    if None in found:
        raise CardError(f"{what} must hold finite numbers, not {values!r:.60}")
    return found


def _strings(values: Any, what: str, *, limit: int) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise CardError(f"{what} must be a list of strings, not {type(values).__name__}")
    if len(values) > MAX_CLASSES or not all(isinstance(v, str) and len(v) <= limit for v in values):
        raise CardError(f"{what} must be at most {MAX_CLASSES:,} strings of at most {limit} characters")
    return list(values)


def _name(value: Any, what: str) -> str:
    """A name that is safe to look up and to print on one line."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_NAME or not value.isprintable():
        raise CardError(f"{what} must be a printable string of 1 to {_MAX_NAME} characters, not {value!r:.60}")
    return value


def _layer_list(value: Any, what: str) -> tuple[dict[str, Any], ...]:
    """The shape of a layer array (zoo.layers checks each layer's values before building)."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_LAYERS:
        raise CardError(f"{what} must be a list of at most {MAX_LAYERS} layers")
    scalars = (str, int, float, bool, type(None))
    for layer in value:
        if not isinstance(layer, dict) or not all(isinstance(k, str) for k in layer) or not all(
                isinstance(v, scalars) or (isinstance(v, list) and all(isinstance(x, scalars) for x in v))
                for v in layer.values()):
            raise CardError(f"{what} must hold tables of plain values, not {layer!r:.60}")
    return tuple(dict(layer) for layer in value)


def _table(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError(f"{what} must be a table, not {type(value).__name__}")
    return value
