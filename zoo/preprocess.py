"""The one preprocessing every path uses: training, evaluation, prediction and export.

numpy and Pillow only (and zoo's settings and errors), so the torch-free runtime and the torch
data pipeline share it, and ``open_image``, the one image-file reader, with its pixel limit.
A card's input config decides everything: size, channels, interpolation, resize mode
(crop fraction and crop mode), mean and std. Pixels are decoded once to uint8 at the model's
size (``to_pixels``); normalisation (``normalize``) is arithmetic that works on numpy arrays and
torch tensors.

Two resize modes: ``squash`` resizes to the input size, aspect ratio ignored (MATLAB's
``imresize`` to the input layer's size); ``center-crop`` is timm's eval transform
(``timm.data.transforms_imagenet_eval``, which torchvision's ``Resize`` + ``CenterCrop`` presets
equal for ``crop_mode="center"``), reproduced pixel for pixel on Pillow images:
``tests/test_preprocess.py`` compares it with timm's own transform on real photos.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps

from zoo import settings
from zoo.errors import ZooError

__all__ = ["IMAGE_SUFFIXES", "RESAMPLE", "ImageTooLarge", "open_image", "orientation", "to_rgb_or_gray", "to_pixels", "normalize", "Preprocess"]

# The image files every reader takes: training folders, prediction folders, the runtime.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


class Preprocess:
    """The input config of a card, detached from it (what the runtime reads from an ONNX file)."""

    def __init__(
        self,
        *,
        input_size: tuple[int, int],
        channels: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        interpolation: str = "bilinear",
        resize_mode: str = "squash",
        crop_pct: float = 0.875,
        crop_mode: str = "center",
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.channels = int(channels)
        self.mean = tuple(float(v) for v in (mean * channels if len(mean) == 1 else mean))
        self.std = tuple(float(v) for v in (std * channels if len(std) == 1 else std))
        self.interpolation = interpolation
        self.resize_mode = resize_mode
        self.crop_pct = float(crop_pct)
        self.crop_mode = crop_mode

    @classmethod
    def from_card(cls, card: Any) -> Preprocess:
        return cls(
            input_size=card.input_size,
            channels=card.channels,
            mean=card.mean,
            std=card.std,
            interpolation=card.interpolation,
            resize_mode=card.resize_mode,
            crop_pct=card.crop_pct,
            crop_mode=card.crop_mode,
        )

    def pixels(self, image: Image.Image) -> np.ndarray:
        return to_pixels(image, self)

    def __call__(self, pixels: Any) -> Any:
        return normalize(pixels, self)


class ImageTooLarge(ZooError):
    """An image file with more pixels than ``ZOO_MAX_IMAGE_PIXELS`` allows, found from its header.

    Attributes: ``source`` (the file), ``pixels`` (width x height; None when only Pillow's
    refusal told), ``limit``, ``size`` ((width, height), when known).
    """

    def __init__(self, source: str, pixels: int | None, limit: int, size: tuple[int, int] | None = None) -> None:
        super().__init__(source, pixels, limit, size)  # all in args: the error pickles (DataLoader workers)
        self.source, self.pixels, self.limit, self.size = str(source), pixels, int(limit), size

    @property
    def reason(self) -> str:
        """Why, without the file's name: what a skipped-files warning says about it."""
        dims = f"{self.size[0]}x{self.size[1]} = " if self.size else ""
        count = f"{self.pixels:,} pixels" if self.pixels else "more pixels than Pillow allows"
        return f"{dims}{count}, over the ZOO_MAX_IMAGE_PIXELS limit of {self.limit:,}"

    def __str__(self) -> str:
        return (f"'{self.source}' is too large: {self.reason}; to read it, raise the limit: "
                f"ZOO_MAX_IMAGE_PIXELS={self.pixels or 0} (0 lifts it)")


