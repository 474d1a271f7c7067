"""``zoo data``: make the synthetic digits and the Lab 5 faces, write tar shards, show and check a dataset."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np

from zoo.cli.output import print_json, print_table, warn
from zoo.cli.types import COUNT, MAX_SEED, SEED, NonEmptyPath, Text, whole
from zoo.data import open_dataset
from zoo.data.digits import make_digits
from zoo.data.montage import save_montage

__all__ = ["data_group"]

MAX_MONTAGE = 1000  # samples in one montage PNG
MAX_WORKERS = 256


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """zoo's warnings as one ``warning: ...`` line each on stderr, not Python's two-line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for item in caught:
                warn(str(item.message))


@click.group("data")
def data_group() -> None:
    """Make, inspect and check datasets."""


@data_group.command("make-digits")
@click.argument("out", type=NonEmptyPath(file_okay=False, path_type=Path))
@click.option("--per-class", type=COUNT, default=1000, show_default=True, help="Images per digit.")
@click.option("--size", type=whole(8, 512), default=28, show_default=True,  # make_digits' own range
              help="Image side in pixels, 8 to 512.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help=f"0 to {MAX_SEED}; the same seed and fonts give the same files.")
@click.option("--fonts", multiple=True, metavar="DIR|FILE", type=NonEmptyPath(exists=True),
              help="Font files or folders (repeatable); default: handwriting fonts.")
@click.option("--style", type=click.Choice(["realistic", "lecture"]), default="realistic", show_default=True,
              help="realistic: varied, blurred, noisy handwriting (generalises to real digits); "
                   "lecture: clean like MATLAB's DigitDataset.")
@click.option("--workers", type=whole(1, MAX_WORKERS), default=None,
              help=f"Processes, 1 to {MAX_WORKERS} (default: all cores, at most 16).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier make-digits folder.")
def make_digits_command(
    out: Path, per_class: int, size: int, seed: int, fonts: tuple[str, ...], style: str, workers: int | None,
    overwrite: bool,
) -> None:
    """Render 10 x N grayscale digits into OUT/0..9/ (the lecture's DigitDataset)."""
    meta = make_digits(
        out, per_class=per_class, size=size, seed=seed, fonts=fonts or None, style=style, workers=workers,
        overwrite=overwrite, warn=warn,
    )
    click.echo(
        f"wrote {10 * per_class} digits (10 x {per_class}, {size}x{size}) to {out} in {meta['seconds']:.1f} s "
        f"from {len(meta['fonts'])} font{'s' if len(meta['fonts']) != 1 else ''}, seed {seed}"
    )


@data_group.command("make-faces")
@click.argument("out", type=NonEmptyPath(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT.")
def make_faces_command(out: Path, overwrite: bool) -> None:
    """Write Lab 5's Images/ folder: 100 faces and 100 other photos (scikit-image's lfw_subset).

    \b
    zoo data make-faces Images
    zoo finetune mobilenet_v2 --data Images --classes 2 --split 0.8 --lr 0.001 --batch-size 64
    """
    from zoo.data.faces import FACE_CLASSES, make_faces

    make_faces(out, overwrite=overwrite)
    click.echo(f"wrote 200 photos (100 {FACE_CLASSES[0]}, 100 {FACE_CLASSES[1]}, 25x25 gray) to {out}")


@data_group.command("shard")
@click.argument("folder", metavar="DIR", type=NonEmptyPath(path_type=Path))
@click.argument("out", type=NonEmptyPath(file_okay=False, path_type=Path))
@click.option("--shard-size", type=COUNT, required=True, help="Samples per shard; shards of 100 MB to 1 GB read best.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier shard folder.")
def shard_command(folder: Path, out: Path, shard_size: int, overwrite: bool) -> None:
    """Write the images of DIR/LABEL/ as WebDataset tar shards OUT/shard-NNNNNN.tar and OUT/shards.json.

    Each sample is the image file's own bytes (KEY.jpg, KEY.png, ...) and its label index (KEY.cls);
    the classes are those the folder adapter gives. Samples are shuffled (seed 0) before they are
    dealt into shards, so that every shard holds a mix of classes. For training on N processes
    (--nproc/--nnodes) write at least N shards: each process reads whole shards.

    \b
    zoo data shard Images/ shards/ --shard-size 1000
    zoo train resnet18 --data shards/ --nproc 4
    zoo train resnet18 --data 'https://host/shards/shard-{000000..000127}.tar' --nproc 4
    """
    from zoo.data.shard_writer import MANIFEST, write_shards

    with _warnings_as_lines():
        dataset = open_dataset(folder, "folder")
    write_shards(dataset, out, shard_size, overwrite=overwrite, warn=warn)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    shards, samples = len(manifest["shards"]), manifest["samples"]
    click.echo(f"wrote {samples} samples of {len(manifest['classes'])} classes into {shards} shard"
               f"{'s' if shards != 1 else ''} of up to {shard_size} in {out} (and {out / MANIFEST})")


@data_group.command("show")
@click.argument("path", type=NonEmptyPath())  # text, not a Path: a URL's '//' must survive
@click.option("--adapter", default="auto", show_default=True, type=Text("an adapter name"),
              help="Dataset adapter (folder, digits, idx, webdataset, a plugin's).")
@click.option("--out", "out", type=NonEmptyPath(dir_okay=False, path_type=Path), default=Path("montage.png"),
              show_default=True)
@click.option("--count", type=whole(1, MAX_MONTAGE), default=20, show_default=True,
              help=f"Random samples in the montage, 1 to {MAX_MONTAGE}.")
@click.option("--seed", type=SEED, default=0, show_default=True, help=f"0 to {MAX_SEED}.")
@click.option("--json", "as_json", is_flag=True, help="Counts as JSON.")
def show_command(path: str, adapter: str, out: Path, count: int, seed: int, as_json: bool) -> None:
    """Counts per label and a montage PNG of random samples with their labels."""
    with _warnings_as_lines():
        dataset = open_dataset(path, adapter)
    counts = dataset.counts()
    rng = np.random.default_rng(seed)
    images, captions, unreadable = [], [], []
    for index in rng.permutation(len(dataset)):
        if len(images) == count:
            break
        try:
            images.append(dataset.load(int(index)))
        except Exception as exc:  # noqa: BLE001 - a corrupt sample is reported, not fatal
            _reraise_if_not_the_sample(exc)
            unreadable.append(f"{dataset.describe(int(index))} ({_why(exc)})")
            continue
        captions.append(dataset.classes[int(dataset.labels[index])])
    if unreadable:
        warn(f"skipped {len(unreadable)} unreadable image(s) for the montage: {'; '.join(unreadable)}")
    save_montage(out, images, captions, columns=5 if count <= 20 else 10)
    if as_json:
        print_json({"path": str(path), "classes": len(counts), "images": len(dataset), "counts": counts, "montage": str(out)})
        return
    print_table(None, ["label", "images"], list(counts.items()) + [("total", len(dataset))], justify=["left", "right"])
    click.echo(f"montage of {len(images)} random samples: {out}")


@data_group.command("check")
@click.argument("path", type=NonEmptyPath())
@click.option("--adapter", default="auto", show_default=True, type=Text("an adapter name"))
def check_command(path: str, adapter: str) -> None:
    """Decode every image; report modes, sizes and unreadable files (exit 1 if any)."""
    with _warnings_as_lines():
        dataset = open_dataset(path, adapter)
    modes: Counter[str] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    bad: list[str] = []
    for i in range(len(dataset)):
        try:
            image = dataset.load(i)
        except Exception as exc:  # noqa: BLE001
            _reraise_if_not_the_sample(exc)
            bad.append(f"{dataset.describe(i)} ({_why(exc)})")
            continue
        modes[image.mode] += 1
        sizes[image.size] += 1
    rows = [("images", len(dataset)), ("classes", len(dataset.classes)), ("readable", len(dataset) - len(bad))]
    rows.append(("modes", ", ".join(f"{m} {n}" for m, n in modes.most_common())))
    common = ", ".join(f"{w}x{h} {n}" for (w, h), n in sizes.most_common(3))
    rows.append(("sizes", f"{len(sizes)} distinct: {common}" + (", ..." if len(sizes) > 3 else "")))
    print_table(None, ["", str(path)], rows)
    if bad:
        warn(f"{len(bad)} unreadable image(s): {'; '.join(bad)}")
        sys.exit(1)


def _reraise_if_not_the_sample(exc: Exception) -> None:
    """A ``ZooError`` other than a too-large image is about the whole data set (shards at URLs
    cannot be read one by one): it ends the command, as one line."""
    from zoo.errors import ZooError
    from zoo.preprocess import ImageTooLarge

    if isinstance(exc, ZooError) and not isinstance(exc, ImageTooLarge):
        raise exc


def _why(exc: Exception) -> str:
    """Why a sample could not be read, without its path (the line names it already)."""
    from zoo.preprocess import ImageTooLarge

    return f"too large: {exc.reason}" if isinstance(exc, ImageTooLarge) else str(exc) or type(exc).__name__
