"""A torch network from a layer spec: one module per MATLAB layer, named as the layer.

The network returns logits, as zoo's built-in networks do: softmaxLayer and classificationLayer
add no module (CrossEntropyLoss and classification apply the softmax), and imageInputLayer adds
none either (zoo's preprocessing normalises with the card's mean and std).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError, first_line
from zoo.layers.spec import (
    resolve_padding,
    set_num_classes,
    shapes_and_parameters,
    validate_layers,
)

__all__ = ["build_network", "PaddedConv2d", "PaddedMaxPool2d", "PaddedAvgPool2d"]


class _Padded:
    """Pads ``[top bottom left right]`` first (MATLAB's padding may be asymmetric), then runs the layer."""

    pad_value = 0.0

    def __init__(self, *args: Any, matlab_padding: list[int], **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.matlab_padding = tuple(matlab_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.matlab_padding
        return super().forward(F.pad(x, (left, right, top, bottom), value=self.pad_value))  # type: ignore[misc]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, matlab_padding={list(self.matlab_padding)}"  # type: ignore[misc]


class PaddedConv2d(_Padded, nn.Conv2d):
    """nn.Conv2d after zero padding that may differ between top and bottom, left and right."""


class PaddedMaxPool2d(_Padded, nn.MaxPool2d):
    """nn.MaxPool2d after padding with -inf (padding never wins the max), as MATLAB pads."""

    pad_value = -math.inf


class PaddedAvgPool2d(_Padded, nn.AvgPool2d):
    """nn.AvgPool2d after zero padding, which counts in the average as in MATLAB."""


def _windowed(layer: dict[str, Any], shape: tuple[int, ...]) -> nn.Module:
    """A convolution or pooling module with MATLAB's padding on a ``shape`` (C, H, W) input."""
    channels, height, width = shape
    top, bottom, left, right = pads = resolve_padding(layer, height, width)
    symmetric = top == bottom and left == right
    stride = tuple(layer["stride"])
    if layer["type"] == "convolution2d":
        args = (channels, layer["filters"], tuple(layer["filter_size"]))
        kwargs = {"stride": stride, "dilation": tuple(layer["dilation"])}
        if symmetric:
            return nn.Conv2d(*args, padding=(top, left), **kwargs)
        return PaddedConv2d(*args, matlab_padding=pads, **kwargs)
    window = tuple(layer["pool_size"])
    native, padded = ((nn.MaxPool2d, PaddedMaxPool2d) if layer["type"] == "maxpooling2d"
                      else (nn.AvgPool2d, PaddedAvgPool2d))
    if symmetric and top <= window[0] // 2 and left <= window[1] // 2:  # what torch's own padding allows
        return native(window, stride=stride, padding=(top, left))
    return padded(window, stride=stride, matlab_padding=pads)


def _module(layer: dict[str, Any], shape: tuple[int, ...]) -> nn.Module | None:
    """The module for one checked layer whose input has ``shape``, or None (no computation)."""
    t = layer["type"]
    if t in ("convolution2d", "maxpooling2d", "averagepooling2d"):
        return _windowed(layer, shape)
    if t == "batchnormalization":
        return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])
    if t == "fullyconnected":
        return nn.Linear(math.prod(shape), layer["output_size"])
    return {"relu": nn.ReLU, "globalaveragepooling2d": lambda: nn.AdaptiveAvgPool2d(1),
            "leakyrelu": lambda: nn.LeakyReLU(layer["scale"]),
            "dropout": lambda: nn.Dropout(layer["probability"])}.get(t, lambda: None)()


def build_network(layers: list[dict[str, Any]], *, num_classes: int | None = None) -> nn.Sequential:
    """Check ``layers`` and build them as an ``nn.Sequential`` whose module names are the layer names.

    An ``nn.Flatten`` (named 'flatten', or 'flatten_1', ... if a layer has that name) goes where an
    image first meets a fullyConnectedLayer. ``num_classes`` replaces the last fullyConnectedLayer's
    output size. 'same' padding is resolved for the imageInputLayer's size.
    """
    layers = validate_layers(layers) if num_classes is None else set_num_classes(layers, num_classes)
    shapes = shapes_and_parameters(layers)[0]
    names = {layer["name"] for layer in layers}
    modules: list[tuple[str, nn.Module]] = []
    for layer, in_shape in zip(layers[1:], shapes):
        if layer["type"] == "fullyconnected" and len(in_shape) == 3:
            flatten = next(n for n in ("flatten", *(f"flatten_{i}" for i in range(1, len(names) + 2)))
                           if n not in names)
            modules.append((flatten, nn.Flatten()))
        module = _module(layer, in_shape)
        if module is not None:
            modules.append((layer["name"], module))
    try:
        return nn.Sequential(OrderedDict(modules))
    except (KeyError, TypeError, ValueError) as exc:  # a name this torch refuses that the checks do not know
        raise ZooError(f"cannot build the network: {first_line(exc)}") from None
