"""Networks the user defines: a MATLAB layer array, a Python factory, or a torch module.

- ``lab6.m`` (or ``.txt``): a layer array as the lecture writes it. Its card holds the layers
  as data (source ``layers``), so its checkpoints load anywhere, without the file: zoo's own
  layer builder (:mod:`zoo.layers`) rebuilds the network.
- ``net.py:NAME``: a function or ``nn.Module`` class in a Python file. Its checkpoints name it
  only as text (source ``python``): loading one needs the same ``FILE.py:NAME`` again, because
  zoo never imports a path or name read from a file.
- an ``nn.Module`` object, from Python (``zoo.train(module, ...)``).

The card (input size, channels, mean/std) of a Python network comes from, in order: the
caller's hints (``--input-size``/``--channels`` or ``card={...}``), a ``zoo_card`` dict on the
factory or a ``ZOO_CARD`` dict in its file, and the factory's keyword defaults
(``input_size``, ``in_chans``/``in_channels``/``channels``, ``mean``, ``std``).
"""

from __future__ import annotations

import inspect
import re
import runpy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zoo.card import CardError, ModelCard
from zoo.errors import ZooError, first_line
from zoo.registry import LAYERS_SOURCE, PYTHON_SOURCE

__all__ = ["LAYER_SUFFIXES", "is_layer_file", "is_python_ref", "layers_card", "python_card", "module_card",
           "python_factory", "build_python", "check_forward", "fit_normalization", "NORMALIZATIONS_FROM_DATA"]

