"""ViT-tiny's transformer (timm: 192 wide, 12 blocks, 3 heads) on 32 x 32 grayscale input in 4 x 4 patches.

The same attention, LayerNorm and MLP blocks as ``timm/vit_tiny_patch16_224``, with 64 patches
instead of 196: from random weights it learns scikit-learn's digits in CPU minutes, which the
224 x 224 model does not (it stayed at chance after 6 epochs here), so int8's accuracy on a
trained transformer can be measured (``benchmarks/bench_int8_accuracy.py``).

    zoo train benchmarks/vit_digits.py:make_net --data DIGITS
"""

from __future__ import annotations

import timm


def make_net(num_classes: int = 10, input_size: int = 32, in_chans: int = 1):
    return timm.create_model("vit_tiny_patch16_224", img_size=input_size, patch_size=4, in_chans=in_chans,
                             num_classes=num_classes)
