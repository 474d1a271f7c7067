"""A grid of sample images with their labels: the lecture's "20 random digits" figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from zoo.atomic import atomic_path
from zoo.errors import ZooError

__all__ = ["montage", "save_montage"]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def montage(images: Sequence[Image.Image], captions: Sequence[str], *, columns: int = 5, tile: int = 112) -> Image.Image:
    """Each image scaled to fit ``tile`` px (nearest for small ones), its caption above it."""
    if not images:
        raise ZooError("no images to show")
    rows = (len(images) + columns - 1) // columns
    font = _font(max(12, tile // 7))
    caption_h = max(16, tile // 5)
    pad = 6
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + caption_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images, captions)):
        row, col = divmod(i, columns)
        x, y = pad + col * (tile + pad), pad + row * (tile + caption_h + pad)
        image = image.convert("RGB")
        scale = tile / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
        image = image.resize(size, resample)
        sheet.paste(image, (x + (tile - size[0]) // 2, y + caption_h + (tile - size[1]) // 2))
        text = caption if len(caption) <= 18 else caption[:17] + "…"
        width = draw.textlength(text, font=font)
        draw.text((x + (tile - width) / 2, y + 1), text, fill=(0, 0, 0), font=font)
    return sheet


def save_montage(path: str | Path, images: Sequence[Image.Image], captions: Sequence[str], **options: int) -> Path:
    """Write the montage as PNG (atomically: a temporary file, then renamed)."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise ZooError(f"folder '{path.parent}' for the montage does not exist")
    sheet = montage(images, captions, **options)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path

