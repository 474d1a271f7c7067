"""Decode from the source files while training: DataLoader workers instead of a decode cache.

``StreamSource(dataset, pre)`` yields ``(uint8 N x C x H x W, int64 N)`` batches for the index
batches it is given, decoded in torch ``DataLoader`` worker processes (pinned memory on
request). Without ``crop`` a sample is exactly what the decode cache holds
(``pre.pixels(dataset.load(i))``). With ``crop=(low, high)`` it is a random-resized crop as
timm and torchvision train: the box is drawn on the full-resolution image (its size read from
the header), a JPEG is decoded at the largest reduction (Pillow's ``draft``: 1/2, 1/4, 1/8)
that keeps the box at least the model's size, and the box is resized in one step. ``flip``
mirrors half the samples left-right in the workers too (cheaper than a batch-level flip in the
training process). The draws come from (seed, epoch, dataset index), so pixels do not depend on
workers, batches or where a resumed run starts. Unreadable samples are dropped from their batch
and named in ``skipped``.
"""

from __future__ import annotations

import functools
import math
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zoo.data.base import ImageDataset
from zoo.data.folder import FolderDataset
from zoo.data.subset import DatasetSubset
from zoo.data.tensors import skip_reason, relabel
from zoo.errors import ZooError
from zoo.preprocess import RESAMPLE, ImageTooLarge, Preprocess, open_image, orientation, to_rgb_or_gray

__all__ = ["StreamSource", "default_workers", "open_for_crop", "random_resized_crop_box"]

#: RandomResizedCrop's aspect-ratio range (width / height)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
#: EXIF orientations that swap width and height
_TURNED = (5, 6, 7, 8)

Box = tuple[float, float, float, float]  # left, top, right, bottom


def default_workers() -> int:
    """DataLoader worker processes when none are asked for: one per core, at most 4."""
    return min(4, os.cpu_count() or 1)


class StreamSource:
    """The samples of ``dataset`` at the model's size, decoded per batch in worker processes.

    Args:
        dataset: any adapter's dataset.
        pre: the model's preprocessing (size, channels, interpolation, resize mode).
        crop: random-resized-crop area fraction ``(low, high)`` of the source image; None: the
            evaluation pixels (``pre.pixels``), those of the decode cache.
        flip: mirror each sample left-right with probability 1/2 (RandomHorizontalFlip).
        seed: with the epoch and the dataset index, decides each sample's crop and flip.
        workers: DataLoader worker processes; None: :func:`default_workers`; 0: in this process.
        pin_memory: batches in page-locked memory (for CUDA).
        classes: label by this class list (a training set's); a class not in it is a ``ZooError``.

    Attributes: ``labels`` (int64 tensor, one per dataset sample), ``classes``, ``indices``
    (the dataset indices, ``arange``), ``skipped`` ("path (reason)" of each unreadable sample
    met so far, each once), ``mode`` ("none": what ``--cache none`` names).
    """

    mode = "none"

    def __init__(self, dataset: ImageDataset, pre: Preprocess, *, crop: tuple[float, float] | None = None,
                 seed: int = 0, workers: int | None = None, pin_memory: bool = False,
                 classes: Sequence[str] | None = None, flip: bool = False) -> None:
        labels, names = np.asarray(dataset.labels, dtype=np.int64), list(dataset.classes)
        if classes is not None:
            labels, names = relabel(labels, names, list(classes))
        self.dataset, self.pre = dataset, pre
        self.crop = None if crop is None else (float(crop[0]), float(crop[1]))
        self.flip = bool(flip)
        self.seed = int(seed)
        self.workers = default_workers() if workers is None else int(workers)
        self.pin_memory = bool(pin_memory)
        self.labels = torch.from_numpy(labels)
        self.classes = names
        self.indices = np.arange(len(dataset), dtype=np.int64)
        self.skipped: list[str] = []
        self._named: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, index_batches: Iterable[Any], *, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One ``(uint8 N x C x H x W, int64 N)`` batch per index batch, in order; unreadable samples dropped.

        To stop early, ``close()`` the iterator (or drop it): its worker processes end then.
        """
        order = [torch.as_tensor(b, dtype=torch.int64).reshape(-1).tolist() for b in index_batches]
        samples = _Samples(self.dataset, self.pre, self.labels.numpy(), self.crop, self.flip, self.seed, int(epoch))
        loader = torch.utils.data.DataLoader(
            samples, batch_sampler=order, num_workers=self.workers,
            collate_fn=functools.partial(_collate, (self.pre.channels, *self.pre.input_size)),
            pin_memory=self.pin_memory, worker_init_fn=_init_worker if self.workers else None,
            generator=torch.Generator(),  # its seed draw must not move torch's global RNG (bit-exact resume)
        )
        batches = iter(loader)
        try:
            for images, labels, skipped, fatal in batches:
                if fatal is not None:
                    raise fatal
                self._note(skipped)
                yield images, labels
        finally:  # workers end now, not when the last reference goes (a traceback may hold one)
            getattr(batches, "_shutdown_workers", lambda: None)()

    def _note(self, skipped: list[str]) -> None:
        for item in skipped:
            if item not in self._named:
                self._named.add(item)
                self.skipped.append(item)


def _init_worker(_: int) -> None:
    """A worker leaves Ctrl-C to the main process (which stops after the current iteration)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


