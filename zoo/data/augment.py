"""Random flips, rotation, scale and translation on batches: MATLAB's augmentedImageDatastore.

``augment(batch, spec, generator)`` draws one random affine transform per image and
applies all of them in one ``grid_sample`` call, on whatever device the batch is on. Use
it on uint8 pixels before normalisation (the uncovered border is then black, value 0),
or on float batches with ``fill`` in the batch's own units. Flips alone on uint8 batches
take a shortcut (mirroring the drawn rows) with the same draws and the same pixels.

``crop`` (random-resized-crop, as timm and torchvision train) is not a batch operation: it
samples the full-resolution image, so ``zoo.data.stream.StreamSource`` applies it per sample
while decoding, and ``augment`` leaves it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from zoo.errors import ZooError

__all__ = ["AugmentSpec", "augment", "augment_problem"]


@dataclass(frozen=True)
class AugmentSpec:
    """imageDataAugmenter's options; ranges are (low, high), drawn uniformly per image."""

    x_reflection: bool = False  # RandXReflection: mirror left-right with probability 1/2
    y_reflection: bool = False  # RandYReflection
    rotation: tuple[float, float] = (0.0, 0.0)  # RandRotation, degrees
    scale: tuple[float, float] = (1.0, 1.0)  # RandScale
    x_translation: tuple[float, float] = (0.0, 0.0)  # RandXTranslation, pixels
    y_translation: tuple[float, float] = (0.0, 0.0)  # RandYTranslation, pixels
    #: RandomResizedCrop's area fraction (low, high) of the source image; applied while decoding
    crop: tuple[float, float] | None = None

    @property
    def active(self) -> bool:
        return self != AugmentSpec()

    @property
    def batch_active(self) -> bool:
        """Whether ``augment`` changes a batch: anything asked for but ``crop``."""
        return replace(self, crop=None).active

    @classmethod
    def parse(cls, text: str) -> AugmentSpec:
        """From ``"flip,rotate=10,scale=0.9:1.1,translate=3"`` (also ``vflip``, ``crop``, ``none``).

        ``rotate=A`` means (-A, A) degrees; ``translate=T`` means (-T, T) pixels on both axes;
        ``scale=S`` means (1 - |S - 1|, 1 + |S - 1|); ``LOW:HIGH`` gives a range explicitly.
        ``crop`` is a random-resized crop of 0.08 to 1 of the image's area (torchvision's
        default), ``crop=LOW:HIGH`` of LOW to HIGH (0 < LOW <= HIGH <= 1).
        Raises :class:`ZooError` ``--augment: ...`` naming the part that is wrong.
        """
        problem = augment_problem(text)
        if problem:
            raise ZooError(f"--augment: {problem}")
        return cls(**_options(text))


#: part name -> (the field(s) it sets, what it must be, the largest size LOW or HIGH may have)
_RANGES: dict[str, tuple[tuple[str, ...], str, float]] = {
    "rotate": (("rotation",), "degrees A (for -A:A) or LOW:HIGH with LOW <= HIGH, within -360..360", 360.0),
    "scale": (("scale",), "positive numbers LOW:HIGH with LOW <= HIGH, up to 10", 10.0),
    "translate": (("x_translation", "y_translation"),
                  "pixels T (for -T:T) or LOW:HIGH with LOW <= HIGH, within -10000..10000", 10_000.0),
}
_ALIASES = {"flip": "flip", "hflip": "flip", "xflip": "flip", "vflip": "vflip", "yflip": "vflip",
            "rotate": "rotate", "rotation": "rotate", "scale": "scale", "translate": "translate",
            "translation": "translate", "crop": "crop"}
_FLAGS = {"flip": "x_reflection", "vflip": "y_reflection"}
_USAGE = "use none or flip, vflip, rotate=DEG, scale=LOW:HIGH, translate=PX, crop[=LOW:HIGH], separated by commas"
#: torchvision's RandomResizedCrop scale: 8 % to all of the image's area
DEFAULT_CROP = (0.08, 1.0)
_CROP_RULE = "area fractions LOW:HIGH with 0 < LOW <= HIGH <= 1 (crop alone means 0.08:1)"


def augment_problem(text: Any) -> str | None:
    """What is wrong with an ``--augment`` value, in words that name the part; None when nothing is."""
    if not isinstance(text, str) or not text.strip():
        return f"must be none or a list like 'flip,rotate=10,scale=0.9:1.1,translate=3', not {text!r}"
    for part in _parts(text):
        name, has_value, value = part.partition("=")
        kind = _ALIASES.get(name.strip())
        if kind is None:
            return f"cannot read augmentation '{part}': {_USAGE}"
        if kind in _FLAGS and has_value:
            return f"'{part}': {kind} takes no value; {_USAGE}"
        if kind in _RANGES and _range(kind, value) is None:
            return f"'{part}' must be {_RANGES[kind][1]}"
        if kind == "crop" and has_value and _crop_range(value) is None:
            return f"'{part}' must be {_CROP_RULE}"
    return None


