"""Transfer learning: pretrained weights, a new head, a frozen backbone, a faster head.

MATLAB replaces ``layers(23)`` with ``fullyConnectedLayer(2, 'WeightLearnRateFactor', 10)``;
here the head is found for every model by :mod:`zoo.heads`, the backbone can be
frozen (``freeze="backbone"``) and the head can learn ``head_lr_factor`` times faster.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.errors import ZooError
from zoo.heads import head_name

__all__ = ["FREEZE_CHOICES", "param_groups", "apply_freeze", "set_train_mode"]

FREEZE_CHOICES = ("none", "backbone")


def _check_freeze(freeze: str) -> None:
    if freeze not in FREEZE_CHOICES:
        raise ZooError(f"--freeze must be one of {', '.join(FREEZE_CHOICES)}, not {freeze!r}")


def _is_head(name: str, head: str) -> bool:
    return name == head or name.startswith(head + ".")


def apply_freeze(model: nn.Module, freeze: str = "none") -> nn.Module:
    """Stop gradients into everything but the head when ``freeze == "backbone"``."""
    _check_freeze(freeze)
    head = head_name(model)
    for name, param in model.named_parameters():
        param.requires_grad_(freeze == "none" or _is_head(name, head))
    return model


def set_train_mode(model: nn.Module, freeze: str = "none") -> nn.Module:
    """``model.train()``, a frozen backbone left in inference mode (batch-norm statistics and dropout
    fixed): a frozen backbone is a fixed feature extractor, as in Keras's transfer-learning guide,
    so its output for an image never changes and can be computed once (:mod:`zoo.training.frozen`)."""
    model.train()
    if freeze == "backbone":
        head = head_name(model)
        for name, module in model.named_modules():
            if name and not _is_head(name, head) and not _is_head(head, name):  # not the head, nor above it
                module.eval()
    return model


def param_groups(model: nn.Module, *, lr: float, head_lr_factor: float = 1.0, freeze: str = "none") -> list[dict[str, Any]]:
    """Optimizer parameter groups: backbone at ``lr``, head at ``lr * head_lr_factor``.

    Each group records its ``base_lr`` so learning-rate schedules scale both alike.
    Frozen parameters are left out.
    """
    _check_freeze(freeze)
    if not head_lr_factor > 0:
        raise ZooError(f"--head-lr-factor must be positive, not {head_lr_factor}")
    apply_freeze(model, freeze)
    head = head_name(model)
    backbone, head_params = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head_params if _is_head(name, head) else backbone).append(param)
    groups = []
    if backbone:
        groups.append({"params": backbone, "lr": lr, "base_lr": lr, "name": "backbone"})
    if head_params:
        head_lr = lr * head_lr_factor
        groups.append({"params": head_params, "lr": head_lr, "base_lr": head_lr, "name": "head"})
    if not groups:
        raise ZooError("nothing to train: every parameter is frozen")
    return groups
