"""Layer tables like MATLAB's ``net.Layers``: names, types, output shapes, parameters, FLOPs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zoo.card import ModelCard

__all__ = ["LayerRow", "LayerTable", "layer_table", "layer_names"]


class LayerRow(NamedTuple):
    index: int
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int


@dataclass
class LayerTable:
    rows: list[LayerRow]
    parameters: int
    flops: int


def layer_names(model: nn.Module) -> list[str]:
    """Names of the leaf layers, in execution order of registration (what ``--layer`` takes)."""
    return [name for name, module in model.named_modules() if name and not list(module.children())]


@torch.no_grad()
def layer_table(model: nn.Module, card: ModelCard) -> LayerTable:
    """Run one input through ``model`` and record every leaf layer's output shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(mod, inputs, output, name=name):
                if name not in shapes:
                    order.append(name)
                out = output[0] if isinstance(output, (tuple, list)) else output
                shapes[name] = tuple(out.shape[1:]) if hasattr(out, "shape") else ()
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(1, card.channels, *card.input_size, device=device)
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    modules = dict(model.named_modules())
    # Layers in the order they ran; layers that never ran (unused heads) at the end.
    names = order + [n for n in layer_names(model) if n not in shapes]
    rows = [
        LayerRow(i + 1, n, type(modules[n]).__name__, shapes.get(n, ()),
                 sum(p.numel() for p in modules[n].parameters(recurse=False)))
        for i, n in enumerate(names)
    ]
    total = sum(p.numel() for p in model.parameters())
    return LayerTable(rows, total, int(counter.get_total_flops()))
