"""Data pipeline alone: decode + random-resized crop + flip + collate, 640x480 JPEGs -> 224x224.

Prints, for each pipeline, images/s and CPU milliseconds per image (the process and its
DataLoader workers; steadier than images/s on a shared machine), taking turns pass by pass
(a first round excluded as warm-up), with the same workers and batch size:
  (a)  zoo's ``StreamSource`` with ``crop`` (torchvision's 0.08..1) and ``flip`` in the workers, uint8;
  (a') the same with the flip batch-level in the main process (``zoo.data.augment.augment``,
       what ``--augment flip`` does to a decoded set). On CPU its extra cost is not the flip
       (0.03 ms/image) but the main process's torch threads spin-waiting (libgomp) between
       batches on the cores the workers need: ``OMP_WAIT_POLICY=PASSIVE`` brings it to (a)'s;
  (b)  the hand-written loader of torchvision's reference training script: ``ImageFolder`` +
       ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip()`` + ``ToTensor()`` + ``Normalize``;
  (c)  the same with ``PILToTensor()`` (uint8 out, as zoo's: the fairest comparison);
and the ratios a/b (the goal: >= 1.5) and a/c. Then the single-process decode figures that
chose Pillow's ``draft`` over simplejpeg and PyTurboJPEG (measured when installed; PyTurboJPEG
also needs libturbojpeg), on the 640x480 files and on 2048x1536 copies of a few.

The images are scikit-image's bundled photos, cropped, flipped, tinted and resized to 640x480,
saved as JPEG (quality 90) in two class folders (``--source 2048x1536`` for camera-sized ones, where
the reduced decode matters most). The machine is shared: run it under low load
(``uptime``) and repeat; images/s vary by 10-30 % between runs, CPU ms per image much less.

Usage: python benchmarks/bench_data_pipeline.py [--images 400] [--workers 2] [--batch 64]
       [--passes 3] [--source 640x480] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 224
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def photos() -> list[np.ndarray]:
    """scikit-image's bundled photos as RGB uint8 (grey ones repeated over three channels)."""
    from skimage import data

    colour = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field(),
              data.immunohistochemistry(), data.retina(), data.colorwheel()]
    grey = [data.camera(), data.brick(), data.grass(), data.gravel(), data.moon(), data.coins(), data.clock(),
            data.cell()]
    return colour + [np.repeat(g[:, :, None], 3, axis=2) for g in grey]


