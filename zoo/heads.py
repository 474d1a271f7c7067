"""One generic way to find and replace a classifier head, for every model.

timm models expose ``get_classifier``/``reset_classifier``; everything else (torchvision,
digitnet, plugins) has its head as the last ``nn.Linear`` in module order.
"""

from __future__ import annotations

from torch import nn

from zoo.errors import ZooError
from zoo.summary import layer_names

__all__ = ["head_name", "head_module", "set_num_classes", "num_outputs", "describe_head", "describe_layer",
           "replace_head"]


def head_name(model: nn.Module) -> str:
    """Dotted name of the classification head inside ``model``."""
    if hasattr(model, "get_classifier") and hasattr(model, "pretrained_cfg"):
        target = model.get_classifier()
        for name, module in model.named_modules():
            if module is target:
                return name
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ZooError(f"{type(model).__name__} has no linear classification head to replace")
    return last


def head_module(model: nn.Module) -> nn.Module:
    return model.get_submodule(head_name(model))


def num_outputs(model: nn.Module) -> int:
    head = head_module(model)
    if isinstance(head, nn.Linear):
        return head.out_features
    return int(getattr(model, "num_classes", 0))


def set_num_classes(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a freshly initialised head with ``num_classes`` outputs (in place)."""
    if num_classes < 1:
        raise ZooError(f"the number of classes must be at least 1, not {num_classes}")
    if num_outputs(model) == num_classes:
        return model
    if hasattr(model, "reset_classifier") and hasattr(model, "pretrained_cfg"):
        model.reset_classifier(num_classes)
        return model
    name = head_name(model)
    old = model.get_submodule(name)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, attr, new)
    return model


def describe_layer(module: nn.Module) -> str:
    """``Linear 4096→1000``, ``Conv2d 1280→1000``, or the type's name for anything else."""
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}→{module.out_features}"
    if isinstance(module, nn.Conv2d):
        return f"{kind} {module.in_channels}→{module.out_channels}"
    return kind


def describe_head(model: nn.Module) -> tuple[int, str, str]:
    """(index, name, text) of the head: its 1-based position among the leaf layers (MATLAB's
    ``layers(21)``, the ``#`` of ``zoo info``), dotted name and :func:`describe_layer` text."""
    name = head_name(model)
    leaves = layer_names(model)
    index = next((i + 1 for i, n in enumerate(leaves) if n == name or n.startswith(name + ".")), 0)
    return index, name, describe_layer(model.get_submodule(name))


def replace_head(model: nn.Module, num_classes: int) -> dict[str, object] | None:
    """:func:`set_num_classes`, returning what was replaced (``{"index", "name", "old", "new"}``),
    or ``None`` when the head already has ``num_classes`` outputs."""
    if num_outputs(model) == num_classes:
        return None
    index, name, old = describe_head(model)
    set_num_classes(model, num_classes)
    new_index, new_name, new = describe_head(model)
    return {"index": new_index or index, "name": new_name, "old": old, "new": new}