def open_image(path: str | Path | IO[bytes], *, before_load: Callable[[Image.Image], Any] | None = None) -> Image.Image:
    """Open and fully decode an image file (a path or a binary file object).

    EXIF orientation is applied, as cameras and viewers do (an unreadable EXIF block leaves the
    image as stored, as viewers show it). The size is checked from the header, before decoding,
    so memory stays bounded: more than ``ZOO_MAX_IMAGE_PIXELS`` pixels
    (:func:`zoo.settings.max_image_pixels`) raises :class:`ImageTooLarge`. A missing file raises
    ``FileNotFoundError``; any file Pillow cannot decode raises ``OSError`` whatever its decoder
    raised (Pillow's plugins raise SyntaxError, struct.error, TypeError, ... on damaged bytes).
    ``before_load(image)`` sees the opened, checked, not yet decoded image (as stored): e.g. to ask
    a JPEG for a reduced decode with ``image.draft`` (:func:`zoo.data.stream.open_for_crop`).
    """
    limit = settings.max_image_pixels()
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(getattr(path, "name", "") or "the image")
    with _zoo_limit_decides(limit):
        try:
            with Image.open(path) as img:
                if limit is not None and img.width * img.height > limit:
                    raise ImageTooLarge(name, img.width * img.height, limit, img.size)
                if before_load is not None:
                    before_load(img)
                img.load()
                return _upright(img)
        except Image.DecompressionBombError as exc:  # Pillow's hard limit, only below zoo's
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageTooLarge(name, int(found[1]) if found else None, limit or 0) from None
        except (ZooError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder's own error on damaged bytes
            raise OSError(f"cannot decode {name}: {type(exc).__name__}: {exc}") from None


def orientation(image: Image.Image) -> int:
    """The EXIF orientation from the header; 1 (as stored) when there is none or it is unreadable."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - Pillow's TIFF/EXIF parser raises anything on damaged tags
        return 1


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as stored when there is nothing to turn or the
    EXIF block is damaged (without a copy: most files need no turn)."""
    if orientation(image) == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - Pillow's TIFF/EXIF parser raises anything on damaged tags
        return image


@contextlib.contextmanager
def _zoo_limit_decides(limit: int | None) -> Iterator[None]:
    """Let zoo's pixel limit decide instead of Pillow's ``MAX_IMAGE_PIXELS`` (Pillow has no per-call limit).

    Pillow's warning (above its limit) is silenced here only, since zoo checks the header itself,
    as are its warnings about damaged files (a damaged EXIF block: the image is read as stored;
    a truncated file: zoo's error or skipped-files warning says so); its refusal (above twice its limit) stands unless zoo's limit is higher, which only
    ``ZOO_MAX_IMAGE_PIXELS`` can make it: then, and only while zoo opens a file, Pillow's check is off.
    """
    pillow = _pillow_limit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")  # damaged EXIF, truncated TIFF
        if pillow is not None and (limit is None or limit > 2 * pillow):
            with _pillow_check_off():
                yield
        else:
            yield


_lift_lock = threading.Lock()
_lifts = {"count": 0, "saved": None}


def _pillow_limit() -> int | None:
    """Pillow's own limit: the user's value, also while :func:`_pillow_check_off` has it lifted."""
    with _lift_lock:
        return _lifts["saved"] if _lifts["count"] else Image.MAX_IMAGE_PIXELS


@contextlib.contextmanager
def _pillow_check_off() -> Iterator[None]:
    """``Image.MAX_IMAGE_PIXELS = None`` while any thread is inside, then the user's value again."""
    with _lift_lock:
        if _lifts["count"] == 0:
            _lifts["saved"] = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _lifts["count"] += 1
    try:
        yield
    finally:
        with _lift_lock:
            _lifts["count"] -= 1
            if _lifts["count"] == 0:
                Image.MAX_IMAGE_PIXELS = _lifts["saved"]


def to_rgb_or_gray(image: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode (L, RGB, RGBA, P, LA, I;16, I, F, CMYK) to L or RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") or (arr.max(initial=0) > 255) else (0.0, 255.0)
        if mode == "F" and arr.size and arr.max() <= 1.0:
            hi = 1.0
        arr = np.clip((arr - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr, mode="L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels over black, the background digits and photos expect least harm from.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def to_pixels(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """Resize and convert to the model's input: uint8 array, height x width x channels."""
    image = to_rgb_or_gray(image, pre.channels)
    height, width = pre.input_size
    resample = RESAMPLE[pre.interpolation]
    if pre.resize_mode == "center-crop":
        image = _eval_resize_crop(image, pre, resample)
    elif image.size != (width, height):
        image = image.resize((width, height), resample)
    arr = np.asarray(image, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _eval_resize_crop(image: Image.Image, pre: Preprocess, resample: Image.Resampling) -> Image.Image:
    """timm's ``transforms_imagenet_eval`` for ``crop_mode`` center, squash or border.

    Each step repeats timm's (and torchvision's) arithmetic, roundings included, so the
    pixels are the same: the scale size is ``floor(size / crop_pct)``; ``center`` resizes the
    shorter side to it (torchvision truncates the longer side; timm's ``ResizeKeepRatio``
    rounds both for non-square inputs), ``squash`` both sides, ``border`` the longer side;
    then a centre crop, padded where the image is smaller (with 0, or for ``border`` with the
    mean colour), offsets rounded half to even as torchvision does.
    """
    height, width = pre.input_size
    scale_h = max(1, math.floor(height / pre.crop_pct))
    scale_w = max(1, math.floor(width / pre.crop_pct))
    img_w, img_h = image.size
    fill: tuple[int, ...] = (0,) * pre.channels
    if pre.crop_mode == "squash":
        size = (scale_w, scale_h)
    elif pre.crop_mode == "border":  # ResizeKeepRatio(longest=1): the longer side fits
        ratio = max(img_h / scale_h, img_w / scale_w)
        size = (max(1, round(img_w / ratio)), max(1, round(img_h / ratio)))
        fill = tuple(round(255 * m) for m in pre.mean)
    elif scale_h == scale_w:  # torchvision Resize(int): shorter side exact, longer truncated
        short, long = min(img_w, img_h), max(img_w, img_h)
        new_long = int(scale_h * long / short)
        size = (scale_h, new_long) if img_w <= img_h else (new_long, scale_h)
    else:  # ResizeKeepRatio(longest=0): the shorter side (relative to the target) fits
        ratio = min(img_h / scale_h, img_w / scale_w)
        size = (max(1, round(img_w / ratio)), max(1, round(img_h / ratio)))
    if image.size != size:
        image = _resize_then_crop(image, size, (width, height), resample)
    return _center_crop_or_pad(image, height, width, fill)


def _resize_then_crop(image: Image.Image, size: tuple[int, int], crop: tuple[int, int],
                      resample: Image.Resampling) -> Image.Image:
    """``image.resize(size)``, of which the centre crop then keeps ``crop``.

    An extreme aspect ratio (a 40000x1 strip) resized so its short side fits would be gigabytes;
    past 4 times the crop's area (wider than about 3:1), only the region the crop keeps is
    resized, through Pillow's ``box``, which reads the same source pixels with the same filter
    (Pillow's two passes round differently: measured within 1 level, a few pixels up to 17 with
    bicubic, on random-noise strips). Photos up to 3:1 take timm's exact steps.
    """
    new_w, new_h = size
    if new_w * new_h <= 4 * crop[0] * crop[1]:
        return image.resize(size, resample)  # the usual case, exactly timm's steps
    keep_w, keep_h = min(crop[0], new_w), min(crop[1], new_h)
    left, top = int(round((new_w - keep_w) / 2.0)), int(round((new_h - keep_h) / 2.0))
    scale_w, scale_h = image.width / new_w, image.height / new_h
    box = (left * scale_w, top * scale_h, (left + keep_w) * scale_w, (top + keep_h) * scale_h)
    return image.resize((keep_w, keep_h), resample, box=box)


def _center_crop_or_pad(image: Image.Image, height: int, width: int, fill: tuple[int, ...]) -> Image.Image:
    """torchvision's ``center_crop`` (timm's ``center_crop_or_pad``): pad to at least the
    output size, the odd pixel right and bottom, then crop at round-half-even offsets."""
    img_w, img_h = image.size
    if width > img_w or height > img_h:
        left, top = max(0, (width - img_w) // 2), max(0, (height - img_h) // 2)
        padded = Image.new(image.mode, (max(width, img_w), max(height, img_h)),
                           fill[0] if image.mode == "L" else fill)
        padded.paste(image, (left, top))
        image = padded
        img_w, img_h = image.size
    if (img_w, img_h) == (width, height):
        return image
    top, left = int(round((img_h - height) / 2.0)), int(round((img_w - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def normalize(pixels: Any, pre: Preprocess, *, channels_last: bool = False) -> Any:
    """uint8 pixels (N, C, H, W) -> float32 ``(x / 255 - mean) / std``; numpy or torch alike."""
    shape = (1, 1, 1, pre.channels) if channels_last else (1, pre.channels, 1, 1)
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(shape)
    std = np.asarray(pre.std, dtype=np.float32).reshape(shape)
    if isinstance(pixels, np.ndarray):
        return (pixels.astype(np.float32) / 255.0 - mean) / std
    import torch  # only reached with a torch tensor, which means torch is already imported

    x = pixels.to(torch.float32) / 255.0
    return (x - torch.as_tensor(mean, device=x.device)) / torch.as_tensor(std, device=x.device)
