"""Layer specs: a MATLAB layer array as plain data (JSON-able dicts, one per layer), checked without torch.
:func:`validate_layers` checks a spec from text (:mod:`zoo.layers.parse`) or an untrusted file the same
way, fills in defaults and MATLAB's default names, and refuses networks too large to build."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from zoo.card import MAX_CLASSES, MAX_SIDE
from zoo.errors import ZooError

__all__ = ["LAYER_TYPES", "NORMALIZATIONS", "validate_layers", "set_num_classes", "output_shapes",
           "card_fields", "resolve_padding", "show"]

MAX_LAYERS = 1000
MAX_WINDOW = 1024  # filter and pool sizes, strides, dilations, padding
MAX_FILTERS = 65_536
MAX_PARAMETERS = 500_000_000  # a larger network from a file is a typo or a memory bomb
MAX_ACTIVATION = 2**30  # values in one layer's output for one image
MAX_NAME = 200
MAX_LINE = 10_000_000
NORMALIZATIONS = ("zerocenter", "zscore", "rescale-zero-one", "none")
# nn.Module attributes: torch refuses them as module names (names starting with '_' are refused too).
RESERVED_NAMES = frozenset("""T_destination add_module append apply bfloat16 buffers call_super_init children compile
    cpu cuda double dump_patches eval extend extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half insert ipu load_state_dict modules mtia named_buffers named_children named_modules
    named_parameters parameters pop register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule
    share_memory state_dict to to_empty train training type xpu zero_grad""".split())


class Field(NamedTuple):
    """One argument of a MATLAB layer function and the spec key it fills."""
    key: str  # key in the spec dict
    label: str  # MATLAB's argument name (positional) or option name ('Name', 'Stride')
    kind: str  # how the value is checked: a key of _INTEGERS or _REALS, or name, normalization
    default: Any = None  # None: required
    positional: bool = False


class LayerType(NamedTuple):
    """A MATLAB layer function: its spec type, default name, and ``net.Layers`` type column."""
    type: str
    function: str
    default_name: str
    title: str
    fields: tuple[Field, ...]


def _layer(type_: str, function: str, default_name: str, title: str, *fields: Field) -> LayerType:
    return LayerType(type_, function, default_name, title, (Field("name", "Name", "name", ""),) + fields)


_LEARN_RATES = (Field("weight_learn_rate_factor", "WeightLearnRateFactor", "factor", 1.0),
                Field("bias_learn_rate_factor", "BiasLearnRateFactor", "factor", 1.0))
_POOL = (Field("pool_size", "poolSize", "size", positional=True), Field("stride", "Stride", "size", 1),
         Field("padding", "Padding", "padding", 0))
LAYER_TYPES: dict[str, LayerType] = {t.type: t for t in (
    _layer("imageinput", "imageInputLayer", "imageinput", "Image Input",
           Field("input_size", "inputSize", "input_size", positional=True),
           Field("normalization", "Normalization", "normalization", "zerocenter")),
    _layer("convolution2d", "convolution2dLayer", "conv", "Convolution",
           Field("filter_size", "filterSize", "size", positional=True),
           Field("filters", "numFilters", "filters", positional=True),
           Field("stride", "Stride", "size", 1), Field("dilation", "DilationFactor", "size", 1),
           Field("padding", "Padding", "padding", 0), *_LEARN_RATES),
    _layer("batchnormalization", "batchNormalizationLayer", "batchnorm", "Batch Normalization"),
    _layer("relu", "reluLayer", "relu", "ReLU"),
    _layer("leakyrelu", "leakyReluLayer", "leakyrelu", "Leaky ReLU",
           Field("scale", "scale", "scale", 0.01, positional=True)),
    _layer("maxpooling2d", "maxPooling2dLayer", "maxpool", "Max Pooling", *_POOL),
    _layer("averagepooling2d", "averagePooling2dLayer", "avgpool", "Average Pooling", *_POOL),
    _layer("globalaveragepooling2d", "globalAveragePooling2dLayer", "gapool", "Global Average Pooling"),
    _layer("dropout", "dropoutLayer", "dropout", "Dropout",
           Field("probability", "probability", "probability", 0.5, positional=True)),
    _layer("fullyconnected", "fullyConnectedLayer", "fc", "Fully Connected",
           Field("output_size", "outputSize", "outputs", positional=True), *_LEARN_RATES),
    _layer("softmax", "softmaxLayer", "softmax", "Softmax"),
    _layer("classification", "classificationLayer", "classoutput", "Classification Output"),
)}
WINDOWED = ("convolution2d", "maxpooling2d", "averagepooling2d")
SPATIAL = WINDOWED + ("globalaveragepooling2d",)


class LayerProblem(Exception):
    """A problem with layer ``index`` (None: the whole list); :func:`reporting` makes it a ZooError."""

    def __init__(self, detail: str, index: int | None = None):
        super().__init__(detail)
        self.detail, self.index = detail, index


def show(value: Any, depth: int = 0) -> str:
    """A value as MATLAB would print it, on one short line."""
    if isinstance(value, str):
        text = "'" + value.replace("'", "''") + "'"
    elif isinstance(value, (list, tuple)):
        text = "[" + (" ".join(show(v, depth + 1) for v in value[:8]) if depth < 2 else "...") + \
            (" ...]" if len(value) > 8 else "]")
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        text = format(value, "g")
    else:
        text = str(value).lower() if isinstance(value, bool) or value is None else f"a {type(value).__name__}"
    text = text if text.isprintable() else ascii(text)
    return text if len(text) <= 60 else text[:57] + "..."


@contextmanager
def reporting(layers: Any, source: str | None = None) -> Iterator[None]:
    """Turn a :class:`LayerProblem` into a one-line ZooError that starts with where it is: ``lab6.m:7: ``
    given a source, else ``layer 3 'conv_1' (line 7): `` (only what is known and valid)."""
    try:
        yield
    except LayerProblem as problem:
        index = problem.index
        ok = index is not None and isinstance(layers, list) and 0 <= index < len(layers) \
            and isinstance(layers[index], dict)
        line, name = (layers[index].get("line"), layers[index].get("name")) if ok else (None, None)
        line = line if isinstance(line, int) and not isinstance(line, bool) and 1 <= line <= MAX_LINE else None
        name = f" {show(name)}" if isinstance(name, str) and name else ""
        where = (f"{source}:{line}: " if line else f"{source}: ") if source is not None else \
            "layers: " if index is None else f"layer {index + 1}{name}{f' (line {line})' if line else ''}: "
        raise ZooError(where + problem.detail) from None


_INTEGERS = {  # kind: (allowed lengths, low, high, what)
    "size": ((1, 2), 1, MAX_WINDOW, f"an integer from 1 to {MAX_WINDOW} or [h w] of them"),
    "input_size": ((2, 3), 1, MAX_SIDE, f"[h w] or [h w c] with sides from 1 to {MAX_SIDE}"),
    "padding": ((1, 2, 4), 0, MAX_WINDOW, f"'same', an integer from 0 to {MAX_WINDOW}, [h w] or [t b l r]"),
    "filters": ((1,), 1, MAX_FILTERS, f"an integer from 1 to {MAX_FILTERS:,}"),
    "outputs": ((1,), 1, MAX_CLASSES, f"an integer from 1 to {MAX_CLASSES:,}"),
    "line": ((1,), 1, MAX_LINE, "a line number"),
}
_REALS = {"factor": (0, 1e6, "a number from 0 to 1e6"), "scale": (-1e6, 1e6, "a number from -1e6 to 1e6"),
          "probability": (0, 1, "a number from 0 to below 1")}


def _value(kind: str, value: Any, label: str) -> Any:
    """``value`` checked and in its spec form: sizes as [h w], padding as 'same' or [t b l r]."""
    if kind == "name":
        if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
            raise LayerProblem(f"{label} must be printable text of at most {MAX_NAME} characters, not {show(value)}")
        why = "contains '.'" if "." in value else "starts with '_'" if value.startswith("_") else \
            "is an nn.Module attribute" if value in RESERVED_NAMES else ""
        if why:
            raise LayerProblem(f"layer name {show(value)} {why}, which torch refuses in a module name")
        return value
    if kind == "normalization":
        if not isinstance(value, str) or value.lower() not in NORMALIZATIONS:
            raise LayerProblem(f"{label} must be one of {', '.join(map(show, NORMALIZATIONS))}, not {show(value)}")
        return value.lower()
    if kind == "padding" and isinstance(value, str) and value.lower() == "same":
        return "same"
    if kind in _REALS:
        low, high, what = _REALS[kind]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not low <= value <= high or (kind == "probability" and value == 1):
            raise LayerProblem(f"{label} must be {what}, not {show(value)}")
        return float(value)
    counts, low, high, what = _INTEGERS[kind]
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) not in counts or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            and float(v).is_integer() and low <= v <= high for v in items):
        raise LayerProblem(f"{label} must be {what}, not {show(value)}")
    ints = [int(v) for v in items]
    if kind == "input_size":
        if len(ints) == 3 and ints[2] not in (1, 3):
            raise LayerProblem(f"{label} must have 1 (grayscale) or 3 (RGB) channels, not {ints[2]}")
        return ints[:2] + (ints[2:] or [1])
    if kind == "padding":
        return ints * 4 if len(ints) == 1 else [ints[0]] * 2 + [ints[1]] * 2 if len(ints) == 2 else ints
    return (ints * 2 if len(ints) == 1 else ints) if kind == "size" else ints[0]


def _check_layer(raw: Any, index: int) -> dict[str, Any]:
    """One layer, checked and complete (defaults filled in; an empty name is assigned later)."""
    if not isinstance(raw, dict):
        raise LayerProblem(f"a layer must be a table, not {show(raw)}", index)
    kind = LAYER_TYPES.get(raw.get("type")) if isinstance(raw.get("type"), str) else None
    if kind is None:
        raise LayerProblem(f"unknown layer type {show(raw.get('type'))} (known: {', '.join(LAYER_TYPES)})", index)
    keys = {f.key for f in kind.fields} | {"type", "line"}
    for key in raw:
        if key not in keys:
            raise LayerProblem(f"{kind.function}: unknown key {show(key)} (known: {', '.join(sorted(keys))})", index)
    layer: dict[str, Any] = {"type": kind.type}
    try:
        for f in kind.fields:
            if f.key not in raw and f.default is None:
                raise LayerProblem(f"missing required argument {f.label}")
            layer[f.key] = _value(f.kind, raw.get(f.key, f.default), f.label if f.positional else f"'{f.label}'")
        if "line" in raw:
            layer["line"] = _value("line", raw["line"], "line")
        if kind.type in ("maxpooling2d", "averagepooling2d") and isinstance(layer["padding"], list):
            pool_h, pool_w = layer["pool_size"]
            if any(p >= k for p, k in zip(layer["padding"], (pool_h, pool_h, pool_w, pool_w))):
                raise LayerProblem(f"'Padding' {show(layer['padding'])} must be smaller than poolSize "
                                   f"{show(layer['pool_size'])}")
    except LayerProblem as problem:
        raise LayerProblem(f"{kind.function}: {problem.detail}", index) from None
    return layer


def _assign_names(layers: list[dict[str, Any]]) -> None:
    """MATLAB's default names: 'conv' for a lone convolution, 'conv_1', 'conv_2' for several."""
    taken: dict[str, int] = {}
    for i, name in ((i, layer["name"]) for i, layer in enumerate(layers) if layer["name"]):
        if name in taken:
            first = layers[taken[name]]
            also = f"line {first['line']}" if "line" in first else f"layer {taken[name] + 1}"
            raise LayerProblem(f"duplicate layer name {show(name)} (also {also})", i)
        taken[name] = i
    unnamed = Counter(LAYER_TYPES[layer["type"]].default_name for layer in layers if not layer["name"])
    numbers_used: Counter[str] = Counter()
    for i, layer in enumerate(layers):
        if layer["name"]:
            continue
        base = LAYER_TYPES[layer["type"]].default_name
        name = base if unnamed[base] == 1 and base not in taken else ""
        while not name or name in taken:
            numbers_used[base] += 1
            name = f"{base}_{numbers_used[base]}"
        layer["name"], taken[name] = name, i


