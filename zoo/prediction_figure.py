"""The labelled prediction picture: the lecture's ``imshow(I); title(['The digit is ' char(label)])``.

Each image is shown as its file is (upright, as :func:`zoo.preprocess.open_image` reads it; gray
images in a gray colour map), not as the model saw it, with its predicted label and score as the
title; several images make a grid of at most :data:`MAX_SHOWN`. The title is a template
(:data:`DEFAULT_TITLE`, ``"{label} ({score})"``): the lecture's words are
``"The digit is {label}"``, but a model's card does not say what its classes are, and a general
model should not call a cat a digit.

numpy, Pillow and matplotlib only: the torch classifier and the torch-free runtime both use it.
"""

from __future__ import annotations

import math
import string
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.atomic import atomic_path
from zoo.errors import ZooError
from zoo.picture import picture_format
from zoo.preprocess import open_image

__all__ = ["DEFAULT_TITLE", "FIELDS", "MAX_SHOWN", "title_of", "title_problem", "prediction_figure",
           "save_prediction_figure"]

DEFAULT_TITLE = "{label} ({score})"
#: what a title template may name: the class, "99.9 %", the probability 0..1, the file's name
FIELDS = ("label", "score", "probability", "file")
MAX_SHOWN = 64  # an 8 x 8 grid: more tiles would be too small to read
GRAY_MODES = ("1", "L", "I", "I;16", "F")  # one channel: drawn with the gray colour map
DPI = 100


def title_of(prediction: Any, template: str = DEFAULT_TITLE) -> str:
    """A :class:`zoo.prediction.Prediction`'s title: ``"7 (99.9 %)"`` by default."""
    return template.format(**_fields(prediction.label, prediction.probability, prediction.source))


def _fields(label: str, probability: float, source: str = "") -> dict[str, Any]:
    return {"label": label, "score": f"{100 * probability:.1f} %", "probability": probability,
            "file": Path(source).name if source else ""}


def title_problem(template: Any) -> str | None:
    """What is wrong with a title template (``--title``), or None."""
    if not isinstance(template, str) or not template.strip():
        return f"must be a title such as 'The digit is {{label}} ({{score}})', not {template!r}"
    try:
        named = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
        unknown = [field for field in named if field not in FIELDS]
        if not unknown:
            template.format(**_fields("7", 0.999, "seven.png"))
    except (ValueError, TypeError) as exc:  # a lone brace, a format spec that does not fit the value
        return f"is not a title template ({exc}); write {{ and }} as {{{{ and }}}}"
    if unknown:
        return (f"names {{{unknown[0]}}}: a title may name {', '.join('{' + f + '}' for f in FIELDS)}, "
                f"not {template!r}")
    return None


def _upright(image: Any) -> Image.Image:
    """A path opened as the file is (EXIF-turned); a PIL image as it is."""
    if isinstance(image, Image.Image):
        return image
    try:
        return open_image(image)
    except (OSError, ValueError) as exc:
        raise ZooError(f"'{image}' is not a readable image ({type(exc).__name__})") from None


