"""The solver: MATLAB's solverName (sgdm, adam, rmsprop) and its LearnRateSchedule."""

from __future__ import annotations

import math
from typing import Any

import torch

from zoo.training.options import TrainOptions

__all__ = ["make_optimizer", "lr_factor"]


def make_optimizer(groups: list[dict[str, Any]], options: TrainOptions) -> torch.optim.Optimizer:
    """sgdm, adam or rmsprop with MATLAB's decay factors and coupled L2 regularisation."""
    lr, l2 = options.learning_rate, options.l2
    if options.solver == "sgdm":
        return torch.optim.SGD(groups, lr=lr, momentum=options.momentum, weight_decay=l2)
    if options.solver == "adam":  # GradientDecayFactor 0.9, SquaredGradientDecayFactor 0.999
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=l2)
    # rmsprop: SquaredGradientDecayFactor 0.9, Epsilon 1e-8
    return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-8, weight_decay=l2)


def lr_factor(options: TrainOptions, epoch: int, iteration: int, total: int) -> float:
    """Multiplier of the base learning rate at 0-based ``epoch`` and ``iteration`` (of ``total``)."""
    if options.lr_schedule == "piecewise":
        return options.lr_drop_factor ** (epoch // options.lr_drop_period)
    if options.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * iteration / max(1, total)))
    return 1.0
