"""Write scikit-image's bundled lfw_subset as the lecture's Images/<class>/*.jpg folder.

200 real 25x25 grayscale photos: 100 faces, 100 non-faces. Ships with scikit-image, so
Lab 5 runs offline.  Usage: python scripts/make_faces.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_faces(out: Path) -> Path:
    from skimage.data import lfw_subset

    images = lfw_subset()  # (200, 25, 25) floats in [0, 1]; first 100 are faces
    for index, image in enumerate(images):
        label = "face" if index < 100 else "other"
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{label}_{index:03d}.jpg", quality=95)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/make_faces.py OUT_DIR")
    print(write_faces(Path(sys.argv[1])))
