"""Building networks from cards: one generic path for built-in, torchvision, timm and plugin models."""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.card import ModelCard
from zoo.errors import PluginError, ZooError
from zoo.models.heads import num_outputs, set_num_classes
from zoo.registry import create_factory, model_info

__all__ = ["create_model", "build"]


def build(card: ModelCard, *, num_classes: int | None = None, pretrained: Any = False) -> nn.Module:
    """Build the network a card describes.

    Args:
        card: the model's card (from the catalog, a checkpoint or a plugin).
        num_classes: outputs of the head; ``None`` keeps the card's. A different count
            replaces the head after pretrained weights are loaded (transfer learning).
        pretrained: ``False``/``"none"`` for random init, ``True``/``"auto"`` for the card's
            first weight source, a weight tag, or a path to a weights file.

    Returns:
        The network, in eval mode, on the CPU.
    """
    factory = create_factory(card)
    kwargs = dict(card.factory_args)
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise PluginError(f"{card.source} model '{card.name}': factory {card.factory} failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise PluginError(
            f"{card.source} model '{card.name}': factory {card.factory} returned "
            f"{type(model).__name__}, not a torch.nn.Module"
        )
    if num_outputs(model) != card.num_classes:
        set_num_classes(model, card.num_classes)
    if pretrained not in (False, None, "none", ""):
        from zoo.weights import load_pretrained

        load_pretrained(model, card, pretrained)
    if num_classes is not None and num_classes != card.num_classes:
        set_num_classes(model, num_classes)
    return model.eval()


def create_model(name: str, *, num_classes: int | None = None, pretrained: Any = False) -> nn.Module:
    """Build a registered model by name (``digitnet``, ``alexnet``, ``timm/resnet18``, ``plugin:name``).

    Changing ``num_classes`` works for every model through one mechanism
    (:func:`zoo.models.heads.set_num_classes`).
    """
    if num_classes is not None and num_classes < 1:
        raise ZooError(f"num_classes must be at least 1, not {num_classes}")
    return build(model_info(name), num_classes=num_classes, pretrained=pretrained)
