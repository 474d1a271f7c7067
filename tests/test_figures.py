"""The docs' pictures: each made by docs/make_figures.py, each shown by a page, each page's picture there.

The pictures come from real zoo runs (``.venv/bin/python docs/make_figures.py``, a few
minutes); this test does not run them, it reads the script's list of outputs (``FIGURES``) and
how each step makes them (``STEPS``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

DOCS = Path(__file__).resolve().parents[1] / "docs"
IMG = DOCS / "img"
IMAGE_REF = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']")


def _make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # defines the steps; runs nothing
    return module


MAKE = _make_figures()


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _references(page: Path) -> list[tuple[str, Path]]:
    """Each local image a page shows: (as written, the file it names)."""
    found = []
    for match in IMAGE_REF.finditer(page.read_text(encoding="utf-8")):
        written = match.group(1) or match.group(2)
        if re.match(r"^[a-z]+:|^//", written):
            continue  # a web address: not the docs' own picture
        found.append((written, (page.parent / written.split("#")[0]).resolve()))
    return found


def _pictures() -> list[Path]:
    return sorted(p for p in IMG.iterdir() if p.is_file() and not p.name.startswith(".")) if IMG.is_dir() else []


def test_the_script_lists_each_picture_once_and_makes_it_with_a_zoo_command():
    assert MAKE.FIGURES and len(set(MAKE.FIGURES)) == len(MAKE.FIGURES)
    for step in MAKE.STEPS:
        assert step.pictures, step.what
        words = [word for args in step.commands for word in args]
        for made, name in step.pictures.items():
            assert Path(name).suffix == ".png" and "/" not in name
            beside_out = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--out"]
            assert made in words or str(Path(made).parent) in beside_out, (step.what, made)


def test_every_picture_in_docs_img_is_made_by_the_script():
    assert sorted(p.name for p in _pictures()) == sorted(MAKE.FIGURES), (
        "docs/img and make_figures.FIGURES differ: run .venv/bin/python docs/make_figures.py, "
        "and remove pictures no step makes")


def test_every_picture_is_shown_by_a_page():
    shown = {path for page in _pages() for _, path in _references(page)}
    unused = [p.name for p in _pictures() if p.resolve() not in shown]
    assert unused == [], "pictures in docs/img that no docs page shows (![...](img/NAME.png))"


def test_every_picture_a_page_shows_exists():
    missing = [f"{page.relative_to(DOCS)}: {written}" for page in _pages()
               for written, path in _references(page) if not path.is_file()]
    assert missing == []


@pytest.mark.parametrize("name", MAKE.FIGURES)
def test_each_picture_is_a_small_whole_png(name):
    path = IMG / name
    assert path.is_file(), f"{name}: run .venv/bin/python docs/make_figures.py"
    assert path.stat().st_size <= MAKE.MAX_BYTES
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        assert 300 <= image.width <= 2500 and 200 <= image.height <= 8000  # resnet18's diagram is tall
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # something drawn on the page, not an empty canvas
