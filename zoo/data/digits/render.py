"""Drawing one synthetic digit: the random variation (``DigitStyle``) and the renderer.

A glyph is drawn from a font, or with a round pen along one of the digit's usual written
forms (``ALLOGRAPHS``: the European 1 and crossed 7, the open 4, the 9 with a curled tail,
...), given a random stroke width, rotated, sheared and stretched, fitted into a box of
about 20/28 of the side, optionally coarse-scanned, placed with its centre of mass in the
middle, blurred and given noise: white on black, like MNIST. Every random draw comes from
the generator passed in, so the pixels depend only on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from zoo.data.digits.fonts import RENDER_SIZE, load_font

__all__ = ["ALLOGRAPHS", "STYLES", "DigitStyle", "Renderer"]


@dataclass(frozen=True)
class DigitStyle:
    """The random variation of make-digits; recorded in digits.json."""

    rotation_deg: float = 12.0  # standard deviation of the rotation, clipped at 2.5 sigma
    shear: float = 0.45  # horizontal shear, uniform in +-shear
    aspect: tuple[float, float] = (0.8, 1.8)  # width / height stretch (handwriting varies; real sets fill the box)
    box: tuple[float, float] = (0.68, 0.8)  # longer side of the digit, as a fraction of the image side
    stroke: tuple[float, float] = (0.12, 0.22)  # stroke width as a fraction of the glyph height
    translate: float = 0.045  # centre-of-mass offset, uniform in +-translate x side
    blur: tuple[float, float] = (0.3, 1.5)  # Gaussian radius in output pixels at size 28
    noise: float = 10.0  # max standard deviation of the additive noise (grey levels)
    low_res: float = 0.3  # probability of a coarse scan: down to 8-14 px (at size 28) and back up
    pen: float = 0.7  # probability of drawing with a pen along one of ALLOGRAPHS instead of a font
    pen_jitter: float = 0.06  # standard deviation of each pen point's offset, as a fraction of the height


#: Named presets. "realistic" (the default) is tuned so a CNN trained on it reads real
#: handwriting (about 0.92 on scikit-learn's digits); "lecture" is clean like MATLAB's
#: DigitDataset (fonts only, mild rotation and shear, little blur or noise), where Lab 6's
#: recipe reaches ~99.7 %.
STYLES = {
    "realistic": DigitStyle(),
    "lecture": DigitStyle(
        rotation_deg=6.0, shear=0.15, aspect=(0.9, 1.3), box=(0.74, 0.8), stroke=(0.13, 0.18),
        translate=0.03, blur=(0.2, 0.6), noise=2.0, low_res=0.0, pen=0.0,
    ),
}

# --------------------------------------------------------------------------- pen-drawn digits
# The usual written forms of each digit. A form is strokes; a stroke is points in the unit
# box (x to the right, y down), joined by a smooth curve; two points make a straight line.
# Corners are where strokes meet: points shared by strokes move together.
Form = tuple[tuple[tuple[float, float], ...], ...]
_FLAG, _STEM, _BASE = ((0.15, 0.3), (0.55, 0.0)), ((0.55, 0.0), (0.5, 1.0)), ((0.15, 1.0), (0.9, 1.0))
_LOOP = ((0.9, 0.2), (0.55, 0.42), (0.12, 0.3), (0.3, 0.02), (0.75, 0.02), (0.9, 0.2))
_SMALL_LOOP = ((0.85, 0.15), (0.5, 0.3), (0.2, 0.18), (0.45, 0.0), (0.85, 0.05), (0.85, 0.15))
_SEVEN = (((0.0, 0.0), (1.0, 0.0)), ((1.0, 0.0), (0.35, 1.0)))
_HOOKED_SEVEN = (((0.02, 0.25), (0.08, 0.03), (0.45, 0.0), (1.0, 0.0)), ((1.0, 0.0), (0.4, 1.0)))
_CROSSBAR = ((0.3, 0.52), (0.9, 0.48))
_TWO_TOP = ((0.05, 0.25), (0.35, 0.02), (0.75, 0.05), (0.9, 0.3), (0.6, 0.62))
_THREE_BOTTOM = ((0.85, 0.62), (0.85, 0.9), (0.5, 1.0), (0.08, 0.88))
ALLOGRAPHS: dict[int, tuple[Form, ...]] = {
    0: ((((0.55, 0.0), (0.15, 0.2), (0.05, 0.55), (0.3, 0.95), (0.7, 0.95), (0.95, 0.55), (0.85, 0.15), (0.55, 0.0),
           (0.4, 0.06)),),),
    1: ((_STEM,), (_FLAG, _STEM), (_FLAG, _STEM, _BASE), (((0.1, 0.4), (0.65, 0.0)), ((0.65, 0.0), (0.6, 1.0)), _BASE)),
    2: (
        (_TWO_TOP + ((0.05, 1.0),), ((0.05, 1.0), (0.95, 0.97))),
        (_TWO_TOP + ((0.1, 0.95), (0.3, 0.8), (0.45, 0.97), (0.95, 0.97)),),
    ),
    3: (
        (((0.1, 0.12), (0.45, 0.0), (0.85, 0.15), (0.75, 0.38), (0.4, 0.47)), ((0.4, 0.47),) + _THREE_BOTTOM),
        (((0.1, 0.0), (0.9, 0.0)), ((0.9, 0.0), (0.4, 0.42)), ((0.4, 0.42),) + _THREE_BOTTOM),
    ),
    4: (
        (((0.25, 0.0), (0.05, 0.65)), ((0.05, 0.65), (0.95, 0.65)), ((0.72, 0.25), (0.72, 1.0))),
        (((0.72, 1.0), (0.72, 0.0)), ((0.72, 0.0), (0.0, 0.68)), ((0.0, 0.68), (0.98, 0.68))),
        (((0.1, 0.0), (0.1, 0.6)), ((0.1, 0.6), (0.95, 0.6)), ((0.75, 0.05), (0.75, 1.0))),
        (((0.12, 0.0), (0.08, 0.4), (0.35, 0.62), (0.95, 0.58)), ((0.78, 0.0), (0.75, 1.0))),
    ),
    5: ((((0.9, 0.0), (0.2, 0.0)), ((0.2, 0.0), (0.15, 0.45)),
         ((0.15, 0.45), (0.5, 0.38), (0.88, 0.6), (0.75, 0.92), (0.4, 1.0), (0.05, 0.88))),),
    6: (
        (((0.8, 0.0), (0.4, 0.2), (0.12, 0.6), (0.25, 0.95), (0.6, 1.0), (0.88, 0.75), (0.65, 0.5), (0.3, 0.55),
           (0.12, 0.7)),),
        (((0.7, 0.0), (0.2, 0.55), (0.25, 0.95), (0.65, 1.0), (0.85, 0.75), (0.6, 0.5), (0.25, 0.65)),),
    ),
    7: (_SEVEN, _SEVEN + (_CROSSBAR,), _HOOKED_SEVEN, _HOOKED_SEVEN + (_CROSSBAR,),
        (((0.0, 0.0), (1.0, 0.0)), ((1.0, 0.0), (0.6, 0.5), (0.45, 1.0)))),
    8: (
        (((0.85, 0.12), (0.5, 0.0), (0.15, 0.15), (0.25, 0.38), (0.75, 0.6), (0.9, 0.85), (0.5, 1.0), (0.1, 0.85),
           (0.25, 0.6), (0.75, 0.38), (0.85, 0.12)),),
        (((0.5, 0.42), (0.2, 0.25), (0.45, 0.0), (0.8, 0.2), (0.5, 0.42), (0.15, 0.7), (0.45, 1.0), (0.85, 0.75),
           (0.5, 0.42)),),
    ),
    9: (
        (_LOOP, ((0.9, 0.2), (0.85, 1.0))),
        (_LOOP, ((0.9, 0.2), (0.85, 0.7), (0.6, 1.0), (0.2, 0.92))),
        (_SMALL_LOOP, ((0.85, 0.15), (0.85, 0.65), (0.6, 1.0), (0.2, 0.9))),
    ),
}
PEN_BOX_RATIO = 0.65  # width of the unit box relative to its height, before the random aspect stretch


def smooth_curve(points: np.ndarray, samples: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` (n, 2), ``samples`` points per segment."""
    if len(points) < 3:
        return points
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    p0, p1, p2, p3 = (p[i : len(p) - 3 + i, None, :] for i in range(4))  # (segments, 1, 2) each
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]
    curve = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
    return np.vstack([curve.reshape(-1, 2), points[-1:]])


