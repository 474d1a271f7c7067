"""What the training loop reads: the sources of a run's parts, and a frozen backbone's features.

``open_sources`` opens the training and validation parts as ``--cache`` says
(:mod:`zoo.data.sources`), WebDataset shards trained on whole as a shard source that each rank
reads its own shards from; ``training_inputs`` decides what the loop trains on: the whole
network on pixels, or, with a frozen backbone and no augmentation, the head alone on the
backbone's features computed once (:mod:`zoo.training.frozen`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.data import open_source
from zoo.data.augment import AugmentSpec
from zoo.data.base import warn_data
from zoo.data.shards import ShardDataset, ShardSource
from zoo.data.tensors import skip_message
from zoo.distributed import current as current_rank
from zoo.preprocess import Preprocess
from zoo.training.frozen import frozen_plan, head_inputs
from zoo.training.options import TrainOptions

__all__ = ["Feed", "open_sources", "pixel_sample", "training_inputs", "warn_streamed_skips"]


@dataclass
class Feed:
    """What the loop trains: ``learner`` on ``train`` (validated on ``val``), normalised by ``preprocess``
    (None for features), its frozen part held by ``freeze``; ``mode`` says how, for the run's report."""

    learner: nn.Module
    train: Any
    val: Any
    preprocess: Preprocess | None
    freeze: str
    mode: str


def open_sources(parts: tuple[Any, Any], pre: Preprocess, options: TrainOptions, classes: list[str],
                 device: torch.device) -> tuple[Any, Any]:
    """(training source, validation source or None) for the (training, validation) datasets."""
    spec = AugmentSpec.parse(options.augment)
    crop, pin = spec.crop, device.type == "cuda"
    train, val = parts
    if isinstance(train, ShardDataset):  # a split of one is read by index, as any dataset
        where = current_rank()
        train_set = ShardSource(train, pre, seed=options.seed, workers=options.workers, rank=where.rank,
                                world=where.world_size)
    else:
        train_set = open_source(train, pre, cache=options.cache, crop=crop, seed=options.seed,
                                workers=options.workers, pin_memory=pin, flip=crop is not None and spec.x_reflection)
    val_set = None if val is None else open_source(val, pre, cache=options.cache, classes=classes,
                                                   workers=options.workers, pin_memory=pin)
    return train_set, val_set


def pixel_sample(train_set: Any, train_part: Any, pre: Preprocess, options: TrainOptions) -> Any:
    """A source of the training part's pixels by index (shards are read in order: streamed by index here)."""
    if hasattr(train_set, "batches"):
        return train_set
    return open_source(train_part, pre, cache="none", workers=options.workers)


def training_inputs(net: nn.Module, train_set: Any, val_set: Any, pre: Preprocess, options: TrainOptions,
                    device: torch.device, *, freeze: str, feature_cache: bool,
                    say: Callable[[str], Any] | None) -> Feed:
    """The whole network on pixels, or its head on the frozen backbone's features (computed once)."""
    mode = _mode_of(train_set)
    plan = (frozen_plan(net, freeze, options, enabled=feature_cache, say=say)
            if hasattr(train_set, "batches") else None)
    features = None if plan is None else head_inputs(net, plan, train_set, pre, device)
    if features is None:
        return Feed(net, train_set, val_set, pre, freeze, mode)
    val_features = None if val_set is None else head_inputs(net, plan, val_set, pre, device)
    return Feed(plan.head, features, val_features, None, "none", f"{mode}, backbone features computed once")


def warn_streamed_skips(*sources: Any) -> None:
    """Name, once, the unreadable files streamed sources met (decoded sets named them when decoding)."""
    for source in sources:
        if source is not None and getattr(source, "mode", "") == "none" and source.skipped:
            warn_data(skip_message(source.skipped, len(source)), stacklevel=3)


def _mode_of(source: Any) -> str:
    """How the run reads its training data: "disk cache", "memory", "streamed" or "shards"."""
    return {"disk": "disk cache", "memory": "memory", "none": "streamed"}.get(getattr(source, "mode", None), "shards")
