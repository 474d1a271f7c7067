"""One resolver: whatever the user types becomes a card, and on request a model.

``digitnet``, ``timm/resnet18``, ``plugin:name``, a ``.safetensors`` checkpoint or an
``.onnx`` file: every command starts here, so each accepts every kind of reference that
makes sense for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.card import CardError, ModelCard
from zoo.checkpoint import load, read_card
from zoo.errors import ZooError
from zoo.registry import model_info

if TYPE_CHECKING:
    from zoo.models import Built

__all__ = ["resolve_card", "resolve", "kind_of"]


def kind_of(ref: str | Path) -> str:
    """``checkpoint``, ``onnx`` or ``name``."""
    suffix = Path(str(ref)).suffix.lower()
    if suffix == ".safetensors":
        return "checkpoint"
    if suffix == ".onnx":
        return "onnx"
    if Path(str(ref)).is_file():
        raise ZooError(f"'{ref}' is a file but neither a .safetensors checkpoint nor an .onnx model")
    return "name"


def resolve_card(ref: str | Path) -> ModelCard:
    """The card of any reference, without building a model (no torch for names and files)."""
    kind = kind_of(ref)
    if kind == "checkpoint":
        return read_card(ref)
    if kind == "onnx":
        return read_onnx_card(ref)
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
) -> Built:
    """The torch model and its card, as one value, for a registry name or a checkpoint.

    Every torch operation (train, finetune, evaluate, predict, features, export, bench, info)
    starts here.

    Args:
        ref: registry name (``digitnet``, ``timm/resnet18``, ``plugin:name``) or a
            ``.safetensors`` checkpoint.
        num_classes: a different class count replaces the head, for every kind of model
            through :func:`zoo.heads.set_num_classes` (the card's labels are reset).
        pretrained: for names: see :func:`zoo.models.build`; a checkpoint carries its weights.
        device: where the model is placed.

    Returns:
        :class:`zoo.models.Built` ``(module, card)``; unpacks as ``model, card = resolve(ref)``.
    """
    # torch: describing a reference (resolve_card, zoo info --no-layers) never imports it
    from zoo.heads import set_num_classes
    from zoo.models import Built, build

    kind = kind_of(ref)
    if kind == "onnx":
        raise ZooError(f"'{ref}' is an ONNX file: use it with 'zoo predict' or 'zoo bench', or zoo.runtime.Predictor")
    if kind == "checkpoint":
        module, card = load(ref)
        if num_classes is not None and num_classes != card.num_classes:
            set_num_classes(module, num_classes)
            card = card.replace(num_classes=num_classes)
        built = Built(module, card)
    else:
        built = build(model_info(str(ref)), num_classes=num_classes, pretrained=pretrained)
    built.module.to(device)
    return built