class _Samples(torch.utils.data.Dataset):
    """The map-style dataset a worker decodes from: sample i as (H x W x C uint8 array, label), or a failure."""

    def __init__(self, dataset: ImageDataset, pre: Preprocess, labels: np.ndarray,
                 crop: tuple[float, float] | None, flip: bool, seed: int, epoch: int) -> None:
        self.dataset, self.pre, self.labels = dataset, pre, labels
        self.crop, self.flip, self.seed, self.epoch = crop, flip, seed, epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Any:
        try:
            pixels = self._pixels(int(index))
        except ImageTooLarge as exc:  # over ZOO_MAX_IMAGE_PIXELS: skipped, as the decode cache skips it
            return f"{self.dataset.describe(index)} ({exc.reason})"
        except (ZooError, MemoryError) as exc:
            return exc  # raised in the main process, as it is, not wrapped in a worker's traceback
        except Exception as exc:  # noqa: BLE001 - a corrupt file raises whatever its decoder raises
            name = self.dataset.describe(index)
            return f"{name} ({skip_reason(exc, name)})"
        return pixels, int(self.labels[index])

    def _pixels(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed % (1 << 64), self.epoch, index]) if self.crop or self.flip else None
        if self.crop is None:
            pixels = self.pre.pixels(self.dataset.load(index))
        else:
            crop = self.crop
            pixels = cropped_pixels(self.dataset, index, self.pre, lambda size: random_resized_crop_box(size, crop, rng))
        return pixels[:, ::-1] if self.flip and rng.random() < 0.5 else pixels


def _collate(shape: tuple[int, int, int], items: list[Any]) -> tuple[torch.Tensor, torch.Tensor, list[str], Any]:
    """Stack the decoded samples (each C x H x W = ``shape``); name the skipped ones; pass on the
    first error that must stop the run."""
    fatal = next((item for item in items if isinstance(item, BaseException)), None)
    skipped = [item for item in items if isinstance(item, str)]
    kept = [item for item in items if isinstance(item, tuple)]
    images = torch.empty((len(kept), *shape), dtype=torch.uint8)
    rows = images.numpy()
    for row, (pixels, _) in zip(rows, kept):
        row[...] = pixels.transpose(2, 0, 1)  # one copy, from Pillow's read-only array
    return images, torch.tensor([label for _, label in kept], dtype=torch.int64), skipped, fatal


# -- random-resized crop ------------------------------------------------------------------------------


def random_resized_crop_box(size: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator) -> Box:
    """torchvision's ``RandomResizedCrop.get_params`` on an image of ``size`` (width, height).

    Ten tries at an area of ``scale`` times the image's and an aspect ratio log-uniform in
    3/4..4/3, whole pixels; when none fits, the centre crop of the ratio range nearest the image's.
    """
    width, height = size
    area = width * height
    log_low, log_high = math.log(RATIO[0]), math.log(RATIO[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_low, log_high))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    ratio = width / height
    if ratio < RATIO[0]:
        w, h = width, round(width / RATIO[0])
    elif ratio > RATIO[1]:
        w, h = round(height * RATIO[1]), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


def cropped_pixels(dataset: ImageDataset, index: int, pre: Preprocess,
                   choose_box: Callable[[tuple[int, int]], Box]) -> np.ndarray:
    """Sample ``index``: the box ``choose_box((width, height))`` picks, resized to the model's size.

    A sample read from a file is opened by :func:`open_for_crop` (JPEGs decoded reduced); any
    other sample is loaded whole by its dataset.
    """
    height, width = pre.input_size
    path = _source_file(dataset, index)
    if path is not None:
        image, box = open_for_crop(path, choose_box, (width, height))
    else:
        image = dataset.load(index)
        box = choose_box(image.size)
    image = to_rgb_or_gray(image, pre.channels)
    arr = np.asarray(image.resize((width, height), RESAMPLE[pre.interpolation], box=box), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _source_file(dataset: ImageDataset, index: int) -> Path | None:
    """The file sample ``index`` is read from when its dataset loads it with ``open_image`` unchanged."""
    if isinstance(dataset, DatasetSubset):
        return _source_file(dataset.parent, int(dataset.indices[index]))
    if isinstance(dataset, FolderDataset) and type(dataset).load is FolderDataset.load:
        return dataset.paths[index]
    return None


def open_for_crop(path: str | Path, choose_box: Callable[[tuple[int, int]], Box],
                  target: tuple[int, int]) -> tuple[Image.Image, Box]:
    """``open_image(path)``, decoded no larger than the box ``choose_box`` picks needs, and that box.

    ``choose_box`` gets the upright (EXIF-turned) size from the header; a JPEG is then decoded
    at the largest of Pillow's reductions (1/2, 1/4, 1/8) that keeps the box at least
    ``target`` (width, height); the box comes back in the decoded image's coordinates. The
    pixel limit, the errors and the EXIF turn are ``open_image``'s.
    """
    chosen: dict[str, Any] = {}

    def draft(image: Image.Image) -> None:
        turned = orientation(image) in _TURNED
        chosen["box"] = box = choose_box((image.height, image.width) if turned else image.size)
        chosen["reduction"] = _draft(image, box, target)

    image = open_image(path, before_load=draft)
    return image, tuple(v / chosen["reduction"] for v in chosen["box"])  # type: ignore[return-value]


def _draft(image: Image.Image, box: Box, target: tuple[int, int]) -> int:
    """Ask a JPEG for the largest reduction that keeps ``box`` at least ``target``; returns it (1: none)."""
    factor = min((box[2] - box[0]) / target[0], (box[3] - box[1]) / target[1])
    if factor < 2:
        return 1
    width = image.width
    # draft decodes at the largest 1/s (s = 8, 4, 2) whose size is at least the size asked
    drafted = image.draft(image.mode, (math.ceil(image.width / factor), math.ceil(image.height / factor)))
    if drafted is None:  # not a JPEG, or one Pillow cannot reduce
        return 1
    return round(width / drafted[1][2])
