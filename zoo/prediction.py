"""What classification takes and gives, for the torch classifier and the torch-free runtime alike.

* :func:`image_batches` / :func:`as_images`: the one accepted-input policy: paths, folders
  (every image under them, sorted), PIL images, uint8 arrays (H x W, H x W x 1/3/4, or a
  stack N x H x W x C), lists of those, and datasets (anything with ``load``, ``describe``
  and ``__len__``, e.g. a ``zoo.data`` split), decoded batch by batch. Float image arrays are refused: whether
  they hold 0..1 or 0..255 cannot be told from the values, so the caller converts. A float
  N x C x H x W array is something else: already-normalised model input
  (:func:`is_model_input`), run as it is.
* :class:`Prediction`: one image's answer, the same type and JSON shape whichever model
  file produced it; :class:`Predictions`: a list of them with column views
  (``.labels``, ``.indices``, ``.probabilities``).

numpy and Pillow only: the runtime imports this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.errors import ZooError
from zoo.preprocess import IMAGE_SUFFIXES, open_image

__all__ = ["Prediction", "Predictions", "as_images", "image_batches", "is_single", "is_dataset", "folder_images",
           "is_model_input", "predictions", "softmax", "FLOAT_ARRAY_MESSAGE"]

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


class Predictions(list):
    """A list of :class:`Prediction`, one per image, with numpy views of the whole batch.

    MATLAB's ``predictedLabels = classify(net, testImages)`` and the lecture's accuracy line:

        predicted = clf.classify(test_images)          # test_images: a zoo.data split
        accuracy = np.mean(predicted.labels == test_images.label_names)
    """

    @property
    def labels(self) -> np.ndarray:
        """The predicted class name of each image (numpy str array)."""
        return np.asarray([p.label for p in self], dtype=str)

    @property
    def indices(self) -> np.ndarray:
        """The predicted class index of each image (int64)."""
        return np.asarray([p.index for p in self], dtype=np.int64)

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax over all classes, N x K (float32)."""
        if not self:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([p.probabilities for p in self])

    @property
    def sources(self) -> list[str]:
        """The file each image came from ("" where none)."""
        return [p.source for p in self]

    def __getitem__(self, item: Any) -> Any:
        got = super().__getitem__(item)
        return Predictions(got) if isinstance(item, slice) else got


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) logits, computed in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def predictions(logits: np.ndarray, labels: Sequence[str], *, sources: Sequence[str] = (),
                k: int = 5) -> Predictions:
    """One :class:`Prediction` per row of (N, classes) logits."""
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ZooError(f"model output of shape {tuple(logits.shape)} does not match {len(labels)} labels")
    finite = np.isfinite(logits).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        which = sources[row] if row < len(sources) and sources[row] else f"image {row + 1}"
        raise ZooError(f"the model's outputs for {which} are not finite numbers (NaN or infinity): its weights "
                       f"are damaged, or its training diverged (train again with a lower --lr)")
    labels = tuple(labels)
    out = Predictions()
    for row, p in enumerate(softmax(logits)):
        best = int(np.argmax(p))
        out.append(Prediction(label=labels[best], probability=float(p[best]), probabilities=p.astype(np.float32),
                              labels=labels, source=sources[row] if row < len(sources) else "", k=max(1, int(k))))
    return out


def is_model_input(images: Any) -> bool:
    """Whether ``images`` is already-normalised model input: float N x C x H x W, C 1 or 3."""
    return (isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype.kind == "f"
            and images.shape[1] in (1, 3))


def is_dataset(images: Any) -> bool:
    """Whether ``images`` is a dataset: it has ``load``, ``describe`` and ``__len__`` (duck-typed)."""
    return (not isinstance(images, Image.Image) and callable(getattr(images, "load", None))
            and callable(getattr(images, "describe", None)) and hasattr(images, "__len__"))


def is_single(images: Any) -> bool:
    """Whether ``images`` is one image (a file, a PIL image, an H x W [x C] array), not many."""
    if isinstance(images, (str, os.PathLike)):
        return not Path(images).is_dir()
    return isinstance(images, Image.Image) or (isinstance(images, np.ndarray) and images.ndim != 4)


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """Every image file under ``folder`` (``IMAGE_SUFFIXES``, hidden names left out), sorted."""
    root = Path(folder)
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts) and p.is_file())
    if not found:
        raise ZooError(f"no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in folder '{folder}'")
    return found


def image_batches(images: Any, batch_size: int = 64) -> Iterator[list[tuple[Image.Image, str]]]:
    """(PIL image, source) pairs in batches of ``batch_size``, decoded as each batch is reached.

    A dataset's samples and a folder's or list's files are opened batch by batch, so memory
    does not grow with the number of images.
    """
    batch_size = max(1, int(batch_size))
    if is_dataset(images):
        total = len(images)
        if total == 0:
            raise ZooError("no images to classify: the dataset is empty")
        for start in range(0, total, batch_size):
            yield [_sample(images, i) for i in range(start, min(total, start + batch_size))]
        return
    items = _items(images)
    if not items:
        raise ZooError("no images to classify")
    for start in range(0, len(items), batch_size):
        yield [_one_image(item) for item in items[start:start + batch_size]]


def as_images(images: Any) -> list[tuple[Image.Image, str]]:
    """(PIL image, source) pairs for one image or many, under the one input policy, all at once."""
    return [pair for batch in image_batches(images, batch_size=1 << 30) for pair in batch]


def _items(images: Any) -> list[Any]:
    """The undecoded items: folders expanded to their files, a stack to its images."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        listed: list[Any] = [images]
    elif isinstance(images, np.ndarray):
        listed = list(images) if images.ndim == 4 else [images]
    else:
        try:
            listed = list(images)
        except TypeError:  # not a collection: _one_image says what it takes
            listed = [images]
    out: list[Any] = []
    for item in listed:
        if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            out.extend(folder_images(item))
        else:
            out.append(item)
    return out


def _sample(dataset: Any, index: int) -> tuple[Image.Image, str]:
    name = str(dataset.describe(index))
    try:
        image = dataset.load(index)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ZooError(f"sample {index} ('{name}') is not a readable image ({type(exc).__name__}): remove it "
                       "from the data, or use zoo.evaluate, which skips unreadable images") from None
    if isinstance(image, np.ndarray):
        image = _array_image(image)
    if not isinstance(image, Image.Image):
        raise ZooError(f"the dataset's load({index}) gave a {type(image).__name__}, not a PIL image")
    return image, name


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
            return open_image(path), str(path)  # ImageTooLarge (a ZooError) passes: it says why and what to do
        except (OSError, ValueError) as exc:
            raise ZooError(f"'{path}' is not a readable image ({type(exc).__name__})") from None
    raise ZooError(f"cannot classify a {type(item).__name__}: give a path, a folder, a PIL image, "
                   "a uint8 array or a dataset")


def _array_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise ZooError(FLOAT_ARRAY_MESSAGE.format(dtype=array.dtype))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ZooError(f"an image array must be H x W or H x W x 1, 3 or 4, not shape {array.shape}")
    return Image.fromarray(array)
