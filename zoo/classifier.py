"""A trained network with its card: MATLAB's ``classify(net, I)`` as ``model.classify(images)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.card import ModelCard
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, normalize, open_image

__all__ = ["Classifier", "Prediction", "as_images"]

ImageLike = Any  # PIL.Image, path, or numpy array (H x W [x C]); lists and N x H x W x C arrays


@dataclass
class Prediction:
    """One image's answer: the top label and the top-k (label, probability) pairs."""

    label: str
    index: int
    score: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    source: str = ""  # the file name, when the image came from one

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "index": self.index, "score": self.score,
               "top_k": [{"label": label, "score": score} for label, score in self.top_k]}
        if self.source:
            out["image"] = self.source
        return out


def _array_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        array = np.asarray(array, dtype=np.float64)
        scale = 255.0 if array.size and array.max() <= 1.0 else 1.0
        array = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ZooError(f"an image array must be H x W, H x W x 1, 3 or 4, not shape {array.shape}")
    return Image.fromarray(array)


def as_images(images: ImageLike | Sequence[ImageLike]) -> list[tuple[Image.Image, str]]:
    """Normalise the accepted inputs to (PIL image, source name) pairs."""
    if isinstance(images, (str, Path, Image.Image)):
        items: Iterable[Any] = [images]
    elif isinstance(images, np.ndarray):
        items = list(images) if images.ndim == 4 else [images]
    else:
        items = list(images)
    out = []
    for item in items:
        if isinstance(item, Image.Image):
            out.append((item, ""))
        elif isinstance(item, np.ndarray):
            out.append((_array_image(item), ""))
        elif isinstance(item, (str, Path)):
            path = Path(item)
            if not path.is_file():
                raise ZooError(f"image '{path}' does not exist")
            try:
                out.append((open_image(path), str(path)))
            except OSError as exc:
                raise ZooError(f"cannot read image '{path}': {exc}") from None
        else:
            raise ZooError(f"cannot classify a {type(item).__name__}: give a path, PIL image or numpy array")
    if not out:
        raise ZooError("no images to classify")
    return out


class Classifier:
    """A network, its card (labels, preprocessing) and inference helpers.

    Attributes:
        module: the ``torch.nn.Module`` (kept in eval mode by the helpers).
        card: the :class:`~zoo.card.ModelCard`.
        labels: class names, index i names output i.
        preprocess: the card's one preprocessing.
    """

    def __init__(self, module: Any, card: ModelCard) -> None:
        self.module = module
        self.card = card
        self.preprocess = Preprocess.from_card(card)

    @property
    def labels(self) -> list[str]:
        return self.card.class_names

    @property
    def device(self) -> Any:
        param = next(self.module.parameters(), None)
        return param.device if param is not None else "cpu"

    def to(self, device: Any) -> Classifier:
        self.module.to(device)
        return self

    def __repr__(self) -> str:
        return f"Classifier({self.card.name!r}, {self.card.num_classes} classes, input {self.card.channels}x{self.card.input_size[0]}x{self.card.input_size[1]})"

    def pixels(self, images: ImageLike | Sequence[ImageLike]) -> tuple[np.ndarray, list[str]]:
        """uint8 (N, C, H, W) at the model's input, and each image's source name."""
        pairs = as_images(images)
        batch = np.stack([self.preprocess.pixels(img) for img, _ in pairs]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch), [src for _, src in pairs]

    def logits_of_pixels(self, pixels: Any, *, batch_size: int = 64) -> Any:
        """Raw outputs for uint8 (N, C, H, W) pixels (numpy or torch), in batches."""
        import torch

        pixels = torch.as_tensor(pixels)
        was_training = self.module.training
        self.module.eval()
        outs = []
        try:
            with torch.inference_mode():
                for start in range(0, pixels.shape[0], batch_size):
                    x = normalize(pixels[start:start + batch_size].to(self.device), self.preprocess)
                    outs.append(self.module(x).float().cpu())
        finally:
            self.module.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0, self.card.num_classes)

    def predict_proba(self, images: ImageLike | Sequence[ImageLike], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (N, classes)."""
        pixels, _ = self.pixels(images)
        return self.logits_of_pixels(pixels, batch_size=batch_size).softmax(dim=1).numpy()

    def classify(self, images: ImageLike | Sequence[ImageLike], *, top_k: int = 5, batch_size: int = 64) -> list[Prediction]:
        """MATLAB's ``classify``: a :class:`Prediction` per image (always a list)."""
        pixels, sources = self.pixels(images)
        probs = self.logits_of_pixels(pixels, batch_size=batch_size).softmax(dim=1).numpy()
        return predictions_from_probs(probs, self.labels, top_k=top_k, sources=sources)

    def save(self, path: str | Path) -> Path:
        """Write a zoo checkpoint (safetensors with this card)."""
        from zoo.checkpoint import save

        return save(path, self.module, self.card)


def predictions_from_probs(probs: np.ndarray, labels: Sequence[str], *, top_k: int = 5, sources: Sequence[str] = ()) -> list[Prediction]:
    k = max(1, min(int(top_k), probs.shape[1]))
    out = []
    for row, p in enumerate(probs):
        order = np.argsort(-p, kind="stable")[:k]
        out.append(Prediction(
            label=labels[order[0]], index=int(order[0]), score=float(p[order[0]]),
            top_k=[(labels[i], float(p[i])) for i in order],
            source=sources[row] if row < len(sources) else "",
        ))
    return out
