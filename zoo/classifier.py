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
from zoo.prediction import (
    Predictions,
    as_images,
    image_batches,
    is_model_input,
    predictions,
)
from zoo.preprocess import Preprocess, normalize
from zoo.resolver import resolve

__all__ = ["Classifier", "load"]

ImageLike = Any  # a path, PIL image or uint8 array (H x W [x C]); lists, folders, N x H x W x C stacks, datasets


def load(ref: str | Path, *, weights: Any = "auto", device: Any = "cpu", network: Any = None) -> Classifier:
    """A :class:`Classifier` for a checkpoint, or a registry name with pretrained ``weights``.

    ``weights`` (names only): ``"auto"``, a tag or a file; a checkpoint carries its own.
    ``network``: for a checkpoint of a network defined in Python, its ``FILE.py:NAME``
    (or the ``nn.Module``) again: zoo never imports code named in a file.
    """
    built = resolve(ref, pretrained=weights, device=device, network=network)
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
        return self._stack(pairs), [src for _, src in pairs]

    def _stack(self, pairs: Sequence[tuple[Any, str]]) -> np.ndarray:
        """uint8 (N, C, H, W) of (PIL image, source) pairs at the model's input."""
        batch = np.stack([self.preprocess.pixels(img) for img, _ in pairs]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)

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

    def _logits(self, images: Any, batch_size: int) -> tuple[np.ndarray, list[str]]:
        """Raw outputs (N, classes) and sources, decoding ``batch_size`` images at a time."""
        outs, sources = [], []
        for pairs in image_batches(images, batch_size):
            outs.append(self.logits_of_pixels(self._stack(pairs), batch_size=batch_size).numpy())
            sources += [src for _, src in pairs]
        return np.concatenate(outs), sources

    def predict_proba(self, images: ImageLike | Sequence[ImageLike], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (N, classes); inputs as :meth:`classify`."""
        logits, _ = self._logits(images, batch_size)
        return torch.from_numpy(logits).softmax(dim=1).numpy()

    def classify(self, images: ImageLike | Sequence[ImageLike], *, top_k: int = 5,
                 batch_size: int = 64) -> Predictions:
        """MATLAB's ``classify``: a :class:`~zoo.prediction.Predictions` list, one per image.

        ``images``: a path, a folder (every image under it, sorted), a PIL image, a uint8
        array, a list of those, a dataset (a ``zoo.data`` split: decoded ``batch_size`` at a
        time), or already-normalised float N x C x H x W model input. The lecture's
        ``accuracy = mean(predictedLabels == testImages.Labels)`` is:

            predicted = clf.classify(test_images)
            accuracy = np.mean(predicted.labels == test_images.label_names)
        """
        if is_model_input(images):
            with torch.inference_mode():
                try:
                    logits = self.module.eval()(torch.as_tensor(images).to(self.device)).float().cpu().numpy()
                except RuntimeError as exc:  # torch's shape errors
                    raise ZooError(f"{self.card.name} rejected an input of shape {images.shape}: {first_line(exc)}") from None
            return predictions(logits, self.labels, k=top_k)
        logits, sources = self._logits(images, batch_size)
        return predictions(logits, self.labels, sources=sources, k=top_k)

    def save(self, path: str | Path) -> Path:
        """Write a zoo checkpoint (safetensors with this card)."""
        return save(path, self.module, self.card)
