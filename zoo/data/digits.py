"""Synthetic handwritten-style digits (the lecture's DigitDataset) and their ``digits`` adapter.

``make_digits(out)`` renders 10 classes x N grayscale PNGs into ``out/0..9/`` from fonts,
with random rotation, scale, shear, translation, stroke width, blur and noise, normalised
like MNIST: white on black, the digit fitted into a box of about 20/28 of the side, its
centre of mass in the middle. Each image has its own seed derived from (seed, label,
index), so the bytes depend only on the seed and the font files, never on the number of
worker processes. ``out/digits.json`` records the fonts (with their SHA-256) and the seed.

Fonts decide realism: handwriting fonts (Debian's fonts-bwht, fonts-comic-neue, ...) are
found under the system font folders; ``fonts=`` takes any others; without any, the system
fonts and Pillow's built-in font stand in, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from zoo.data import DataWarning
from zoo.data.folder import FolderDataset
from zoo.errors import ZooError

__all__ = [
    "DigitsDataset",
    "DigitStyle",
    "make_digits",
    "find_fonts",
    "handwriting_fonts",
    "METADATA_FILE",
    "BUILTIN_FONT",
]

METADATA_FILE = "digits.json"
BUILTIN_FONT = "pillow:default"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
#: Debian packages of OFL handwriting fonts, by the folder each installs into
HANDWRITING_FOLDERS = {
    "bwht": "fonts-bwht",
    "comic-neue": "fonts-comic-neue",
    "dancingscript": "fonts-dancingscript",
    "kaushanscript": "fonts-kaushanscript",
    "breip": "fonts-breip",
    "fifthhorseman": "fonts-dkg-handwriting",
    "humor-sans": "fonts-humor-sans",
    "kristi": "fonts-kristi",
    "tomsontalks": "fonts-tomsontalks",
}
FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
_RENDER_SIZE = 64  # font size the glyphs are drawn at before the affine warp and reduction


@dataclass(frozen=True)
class DigitStyle:
    """The random variation of make-digits; recorded in digits.json."""

    rotation_deg: float = 12.0  # standard deviation of the rotation, clipped at 2.5 sigma
    shear: float = 0.45  # horizontal shear, uniform in +-shear
    aspect: tuple[float, float] = (0.8, 1.8)  # width / height stretch (handwriting varies; real sets fill the box)
    box: tuple[float, float] = (0.72, 0.86)  # longer side of the digit, as a fraction of the image side
    stroke: tuple[float, float] = (0.12, 0.22)  # stroke width as a fraction of the glyph height
    translate: float = 0.045  # centre-of-mass offset, uniform in +-translate x side
    blur: tuple[float, float] = (0.3, 1.5)  # Gaussian radius in output pixels at size 28
    noise: float = 10.0  # max standard deviation of the additive noise (grey levels)
    low_res: float = 0.3  # probability of a coarse scan: down to 8-14 px (at size 28) and back up


#: Named presets. "realistic" (the default) is tuned so a CNN trained on it reads real
#: handwriting (0.88 on scikit-learn's digits); "lecture" is clean like MATLAB's DigitDataset
#: (mild rotation and shear, little blur or noise), where Lab 6's recipe reaches ~99.7 %.
STYLES = {
    "realistic": DigitStyle(),
    "lecture": DigitStyle(
        rotation_deg=6.0, shear=0.15, aspect=(0.9, 1.3), box=(0.74, 0.8), stroke=(0.13, 0.18),
        translate=0.03, blur=(0.2, 0.6), noise=2.0, low_res=0.0,
    ),
}


# --------------------------------------------------------------------------- fonts


def handwriting_fonts() -> list[Path]:
    """The installed handwriting font files from the Debian packages above, sorted."""
    found: set[Path] = set()
    for root in FONT_ROOTS:
        base = Path(root).expanduser()
        for folder in HANDWRITING_FOLDERS:
            for sub in (base / "truetype" / folder, base / "opentype" / folder, base / folder):
                if sub.is_dir():
                    found.update(p for p in sub.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
    return sorted(found)


def _system_fonts() -> list[Path]:
    found: set[Path] = set()
    for root in FONT_ROOTS:
        base = Path(root).expanduser()
        if base.is_dir():
            found.update(p for p in base.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())
    return sorted(found)


def find_fonts(sources: Iterable[str | Path] | None = None, *, warn: Callable[[str], None] | None = None) -> list[str]:
    """Font files for make-digits: ``sources`` (files or folders) if given, else handwriting fonts.

    Without handwriting fonts, falls back to the system fonts and Pillow's built-in font and
    warns: digits from such fonts look less like handwriting (a CNN trained on them scores
    about 0.68 instead of 0.90 on real MNIST).
    """
    warn = warn or (lambda message: warnings.warn(message, DataWarning, stacklevel=3))
    if sources:
        fonts: set[Path] = set()
        for source in sources:
            path = Path(source).expanduser()
            if path.is_dir():
                fonts.update(p for p in path.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())
            elif path.is_file():
                fonts.add(path)
            else:
                raise ZooError(f"font '{source}' does not exist: give font files (.ttf, .otf) or folders holding them")
        if not fonts:
            raise ZooError(f"no font files (.ttf, .otf, .ttc) in {', '.join(str(s) for s in sources)}")
        return [str(p) for p in sorted(fonts)]
    fonts_found = handwriting_fonts()
    if fonts_found:
        return [str(p) for p in fonts_found]
    packages = " ".join(sorted(HANDWRITING_FOLDERS.values()))
    warn(
        "no handwriting fonts found; using system fonts and Pillow's built-in font, which look less like "
        f"handwriting. Install them (apt-get install {packages}) or pass --fonts DIR"
    )
    return [str(p) for p in _system_fonts()] + [BUILTIN_FONT]


def _load_font(name: str) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if name == BUILTIN_FONT:
        return ImageFont.load_default(size=_RENDER_SIZE)
    return ImageFont.truetype(name, _RENDER_SIZE)


def _usable_fonts(names: Sequence[str], warn: Callable[[str], None]) -> list[str]:
    """Drop fonts that fail to load or lack a glyph for some digit (drawn as the missing-glyph box)."""
    usable, dropped = [], []
    for name in names:
        try:
            font = _load_font(name)
            missing = bytes(font.getmask("\U000f0000"))
            masks = [bytes(font.getmask(str(d))) for d in range(10)]
            if any(not any(m) or m == missing for m in masks) or len(set(masks)) < 10:
                dropped.append(f"{Path(name).name} (no digits)")
                continue
        except (OSError, ValueError) as exc:
            dropped.append(f"{Path(name).name} ({exc})")
            continue
        usable.append(name)
    if dropped:
        warn(f"skipped {len(dropped)} font(s) that cannot draw digits: {', '.join(dropped)}")
    if not usable:
        raise ZooError("none of the fonts can draw the digits 0-9: pass --fonts with .ttf/.otf files that have digits")
    return usable


def _pillow_version() -> str:
    import PIL

    return PIL.__version__


def _font_record(name: str) -> dict[str, str]:
    if name == BUILTIN_FONT:
        return {"name": BUILTIN_FONT, "sha256": f"pillow-{_pillow_version()}"}
    return {"name": Path(name).name, "path": name, "sha256": hashlib.sha256(Path(name).read_bytes()).hexdigest()}


# --------------------------------------------------------------------------- rendering


class _Renderer:
    """Draws digits from a list of fonts; glyph masks are cached per (font, digit, stroke)."""

    def __init__(self, fonts: Sequence[str], size: int, style: DigitStyle) -> None:
        self.fonts = [_load_font(name) for name in fonts]
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

    def render(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """One digit image, uint8 (size, size), white on black, centre of mass centred."""
        style, size = self.style, self.size
        font_index = int(rng.integers(len(self.fonts)))
        native, height = self._stroke_and_height(font_index, digit)
        target = rng.uniform(*style.stroke) * height
        stroke = int(round((target - native) / 2.0))
        stroke = max(-2, min(stroke, int(height * 0.12)))
        glyph = self._draw(font_index, digit, stroke)

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


def _image_rng(seed: int, label: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, label, index])


_WORKER: _Renderer | None = None


def _init_worker(fonts: Sequence[str], size: int, style: DigitStyle) -> None:
    global _WORKER
    _WORKER = _Renderer(fonts, size, style)


def _render_chunk(job: tuple[str, int, int, int, int]) -> int:
    folder, seed, label, start, stop = job
    assert _WORKER is not None
    for index in range(start, stop):
        pixels = _WORKER.render(label, _image_rng(seed, label, index))
        Image.fromarray(pixels, "L").save(os.path.join(folder, str(label), f"{index:05d}.png"), compress_level=6)
    return stop - start


def _pool_context() -> Any:
    # fork where it exists: fast, and a caller's script needs no ``if __name__ == "__main__"``
    # guard. The workers only use numpy and Pillow, so threads of the parent (torch) do no harm.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)


# --------------------------------------------------------------------------- make_digits


def make_digits(
    out: str | Path,
    *,
    per_class: int = 1000,
    size: int = 28,
    seed: int = 0,
    fonts: Iterable[str | Path] | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    style: DigitStyle | str | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write ``out/0..9/NNNNN.png`` and ``out/digits.json``; returns the recorded metadata.

    Args:
        out: the dataset folder; must not exist or be empty (or be an earlier make-digits
            folder with ``overwrite=True``). Written to a temporary sibling, then renamed.
        per_class: images per digit.
        size: image side in pixels (28 for MNIST-like digits).
        seed: same seed and font files -> the same bytes.
        fonts: font files or folders; default: the installed handwriting fonts.
        workers: processes (default: all cores; small sets render in this process).
        style: a :class:`DigitStyle` or a preset name from :data:`STYLES`.
    """
    warn = warn or (lambda message: warnings.warn(message, DataWarning, stacklevel=3))
    if per_class < 1:
        raise ZooError(f"--per-class must be at least 1, not {per_class}")
    if not 8 <= size <= 512:
        raise ZooError(f"--size must be between 8 and 512 pixels, not {size}")
    if isinstance(style, str):
        if style not in STYLES:
            raise ZooError(f"unknown digit style '{style}'; choose one of {', '.join(STYLES)}")
        style = STYLES[style]
    style = style or DigitStyle()
    out = Path(out).expanduser()
    _check_target(out, overwrite)
    font_names = _usable_fonts(find_fonts(fonts, warn=warn), warn)

    started = time.perf_counter()
    temp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        for label in range(10):
            (temp / str(label)).mkdir(parents=True)
        total = 10 * per_class
        workers = workers or min(os.cpu_count() or 1, 16)
        workers = 1 if total < 400 else max(1, workers)
        chunk = max(50, math.ceil(per_class / (4 * workers)))
        jobs = [
            (str(temp), seed, label, start, min(start + chunk, per_class))
            for label in range(10)
            for start in range(0, per_class, chunk)
        ]
        if workers == 1:
            _init_worker(font_names, size, style)
            for job in jobs:
                _render_chunk(job)
        else:
            with warnings.catch_warnings():  # Python 3.12 warns about fork in a threaded parent
                warnings.simplefilter("ignore", DeprecationWarning)
                pool = _pool_context().Pool(workers, _init_worker, (font_names, size, style))
            with pool:
                for _ in pool.imap_unordered(_render_chunk, jobs):
                    pass
        metadata = {
            "generator": "zoo data make-digits",
            "format": 1,
            "pillow": _pillow_version(),  # the same bytes need the same renderer too
            "seed": seed,
            "per_class": per_class,
            "size": size,
            "classes": [str(d) for d in range(10)],
            "fonts": [_font_record(name) for name in font_names],
            "style": asdict(style),
        }
        (temp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            _remove_previous(out)
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    metadata["seconds"] = time.perf_counter() - started
    return metadata


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ZooError(f"'{out}' is a file: give a folder to write the digits into")
    if out.is_dir() and any(out.iterdir()):
        if not (out / METADATA_FILE).is_file():
            raise ZooError(f"'{out}' is not empty and was not made by make-digits: choose a new or empty folder")
        if not overwrite:
            raise ZooError(f"'{out}' already holds digits: pass --overwrite to replace them, or choose another folder")
    if not out.parent.is_dir():
        raise ZooError(f"the parent folder of '{out}' does not exist")


def _remove_previous(out: Path) -> None:
    if any(out.iterdir()):
        shutil.rmtree(out)
    else:
        out.rmdir()


# --------------------------------------------------------------------------- adapter


class DigitsDataset(FolderDataset):
    """A make-digits folder: a folder dataset whose ``metadata`` holds the fonts and seed."""

    def __init__(self, root: str | Path, **options: Any) -> None:
        meta_path = Path(root).expanduser() / METADATA_FILE
        if Path(root).expanduser().is_dir() and not meta_path.is_file():
            raise ZooError(f"'{root}' has no {METADATA_FILE}: it was not made by 'zoo data make-digits' (use adapter 'folder')")
        super().__init__(root, **options)
        try:
            self.metadata: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ZooError(f"cannot read {meta_path}: {exc}") from None