LAYER_SUFFIXES = (".m", ".txt")
_PYTHON_REF = re.compile(r"(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
#: imageInputLayer normalizations whose statistics come from the training images
NORMALIZATIONS_FROM_DATA = ("zerocenter", "zscore")
_HINT_KEYS = ("name", "input_size", "channels", "mean", "std", "num_classes", "labels", "interpolation")


def is_layer_file(ref: Any) -> bool:
    return isinstance(ref, (str, Path)) and Path(str(ref)).suffix.lower() in LAYER_SUFFIXES


def is_python_ref(ref: Any) -> bool:
    """``FILE.py:NAME`` (or a bare ``FILE.py``, which is an error that asks for the name)."""
    return isinstance(ref, (str, Path)) and (str(ref).endswith(".py") or bool(_PYTHON_REF.fullmatch(str(ref))))


# -- layer arrays ---------------------------------------------------------------------------


def layers_card(path: str | Path) -> ModelCard:
    """The card of the layer array in ``path``: the layers as data, input and classes from them.

    MATLAB's imageInputLayer normalizations map onto the card's mean/std on 0..1 pixels:
    ``none`` passes raw 0..255 values (std 1/255), ``rescale-zero-one`` passes 0..1,
    ``zerocenter`` (MATLAB's default) and ``zscore`` take their statistics from the training
    images when training starts (:func:`fit_normalization`).
    """
    from zoo.layers import (  # the parser only where a layer file is named
        card_fields,
        parse_layers,
    )

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZooError(f"layer file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read layer file '{path}': {first_line(exc)}") from None
    layers = parse_layers(text, source=path.name)
    fields = card_fields(layers)
    channels = fields["channels"]
    normalization = fields["normalization"]
    std = 1.0 if normalization == "rescale-zero-one" else 1 / 255
    return ModelCard(
        name=_model_name(path.stem), source=LAYERS_SOURCE, summary=f"layer array from {path.name}",
        input_size=tuple(fields["input_size"]), channels=channels, mean=(0.0,) * channels, std=(std,) * channels,
        num_classes=fields["num_classes"], layers=tuple(layers),
        extra={"defined_in": path.name, "normalization": normalization,
               "normalization_fitted": normalization not in NORMALIZATIONS_FROM_DATA},
    )


def fit_normalization(card: ModelCard, source: Any) -> ModelCard:
    """Fill in a ``zerocenter``/``zscore`` card's mean (and std) from a training source's uint8 pixels.

    Per channel, on at most 4,096 evenly spaced images, read 256 at a time (MATLAB's zerocenter
    subtracts the mean image; a per-channel mean is what every exported preprocessing can carry).
    """
    import torch  # torch: describing a layer file stays torch-free

    normalization = card.extra.get("normalization")
    if normalization not in NORMALIZATIONS_FROM_DATA or card.extra.get("normalization_fitted"):
        return card
    rows = torch.arange(0, len(source), max(1, len(source) // 4096))
    total = squares = None
    count = 0
    for pixels, _ in source.batches(list(rows.split(256))):
        x = pixels.to(torch.float64) / 255.0
        sums, sq = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))
        total, squares = (sums, sq) if total is None else (total + sums, squares + sq)
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = None
    if normalization == "zscore":  # the sample's standard deviation, as torch.std (Bessel's correction)
        std = ((squares - count * mean * mean) / max(count - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-6)
    return card.replace(
        mean=tuple(round(float(v), 6) for v in mean),
        std=card.std if std is None else tuple(round(float(v), 6) for v in std),
        extra={**card.extra, "normalization_fitted": True},
    )


# -- Python networks -------------------------------------------------------------------------


def _split_python_ref(ref: str | Path) -> tuple[Path, str]:
    match = _PYTHON_REF.fullmatch(str(ref))
    if match is None:
        raise ZooError(f"name the network in '{ref}': FILE.py:NAME, e.g. {ref}:make_net")
    return Path(match["file"]), match["name"]


def _run_file(path: Path) -> dict[str, Any]:
    """The globals of a Python file the user named (on the command line or in Python)."""
    if not path.is_file():
        raise ZooError(f"Python file '{path}' does not exist")
    try:
        return runpy.run_path(str(path), run_name=f"zoo_network_{_model_name(path.stem)}")
    except SystemExit:
        raise ZooError(f"'{path}' exited while being imported") from None
    except Exception as exc:  # the user's code can fail in any way; the first line says where
        raise ZooError(f"importing '{path}' failed: {type(exc).__name__}: {first_line(exc)}") from None


def python_factory(ref: str | Path) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The callable ``FILE.py:NAME`` names, and the ``ZOO_CARD`` dict of its file (or ``{}``)."""
    path, name = _split_python_ref(ref)
    namespace = _run_file(path)
    if name not in namespace:
        found = [k for k, v in namespace.items() if callable(v) and not k.startswith("_")
                 and getattr(v, "__module__", None) == namespace.get("__name__")]
        raise ZooError(f"'{path}' defines no '{name}'" + (f" (it defines {', '.join(found[:8])})" if found else ""))
    factory = namespace[name]
    if not callable(factory):
        raise ZooError(f"'{ref}' is a {type(factory).__name__}, not a function or nn.Module class")
    file_card = namespace.get("ZOO_CARD", {})
    if not isinstance(file_card, Mapping):
        raise ZooError(f"ZOO_CARD in '{path}' must be a dict, not {type(file_card).__name__}")
    return factory, dict(file_card)


def _keyword_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    found = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    for alias in ("in_chans", "in_channels"):
        if alias in found:
            found.setdefault("channels", found.pop(alias))
    return {k: v for k, v in found.items() if k in _HINT_KEYS and v is not None}


def _card_from(values: dict[str, Any], *, name: str, source: str, what: str, extra: dict[str, Any]) -> ModelCard:
    missing = [k for k in ("input_size", "channels") if k not in values]
    if missing:
        raise ZooError(f"{what} does not say its {' and '.join(m.replace('_', ' ') for m in missing)}: give "
                       f"--input-size/--channels, a ZOO_CARD = {{'input_size': (28, 28), 'channels': 1}} dict, "
                       f"or keyword defaults (input_size=28, in_chans=1)")
    unknown = set(values) - set(_HINT_KEYS)
    if unknown:
        raise ZooError(f"{what}: unknown card keys {', '.join(sorted(unknown))} (known: {', '.join(_HINT_KEYS)})")
    values = {"num_classes": 10, **values, "name": _model_name(str(values.get("name", name)))}
    if int(values["channels"]) == 1:
        values.setdefault("mean", (0.5,))
        values.setdefault("std", (0.5,))
    try:
        return ModelCard(source=source, summary=f"defined in {extra.get('network', 'Python')}", extra=extra,
                         **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except CardError as exc:
        raise ZooError(f"{what}: {exc}") from None


def python_card(ref: str | Path, hints: Mapping[str, Any] | None = None) -> tuple[Callable[..., Any], ModelCard]:
    """The factory ``FILE.py:NAME`` names and its card (hints, then ``zoo_card``/``ZOO_CARD``, then defaults)."""
    factory, file_card = python_factory(ref)
    _, name = _split_python_ref(ref)
    own = getattr(factory, "zoo_card", {})
    values = {**_keyword_defaults(factory), **file_card, **(own if isinstance(own, Mapping) else {}),
              **_present(hints)}
    network = f"{Path(_split_python_ref(ref)[0]).name}:{name}"
    return factory, _card_from(values, name=name, source=PYTHON_SOURCE, what=f"'{ref}'",
                               extra={"network": network})


def module_card(module: Any, hints: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of an ``nn.Module`` object: hints, a ``zoo_card`` attribute, channels of its first layer."""
    values = {**getattr(module, "zoo_card", {}), **_present(hints)}
    if "channels" not in values:
        first = next((m for m in module.modules() if hasattr(m, "in_channels") or hasattr(m, "in_features")), None)
        if first is not None and hasattr(first, "in_channels"):
            values["channels"] = int(first.in_channels)
    kind = type(module).__name__
    return _card_from(values, name=kind.lower(), source=PYTHON_SOURCE, what=f"the {kind} module",
                      extra={"network": f"{kind} object"})


def build_python(factory: Callable[..., Any], num_classes: int | None) -> Any:
    """Call a Python network's factory for ``num_classes`` outputs; its head is replaced if it ignores it.
    ``None`` keeps the network as its factory makes it."""
    from torch import nn  # torch: describing a reference stays torch-free

    from zoo.heads import num_outputs, set_num_classes

    accepts = num_classes is not None and "num_classes" in _parameters(factory)
    try:
        module = factory(num_classes=num_classes) if accepts else factory()
    except Exception as exc:  # the user's code can fail in any way
        raise ZooError(f"building the network failed: {type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise ZooError(f"the network factory returned {type(module).__name__}, not a torch.nn.Module")
    if num_classes is not None and num_outputs(module) != num_classes:
        set_num_classes(module, num_classes)
    return module


def check_forward(module: Any, card: ModelCard, what: str) -> None:
    """Run a network written in Python on two blank images of its card's size, so a layer whose sizes
    do not fit fails here with one line instead of deep inside training."""
    import torch  # torch: describing a reference stays torch-free

    shape = (2, card.channels, *card.input_size)
    was_training = module.training
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except Exception as exc:  # the user's code can fail in any way
        raise ZooError(f"{what} fails on a batch of {'x'.join(map(str, shape))} images "
                       f"({type(exc).__name__}: {first_line(exc)}): check its layer sizes against the "
                       f"input size {card.input_size[0]}x{card.input_size[1]}") from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, card.num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ZooError(f"{what} gives outputs of shape {got} for 2 images, not (2, {card.num_classes}) "
                       f"(one score per class): its last layer must have {card.num_classes} outputs")


def _parameters(factory: Callable[..., Any]) -> Mapping[str, Any]:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}


def _present(hints: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (hints or {}).items() if v is not None}


def _model_name(stem: str) -> str:
    """A model name from a file stem or class name: printable, no path separators."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.") or "network"
    return cleaned[:100]
