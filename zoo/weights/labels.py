"""Class names of the label sets pretrained weights are trained on (no network)."""

from __future__ import annotations

import functools
from typing import Any

from zoo.errors import ZooError

__all__ = ["labels_for", "adapt_card", "LABEL_SETS"]

LABEL_SETS = ("imagenet",)


@functools.cache
def _imagenet() -> tuple[str, ...]:
    # torchvision ships the 1000 ImageNet category names with every weights enum.
    from torchvision.models import AlexNet_Weights

    return tuple(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def labels_for(name: str) -> list[str]:
    """The class names of a label set, e.g. ``"imagenet"`` -> 1000 ImageNet names."""
    key = name.strip().lower()
    if key in ("imagenet", "imagenet-1k", "in1k"):
        return list(_imagenet())
    raise ZooError(f"unknown label set '{name}'; known: {', '.join(LABEL_SETS)}")


def adapt_card(card: Any, source: Any, num_classes: int | None = None) -> Any:
    """``card`` as the loaded weights describe it: their input statistics (when they carry
    their own mean/std) and, while the head keeps the card's class count, their class names."""
    changes: dict[str, Any] = {}
    if source.mean:
        changes["mean"] = tuple(source.mean)
    if source.std:
        changes["std"] = tuple(source.std)
    if source.labels and num_classes in (None, card.num_classes) and not card.labels:
        names = labels_for(source.labels)
        if len(names) == card.num_classes:
            changes["labels"] = tuple(names)
    return card.replace(**changes) if changes else card
