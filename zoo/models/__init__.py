"""Building networks from cards: one generic path for built-in, torchvision, timm and plugin models."""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.card import ModelCard
from zoo.errors import PluginError, ZooError
from zoo.models.heads import num_outputs, set_num_classes
from zoo.registry import catalog_card, create_factory, model_info

__all__ = ["create_model", "build"]


def build(card: ModelCard, *, num_classes: int | None = None, pretrained: Any = False) -> nn.Module:
    """Build the network a card names, with the installed catalog's factory.

    The factory and its arguments come from the catalog entry that ``card.name`` and
    ``card.source`` point to (:func:`zoo.registry.catalog_card`), never from ``card`` itself:
    a card read from a file is data (and carries no weight sources either, see
    :data:`zoo.card.CATALOG_ONLY`). From ``card`` come the class count (a new head, through
    one mechanism for every model) and, for ``pretrained``, its weight sources.

    Args:
        card: the model's card (from the catalog, a checkpoint or a resume state).
        num_classes: outputs of the head; ``None`` keeps the card's. A different count
            replaces the head after pretrained weights are loaded (transfer learning).
        pretrained: ``False``/``"none"`` for random init, ``True``/``"auto"`` for the card's
            first weight source, a weight tag, or a path to a weights file.

    Returns:
        The network, in eval mode, on the CPU.
    """
    entry = catalog_card(card)
    factory = create_factory(entry)
    try:
        model = factory(**entry.factory_args)
    except TypeError as exc:
        raise PluginError(f"{entry.source} model '{entry.name}': factory {entry.factory} failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise PluginError(
            f"{entry.source} model '{entry.name}': factory {entry.factory} returned "
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
