"""Random flips, rotation, scale and translation on batches: MATLAB's augmentedImageDatastore.

``augment(batch, spec, generator)`` draws one random affine transform per image and
applies all of them in one ``grid_sample`` call, on whatever device the batch is on. Use
it on uint8 pixels before normalisation (the uncovered border is then black, value 0),
or on float batches with ``fill`` in the batch's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError

__all__ = ["AugmentSpec", "augment"]


@dataclass(frozen=True)
class AugmentSpec:
    """imageDataAugmenter's options; ranges are (low, high), drawn uniformly per image."""

    x_reflection: bool = False  # RandXReflection: mirror left-right with probability 1/2
    y_reflection: bool = False  # RandYReflection
    rotation: tuple[float, float] = (0.0, 0.0)  # RandRotation, degrees
    scale: tuple[float, float] = (1.0, 1.0)  # RandScale
    x_translation: tuple[float, float] = (0.0, 0.0)  # RandXTranslation, pixels
    y_translation: tuple[float, float] = (0.0, 0.0)  # RandYTranslation, pixels

    @property
    def active(self) -> bool:
        return self != AugmentSpec()

    @classmethod
    def parse(cls, text: str) -> AugmentSpec:
        """From ``"flip,rotate=10,scale=0.9:1.1,translate=3"`` (also ``vflip``, ``none``).

        ``rotate=A`` means (-A, A); ``translate=T`` means (-T, T) pixels on both axes;
        ``LOW:HIGH`` gives a range explicitly.
        """
        options: dict[str, Any] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part or part == "none":
                continue
            name, _, value = part.partition("=")
            try:
                if name in ("flip", "hflip", "xflip"):
                    options["x_reflection"] = True
                elif name in ("vflip", "yflip"):
                    options["y_reflection"] = True
                elif name in ("rotate", "rotation"):
                    options["rotation"] = _range(value, symmetric=True)
                elif name == "scale":
                    options["scale"] = _range(value, symmetric=False)
                elif name in ("translate", "translation"):
                    options["x_translation"] = options["y_translation"] = _range(value, symmetric=True)
                else:
                    raise ValueError(name)
            except ValueError:
                raise ZooError(
                    f"cannot read augmentation '{part}': use flip, vflip, rotate=DEG, scale=LO:HI, translate=PX"
                ) from None
        return cls(**options)


def _range(value: str, *, symmetric: bool) -> tuple[float, float]:
    if ":" in value:
        low, high = (float(v) for v in value.split(":", 1))
    else:
        amount = float(value)
        low, high = (-abs(amount), abs(amount)) if symmetric else (1.0 - abs(amount - 1.0), 1.0 + abs(amount - 1.0))
    if low > high:
        raise ValueError(value)
    return low, high


def augment(batch: Any, spec: AugmentSpec, generator: Any = None, *, fill: float = 0.0) -> Any:
    """Randomly transformed copy of ``batch`` (N, C, H, W), same dtype and device.

    Args:
        batch: uint8 or float tensor.
        spec: what to vary.
        generator: a CPU ``torch.Generator`` for reproducible draws.
        fill: value of the pixels the transform uncovers.
    """
    # torch here, not at the top: zoo.training.options parses AugmentSpec without importing torch
    import torch
    import torch.nn.functional as F  # here: options parse AugmentSpec without torch

    if not spec.active or batch.shape[0] == 0:
        return batch
    n, _, height, width = batch.shape

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return torch.rand(n, generator=generator, dtype=torch.float64) * (bounds[1] - bounds[0]) + bounds[0]

    angle = uniform(spec.rotation) * (math.pi / 180.0)
    scale = uniform(spec.scale)
    shift_x = uniform(spec.x_translation) * (2.0 / width)  # grid units: the image spans [-1, 1]
    shift_y = uniform(spec.y_translation) * (2.0 / height)
    flip_x = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if spec.x_reflection else torch.ones(n)
    flip_y = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if spec.y_reflection else torch.ones(n)
    # grid_sample maps output -> input coordinates, so build the inverse transform
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos * flip_x.double()
    theta[:, 0, 1] = -sin * flip_x.double() * (height / width)
    theta[:, 1, 0] = sin * flip_y.double() * (width / height)
    theta[:, 1, 1] = cos * flip_y.double()
    theta[:, 0, 2] = -shift_x
    theta[:, 1, 2] = -shift_y

    x = batch.to(torch.float32)
    grid = F.affine_grid(theta.to(device=batch.device, dtype=torch.float32), list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    if batch.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(batch.dtype)
