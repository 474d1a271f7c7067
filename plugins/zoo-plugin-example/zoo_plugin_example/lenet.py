"""LeNet-5 as in LeCun et al. (1998), with ReLU and max-pooling."""

from __future__ import annotations

from torch import nn


def lenet5(*, num_classes: int = 10, in_chans: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )
