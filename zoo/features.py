"""Activations at a named layer (MATLAB ``activations``), saved as ``.npz``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.atomic import atomic_path
from zoo.classifier import Classifier, load
from zoo.data import open_dataset, to_tensors
from zoo.device import pick_device
from zoo.errors import ZooError, close_matches
from zoo.preprocess import normalize
from zoo.summary import layer_names
from zoo.training.options import check_option

__all__ = ["activations", "extract", "FeatureSet"]


@dataclass
class FeatureSet:
    """``features[i]`` is the layer's output for sample i (batch axis first)."""

    features: np.ndarray
    labels: np.ndarray
    classes: list[str]
    files: list[str]
    layer: str
    path: Path | None = None


def check_layer(module: Any, layer: str) -> None:
    """Raise ZooError, with the nearest names, unless ``layer`` names a module of ``module``."""
    if not layer or layer not in dict(module.named_modules()):
        raise ZooError(f"the model has no layer '{layer}'.{close_matches(layer, layer_names(module))} "
                       f"See the names with: zoo info MODEL")


def activations(module: Any, layer: str, inputs: Any) -> Any:
    """The output of ``layer`` when ``inputs`` (a normalised tensor) runs through ``module``."""
    modules = dict(module.named_modules())
    check_layer(module, layer)
    captured: list[Any] = []

    def hook(mod: Any, args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)

    handle = modules[layer].register_forward_hook(hook)
    try:
        with torch.inference_mode():
            module(inputs)
    finally:
        handle.remove()
    if not captured:
        raise ZooError(f"layer '{layer}' did not run in the forward pass (an unused module?)")
    return captured[0]


def extract(
    model: Any,
    layer: str,
    data: str | Path,
    *,
    out: str | Path | None = None,
    adapter: str = "auto",
    batch_size: int = 128,
    device: str = "auto",
    pretrained: Any = "auto",
    network: Any = None,
) -> FeatureSet:
    """Activations of every sample of ``data`` at ``layer``; written to ``out`` (.npz) when given.

    ``model``: a checkpoint, a registry name (with ``pretrained`` weights) or a Classifier;
    ``network``: for a checkpoint of a network defined in Python, its ``FILE.py:NAME`` again.
    The .npz holds ``features``, ``labels``, ``classes``, ``files`` and ``layer``.
    """
    batch_size = check_option("batch_size", batch_size)
    dev = pick_device(device)
    classifier = model.to(dev) if isinstance(model, Classifier) else load(model, weights=pretrained, device=dev, network=network)
    classifier.module.eval()
    check_layer(classifier.module, layer)
    dataset = open_dataset(data, adapter)
    tensors = to_tensors(dataset, classifier.preprocess)
    chunks = []
    for start in range(0, len(tensors), batch_size):
        x = normalize(tensors.images[start:start + batch_size].to(dev), classifier.preprocess)
        chunks.append(activations(classifier.module, layer, x).float().cpu())
    features = torch.cat(chunks).numpy()
    indices = getattr(tensors, "indices", None)
    order = range(len(dataset)) if indices is None else indices
    files = [dataset.describe(int(i)) for i in order]
    result = FeatureSet(features, tensors.labels.numpy(), list(tensors.classes), files, layer)
    if out is not None:
        result.path = _save(Path(out), result)
    return result


def _save(path: Path, result: FeatureSet) -> Path:
    if path.suffix != ".npz":
        raise ZooError(f"--out must name an .npz file, not '{path}'")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # np.savez would add .npz to a name
        np.savez(fh, features=result.features, labels=result.labels, classes=np.asarray(result.classes),
                 files=np.asarray(result.files), layer=np.asarray(result.layer))
    return path
