"""``Predictor``: classify images with a zoo ONNX file, applying exactly the preprocessing it records."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.card import CardError, ModelCard
from zoo.errors import ZooError, first_line
from zoo.prediction import (
    Prediction,
    Predictions,
    as_images,
    image_batches,
    is_model_input,
    is_single,
    predictions,
)
from zoo.preprocess import IMAGE_SUFFIXES, Preprocess, normalize
from zoo.runtime.providers import make_session

__all__ = ["Predictor", "Prediction", "Predictions"]  # zoo.prediction's, the same types as the torch classifier's


class Predictor:
    """A zoo ONNX file ready to classify images, with no torch anywhere.

    Args:
        path: the ``.onnx`` file (or its bytes).
        providers: ``"auto"`` (CUDA when onnxruntime-gpu finds a working GPU, else CPU),
            ``"cpu"``, ``"cuda"`` or a list of onnxruntime provider names.
        threads: intra-op threads (default: onnxruntime's, one per physical core).
        labels: override the file's card (this and the arguments below); an ONNX file
            without zoo metadata needs at least ``mean`` and ``std``.
        input_size: the model's input, ``H`` or ``(H, W)``.
        channels: 1 (gray) or 3 (RGB).
        mean: per-channel mean of the 0..1 pixels.
        std: per-channel standard deviation of the 0..1 pixels.
        interpolation: ``"nearest"``, ``"bilinear"`` or ``"bicubic"``.
        resize_mode: ``"squash"`` (resize to the input size) or ``"center-crop"`` (timm's eval transform).
        crop_pct: the centre crop's fraction, for ``"center-crop"``.
        crop_mode: timm's ``crop_mode``: ``"center"``, ``"squash"`` or ``"border"``.

    ``provider`` says which provider runs; ``card`` is the file's model card.
    """

    def __init__(
        self,
        path: str | os.PathLike | bytes,
        *,
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
        labels: Sequence[str] | None = None,
        input_size: int | tuple[int, int] | None = None,
        channels: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        interpolation: str | None = None,
        resize_mode: str | None = None,
        crop_pct: float | None = None,
        crop_mode: str | None = None,
    ) -> None:
        if not isinstance(path, bytes):
            path = Path(path)
            if not path.is_file():
                raise ZooError(f"ONNX file '{path}' does not exist")
        self.path = path
        self.session, self.provider = make_session(path, providers, threads=threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ZooError(f"{self._name} takes {len(inputs)} inputs and gives {len(outputs)} outputs: "
                           "an image classifier takes one image batch and gives class scores")
        graph_input = inputs[0]
        self.input_name = graph_input.name
        self.output_name = self.session.get_outputs()[0].name
        self.embedded = graph_input.type == "tensor(uint8)"  # --embed-preprocessing: uint8 NHWC in
        batch_dim = graph_input.shape[0] if graph_input.shape else None
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None  # --batch N files
        self.card = self._card(graph_input.shape, labels=labels, input_size=input_size, channels=channels,
                               mean=mean, std=std, interpolation=interpolation, resize_mode=resize_mode,
                               crop_pct=crop_pct, crop_mode=crop_mode)
        self._check_input(graph_input.shape)
        self.preprocess = Preprocess.from_card(self.card)
        self.labels = tuple(self.card.class_names)
        outputs = self.session.get_outputs()[0].shape
        if outputs and isinstance(outputs[-1], int) and outputs[-1] != len(self.labels):
            raise ZooError(f"{self._name} has {outputs[-1]} outputs but {len(self.labels)} labels were given")

    # -- card ------------------------------------------------------------------------------

    def _card(self, shape: list[Any], **overrides: Any) -> ModelCard:
        meta = self.session.get_modelmeta().custom_metadata_map
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(overrides.get("input_size"), int):
            overrides["input_size"] = (overrides["input_size"],) * 2
        if meta.get("format"):
            try:
                card = ModelCard.from_metadata(meta)
            except (CardError, ValueError, TypeError) as exc:
                raise ZooError(f"{self._name}: damaged zoo metadata ({exc})") from None
        else:
            card = self._bare_card(shape, overrides)
        if "labels" in overrides:
            overrides["labels"] = tuple(overrides["labels"])
            overrides["num_classes"] = len(overrides["labels"])
        try:
            return card.replace(**overrides) if overrides else card
        except CardError as exc:
            raise ZooError(f"{self._name}: {exc}") from None

    def _check_input(self, shape: list[Any]) -> None:
        """The card's channels and input size agree with the graph's fixed input dimensions."""
        if len(shape) != 4:
            raise ZooError(f"{self._name}: input has shape {shape}, not an image batch (N, C, H, W)")
        graph = (shape[3], shape[1], shape[2]) if self.embedded else tuple(shape[1:])
        card = (self.card.channels, *self.card.input_size)
        if any(isinstance(g, int) and g != c for g, c in zip(graph, card)):
            raise ZooError(f"{self._name} takes {' x '.join(map(str, graph))} input (channels x height x width), "
                           f"not the {' x '.join(map(str, card))} its card says: the file's zoo metadata is damaged "
                           "(export it again), or the input_size or channels given are wrong")

    def _bare_card(self, shape: list[Any], overrides: dict[str, Any]) -> ModelCard:
        """A card for an ONNX file without zoo metadata, from the graph's shapes and the caller's options."""
        static = [d if isinstance(d, int) else None for d in shape]
        if len(static) != 4:
            raise ZooError(f"{self._name}: input has shape {shape}, not an image batch (N, C, H, W)")
        c, h, w = (static[3], static[1], static[2]) if self.embedded else static[1:]
        channels = overrides.get("channels", c)
        size = overrides.get("input_size", (h, w) if h and w else None)
        missing = [name for name, value in (("channels", channels), ("input_size", size)) if not value]
        if not self.embedded:
            missing += [name for name in ("mean", "std") if name not in overrides]
        if missing:
            raise ZooError(
                f"{self._name} carries no zoo metadata: pass {', '.join(missing)} "
                "(Predictor(..., mean=, std=, input_size=, labels=)); zoo predict needs a file exported by zoo"
            )
        outputs = self.session.get_outputs()[0].shape
        num_classes = len(overrides["labels"]) if "labels" in overrides else (outputs[-1] if outputs else None)
        if not isinstance(num_classes, int):
            raise ZooError(f"{self._name}: output size is not fixed; pass labels")
        try:
            return ModelCard(name=Path(str(self.path)).stem if not isinstance(self.path, bytes) else "model",
                             source="onnx", channels=channels, input_size=size, num_classes=num_classes,
                             mean=overrides.get("mean", (0.0,)), std=overrides.get("std", (1.0,)))
        except CardError as exc:
            raise ZooError(f"{self._name}: {exc}") from None

    @property
    def _name(self) -> str:
        return "the ONNX model" if isinstance(self.path, bytes) else f"'{self.path}'"

    # -- inputs ----------------------------------------------------------------------------

    def pixels(self, item: Any) -> np.ndarray:
        """One image (path, PIL image or uint8 array) as uint8 H x W x C at the model's size."""
        return self.preprocess.pixels(as_images(item)[0][0])

    def model_input(self, items: Sequence[Any]) -> np.ndarray:
        """What the graph takes for a list of images: uint8 NHWC (embedded) or normalised float32 NCHW."""
        return self._input(as_images(items))

    def _input(self, pairs: Sequence[tuple[Any, str]]) -> np.ndarray:
        batch = np.stack([self.preprocess.pixels(image) for image, _ in pairs])
        if self.embedded:
            return batch
        return normalize(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)), self.preprocess)

    # -- prediction ------------------------------------------------------------------------

    def logits(self, model_input: np.ndarray) -> np.ndarray:
        """Run the graph on a ready batch (the form :meth:`model_input` returns).

        A file exported with a fixed batch size is fed in chunks of that size, the last padded.
        """
        n = self.fixed_batch
        if n and len(model_input) != n:
            chunks = []
            for start in range(0, len(model_input), n):
                chunk = model_input[start:start + n]
                padded = np.concatenate([chunk, np.repeat(chunk[-1:], n - len(chunk), axis=0)])
                chunks.append(self.logits(padded)[:len(chunk)])
            return np.concatenate(chunks)
        try:
            return self.session.run([self.output_name], {self.input_name: model_input})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors: shape or type mismatch
            raise ZooError(f"{self._name} rejected an input of shape {model_input.shape}: {first_line(exc)}") from None

    def predict(self, images: Any, *, batch_size: int = 32, k: int = 5) -> Prediction | Predictions:
        """Classify one image or many (:class:`zoo.prediction.Prediction`, as the torch classifier).

        ``images``: a path, a PIL image or a uint8 H x W (x C) array gives one
        :class:`Prediction`; a list of those, a folder (every image under it, sorted), a
        dataset (a ``zoo.data`` split, decoded ``batch_size`` at a time), a uint8
        N x H x W x C array, or a float32 N x C x H x W array of already-normalised model
        input gives a :class:`~zoo.prediction.Predictions` list (``.labels``, ``.indices``,
        ``.probabilities``). ``k``: how many classes ``Prediction.top()`` and ``to_dict()`` list.
        """
        if is_model_input(images) and not self.embedded:
            return predictions(self.logits(np.ascontiguousarray(images, dtype=np.float32)), self.labels, k=k)
        if is_single(images):
            source = str(images) if isinstance(images, (str, os.PathLike)) else ""
            return predictions(self.logits(self.model_input([images])), self.labels, sources=[source], k=k)[0]
        out = Predictions()
        for pairs in image_batches(images, batch_size):
            out += predictions(self.logits(self._input(pairs)), self.labels, sources=[s for _, s in pairs], k=k)
        return out

    def predict_folder(self, folder: str | os.PathLike, *, batch_size: int = 32,
                       recursive: bool = True) -> Iterator[Prediction]:
        """Classify every image under ``folder`` in batches, in sorted path order."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ZooError(f"folder '{folder}' does not exist")
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ZooError(f"no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in '{folder}'")
        for start in range(0, len(files), batch_size):
            yield from self.predict(files[start:start + batch_size], batch_size=batch_size)

    def __repr__(self) -> str:
        return f"Predictor({self.card.name!r}, {len(self.labels)} classes, provider={self.provider})"