def draw_pen(form: Form, rng: np.random.Generator, height: float, width: float, jitter: float) -> Image.Image:
    """``form`` drawn with a round pen ``width`` pixels wide, ``height`` pixels tall, its points jittered."""
    offsets: dict[tuple[float, float], np.ndarray] = {}
    for point in (point for stroke in form for point in stroke):
        if point not in offsets:  # in drawing order, so the draws are reproducible
            offsets[point] = rng.normal(0.0, jitter, 2)
    scale = np.array([height * PEN_BOX_RATIO, height])
    curves = [smooth_curve(np.array([np.add(p, offsets[p]) for p in stroke])) * scale for stroke in form]
    margin = width + 2.0
    low = np.vstack(curves).min(axis=0) - margin
    size = np.ceil(np.vstack(curves).max(axis=0) - low + margin).astype(int)
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw, radius = ImageDraw.Draw(canvas), width / 2.0
    for curve in curves:
        xy = curve - low
        draw.line(xy.ravel().tolist(), fill=255, width=max(1, round(width)))
        for x, y in xy[[0, -1]].tolist():  # round pen ends
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return canvas.crop(canvas.getbbox() or (0, 0, 1, 1))


class Renderer:
    """Draws digits from a list of fonts; glyph masks are cached per (font, digit, stroke)."""

    def __init__(self, fonts: Sequence[str], size: int, style: DigitStyle) -> None:
        self.fonts = [load_font(name) for name in fonts]
        self.size = size
        self.style = style
        self._glyphs: dict[tuple[int, int, int], Image.Image] = {}
        self._native: dict[tuple[int, int], tuple[float, float]] = {}

    def _draw(self, font_index: int, digit: int, stroke: int) -> Image.Image:
        key = (font_index, digit, stroke)
        glyph = self._glyphs.get(key)
        if glyph is None:
            font = self.fonts[font_index]
            pad = 8 + max(stroke, 0)
            left, top, right, bottom = font.getbbox(str(digit), stroke_width=max(stroke, 0))
            canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
            ImageDraw.Draw(canvas).text(
                (pad - left, pad - top), str(digit), fill=255, font=font, stroke_width=max(stroke, 0), stroke_fill=255
            )
            if stroke < 0:  # thinner than the font: erode
                canvas = canvas.filter(ImageFilter.MinFilter(2 * -stroke + 1))
            glyph = canvas.crop(canvas.getbbox() or (0, 0, 1, 1))
            self._glyphs[key] = glyph
        return glyph

    def _stroke_and_height(self, font_index: int, digit: int) -> tuple[float, float]:
        """The font's own stroke width (2 x ink area / boundary length) and glyph height, in pixels."""
        key = (font_index, digit)
        if key not in self._native:
            ink = np.asarray(self._draw(font_index, digit, 0)) > 127
            boundary = ink & ~(
                np.pad(ink, 1)[:-2, 1:-1] & np.pad(ink, 1)[2:, 1:-1] & np.pad(ink, 1)[1:-1, :-2] & np.pad(ink, 1)[1:-1, 2:]
            )
            width = 2.0 * ink.sum() / max(boundary.sum(), 1)
            self._native[key] = (float(width), float(ink.shape[0]))
        return self._native[key]

    def _font_glyph(self, digit: int, rng: np.random.Generator) -> Image.Image:
        """The digit from a random font, thickened or thinned to a random stroke width."""
        font_index = int(rng.integers(len(self.fonts)))
        native, height = self._stroke_and_height(font_index, digit)
        target = rng.uniform(*self.style.stroke) * height
        stroke = int(round((target - native) / 2.0))
        stroke = max(-2, min(stroke, int(height * 0.12)))
        return self._draw(font_index, digit, stroke)

    def _pen_glyph(self, digit: int, rng: np.random.Generator) -> Image.Image:
        """The digit drawn with a pen along one of its written forms, at a random stroke width."""
        forms = ALLOGRAPHS[digit]
        form = forms[int(rng.integers(len(forms)))]
        width = rng.uniform(*self.style.stroke) * RENDER_SIZE
        return draw_pen(form, rng, RENDER_SIZE, width, self.style.pen_jitter)

    def render(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """One digit image, uint8 (size, size), white on black, centre of mass centred."""
        style, size = self.style, self.size
        # no draw when pen is 0, so the lecture style's images stay the same bytes
        by_pen = style.pen > 0 and rng.random() < style.pen
        glyph = self._pen_glyph(digit, rng) if by_pen else self._font_glyph(digit, rng)

        # affine warp: rotation, shear and aspect at render resolution
        angle = math.radians(float(np.clip(rng.normal(0.0, style.rotation_deg), -2.5 * style.rotation_deg, 2.5 * style.rotation_deg)))
        shear = rng.uniform(-style.shear, style.shear)
        aspect = rng.uniform(*style.aspect)
        cos, sin = math.cos(angle), math.sin(angle)
        forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0])
        w, h = glyph.size
        corners = forward @ np.array([[0, w, 0, w], [0, 0, h, h]], dtype=np.float64)
        lo, hi = corners.min(axis=1), corners.max(axis=1)
        out_w, out_h = int(math.ceil(hi[0] - lo[0])) + 2, int(math.ceil(hi[1] - lo[1])) + 2
        inverse = np.linalg.inv(forward)
        offset = inverse @ (lo - 1.0)
        data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
        warped = glyph.transform((out_w, out_h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
        warped = warped.crop(warped.getbbox() or (0, 0, 1, 1))

        # fit the longer side into the box (MNIST: 20 of 28 px), keeping the aspect ratio
        box = rng.uniform(*style.box) * size
        scale = box / max(warped.size)
        new = (max(1, round(warped.width * scale)), max(1, round(warped.height * scale)))
        reduced = warped.resize(new, Image.Resampling.LANCZOS, reducing_gap=2.0)
        coarse_scan = rng.random() < style.low_res
        if coarse_scan:
            coarse = rng.uniform(8.0, 14.0) * size / 28.0 / max(new)
            tiny = (max(2, round(new[0] * coarse)), max(2, round(new[1] * coarse)))
            reduced = reduced.resize(tiny, Image.Resampling.BOX).resize(new, Image.Resampling.BICUBIC)
        small = np.asarray(reduced, dtype=np.float32)

        # place the centre of mass at the centre, plus a small random shift
        total = small.sum() or 1.0
        cy = (small.sum(axis=1) @ np.arange(small.shape[0])) / total
        cx = (small.sum(axis=0) @ np.arange(small.shape[1])) / total
        shift = rng.uniform(-style.translate, style.translate, size=2) * size
        top = int(round((size - 1) / 2.0 - cy + shift[0]))
        left = int(round((size - 1) / 2.0 - cx + shift[1]))
        canvas = np.zeros((size, size), dtype=np.float32)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + small.shape[0], size), min(left + small.shape[1], size)
        if y1 > y0 and x1 > x0:
            canvas[y0:y1, x0:x1] = small[y0 - top : y1 - top, x0 - left : x1 - left]

        radius = rng.uniform(*style.blur) * size / 28.0 * (0.3 if coarse_scan else 1.0)
        image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "L")
        if radius > 0.15:
            image = image.filter(ImageFilter.GaussianBlur(radius))
        pixels = np.asarray(image, dtype=np.float32)
        peak = pixels.max()
        if peak > 0:  # strokes reach full white, as in MNIST
            pixels *= rng.uniform(0.9, 1.0) * 255.0 / peak
        sigma = rng.uniform(0.0, style.noise)
        if sigma > 0.5:
            pixels += rng.normal(0.0, sigma, size=pixels.shape) * (rng.random() < 0.5)
        return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)