def _drawable(image: Image.Image, pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels and ``imshow`` keywords: at most ``pixels`` a side (a big photo is reduced first),
    gray modes in the gray colour map at their full range, small images with visible pixels."""
    small = max(image.size) <= pixels
    if not small:
        image = image.copy()
        image.thumbnail((pixels, pixels), Image.Resampling.BILINEAR if image.mode not in ("1", "I;16")
                        else Image.Resampling.NEAREST)
    options: dict[str, Any] = {"interpolation": "nearest" if small else "antialiased"}
    if image.mode in GRAY_MODES:
        array = np.asarray(image.convert("L") if image.mode == "1" else image)
        options["cmap"] = "gray"
        if array.dtype in (np.uint8, np.uint16):
            options.update(vmin=0, vmax=np.iinfo(array.dtype).max)  # as the file is, not stretched
        return array, options
    return np.asarray(image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB")), options


def _layout(n: int) -> dict[str, float]:
    """Columns, tile side (inches) and title font size (points) for ``n`` images."""
    columns = n if n <= 4 else min(8, math.ceil(math.sqrt(n)))
    tile = 4.5 if n == 1 else 3.0 if n <= 4 else 1.6
    font = 14.0 if n == 1 else 12.0 if n <= 4 else 10.5
    return {"columns": columns, "rows": math.ceil(n / columns), "tile": tile, "font": font}


def _tile_inches(pictures: Sequence[Image.Image], side: float) -> tuple[float, float]:
    """Width and height of a tile: one image keeps its shape (no band of white under a landscape
    photo); a grid's tiles are square, so its rows and columns line up."""
    if len(pictures) != 1:
        return side, side
    width, height = pictures[0].size
    return (side, side * height / width) if width >= height else (side * width / height, side)


def _fitted(prediction: Any, template: str, chars: int) -> str:
    """The title in at most two lines of ``chars``: a label longer than a line is shortened first
    (down to a line), so that the score after it stays; what still does not fit is cut."""
    full = prediction.label
    for keep in range(len(full), min(chars, len(full)) - 1, -1):
        label = full if keep == len(full) else full[:keep].rstrip(" ,;") + "…"
        text = template.format(**_fields(label, prediction.probability, prediction.source))
        lines = textwrap.wrap(text, chars) or [""]
        if len(lines) <= 2:
            break
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


def _tile(ax: Any, image: Image.Image, text: str, size: dict[str, float]) -> None:
    """One image in its axes, titled, in a light frame (a white image still shows where it ends)."""
    pixels, options = _drawable(image, int(2 * size["tile"] * DPI))
    ax.imshow(pixels, **options)
    ax.set_anchor("N")  # a wide image hangs under its title: the titles of a row stay in line
    ax.set_title(text, fontsize=size["font"], pad=4, linespacing=1.15)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set(color="0.8", linewidth=0.8)


def prediction_figure(images: Sequence[Any], predictions: Sequence[Any], *, title: str = DEFAULT_TITLE,
                      limit: int = MAX_SHOWN) -> Any:
    """The images (paths or PIL images) with their predictions' titles: a matplotlib ``Figure``.

    One image is shown large; several make a grid of the first ``limit`` (a note under the grid
    says how many were left out). Each tile's axes are labelled ``image 1``, ``image 2``...
    """
    from matplotlib.figure import Figure  # matplotlib: only when a picture is asked for

    if len(images) != len(predictions):
        raise ZooError(f"{len(images)} images but {len(predictions)} predictions: one prediction per image")
    if not images:
        raise ZooError("no images to show")
    problem = title_problem(title)
    if problem:
        raise ZooError(f"the title {problem}")
    shown = min(len(images), limit)
    size = _layout(shown)
    chars = max(12, int(size["tile"] * 72 / (0.56 * size["font"])))
    titles = [_fitted(p, title, chars) for p in predictions[:shown]]
    title_in = (max(t.count("\n") for t in titles) + 1) * size["font"] * 1.3 / 72 + 0.12
    note_in = 0.35 if shown < len(images) else 0.0
    pictures = [_upright(image) for image in images[:shown]]
    tile_w, tile_h = _tile_inches(pictures, size["tile"])
    cell_w, cell_h = tile_w + 0.2, tile_h + title_in + 0.1
    width, height = size["columns"] * cell_w + 0.2, size["rows"] * cell_h + 0.15 + note_in
    fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    for i, (picture, text) in enumerate(zip(pictures, titles)):
        row, col = divmod(i, int(size["columns"]))
        left = 0.1 + col * cell_w + 0.1
        bottom = height - 0.15 - (row + 1) * cell_h + 0.1
        ax = fig.add_axes((left / width, bottom / height, tile_w / width, tile_h / height),
                          label=f"image {i + 1}")
        _tile(ax, picture, text, size)
    if note_in:
        fig.text(0.5, 0.12 / height, f"the first {shown} of {len(images)} images; {len(images) - shown} not shown "
                 f"(a picture holds at most {limit})", ha="center", va="bottom", fontsize=10, color="0.35")
    return fig


def save_prediction_figure(path: str | Path, images: Sequence[Any], predictions: Sequence[Any], *,
                           title: str = DEFAULT_TITLE, limit: int = MAX_SHOWN) -> Path:
    """Write :func:`prediction_figure` as PNG or SVG (by the suffix), atomically."""
    path = Path(path).expanduser()
    kind = picture_format(path, "the prediction picture")
    fig = prediction_figure(images, predictions, title=title, limit=limit)
    with atomic_path(path, elsewhere="--show") as tmp:
        fig.savefig(tmp, format=kind, metadata={"Date": None} if kind == "svg" else None)
    return path
