"""What classification takes and gives, for the torch classifier and the torch-free runtime alike.

* :func:`as_images`: the one accepted-input policy: paths, PIL images and uint8 arrays
  (H x W, H x W x 1/3/4, or a stack N x H x W x C). Float image arrays are refused: whether
  they hold 0..1 or 0..255 cannot be told from the values, so the caller converts. A float
  N x C x H x W array is something else: already-normalised model input
  (:func:`is_model_input`), run as it is.
* :class:`Prediction`: one image's answer, the same type and JSON shape whichever model
  file produced it.

numpy and Pillow only: the runtime imports this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.errors import ZooError
from zoo.preprocess import open_image

__all__ = ["Prediction", "as_images", "is_model_input", "predictions", "softmax", "FLOAT_ARRAY_MESSAGE"]

FLOAT_ARRAY_MESSAGE = ("an image array must be uint8 (0-255), not {dtype}: convert it first, "
                       "e.g. (x * 255).round().astype(numpy.uint8) for values in 0..1")


@dataclass(frozen=True)
class Prediction:
    """One image's answer.

    Attributes:
        label: the most probable class.
        probability: its probability.
        probabilities: softmax over all classes, in ``labels`` order (float32).
        labels: the class names.
        source: the file the image came from, when it came from one.
        k: how many classes :meth:`top` and :meth:`to_dict` list unless told otherwise.
    """

    label: str
    probability: float
    probabilities: np.ndarray
    labels: tuple[str, ...]
    source: str = ""
    k: int = 5

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs, most probable first."""
        order = np.argsort(-self.probabilities, kind="stable")[: k or self.k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        """The JSON shape of ``zoo predict --json`` and of apps built on the runtime."""
        out: dict[str, Any] = {
            "label": self.label, "index": self.index, "probability": round(self.probability, 6),
            "top": [{"label": label, "probability": round(p, 6)} for label, p in self.top(k)],
        }
        if self.source:
            out["file"] = self.source
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) logits, computed in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def predictions(logits: np.ndarray, labels: Sequence[str], *, sources: Sequence[str] = (),
                k: int = 5) -> list[Prediction]:
    """One :class:`Prediction` per row of (N, classes) logits."""
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ZooError(f"model output of shape {tuple(logits.shape)} does not match {len(labels)} labels")
    labels = tuple(labels)
    out = []
    for row, p in enumerate(softmax(logits)):
        best = int(np.argmax(p))
        out.append(Prediction(label=labels[best], probability=float(p[best]), probabilities=p.astype(np.float32),
                              labels=labels, source=sources[row] if row < len(sources) else "", k=max(1, int(k))))
    return out


def is_model_input(images: Any) -> bool:
    """Whether ``images`` is already-normalised model input: float N x C x H x W, C 1 or 3."""
    return (isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype.kind == "f"
            and images.shape[1] in (1, 3))


def as_images(images: Any) -> list[tuple[Image.Image, str]]:
    """(PIL image, source) pairs for one image or many, under the one input policy."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        items: Iterable[Any] = [images]
    elif isinstance(images, np.ndarray):
        items = list(images) if images.ndim == 4 else [images]
    else:
        items = list(images)
    out = [_one_image(item) for item in items]
    if not out:
        raise ZooError("no images to classify")
    return out


def _one_image(item: Any) -> tuple[Image.Image, str]:
    if isinstance(item, Image.Image):
        return item, ""
    if isinstance(item, np.ndarray):
        return _array_image(item), ""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise ZooError(f"image '{path}' does not exist")
        try:
            return open_image(path), str(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ZooError(f"'{path}' is not a readable image ({type(exc).__name__})") from None
    raise ZooError(f"cannot classify a {type(item).__name__}: give a path, a PIL image or a uint8 array")


def _array_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise ZooError(FLOAT_ARRAY_MESSAGE.format(dtype=array.dtype))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ZooError(f"an image array must be H x W or H x W x 1, 3 or 4, not shape {array.shape}")
    return Image.fromarray(array)
