"""A frozen backbone's features, computed once: the head trains alone on them.

With ``freeze="backbone"`` the backbone runs in inference mode (:func:`zoo.transfer.set_train_mode`)
and its weights do not change, so what it gives the head for an image is the same in every
epoch. Without augmentation (which changes the images) zoo therefore runs the backbone once per
image, stores the head's inputs under ``<zoo cache>/features`` (keyed by the backbone's weights,
the normalisation and the decoded pixels' cache key; memory-mapped like decoded pixels) and
trains the head on them: the same optimizer steps on the same inputs as the full forward, so the
same head weights within float tolerance (``tests/test_frozen_features.py``), for one forward per
image instead of one per image and epoch. The plan is refused, and the full forward used, when the
head is not the network's last step (checked on a probe batch) or is called more than once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.data import cache as decode_cache
from zoo.data.augment import AugmentSpec
from zoo.data.base import warn_data
from zoo.data.tensors import TensorSet
from zoo.errors import OutputError
from zoo.heads import head_name
from zoo.preprocess import Preprocess, normalize
from zoo.training.options import TrainOptions

__all__ = ["FrozenPlan", "frozen_plan", "head_inputs"]

#: 1: the head's input, float32, one row per readable sample
FORMAT = 1
BATCH = 64


@dataclass
class FrozenPlan:
    """Train ``head`` (the module named ``name`` in the network) on the backbone's outputs."""

    name: str
    head: nn.Module
    weights: str  # SHA-256 of every backbone tensor


def frozen_plan(net: nn.Module, freeze: str, options: TrainOptions, *, enabled: bool = True,
                say: Callable[[str], Any] | None = None) -> FrozenPlan | None:
    """The plan when ``net``'s backbone is frozen and the images are not augmented, else None
    (with augmentation ``say`` is told once why the whole network runs every iteration)."""
    if not enabled or freeze != "backbone":
        return None
    if AugmentSpec.parse(options.augment).active:
        if say is not None:
            say("frozen backbone with --augment: the images change every epoch, so the backbone runs on each "
                "batch (its features are computed once only without augmentation)")
        return None
    name = head_name(net)
    head = dict(net.named_modules())[name]
    return FrozenPlan(name, head, _backbone_hash(net, name))


def head_inputs(net: nn.Module, plan: FrozenPlan, source: Any, pre: Preprocess, device: torch.device) -> TensorSet | None:
    """``source``'s rows as the head's inputs (a float32 :class:`TensorSet`), from the feature cache or
    computed now (and cached); None when the head cannot be fed apart (said once)."""
    key = _key(plan, pre, source)
    entry = decode_cache.read(key, "features") if key else None
    if entry is None:
        try:
            entry = _compute(net, plan, source, pre, device, key)
        except _NotSeparable as exc:
            warn_data(f"the backbone's features cannot be computed apart ({exc}); the whole network runs "
                      f"every iteration", stacklevel=2)
            return None
    labels = torch.from_numpy(entry.labels)
    return TensorSet(torch.from_numpy(entry.images), labels, list(source.classes), entry.indices,
                     list(getattr(source, "skipped", [])), mode="disk" if key else "memory")


class _NotSeparable(Exception):
    pass


def _compute(net: nn.Module, plan: FrozenPlan, source: Any, pre: Preprocess, device: torch.device,
             key: str) -> decode_cache.CacheEntry:
    rows = [torch.arange(start, min(start + BATCH, len(source))) for start in range(0, len(source), BATCH)]
    labels: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for pixels, batch_labels in source.batches(rows):
                if len(batch_labels):
                    chunks.append(_features(net, plan, pixels, pre, device, check=not chunks))
                    labels.append(batch_labels.cpu().numpy())
    finally:
        net.train(was_training)
    features = np.concatenate(chunks) if chunks else np.empty((0, 0), np.float32)
    label_array = np.concatenate(labels) if labels else np.empty(0, np.int64)
    indices = np.asarray(getattr(source, "indices", None) if len(label_array) == len(source) else
                         np.arange(len(label_array)), dtype=np.int64)
    entry = decode_cache.CacheEntry(features, label_array, indices, list(source.classes), [])
    if key and len(features):
        try:
            with decode_cache.writing(key, "features") as fh:
                fh.write(np.ascontiguousarray(features).data)
            decode_cache.write_meta(key, features.shape, label_array, indices, entry.classes, [], kind="features",
                                    dtype="float32")
            return decode_cache.read(key, "features") or entry
        except OutputError as exc:
            warn_data(f"the backbone's features are not cached ({exc}); they are computed again next run",
                      stacklevel=3)
    return entry


def _features(net: nn.Module, plan: FrozenPlan, pixels: torch.Tensor, pre: Preprocess, device: torch.device,
              *, check: bool) -> np.ndarray:
    """The head's input for a batch; on the first batch, also that the head alone gives the output."""
    captured: list[Any] = []
    handle = plan.head.register_forward_pre_hook(lambda module, args: captured.append(args))
    try:
        x = normalize(pixels.to(device), pre).contiguous(memory_format=torch.channels_last)
        out = net(x)
    finally:
        handle.remove()
    if len(captured) != 1 or len(captured[0]) != 1 or not torch.is_tensor(captured[0][0]):
        raise _NotSeparable(f"the head '{plan.name}' is called {len(captured)} times or with several inputs")
    inputs = captured[0][0]
    if check and not (torch.is_tensor(out) and torch.allclose(plan.head(inputs), out, rtol=1e-4, atol=1e-5)):
        raise _NotSeparable(f"the head '{plan.name}' is not the network's last step")
    return inputs.float().cpu().numpy()


def _key(plan: FrozenPlan, pre: Preprocess, source: Any) -> str:
    """The feature cache's key; "" (not cached) for a source not decoded into the pixel cache."""
    pixels_key = getattr(source, "cache_key", "")
    if not pixels_key:
        return ""
    h = hashlib.sha256(json.dumps({"format": FORMAT, "head": plan.name, "mean": pre.mean, "std": pre.std,
                                   "weights": plan.weights, "pixels": pixels_key}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _backbone_hash(net: nn.Module, head: str) -> str:
    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        if name == head or name.startswith(head + "."):
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
