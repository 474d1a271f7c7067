"""The lecture's digit CNN (MATLAB Lab 6), layer for layer.

input 1x28x28 -> [conv3x3 8 same -> BN -> ReLU -> maxpool 2/2] -> [conv3x3 16 same -> BN ->
ReLU -> maxpool 2/2] -> [conv3x3 32 same -> BN -> ReLU] -> fully connected -> softmax.
The network returns logits; softmax is applied by classification and by the loss, as
PyTorch's CrossEntropyLoss expects. Layer names follow MATLAB's ``net.Layers``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

__all__ = ["digitnet"]


def _block(index: int, in_ch: int, out_ch: int, pool: bool) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [
        (f"conv_{index}", nn.Conv2d(in_ch, out_ch, kernel_size=3, padding="same")),
        (f"batchnorm_{index}", nn.BatchNorm2d(out_ch)),
        (f"relu_{index}", nn.ReLU(inplace=True)),
    ]
    if pool:
        layers.append((f"maxpool_{index}", nn.MaxPool2d(kernel_size=2, stride=2)))
    return layers


def digitnet(*, num_classes: int = 10, in_chans: int = 1, input_size: int = 28) -> nn.Sequential:
    """Build the lecture CNN (21,690 parameters for 10 classes on 1x28x28).

    Args:
        num_classes: outputs of the fully connected layer.
        in_chans: input channels (1 for the lecture's grayscale digits).
        input_size: input height and width; two 2x2 poolings divide it by 4.
    """
    side = input_size // 4
    layers = (
        _block(1, in_chans, 8, pool=True)
        + _block(2, 8, 16, pool=True)
        + _block(3, 16, 32, pool=False)
        + [("flatten", nn.Flatten()), ("fc", nn.Linear(32 * side * side, num_classes))]
    )
    return nn.Sequential(OrderedDict(layers))
