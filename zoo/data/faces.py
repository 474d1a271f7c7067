"""The lecture's Lab 5 folder, offline: ``Images/face`` and ``Images/other`` from scikit-image.

scikit-image ships ``lfw_subset``: 200 real 25x25 grayscale photos, 100 faces and 100
non-faces. ``zoo data make-faces Images`` writes them as JPEGs in class folders, so
``zoo finetune ... --data Images --classes 2`` runs without a download.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.errors import ZooError

__all__ = ["make_faces", "FACE_CLASSES"]

FACE_CLASSES = ("face", "other")


def make_faces(out: str | Path, *, overwrite: bool = False) -> Path:
    """Write 100 faces and 100 non-faces to ``out/face`` and ``out/other`` (JPEG, quality 95).

    The folder appears whole or not at all (written beside it, then renamed); an existing
    non-empty ``out`` is replaced only with ``overwrite``.
    """
    try:
        from skimage.data import (
            lfw_subset,  # optional: only this command needs scikit-image
        )
    except ImportError:
        raise ZooError("zoo data make-faces needs scikit-image, which ships the photos: "
                       "pip install 'zoo-registry[lab]'") from None
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ZooError(f"'{out}' exists and is not empty; pick another folder or pass --overwrite")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    images = lfw_subset()  # (200, 25, 25) floats in [0, 1]; the first 100 are faces
    for index, image in enumerate(images):
        label = FACE_CLASSES[0] if index < 100 else FACE_CLASSES[1]
        folder = staging / label
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{label}_{index:03d}.jpg", quality=95)
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    staging.rename(out)
    return out
