"""One resolver: whatever the user types becomes a card, and on request a model.

``digitnet``, ``timm/resnet18``, ``plugin:name``, a ``.safetensors`` checkpoint or an
``.onnx`` file: every command starts here, so each accepts every kind of reference that
makes sense for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.card import CardError, ModelCard
from zoo.errors import ZooError

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
        from zoo.checkpoint import read_card

        return read_card(ref)
    if kind == "onnx":
        return read_onnx_card(ref)
    from zoo.registry import model_info

    return model_info(str(ref))


def read_onnx_card(path: str | Path) -> ModelCard:
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"ONNX file '{path}' does not exist")
    import onnx

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
    device: str = "cpu",
) -> tuple[Any, ModelCard]:
    """The torch model and its card for a registry name or a checkpoint.

    Args:
        ref: registry name or ``.safetensors`` checkpoint.
        num_classes: a different class count replaces the head (names only).
        pretrained: see :func:`zoo.models.build` (names only).
        device: where the model is placed.
    """
    kind = kind_of(ref)
    if kind == "onnx":
        raise ZooError(f"'{ref}' is an ONNX file: use it with 'zoo predict' or 'zoo bench', or zoo.runtime.Predictor")
    if kind == "checkpoint":
        from zoo.checkpoint import load

        classifier = load(ref, device=device)
        if num_classes is not None and num_classes != classifier.card.num_classes:
            raise ZooError(
                f"checkpoint '{ref}' has {classifier.card.num_classes} classes; "
                f"to train it on {num_classes} use 'zoo finetune {ref} --classes {num_classes}'"
            )
        return classifier.module, classifier.card
    from zoo.models import build
    from zoo.registry import model_info

    card = model_info(str(ref))
    model = build(card, num_classes=num_classes, pretrained=pretrained)
    loaded = getattr(model, "zoo_pretrained", None)  # set by zoo.weights.load_pretrained
    if loaded is not None:
        from zoo.weights import adapt_card

        card = adapt_card(card, loaded.source, num_classes)
        card = card.replace(extra={**card.extra, "pretrained": loaded.source.tag})
    if num_classes is not None and num_classes != card.num_classes:
        card = card.replace(num_classes=num_classes)
    return model.to(device), card
