"""Building networks from cards: one generic path for built-in, torchvision, timm and plugin models."""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from zoo.card import ModelCard
from zoo.errors import PluginError, ZooError
from zoo.heads import num_outputs, replace_head, set_num_classes
from zoo.registry import catalog_card, create_factory, model_info
from zoo.weights import adapt_card, load_pretrained

__all__ = ["Built", "build", "create_model"]


class Built(NamedTuple):
    """A network and the card that describes it as built: labels, class count, and the
    preprocessing its weights expect (``card.extra["pretrained"]`` records which were loaded)."""

    module: nn.Module
    card: ModelCard


def build(card: ModelCard, *, num_classes: int | None = None, pretrained: Any = False) -> Built:
    """Build the network a card names, with the installed catalog's factory.

    The factory and its arguments come from the catalog entry that ``card.name`` and
    ``card.source`` point to (:func:`zoo.registry.catalog_card`), never from ``card`` itself:
    a card read from a file is data (and carries no weight sources either, see
    :data:`zoo.card.CATALOG_ONLY`). From ``card`` come the class count (a new head, through
    one mechanism for every model) and, for ``pretrained``, its weight sources.

    Args:
        card: the model's card (from the catalog, a checkpoint or a resume state).
        num_classes: outputs of the head; ``None`` keeps the card's. A different count
            replaces the head after pretrained weights are loaded (transfer learning), and
            the card's labels are reset; with weights loaded, ``extra["pretrained"]["replaced"]``
            records the layer (``{"index", "name", "old", "new"}``, see :func:`zoo.heads.replace_head`).
        pretrained: ``False``/``"none"`` for random init, ``True``/``"auto"`` for the card's
            first weight source, a weight tag, or a path to a weights file.

    Returns:
        The network (eval mode, CPU) and its card as a :class:`Built`, adapted to the weights
        that were loaded (their mean/std and, with the head unchanged, their class names).
        ``card.extra.get("pretrained")`` is ``None`` for random weights, else what was loaded
        (``{tag, origin, path, skipped[, replaced]}``; :func:`zoo.weights.weights_report` words it).
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
    record = None
    if pretrained not in (False, None, "none", ""):
        loaded = load_pretrained(model, card, pretrained)
        card = adapt_card(card, loaded.source, num_classes)
        record = loaded.to_dict()
        card = card.replace(extra={**card.extra, "pretrained": record})
    if num_classes is not None and num_classes != card.num_classes:
        replaced = replace_head(model, num_classes)
        card = card.replace(num_classes=num_classes)
        if replaced and record is not None:  # transfer learning: say which layer got new weights
            card = card.replace(extra={**card.extra, "pretrained": {**record, "replaced": replaced}})
    return Built(model.eval(), card)


def create_model(name: str, *, num_classes: int | None = None, pretrained: Any = False) -> nn.Module:
    """The network of a registered model (``digitnet``, ``alexnet``, ``timm/resnet18``, ``plugin:name``).

    Like timm's ``create_model``: only the module, and **random initialisation by default**
    (``pretrained=False``), silently. ``pretrained=True``/``"auto"``, a weight tag or a file path
    loads pretrained weights, or raises :class:`zoo.weights.WeightsUnavailable` saying where
    to put the file. To see which weights a model has, use :func:`zoo.resolve`:
    ``card.extra.get("pretrained")`` is ``None`` for random weights, else the tag, origin and path.
    """
    if num_classes is not None and num_classes < 1:
        raise ZooError(f"num_classes must be at least 1, not {num_classes}")
    return build(model_info(name), num_classes=num_classes, pretrained=pretrained).module