def make_folder(root: Path, count: int, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    """``count`` JPEGs of ``size`` in ``root/a`` and ``root/b``, each a different crop of a photo; reused when there."""
    files = sorted(root.glob("*/*.jpg"))
    if len(files) >= count and Image.open(files[0]).size == size:
        return root
    rng = np.random.default_rng(seed)
    sources = photos()
    for k in range(count):
        image = Image.fromarray(sources[k % len(sources)])
        w, h = image.size
        side = rng.uniform(0.5, 1.0)  # a 4:3 window of 50..100 % of the largest that fits
        cw = min(w, h * 4 / 3) * side
        ch = cw * 3 / 4
        left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        image = image.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tint = rng.uniform(0.8, 1.2, size=3)
        image = Image.fromarray(np.clip(np.asarray(image) * tint, 0, 255).astype(np.uint8))
        folder = root / ("a" if k % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{k:05d}.jpg", quality=90)
    return root


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers of past passes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rates(pipelines: dict[str, Callable[[], int]], passes: int) -> dict[str, tuple[float, float]]:
    """(images/s, CPU ms per image) of each pipeline over ``passes`` rounds after a warm-up round.

    ``run()`` makes one pass and returns its image count. The pipelines take turns within each
    round, so a change in the machine's load falls on all of them.
    """
    for run in pipelines.values():
        run()
    images = dict.fromkeys(pipelines, 0)
    seconds = dict.fromkeys(pipelines, 0.0)
    cpu = dict.fromkeys(pipelines, 0.0)
    for _ in range(passes):
        for name, run in pipelines.items():
            start, cpu_start = time.perf_counter(), cpu_seconds()
            images[name] += run()
            seconds[name] += time.perf_counter() - start
            cpu[name] += cpu_seconds() - cpu_start
    return {name: (images[name] / seconds[name], 1e3 * cpu[name] / images[name]) for name in pipelines}


def zoo_pass(root: Path, workers: int, batch: int, *, batch_flip: bool) -> Callable[[], int]:
    """One epoch of zoo's stream per call (new crops, new order); flipped in the workers or batch-level."""
    import torch

    from zoo.data import open_dataset
    from zoo.data.augment import AugmentSpec, augment
    from zoo.data.stream import StreamSource
    from zoo.preprocess import Preprocess

    pre = Preprocess(input_size=(SIZE, SIZE), channels=3, mean=MEAN, std=STD, interpolation="bilinear")
    source = StreamSource(open_dataset(str(root)), pre, crop=(0.08, 1.0), flip=not batch_flip, workers=workers)
    flip = AugmentSpec(x_reflection=True)
    epoch = [0]

    def one_pass() -> int:
        order = torch.randperm(len(source), generator=torch.Generator().manual_seed(epoch[0]))
        count = 0
        for b, (images, labels) in enumerate(source.batches(order.split(batch), epoch=epoch[0])):
            if batch_flip:  # as the trainer flips a decoded set: one generator per iteration
                images = augment(images, flip, torch.Generator().manual_seed(epoch[0] * 100_003 + b))
            count += len(labels)
        epoch[0] += 1
        return count

    return one_pass


def torchvision_pass(root: Path, workers: int, batch: int, *, uint8: bool) -> Callable[[], int]:
    """One epoch of torchvision's reference training loader (float and normalised, or uint8)."""
    import torch
    from torchvision import datasets, transforms

    to_tensor = [transforms.PILToTensor()] if uint8 else [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    transform = transforms.Compose([transforms.RandomResizedCrop(SIZE), transforms.RandomHorizontalFlip(), *to_tensor])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root), transform), batch_size=batch, shuffle=True,
                                         num_workers=workers)

    def one_pass() -> int:
        return sum(len(labels) for _, labels in loader)

    return one_pass


# -- decoders --------------------------------------------------------------------------------------------


def cpu_ms(decode: Callable[[int], Any], count: int, rounds: int) -> float:
    """CPU ms per call of ``decode(k)`` for k < count: the least of ``rounds`` rounds (after one warm-up)."""
    best = math.inf
    for round_ in range(rounds + 1):
        start = time.process_time()
        for k in range(count):
            decode(k)
        if round_:
            best = min(best, (time.process_time() - start) * 1e3 / count)
    return best


def crop_decoders(files: list[Path], rounds: int) -> list[tuple[str, float]]:
    """CPU ms of one crop sample (decode + the box resized to 224) by each decoder, the same boxes."""
    from zoo.data.stream import open_for_crop, random_resized_crop_box

    blobs = [path.read_bytes() for path in files]
    size = Image.open(files[0]).size
    boxes = [random_resized_crop_box(size, (0.08, 1.0), np.random.default_rng(k)) for k in range(len(files))]
    resample = Image.Resampling.BILINEAR

    def whole(k: int) -> Image.Image:
        with Image.open(io.BytesIO(blobs[k])) as image:
            image.load()
            return image.resize((SIZE, SIZE), resample, box=boxes[k])

    def drafted(k: int) -> Image.Image:  # StreamSource's way: draft 1/2, 1/4 or 1/8
        image, box = open_for_crop(files[k], lambda _: boxes[k], (SIZE, SIZE))
        return image.resize((SIZE, SIZE), resample, box=box)

    rows = [("Pillow, whole decode", cpu_ms(whole, len(files), rounds)),
            ("Pillow draft (zoo: 1/2, 1/4, 1/8)", cpu_ms(drafted, len(files), rounds))]
    for name, scaled in _turbo_decoders(size).items():
        if isinstance(scaled, str):
            rows.append((f"{name}: {scaled}", math.nan))
            continue

        def finest(k: int, scaled: Callable = scaled) -> Image.Image:  # the finest M/8 keeping the box >= 224
            box = boxes[k]
            m = min((m for m in range(1, 9) if min(box[2] - box[0], box[3] - box[1]) * m / 8 >= SIZE), default=8)
            image = Image.fromarray(scaled(blobs[k], m))
            return image.resize((SIZE, SIZE), resample, box=tuple(v * m / 8 for v in box))

        rows.append((f"{name} M/8", cpu_ms(finest, len(files), rounds)))
    return rows


