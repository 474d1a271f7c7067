"""A network with its card: MATLAB's ``classify(net, I)`` as ``model.classify(images)``.

:func:`load` opens any torch model reference through the one resolver (:mod:`zoo.resolver`);
what goes in and what comes out is :mod:`zoo.prediction`'s, shared with the torch-free runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.card import ModelCard
from zoo.checkpoint import save
from zoo.errors import ZooError, first_line
from zoo.prediction import Prediction, as_images, is_model_input, predictions
from zoo.preprocess import Preprocess, normalize
from zoo.resolver import resolve

__all__ = ["Classifier", "load"]

ImageLike = Any  # a path, PIL image or uint8 array (H x W [x C]); lists and N x H x W x C stacks


def load(ref: str | Path, *, weights: Any = "auto", device: Any = "cpu") -> Classifier:
    """A :class:`Classifier` for a checkpoint, or a registry name with pretrained ``weights``.

    ``weights`` (names only): ``"auto"``, a tag or a file; a checkpoint carries its own.
    """
    built = resolve(ref, pretrained=weights, device=device)
    return Classifier(built.module, built.card)


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

    def classify(self, images: ImageLike | Sequence[ImageLike], *, top_k: int = 5,
                 batch_size: int = 64) -> list[Prediction]:
        """MATLAB's ``classify``: a :class:`~zoo.prediction.Prediction` per image (always a list).

        ``images``: what :func:`zoo.prediction.as_images` accepts, or already-normalised
        float N x C x H x W model input.
        """
        if is_model_input(images):
            with torch.inference_mode():
                try:
                    logits = self.module.eval()(torch.as_tensor(images).to(self.device)).float().cpu().numpy()
                except RuntimeError as exc:  # torch's shape errors
                    raise ZooError(f"{self.card.name} rejected an input of shape {images.shape}: {first_line(exc)}") from None
            return predictions(logits, self.labels, k=top_k)
        pixels, sources = self.pixels(images)
        logits = self.logits_of_pixels(pixels, batch_size=batch_size).numpy()
        return predictions(logits, self.labels, sources=sources, k=top_k)

    def save(self, path: str | Path) -> Path:
        """Write a zoo checkpoint (safetensors with this card)."""
        return save(path, self.module, self.card)
