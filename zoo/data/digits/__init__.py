"""Synthetic handwritten-style digits (the lecture's DigitDataset) and their ``digits`` adapter.

``make_digits(out)`` renders 10 classes x N grayscale PNGs into ``out/0..9/`` from fonts and pen-drawn strokes,
with random rotation, scale, shear, translation, stroke width, blur and noise, normalised
like MNIST: white on black, the digit fitted into a box of about 20/28 of the side, its
centre of mass in the middle. ``out/digits.json`` records the fonts (with their SHA-256),
the style and the seed.

One module a job: ``fonts`` (finding and checking fonts), ``render`` (``DigitStyle`` and the
renderer of one digit), ``generate`` (``make_digits``: the worker pool and ``digits.json``),
``adapter`` (``DigitsDataset``, reading such a folder).
"""

from __future__ import annotations

from zoo.data.digits.adapter import METADATA_FILE, DigitsDataset
from zoo.data.digits.fonts import BUILTIN_FONT, find_fonts, handwriting_fonts
from zoo.data.digits.generate import make_digits
from zoo.data.digits.render import STYLES, DigitStyle

__all__ = [
    "DigitsDataset",
    "DigitStyle",
    "STYLES",
    "make_digits",
    "find_fonts",
    "handwriting_fonts",
    "METADATA_FILE",
    "BUILTIN_FONT",
]
