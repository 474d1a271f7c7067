"""One generic way to find and replace a classifier head, for every model.

timm models expose ``get_classifier``/``reset_classifier``; everything else (torchvision,
digitnet, plugins) has its head as the last ``nn.Linear`` in module order.
"""

from __future__ import annotations

from torch import nn

from zoo.errors import ZooError

__all__ = ["head_name", "head_module", "set_num_classes", "num_outputs"]


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