def _parts(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]


def _options(text: str) -> dict[str, Any]:
    """AugmentSpec's fields from a text ``augment_problem`` found nothing wrong with."""
    options: dict[str, Any] = {}
    for part in _parts(text):
        name, _, value = part.partition("=")
        kind = _ALIASES[name.strip()]
        if kind in _FLAGS:
            options[_FLAGS[kind]] = True
        elif kind == "crop":
            options["crop"] = _crop_range(value) if value.strip() else DEFAULT_CROP
        else:
            for field in _RANGES[kind][0]:
                options[field] = _range(kind, value)
    return options


def _range(kind: str, value: str) -> tuple[float, float] | None:
    """``value`` as (low, high), or None unless finite, ordered and within the part's limits."""
    try:
        if ":" in value:
            low, high = (float(v) for v in value.split(":", 1))
        else:
            amount = float(value)
            spread = abs(amount - 1.0) if kind == "scale" else abs(amount)
            low, high = (1.0 - spread, 1.0 + spread) if kind == "scale" else (-spread, spread)
    except ValueError:
        return None
    limit = _RANGES[kind][2]
    if not (math.isfinite(low) and math.isfinite(high) and low <= high and max(abs(low), abs(high)) <= limit):
        return None
    if kind == "scale" and not low > 0:
        return None
    return low, high


def _crop_range(value: str) -> tuple[float, float] | None:
    """``LOW:HIGH`` as area fractions, or None unless 0 < LOW <= HIGH <= 1."""
    low_text, colon, high_text = value.partition(":")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        return None
    if not colon or not 0.0 < low <= high <= 1.0:  # NaN fails every comparison
        return None
    return low, high


def augment(batch: Any, spec: AugmentSpec, generator: Any = None, *, fill: float = 0.0) -> Any:
    """Randomly transformed copy of ``batch`` (N, C, H, W), same dtype and device.

    Args:
        batch: uint8 or float tensor.
        spec: what to vary.
        generator: a CPU ``torch.Generator`` for reproducible draws.
        fill: value of the pixels the transform uncovers.
    """
    import torch  # here, not at the top: zoo.training.options parses AugmentSpec without torch

    if not spec.batch_active or batch.shape[0] == 0:
        return batch
    n, _, height, width = batch.shape

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return torch.rand(n, generator=generator, dtype=torch.float64) * (bounds[1] - bounds[0]) + bounds[0]

    # the same draws in the same order for both paths below: a run's flips do not depend on the path
    angle = uniform(spec.rotation) * (math.pi / 180.0)
    scale = uniform(spec.scale)
    shift_x = uniform(spec.x_translation) * (2.0 / width)  # grid units: the image spans [-1, 1]
    shift_y = uniform(spec.y_translation) * (2.0 / height)
    flip_x = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if spec.x_reflection else torch.ones(n)
    flip_y = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if spec.y_reflection else torch.ones(n)
    if batch.dtype == torch.uint8 and replace(spec, x_reflection=False, y_reflection=False, crop=None) == AugmentSpec():
        return _mirror(batch, flip_x < 0, flip_y < 0)
    # grid_sample maps output -> input coordinates, so build the inverse transform
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos * flip_x.double()
    theta[:, 0, 1] = -sin * flip_x.double() * (height / width)
    theta[:, 1, 0] = sin * flip_y.double() * (width / height)
    theta[:, 1, 1] = cos * flip_y.double()
    theta[:, 0, 2] = -shift_x
    theta[:, 1, 2] = -shift_y
    return _affine(batch, theta, fill)


def _mirror(batch: Any, flip_x: Any, flip_y: Any) -> Any:
    """``batch`` with the rows marked in ``flip_x`` mirrored left-right and in ``flip_y`` upside down:
    the pixels ``_affine`` gives for pure flips of a uint8 batch (its samples fall on pixel centres)."""
    out = batch.clone()
    for marked, dim in ((flip_x, 2), (flip_y, 1)):
        for row in marked.nonzero().flatten().tolist():  # row by row: 10x faster on CPU than one 4-d flip
            out[row] = out[row].flip(dim)
    return out


def _affine(batch: Any, theta: Any, fill: float) -> Any:
    """Each image of ``batch`` resampled through its inverse transform ``theta`` (N x 2 x 3), bilinear."""
    import torch
    import torch.nn.functional as F

    x = batch.to(torch.float32)
    grid = F.affine_grid(theta.to(device=batch.device, dtype=torch.float32), list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    if batch.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(batch.dtype)