def _check_order(layers: list[dict[str, Any]]) -> None:
    """imageInputLayer first; last, a fullyConnectedLayer, then optionally softmaxLayer, classificationLayer."""
    types = [layer["type"] for layer in layers]
    if types[0] != "imageinput":
        raise LayerProblem("the first layer must be an imageInputLayer", 0)
    if "fullyconnected" not in types:
        raise LayerProblem("the network needs a fullyConnectedLayer to give its class scores", len(types) - 1)
    last_fc = len(types) - 1 - types[::-1].index("fullyconnected")
    for i, t in enumerate(types[1:last_fc], 1):
        if t in ("imageinput", "softmax", "classification"):
            where = "first" if t == "imageinput" else "at the end, after the last fullyConnectedLayer"
            raise LayerProblem(f"{LAYER_TYPES[t].function} may only come {where}", i)
    for k, t in enumerate(types[last_fc + 1:]):
        if k > 1 or t != ("softmax", "classification")[k]:
            raise LayerProblem("classificationLayer must follow a softmaxLayer" if t == "classification" else
                               f"{LAYER_TYPES[t].function} after the last fullyConnectedLayer: a network ends with "
                               "fullyConnectedLayer, then optionally softmaxLayer and classificationLayer", last_fc + 1 + k)


def resolve_padding(layer: dict[str, Any], height: int, width: int) -> list[int]:
    """[top bottom left right] of a checked conv or pool layer on a height x width input. MATLAB's
    'same' gives ceil(input / stride) outputs, any odd row or column of padding at the bottom or right."""
    if layer["padding"] != "same":
        return list(layer["padding"])
    window = layer.get("filter_size") or layer["pool_size"]
    dilation = layer.get("dilation", [1, 1])
    pads = []
    for size, k, s, d in zip((height, width), window, layer["stride"], dilation):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


