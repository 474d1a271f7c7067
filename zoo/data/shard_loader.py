"""Decoding a rank's shards in DataLoader workers, and putting the batches back together.

Worker w reads stream w (its shards, in order, shuffled within a buffer; see
:class:`zoo.data.shards.ShardSource`) and hands over chunks of up to ``CHUNK`` samples,
each tagged (stream, chunk number) and carrying which of its positions could be decoded.
:func:`batches` takes the chunks in the planned reading order (whatever order the workers
finish in) and cuts them into batches of ``local_batch`` reading positions, so an unreadable
sample shortens its batch but never shifts the next one.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from zoo.data.shard_io import Shard, buffer_shuffle, stream_payloads
from zoo.data.tensors import skip_reason
from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge, Preprocess, open_image

__all__ = ["StreamSpec", "ChunkDecoder", "batches"]


@dataclass
class StreamSpec:
    """What one worker reads: its shards (with labels), its shuffle seed, and which positions."""

    index: int
    shards: list[tuple[Shard, list[int]]]
    seed: int
    buffer: int
    skip: int  # positions read but not decoded (resume)
    take: int  # positions read in all


class ChunkDecoder(IterableDataset):
    """Yields ``(stream, chunk, images, labels, readable, skipped)`` for each chunk of its stream(s):
    in a worker, the stream of that worker's id; in-process, every stream in turn."""

    def __init__(self, specs: list[StreamSpec], pre: Preprocess, chunk: int) -> None:
        self.specs, self.pre, self.chunk = specs, pre, chunk

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        info = get_worker_info()
        for spec in self.specs if info is None else [self.specs[info.id]]:
            yield from self._chunks(spec)

    def _chunks(self, spec: StreamSpec) -> Iterator[tuple[Any, ...]]:
        items = buffer_shuffle(_items(spec.shards), spec.buffer, spec.seed)
        pixels, labels, readable, skipped = [], [], [], []
        try:
            for position, (name, label, payload) in enumerate(items):
                if position >= spec.take:
                    break
                if position < spec.skip:
                    continue
                decoded = self._decode(name, payload, skipped)
                readable.append(decoded is not None)
                if decoded is not None:
                    pixels.append(decoded)
                    labels.append(label)
                if (position + 1) % self.chunk == 0 or position + 1 == spec.take:
                    yield spec.index, position // self.chunk, *self._pack(pixels, labels, readable), skipped
                    pixels, labels, readable, skipped = [], [], [], []
        finally:
            items.close()

    def _decode(self, name: str, payload: bytes | str, skipped: list[str]) -> np.ndarray | None:
        """Pixels (H x W x C) of one sample, or None with its "name (reason)" added to ``skipped``."""
        if isinstance(payload, str):
            skipped.append(f"{name} ({payload})")
            return None
        stream = io.BytesIO(payload)
        stream.name = name
        try:
            return self.pre.pixels(open_image(stream))
        except ImageTooLarge as exc:
            skipped.append(f"{name} ({exc.reason})")
        except (ZooError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt image raises whatever its decoder raises
            skipped.append(f"{name} ({skip_reason(exc, name)})")
        return None

    def _pack(self, pixels: list[np.ndarray], labels: list[int], readable: list[bool]) -> tuple[Any, Any, Any]:
        height, width = self.pre.input_size
        images = (torch.from_numpy(np.ascontiguousarray(np.stack(pixels).transpose(0, 3, 1, 2))) if pixels
                  else torch.empty((0, self.pre.channels, height, width), dtype=torch.uint8))
        return images, torch.as_tensor(labels, dtype=torch.int64), torch.as_tensor(readable, dtype=torch.bool)


def _items(shards: list[tuple[Shard, list[int]]]) -> Iterator[tuple[str, int, bytes | str]]:
    """(name, label, image bytes or why not) of every listed sample of ``shards``, in order."""
    for shard, labels in shards:
        payloads = stream_payloads(shard)
        try:
            for key, label, payload in zip(shard.keys, labels, payloads):
                yield f"{shard.location}:{key}", label, payload
        finally:
            payloads.close()


def _quiet_worker(_: int) -> None:
    """A decoding worker: Ctrl-C is the main process's to handle; one thread (the workers are the parallelism)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def batches(specs: list[StreamSpec], order: list[tuple[int, int]], pre: Preprocess, workers: int,
            local_batch: int, chunk: int, on_skip: Callable[[str], None]) -> Iterator[tuple[Any, Any]]:
    """The batches of ``local_batch`` reading positions over the chunks (of ``chunk`` samples)
    that ``order`` names, decoded by ``workers`` processes (one per stream; 0: in this process)."""
    decoder = ChunkDecoder(specs, pre, chunk)
    if workers:
        loader = iter(DataLoader(decoder, batch_size=None, num_workers=workers, worker_init_fn=_quiet_worker))
    else:
        loader = iter(decoder)
    waiting: dict[tuple[int, int], tuple[Any, ...]] = {}
    pending = _Pending()
    try:
        for key in order:
            while key not in waiting:
                item = next(loader, None)
                if item is None:
                    raise RuntimeError(f"the shard workers ended before chunk {key}")
                waiting[(int(item[0]), int(item[1]))] = item
            _, _, images, labels, readable, skipped = waiting.pop(key)
            for name in skipped:
                on_skip(name)
            pending.add(images, labels, readable)
            while pending.positions >= local_batch:
                yield pending.cut(local_batch)
        if pending.positions:
            raise RuntimeError(f"{pending.positions} reading positions left over after the last batch")
    finally:
        del loader  # shuts the workers down, also when the caller stops early (Ctrl-C, a stop request)


class _Pending:
    """Decoded chunks not yet cut into batches: images, labels, and each position's readability."""

    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.readable: list[torch.Tensor] = []
        self.positions = 0

    def add(self, images: torch.Tensor, labels: torch.Tensor, readable: torch.Tensor) -> None:
        self.images.append(images)
        self.labels.append(labels)
        self.readable.append(readable)
        self.positions += len(readable)

    def cut(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``size`` positions: their readable images and labels."""
        readable = torch.cat(self.readable)
        kept = int(readable[:size].sum())
        images, labels = torch.cat(self.images), torch.cat(self.labels)
        self.images, self.labels = [images[kept:].clone()], [labels[kept:].clone()]
        self.readable = [readable[size:].clone()]
        self.positions -= size
        return images[:kept], labels[:kept]
