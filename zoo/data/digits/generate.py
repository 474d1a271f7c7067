"""``make_digits``: render a whole make-digits folder, in worker processes, with its provenance.

Each image has its own random generator seeded by (seed, label, index), so the bytes depend
only on the seed, the font files and Pillow, never on the number of worker processes.
The set is written to a temporary sibling folder and renamed into place, with
``digits.json`` recording the seed, the style and every font (name and SHA-256).
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image

from zoo.atomic import atomic_dir, fsync, publish
from zoo.data.base import warn_data
from zoo.data.digits.adapter import METADATA_FILE
from zoo.data.digits.fonts import find_fonts, font_record, usable_fonts
from zoo.data.digits.render import STYLES, DigitStyle, Renderer
from zoo.errors import ZooError
from zoo.values import MAX_SEED, shown, whole

__all__ = ["make_digits"]


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
        overwrite: replace an earlier make-digits folder.
        style: a :class:`DigitStyle` or a preset name from :data:`STYLES`.
        warn: receives each warning (fallback fonts, fonts skipped); default: a ``DataWarning``.
    """
    # the font helpers warn; the default names the line that called make_digits
    warn = warn or functools.partial(warn_data, stacklevel=3)
    if per_class < 1:
        raise ZooError(f"--per-class must be at least 1, not {per_class}")
    if not 8 <= size <= 512:
        raise ZooError(f"--size must be between 8 and 512 pixels, not {size}")
    if not isinstance(seed, int) or whole(seed, 0, MAX_SEED) is None:
        raise ZooError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {shown(seed)}")
    if isinstance(style, str):
        if style not in STYLES:
            raise ZooError(f"unknown digit style '{style}'; choose one of {', '.join(STYLES)}")
        style = STYLES[style]
    style = style or DigitStyle()
    out = Path(out).expanduser()
    _check_target(out, overwrite)
    font_names = usable_fonts(find_fonts(fonts, warn=warn), warn)

    started = time.perf_counter()
    with atomic_dir(out) as temp:  # .NAME.PID.RANDOM.tmp/, removed on any failure
        for label in range(10):
            (temp / str(label)).mkdir(parents=True)
        _render_all(temp, per_class, seed, workers, (font_names, size, style))
        metadata = {
            "generator": "zoo data make-digits",
            "format": 1,
            "pillow": PIL.__version__,  # the same bytes need the same renderer too
            "seed": seed,
            "per_class": per_class,
            "size": size,
            "classes": [str(d) for d in range(10)],
            "fonts": [font_record(name) for name in font_names],
            "style": asdict(style),
        }
        (temp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        fsync(temp / METADATA_FILE)  # the images are not, one by one (seconds): they can be made again
        if out.exists():  # an earlier make-digits folder (checked above), or an empty one
            shutil.rmtree(out)
        publish(temp, out)
    metadata["seconds"] = time.perf_counter() - started
    return metadata


# --------------------------------------------------------------------------- the worker pool


def _render_all(folder: Path, per_class: int, seed: int, workers: int | None, renderer: tuple[Any, ...]) -> None:
    """Render every image into ``folder/<label>/``; ``renderer`` is ``Renderer``'s arguments."""
    total = 10 * per_class
    workers = workers or min(os.cpu_count() or 1, 16)
    workers = 1 if total < 400 else max(1, workers)
    chunk = max(50, math.ceil(per_class / (4 * workers)))
    jobs = [
        (str(folder), seed, label, start, min(start + chunk, per_class))
        for label in range(10)
        for start in range(0, per_class, chunk)
    ]
    if workers == 1:
        _init_worker(*renderer)
        for job in jobs:
            _render_chunk(job)
        return
    with warnings.catch_warnings():  # Python 3.12 warns about fork in a threaded parent
        warnings.simplefilter("ignore", DeprecationWarning)
        pool = _pool_context().Pool(workers, _init_worker, renderer)
    with pool:
        for _ in pool.imap_unordered(_render_chunk, jobs):
            pass


def _image_rng(seed: int, label: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, label, index])


_WORKER: Renderer | None = None


def _init_worker(fonts: Sequence[str], size: int, style: DigitStyle) -> None:
    global _WORKER
    _WORKER = Renderer(fonts, size, style)


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


# --------------------------------------------------------------------------- the target folder


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
