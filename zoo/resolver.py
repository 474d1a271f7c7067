"""One resolver: whatever the user types becomes a card, and on request a model.

``digitnet``, ``timm/resnet18``, ``plugin:name``, a ``.safetensors`` checkpoint, an
``.onnx`` file, a layer array (``lab6.m``) or a Python network (``net.py:make_net``, see
:mod:`zoo.networks`): every command starts here, so each accepts every kind of reference
that makes sense for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.card import CardError, ModelCard
from zoo.checkpoint import load, read_card
from zoo.errors import ZooError
from zoo.networks import (
    build_python,
    is_layer_file,
    is_python_ref,
    layers_card,
    python_card,
)
from zoo.registry import model_info

if TYPE_CHECKING:
    from zoo.models import Built

__all__ = ["resolve_card", "resolve", "kind_of"]


def kind_of(ref: str | Path) -> str:
    """``checkpoint``, ``onnx``, ``layers`` (a layer-array file), ``python`` (``FILE.py:NAME``) or ``name``."""
    suffix = Path(str(ref)).suffix.lower()
    if suffix == ".safetensors":
        return "checkpoint"
    if suffix == ".onnx":
        return "onnx"
    if is_layer_file(ref):
        return "layers"
    if is_python_ref(ref):
        return "python"
    if Path(str(ref)).is_file():
        raise ZooError(f"'{ref}' is a file but none of: a .safetensors checkpoint, an .onnx model, "
                       f"a layer array (.m, .txt), a Python network (FILE.py:NAME)")
    return "name"


def resolve_card(ref: str | Path, *, hints: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of any reference, without building a model (no torch for names, files, layer arrays).

    ``hints``: card values for a Python network (``input_size``, ``channels``, ...).
    """
    kind = kind_of(ref)
    if kind == "checkpoint":
        return read_card(ref)
    if kind == "onnx":
        return read_onnx_card(ref)
    if kind == "layers":
        return layers_card(ref)
    if kind == "python":
        return python_card(ref, hints)[1]
    return model_info(str(ref))


def read_onnx_card(path: str | Path) -> ModelCard:
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"ONNX file '{path}' does not exist")
    import onnx  # here: describing names and checkpoints needs no onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
        raise ZooError(f"'{path}' is not an ONNX model: {type(exc).__name__}") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        return ModelCard.from_metadata(meta)
    except (CardError, ValueError) as exc:
        raise ZooError(f"'{path}' carries no zoo metadata ({exc})") from None


def resolve(
    ref: str | Path,
    *,
    num_classes: int | None = None,
    pretrained: Any = False,
    device: Any = "cpu",
    network: Any = None,
    hints: Mapping[str, Any] | None = None,
) -> Built:
    """The torch model and its card, as one value, for a registry name or a checkpoint.

    Every torch operation (train, finetune, evaluate, predict, features, export, bench, info)
    starts here.

    Args:
        ref: registry name (``digitnet``, ``timm/resnet18``, ``plugin:name``), a
            ``.safetensors`` checkpoint, a layer array (``lab6.m``) or ``FILE.py:NAME``.
        num_classes: a different class count replaces the head, for every kind of model
            through :func:`zoo.heads.set_num_classes` (the card's labels are reset).
        pretrained: for names: see :func:`zoo.models.build`; a checkpoint carries its weights.
        device: where the model is placed.
        network: for a checkpoint of a Python network: its ``FILE.py:NAME`` (or the module).
        hints: card values for a Python network (see :mod:`zoo.networks`).

    Returns:
        The model and its card, a :class:`zoo.models.Built` ``(module, card)``; unpacks as
        ``model, card = resolve(ref)``.
    """
    # torch: describing a reference (resolve_card, zoo info --no-layers) never imports it
    from zoo.heads import num_outputs, set_num_classes
    from zoo.models import Built, build

    kind = kind_of(ref)
    if kind == "onnx":
        raise ZooError(f"'{ref}' is an ONNX file: use it with 'zoo predict' or 'zoo bench', or zoo.runtime.Predictor")
    if kind == "checkpoint":
        module, card = load(ref, network=network)
        if num_classes is not None and num_classes != card.num_classes:
            set_num_classes(module, num_classes)
            card = card.replace(num_classes=num_classes)
        built = Built(module, card)
    elif kind == "python":
        if pretrained not in (False, None, "none", ""):
            raise ZooError(f"'{ref}' is defined in Python and has no catalog weights: train it from scratch")
        factory, card = python_card(ref, hints)
        module = build_python(factory, num_classes)  # None: the head its factory gives it
        built = Built(module, card.replace(num_classes=num_classes or num_outputs(module) or card.num_classes))
    elif kind == "layers":
        built = build(layers_card(ref), num_classes=num_classes, pretrained=pretrained)
    else:
        built = build(model_info(str(ref)), num_classes=num_classes, pretrained=pretrained)
    built.module.to(device)
    return built