def _turbo_decoders(size: tuple[int, int]) -> dict[str, Any]:
    """``decode(blob, m)`` at scale m/8 of JPEGs of ``size``, by simplejpeg and by PyTurboJPEG (or why not)."""
    found: dict[str, Any] = {}
    try:
        import simplejpeg

        # simplejpeg picks the largest reduction that keeps at least the size asked: ask for m/8 exactly
        found["simplejpeg"] = lambda blob, m: simplejpeg.decode_jpeg(
            blob, min_width=math.ceil(size[0] * m / 8), min_height=math.ceil(size[1] * m / 8))
    except ImportError:
        found["simplejpeg"] = "not installed"
    try:
        import turbojpeg

        jpeg = turbojpeg.TurboJPEG()

        def turbo(blob: bytes, m: int) -> np.ndarray:
            scale = Fraction(m, 8)  # PyTurboJPEG takes the factor in lowest terms
            factor = (scale.numerator, scale.denominator)
            return jpeg.decode(blob, pixel_format=turbojpeg.TJPF_RGB, scaling_factor=factor)

        found["PyTurboJPEG"] = turbo
    except Exception as exc:  # noqa: BLE001 - not installed, or no libturbojpeg on the machine
        found["PyTurboJPEG"] = f"unavailable ({str(exc).splitlines()[0][:60]})"
    return found


def enlarged(files: list[Path], folder: Path) -> list[Path]:
    """2048x1536 JPEG copies of ``files`` (what a camera's photo reduces to well), made once."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in files:
        big = folder / path.name
        if not big.exists():
            Image.open(path).resize((2048, 1536), Image.Resampling.BICUBIC).save(big, quality=90)
        out.append(big)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--passes", type=int, default=3, help="timed passes, after one warm-up pass")
    parser.add_argument("--decode-rounds", type=int, default=3)
    parser.add_argument("--source", default="640x480", help="the JPEGs' size, WIDTHxHEIGHT")
    parser.add_argument("--keep", type=Path, help="make (or reuse) the JPEG folder here")
    args = parser.parse_args()
    source = tuple(int(v) for v in args.source.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        root = make_folder(args.keep or Path(tmp) / "jpegs", args.images, source)  # type: ignore[arg-type]
        files = sorted(root.glob("*/*.jpg"))
        print(f"{len(files)} JPEGs {args.source} in {root}; {args.workers} workers, batch {args.batch}, "
              f"{args.passes} passes after a warm-up; load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        found = rates({
            "(a)  zoo StreamSource, crop + flip in the workers (uint8)": zoo_pass(root, args.workers, args.batch,
                                                                                 batch_flip=False),
            "(a') zoo StreamSource, crop; flip batch-level (uint8)": zoo_pass(root, args.workers, args.batch,
                                                                              batch_flip=True),
            "(b)  torchvision RRC + flip + ToTensor + Normalize": torchvision_pass(root, args.workers, args.batch,
                                                                                   uint8=False),
            "(c)  torchvision RRC + flip + PILToTensor (uint8)": torchvision_pass(root, args.workers, args.batch,
                                                                                  uint8=True),
        }, args.passes)
        for name, (per_second, cpu) in found.items():
            print(f"{name:58s} {per_second:7.0f} images/s {cpu:6.2f} CPU ms/image")
        (zoo, zoo_cpu), _, (plain, plain_cpu), (uint8, uint8_cpu) = found.values()
        print(f"a/b = {zoo / plain:.2f}x images/s, {plain_cpu / zoo_cpu:.2f}x CPU (goal >= 1.5x); "
              f"a/c = {zoo / uint8:.2f}x images/s, {uint8_cpu / zoo_cpu:.2f}x CPU")
        large = enlarged(files[:24], root.with_name(root.name + "-2048"))
        for label, sample in ((args.source, files[:64]), ("2048x1536", large)):
            print(f"one crop sample -> 224, CPU ms, {label} JPEGs, one process:")
            for name, ms in crop_decoders(sample, args.decode_rounds):
                print(f"  {name:44s} {ms:6.2f}")
        print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
