"""What goes into the network during an export: example tensors, raw-pixel input, real photos.

The photos are the ones that install with scikit-learn and scikit-image (none downloaded);
they are read straight from the packages' data folders. Parity checks and int8 calibration
both feed them through the model's own preprocessing (:mod:`zoo.preprocess`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from zoo.card import ModelCard
from zoo.preprocess import Preprocess, normalize, open_image

__all__ = ["RawPixelInput", "example_input", "sample_images", "sample_pixels", "model_input"]

_PHOTOS = (("sklearn", ("datasets/images/china.jpg", "datasets/images/flower.jpg")),
           ("skimage", ("data/chelsea.png", "data/coffee.png", "data/astronaut.png", "data/camera.png")))


class RawPixelInput(nn.Module):
    """``model`` taking uint8 N x H x W x C pixels and normalising inside the graph (--embed-preprocessing)."""

    def __init__(self, model: nn.Module, card: ModelCard) -> None:
        super().__init__()
        self.model = model
        mean = torch.tensor(card.channel_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(card.channel_std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", mean / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)
        return self.model(x * self.scale - self.shift)


def example_input(card: ModelCard, batch: int, raw_pixels: bool, *, seed: int = 0) -> torch.Tensor:
    """Seeded random input: uint8 N x H x W x C pixels, or normalised-scale float32 N x C x H x W."""
    g = torch.Generator().manual_seed(seed)
    h, w = card.input_size
    if raw_pixels:
        return torch.randint(0, 256, (batch, h, w, card.channels), dtype=torch.uint8, generator=g)
    return torch.randn(batch, card.channels, h, w, generator=g)


def sample_images() -> list[Image.Image]:
    """A few real photographs that install with scikit-learn / scikit-image, as PIL images.

    Without those packages: three deterministic synthetic scenes instead.
    """
    files: list[Path] = []
    for package, names in _PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            files += [root / n for n in names if (root / n).is_file()]
    images = [open_image(f) for f in files]
    if not images:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:96, 0:128]
        for k in range(3):
            base = np.stack([(xx * (k + 1)) % 256, (yy * (k + 2)) % 256, (xx + yy) % 256], -1)
            noise = rng.integers(0, 40, base.shape)
            images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return images


def sample_pixels(card: ModelCard) -> np.ndarray:
    """:func:`sample_images` at the model's size: uint8 N x H x W x C."""
    pre = Preprocess.from_card(card)
    return np.stack([pre.pixels(image) for image in sample_images()])


def model_input(pixels: np.ndarray, card: ModelCard, *, raw: bool) -> np.ndarray:
    """uint8 N x H x W x C pixels as a graph takes them: unchanged (``raw``), or normalised float32 NCHW."""
    if raw:
        return pixels
    return normalize(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)), Preprocess.from_card(card))
