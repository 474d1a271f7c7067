"""Forward FLOPs of a model, counted by torch: what ``zoo export`` records and ``zoo bench`` divides by."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from zoo.card import ModelCard

__all__ = ["gflops_per_image"]


def gflops_per_image(model: torch.nn.Module, card: ModelCard) -> float:
    """Forward GFLOPs for one image at the card's input size (multiply-add counted as 2)."""
    h, w = card.input_size
    x = torch.randn(1, card.channels, h, w, generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9