def shapes_and_parameters(layers: list[dict[str, Any]]) -> tuple[list[tuple[int, ...]], list[int]]:
    """Output shape (C, H, W) or (N,) and parameter count of each checked layer."""
    shapes, params, shape = [], [], ()  # type: ignore[var-annotated]
    for i, layer in enumerate(layers):
        t, function, count = layer["type"], LAYER_TYPES[layer["type"]].function, 0
        if t == "imageinput":
            shape = (layer["input_size"][2], *layer["input_size"][:2])
        elif t in SPATIAL and len(shape) != 3:
            raise LayerProblem(f"{function} needs an image input, but gets a vector of {shape[0]} values "
                               "from a fullyConnectedLayer", i)
        elif t == "globalaveragepooling2d":
            shape = (shape[0], 1, 1)
        elif t in WINDOWED:
            (c, h, w), window = shape, layer.get("filter_size") or layer["pool_size"]
            top, bottom, left, right = resolve_padding(layer, h, w)
            dilation = layer.get("dilation", [1, 1])
            out = [(size + pad - d * (k - 1) - 1) // s + 1 for size, pad, k, s, d in
                   zip((h, w), (top + bottom, left + right), window, layer["stride"], dilation)]
            if min(out) < 1:
                raise LayerProblem(f"{function}: its {window[0]}×{window[1]} window does not fit the {h}×{w} "
                                   f"input (output {max(out[0], 0)}×{max(out[1], 0)}); the image is too small here", i)
            if t == "convolution2d":
                count, c = window[0] * window[1] * c * layer["filters"] + layer["filters"], layer["filters"]
            shape = (c, *out)
        elif t == "batchnormalization":
            count = 2 * shape[0]
        elif t == "fullyconnected":
            count = math.prod(shape) * layer["output_size"] + layer["output_size"]
            shape = (layer["output_size"],)
        if math.prod(shape) > MAX_ACTIVATION:
            raise LayerProblem(f"{function}: its output of {'×'.join(map(str, shape))} values per image is more "
                               f"than zoo's limit of {MAX_ACTIVATION:,}", i)
        if sum(params) + count > MAX_PARAMETERS:  # sums of at most MAX_LAYERS small ints: cheap
            raise LayerProblem(f"{function}: the network would hold {sum(params) + count:,} parameters here, more "
                               f"than zoo's limit of {MAX_PARAMETERS:,}", i)
        shapes.append(shape)
        params.append(count)
    return shapes, params


def check_layers(layers: Any) -> list[dict[str, Any]]:
    """:func:`validate_layers` raising :class:`LayerProblem` (for callers that name the file)."""
    if not isinstance(layers, list):
        raise LayerProblem(f"layers must be a list, not {show(layers)}")
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise LayerProblem(f"a network needs 1 to {MAX_LAYERS} layers, not {len(layers)}")
    checked = [_check_layer(raw, i) for i, raw in enumerate(layers)]
    _assign_names(checked)
    _check_order(checked)
    shapes_and_parameters(checked)
    return checked


def validate_layers(layers: Any) -> list[dict[str, Any]]:
    """Check a spec (from text or an untrusted file); return a copy with defaults and names filled in."""
    with reporting(layers):
        return check_layers(layers)


def set_num_classes(layers: Any, num_classes: int) -> list[dict[str, Any]]:
    """A checked copy of ``layers`` whose last fullyConnectedLayer has ``num_classes`` outputs."""
    with reporting(layers):
        checked = check_layers(layers)
        last_fc = max(i for i, layer in enumerate(checked) if layer["type"] == "fullyconnected")
        checked[last_fc]["output_size"] = _value("outputs", num_classes, "num_classes")
        return check_layers(checked)


def output_shapes(layers: Any) -> list[tuple[int, ...]]:
    """Each layer's output shape for one image: (C, H, W), or (N,) from a fullyConnectedLayer on."""
    with reporting(layers):
        return shapes_and_parameters(check_layers(layers))[0]


def card_fields(layers: Any) -> dict[str, Any]:
    """The :class:`zoo.card.ModelCard` fields a spec determines."""
    with reporting(layers):
        checked = check_layers(layers)
        params = shapes_and_parameters(checked)[1]
    h, w, c = checked[0]["input_size"]
    last_fc = [layer for layer in checked if layer["type"] == "fullyconnected"][-1]
    return {"input_size": (h, w), "channels": c, "num_classes": last_fc["output_size"],
            "normalization": checked[0]["normalization"], "parameters": sum(params)}
