"""A picture file zoo draws on request (``zoo info --plot``, ``zoo predict --show``): PNG or SVG, by its suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import ZooError

__all__ = ["FORMATS", "picture_problem", "picture_format"]

#: the suffixes a picture may have, and matplotlib's format for each
FORMATS = {".png": "png", ".svg": "svg"}


def picture_problem(path: Any) -> str | None:
    """What is wrong with a picture's file name, or None."""
    if str(path).strip() and Path(str(path)).suffix.lower() in FORMATS:
        return None
    return f"must be a file name ending in {' or '.join(FORMATS)}, not {str(path)!r}"


def picture_format(path: str | Path, what: str) -> str:
    """``"png"`` or ``"svg"`` by the suffix; a :class:`ZooError` starting with ``what`` for any other."""
    problem = picture_problem(path)
    if problem:
        raise ZooError(f"{what} {problem}")
    return FORMATS[Path(path).suffix.lower()]
