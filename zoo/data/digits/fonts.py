"""Fonts for make-digits: finding the handwriting fonts, checking they draw 0-9, recording them.

Fonts decide realism: handwriting fonts (Debian's fonts-bwht, fonts-comic-neue, ...) are
found under the system font folders; ``fonts=`` takes any others; without any, the system
fonts and Pillow's built-in font stand in, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import PIL
from PIL import ImageFont

from zoo.data.base import warn_data
from zoo.errors import ZooError

__all__ = ["find_fonts", "handwriting_fonts", "usable_fonts", "load_font", "font_record", "BUILTIN_FONT"]

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
RENDER_SIZE = 64  # font size the glyphs are drawn at before the affine warp and reduction


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


def _font_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file()}


def _system_fonts() -> list[Path]:
    found: set[Path] = set()
    for root in FONT_ROOTS:
        base = Path(root).expanduser()
        if base.is_dir():
            found.update(_font_files(base))
    return sorted(found)


def find_fonts(sources: Iterable[str | Path] | None = None, *, warn: Callable[[str], None] | None = None) -> list[str]:
    """Font files for make-digits: ``sources`` (files or folders) if given, else handwriting fonts.

    Without handwriting fonts, falls back to the system fonts and Pillow's built-in font and
    warns: digits from such fonts look less like handwriting (a CNN trained on them scores
    about 0.68 instead of 0.90 on real MNIST).
    """
    warn = warn or functools.partial(warn_data, stacklevel=2)  # names the caller of find_fonts
    if sources:
        fonts: set[Path] = set()
        for source in sources:
            path = Path(source).expanduser()
            if path.is_dir():
                fonts.update(_font_files(path))
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


def load_font(name: str) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font ``name`` (a file, or ``BUILTIN_FONT``) at the render size."""
    if name == BUILTIN_FONT:
        return ImageFont.load_default(size=RENDER_SIZE)
    return ImageFont.truetype(name, RENDER_SIZE)


def usable_fonts(names: Sequence[str], warn: Callable[[str], None]) -> list[str]:
    """Drop fonts that fail to load or lack a glyph for some digit (drawn as the missing-glyph box)."""
    usable, dropped = [], []
    for name in names:
        try:
            font = load_font(name)
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


def font_record(name: str) -> dict[str, str]:
    """How digits.json names a font: file name, path and SHA-256 (Pillow's version for the built-in)."""
    if name == BUILTIN_FONT:
        return {"name": BUILTIN_FONT, "sha256": f"pillow-{PIL.__version__}"}
    return {"name": Path(name).name, "path": name, "sha256": hashlib.sha256(Path(name).read_bytes()).hexdigest()}
