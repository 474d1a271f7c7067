"""The ``webdataset`` adapter and its training source: tar shards, local or at URLs.

:class:`ShardDataset` is the adapter (an :class:`~zoo.data.base.ImageDataset`): classes and labels
from ``shards.json`` (or, for local tars without one, from the tars' ``KEY.cls``), and random access
for local shards so that ``zoo evaluate``, ``zoo data show`` and ``zoo data check`` work.

:class:`ShardSource` feeds training: each rank of a DDP job reads its own whole shards (dealt anew
every epoch, disjoint across ranks, their union every shard), shuffled within a seeded buffer, and
every rank runs the same number of iterations, computed from the counts without communication.
Shards are written by :func:`zoo.data.shard_writer.write_shards` (``zoo data shard``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from zoo.data import shard_io
from zoo.data.base import ImageDataset, warn_data
from zoo.data.tensors import relabel
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, open_image
from zoo.values import shown, whole

__all__ = ["ShardDataset", "ShardSource", "CHUNK", "SHUFFLE_BUFFER"]

#: samples a decoding worker hands over at a time; the reading order interleaves workers by chunks
CHUNK = 32
#: samples each reading stream shuffles among (their compressed bytes are held, not their pixels)
SHUFFLE_BUFFER = 512


class ShardDataset(ImageDataset):
    """WebDataset shards: a folder with ``shards.json``, tar paths, a brace pattern or URLs.

    Args:
        source: a shard folder; a ``.tar`` path; a brace pattern (``data-{000000..000009}.tar``);
            a URL webdataset opens (``https://...``, ``pipe:...``); or a list of these.
        manifest: the ``shards.json`` to use (path or URL); default: the one beside the shards.
            Shards at URLs need one; local tars without one are scanned once.

    Attributes: ``classes``, ``labels`` (shard by shard, in tar order), ``shards`` (paths or
    URLs), ``shard_counts`` (samples per shard), ``remote`` (any shard at a URL).
    """

    def __init__(self, source: Any, *, manifest: str | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        warn = warn or functools.partial(warn_data, stacklevel=4)
        self.source = source if isinstance(source, (list, tuple)) else os.fspath(source)
        self.classes, self._shards, self.origin = shard_io.resolve(source, manifest, warn)
        self.shards = [s.location for s in self._shards]
        self.shard_counts = [s.count for s in self._shards]
        self.labels = np.concatenate([s.labels for s in self._shards]) if self._shards else np.zeros(0, np.int64)
        self.remote = any(s.remote for s in self._shards)
        self._starts = np.concatenate([[0], np.cumsum(self.shard_counts)]).astype(np.int64)
        self._members: dict[int, list[tuple[int, int] | None]] = {}
        if not self.remote and not isinstance(self.source, (list, tuple)) and os.path.isdir(self.source):
            self.root = self.source

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, position in it) of sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} of {len(self)}")
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return shard, index - int(self._starts[shard])

    def key(self, index: int) -> str:
        shard, position = self.locate(index)
        return self._shards[shard].keys[position]

    def describe(self, index: int) -> str:
        shard, position = self.locate(index)
        return f"{self.shards[shard]}:{self._shards[shard].keys[position]}"

    def load(self, index: int) -> Image.Image:
        if self.remote:
            raise ZooError("shards at URLs are read one after another, for training only: to evaluate, show or "
                           "check them, copy the .tar files and shards.json into a folder and give that folder")
        shard, position = self.locate(index)
        if shard not in self._members:  # the offsets of a shard's images, found once
            self._members[shard] = shard_io.member_table(self._shards[shard])
        member = self._members[shard][position]
        if member is None:
            raise OSError("no image for this key in the shard")
        stream = io.BytesIO(shard_io.read_member(self.shards[shard], *member))
        stream.name = self.describe(index)
        return open_image(stream)

    def fingerprint(self) -> str:
        """Each shard's location (and, when local, size and time), keys and labels; the classes."""
        h = hashlib.sha256(type(self).__name__.encode())
        for shard in self._shards:
            stamp = ""
            if not shard.remote:
                try:
                    info = os.stat(shard.location)
                    stamp = f"{info.st_size}:{info.st_mtime_ns}"
                except OSError:
                    stamp = "missing"
            h.update(f"{shard.location}\0{stamp}\0{','.join(shard.keys)}\0".encode("utf-8", "surrogateescape"))
            h.update(shard.labels.astype("<i8").tobytes())
        h.update("\0".join(self.classes).encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    @property
    def location(self) -> str:
        if getattr(self, "root", None):
            return os.path.abspath(self.root)
        return self.source if isinstance(self.source, str) else "; ".join(map(str, self.source))

    def __repr__(self) -> str:
        return f"ShardDataset({len(self)} samples in {len(self.shards)} shards, {len(self.classes)} classes)"


class ShardSource:
    """Training batches from a :class:`ShardDataset`, for rank ``rank`` of ``world`` processes.

    Each epoch the non-empty shards are dealt to the ranks (:meth:`rank_shards`); a rank's
    shards are split among its ``workers`` decoding processes (``None``: ``min(4, cores)``;
    ``0`` decodes in this process), each reading its shards in order and shuffling within a
    buffer of ``buffer`` samples seeded by (seed, epoch, rank, worker). The workers' outputs
    interleave by chunks of :data:`CHUNK` samples: that is the reading order
    (:meth:`epoch_samples`), the same for the same seed and worker count. ``classes``: label by
    this class list (a validation set's by the training set's).
    """

    def __init__(self, dataset: ShardDataset, pre: Preprocess, *, seed: int = 0, workers: int | None = None,
                 rank: int = 0, world: int = 1, classes: Sequence[str] | None = None,
                 buffer: int = SHUFFLE_BUFFER) -> None:
        from zoo.data.stream import default_workers  # torch: only when training

        if not isinstance(dataset, ShardDataset):
            raise ZooError(f"ShardSource reads a ShardDataset, not {type(dataset).__name__}")
        if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
            raise ZooError(f"rank {rank!r} must lie in 0..world-1 for world {world!r}")
        self.dataset, self.pre, self.seed, self.rank, self.world = dataset, pre, seed, rank, world
        if workers is not None and whole(workers, 0) is None:
            raise ZooError(f"workers must be a whole number from 0 up, not {shown(workers)}")
        if whole(buffer, 1) is None:
            raise ZooError(f"the shuffle buffer must be a whole number from 1 up, not {shown(buffer)}")
        self.workers = default_workers() if workers is None else int(workers)
        self.buffer = int(buffer)
        self.classes, self._labels = _relabel(dataset, classes)
        self.skipped: list[str] = []  # "name (reason)" of each unreadable sample met, once
        self._filled = [i for i, count in enumerate(dataset.shard_counts) if count]
        if len(self._filled) < world:
            raise ZooError(_too_few_shards(len(self._filled), world, len(dataset)))
        self._slots = _balanced_slots([dataset.shard_counts[i] for i in self._filled], world)

    def __len__(self) -> int:
        return len(self.dataset)

    # -- which shards, how many batches ----------------------------------------------------------

    def deal(self, epoch: int) -> list[list[int]]:
        """Every rank's shard numbers for ``epoch`` (what :meth:`rank_shards` takes its part of).

        The sample counts each rank receives are fixed once (largest shards first, each to the
        rank with the fewest samples); every epoch, shards of equal count trade places among
        those slots in a (seed, epoch) random order, and each rank's list is shuffled. So
        :meth:`batches_per_epoch` is the same every epoch, and shards of a count no other shard
        has stay with one rank.
        """
        rng = np.random.default_rng([self.seed, epoch, 0x5A4D])
        by_count: dict[int, list[int]] = defaultdict(list)
        for shard in self._filled:
            by_count[self.dataset.shard_counts[shard]].append(shard)
        pools = {count: [shards[i] for i in rng.permutation(len(shards))] for count, shards in sorted(by_count.items())}
        dealt = [[pools[count].pop() for count in slots] for slots in self._slots]
        return [[shards[i] for i in rng.permutation(len(shards))] for shards in dealt]

    def rank_shards(self, epoch: int) -> list[int]:
        """This rank's shard numbers (indices into ``dataset.shards``) for ``epoch``, in reading order."""
        return self.deal(epoch)[self.rank]

    def batches_per_epoch(self, local_batch: int) -> int:
        """Batches of ``local_batch`` every rank runs per epoch: the fewest samples any rank is dealt,
        divided by ``local_batch`` (the same for every epoch and rank; the rest of an epoch's samples
        are left out, as the last partial batch is)."""
        if isinstance(local_batch, bool) or not isinstance(local_batch, int) or local_batch < 1:
            raise ZooError(f"the batch size must be a whole number from 1 up, not {local_batch!r}")
        fewest = min(sum(slots) for slots in self._slots)
        if fewest < local_batch:
            who = f"each of the {self.world} workers is dealt as few as" if self.world > 1 else "the shards hold"
            raise ZooError(f"{who} {fewest} samples, fewer than a batch of {local_batch}: lower --batch-size")
        return fewest // local_batch

    # -- the reading order --------------------------------------------------------------------------

    def _streams(self, epoch: int) -> list[list[int]]:
        """The rank's shards split among its decoding streams (one per worker process)."""
        shards = self.rank_shards(epoch)
        count = max(1, min(self.workers, len(shards)))
        return [shards[s::count] for s in range(count)]

    def _stream_seed(self, epoch: int, stream: int, streams: int) -> int:
        return shard_io.derived_seed(self.seed, epoch, self.rank, stream, streams)

    def epoch_samples(self, epoch: int) -> Iterator[tuple[str, int]]:
        """This rank's (key, label) for ``epoch`` in reading order, from the counts alone (nothing decoded)."""
        streams = self._streams(epoch)
        keyed = [shard_io.buffer_shuffle(
            ((key, int(label)) for shard in stream
             for key, label in zip(self.dataset._shards[shard].keys, self._labels[shard])),
            self.buffer, self._stream_seed(epoch, s, len(streams))) for s, stream in enumerate(streams)]
        sizes = [sum(self.dataset.shard_counts[shard] for shard in stream) for stream in streams]
        for stream, _, size in _chunk_order(sizes):
            yield from itertools.islice(keyed[stream], size)

    def epoch_batches(self, epoch: int, start_batch: int, local_batch: int) -> Iterator[tuple[Any, Any]]:
        """Batches ``start_batch`` .. ``batches_per_epoch(local_batch) - 1`` of ``epoch``: (uint8 N x C x H x W
        at the model's size, int64 labels), batch b being reading positions ``b*local_batch`` onwards.

        Samples before ``start_batch`` are read but not decoded (resume mid-epoch). An unreadable
        sample is dropped from its batch (which is then smaller, or even empty, but still comes) and
        named once in ``skipped``.
        """
        from zoo.data.shard_loader import StreamSpec, batches  # torch: only when training

        total = self.batches_per_epoch(local_batch)
        if isinstance(start_batch, bool) or not isinstance(start_batch, int) or not 0 <= start_batch <= total:
            raise ZooError(f"start batch {start_batch!r} must lie in 0..{total}")
        streams = self._streams(epoch)
        sizes = [sum(self.dataset.shard_counts[shard] for shard in stream) for stream in streams]
        begin, end = start_batch * local_batch, total * local_batch
        skip, take, order = _plan(sizes, begin, end)
        specs = [StreamSpec(s, [self._shard_spec(shard) for shard in stream], self._stream_seed(epoch, s, len(streams)),
                            self.buffer, skip[s], take[s]) for s, stream in enumerate(streams)]
        workers = len(streams) if self.workers > 0 else 0
        yield from batches(specs, order, self.pre, workers, local_batch, CHUNK, self._note_skipped)

    def _shard_spec(self, shard: int) -> tuple[shard_io.Shard, list[int]]:
        return self.dataset._shards[shard], [int(v) for v in self._labels[shard]]

    def _note_skipped(self, name: str) -> None:
        if name not in self.skipped:
            self.skipped.append(name)


def _relabel(dataset: ShardDataset, classes: Sequence[str] | None) -> tuple[list[str], list[np.ndarray]]:
    """(class names, each shard's labels) by ``classes`` when given, else the dataset's own."""
    labels = [shard.labels for shard in dataset._shards]
    if classes is None:
        return list(dataset.classes), labels
    mapping, target = relabel(np.arange(len(dataset.classes)), list(dataset.classes), list(classes))
    return target, [mapping[shard_labels] for shard_labels in labels]


def _too_few_shards(filled: int, world: int, samples: int) -> str:
    if samples < world:
        return f"{samples} samples cannot be shared by {world} workers: each worker needs a shard of its own"
    return (f"{filled} shard(s) for {world} workers: each worker reads whole shards, so write at least {world} "
            f"(zoo data shard DIR OUT --shard-size {samples // world} or less)")


def _balanced_slots(counts: list[int], world: int) -> list[list[int]]:
    """Per rank, the sample counts of the shards it is dealt: largest first, each to the rank
    with the fewest samples (then the fewest shards, then the lowest rank)."""
    slots: list[list[int]] = [[] for _ in range(world)]
    for count in sorted(counts, reverse=True):
        rank = min(range(world), key=lambda r: (sum(slots[r]), len(slots[r]), r))
        slots[rank].append(count)
    return slots


def _chunk_order(sizes: list[int]) -> Iterator[tuple[int, int, int]]:
    """(stream, chunk number, samples) of every chunk in reading order: round by round, stream by stream."""
    for chunk in itertools.count():
        left = [(s, size - chunk * CHUNK) for s, size in enumerate(sizes) if size > chunk * CHUNK]
        if not left:
            return
        for stream, remaining in left:
            yield stream, chunk, min(CHUNK, remaining)


def _plan(sizes: list[int], begin: int, end: int) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """For reading positions ``begin``..``end``: per stream the samples before ``begin`` (skipped,
    not decoded) and before ``end`` (read), and the (stream, chunk) keys in reading order."""
    skip, take = [0] * len(sizes), [0] * len(sizes)
    order: list[tuple[int, int]] = []
    position = 0
    for stream, chunk, size in _chunk_order(sizes):
        if position >= end:
            break
        before_begin = min(size, max(0, begin - position))
        before_end = min(size, max(0, end - position))
        if before_begin:
            skip[stream] = chunk * CHUNK + before_begin
        if before_end:
            take[stream] = chunk * CHUNK + before_end
        if before_end > before_begin:
            order.append((stream, chunk))
        position += size
    return skip, take, order
