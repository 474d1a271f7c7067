"""``idx`` adapter: MNIST-format IDX files (``*-images-idx3-ubyte[.gz]`` with their labels).

The path is a folder holding one images/labels pair (``train-images-idx3-ubyte`` and
``train-labels-idx1-ubyte``, gzipped or not, ``.`` or ``-`` before ``idx``) or the images
file itself. IDX: a big-endian header (two zero bytes, the type code 0x08 for unsigned
bytes, the number of dimensions, one uint32 per dimension), then the data.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from zoo import settings
from zoo.atomic import write_file
from zoo.data.base import ImageDataset
from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge

__all__ = ["IdxDataset", "read_idx", "write_idx"]

_IMAGES = re.compile(r"^(?P<prefix>.*?)[-.]?images[-.]idx3[-.]ubyte(?P<gz>\.gz)?$")


#: bytes read (and decompressed) at a time: memory grows with the data that is there, not the header's claim
_CHUNK = 1 << 24


def read_idx(path: Path, dims: int) -> np.ndarray:
    """The uint8 array in an IDX file with ``dims`` dimensions (a clear error for anything else).

    The header is read first: images of more than ``ZOO_MAX_IMAGE_PIXELS`` pixels raise
    :class:`~zoo.preprocess.ImageTooLarge`, and no more bytes than the header announces are read
    or decompressed.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
            shape = _read_shape(fh, path, dims)
            data = _read_data(fh, path, shape)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ZooError(f"cannot read IDX file '{path}': {exc}") from None
    return data.reshape(shape)


def _read_shape(fh: IO[bytes], path: Path, dims: int) -> tuple[int, ...]:
    header = fh.read(4 + 4 * dims)
    if len(header) < 4 + 4 * dims or header[0:2] != b"\0\0" or header[2] != 0x08 or header[3] != dims:
        raise ZooError(f"'{path}' is not an IDX file of unsigned bytes with {dims} dimensions")
    shape = tuple(int(v) for v in np.frombuffer(header, dtype=">u4", count=dims, offset=4))
    limit = settings.max_image_pixels()
    if dims == 3 and limit is not None and shape[1] * shape[2] > limit:
        raise ImageTooLarge(str(path), shape[1] * shape[2], limit, (shape[2], shape[1]))
    return shape


def _read_data(fh: IO[bytes], path: Path, shape: tuple[int, ...]) -> np.ndarray:
    expected = math.prod(shape)
    data = bytearray()
    while len(data) <= expected:
        chunk = fh.read(min(_CHUNK, expected + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) != expected:
        held = f"{len(data)} bytes" if len(data) < expected else "more bytes"
        raise ZooError(f"IDX file '{path}' is truncated or padded: header says {shape}, it holds {held}")
    return np.frombuffer(data, dtype=np.uint8)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.tobytes()
    path = Path(path)
    write_file(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _pairs(folder: Path) -> dict[str, tuple[Path, Path | None]]:
    pairs: dict[str, tuple[Path, Path | None]] = {}
    names = {p.name: p for p in folder.iterdir() if p.is_file()}
    for name, path in sorted(names.items()):
        match = _IMAGES.match(name)
        if not match or match["prefix"] in pairs:  # sorted: the plain file before its .gz
            continue
        pairs[match["prefix"]] = (path, _labels_for(path))
    return pairs


def _labels_for(images: Path) -> Path | None:
    stem = images.name.replace("images", "labels").replace("idx3", "idx1")
    for name in (stem, stem.removesuffix(".gz"), stem if stem.endswith(".gz") else stem + ".gz"):
        candidate = images.with_name(name)
        if candidate.is_file():
            return candidate
    return None


class IdxDataset(ImageDataset):
    """The images of one IDX pair; classes are the label values as text (``"0"``..``"9"``)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path).expanduser()
        if not path.exists():
            raise ZooError(f"IDX path '{path}' does not exist")
        if path.is_dir():
            pairs = _pairs(path)
            if not pairs:
                raise ZooError(f"no '*-images-idx3-ubyte[.gz]' file in '{path}'")
            if len(pairs) > 1:
                choices = ", ".join(p[0].name for p in pairs.values())
                raise ZooError(f"'{path}' holds {len(pairs)} IDX sets ({choices}): give the images file to use")
            images_file, labels_file = next(iter(pairs.values()))
        else:
            images_file, labels_file = path, _labels_for(path)
        self.images = read_idx(images_file, 3)
        if labels_file is None:
            raise ZooError(f"no labels file (*-labels-idx1-ubyte[.gz]) beside '{images_file}'")
        self.files = (images_file, labels_file)
        raw_labels = read_idx(labels_file, 1)
        if len(raw_labels) != len(self.images):
            raise ZooError(f"'{images_file.name}' holds {len(self.images)} images but '{labels_file.name}' {len(raw_labels)} labels")
        values = np.unique(raw_labels)
        self.classes = [str(int(v)) for v in values]
        self.labels = np.searchsorted(values, raw_labels).astype(np.int64)

    def load(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index], "L")

    def describe(self, index: int) -> str:
        return f"{self.files[0]}[{index}]"

    def fingerprint(self) -> str:
        h = hashlib.sha256(b"IdxDataset")
        for path in self.files:
            info = path.stat()
            h.update(f"{path.resolve()}\0{info.st_size}\0{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        return h.hexdigest()
