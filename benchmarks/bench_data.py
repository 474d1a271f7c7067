"""Data benchmark: make-digits speed, decode-cache reload, realism of the synthetic digits.

Prints:
  * the time ``make_digits`` takes for 10 x 1000 images (goal <= 10 s on 2 cores),
  * the first load (decode every PNG) and the cached reload (goal: well under a second),
  * the accuracy on scikit-learn's 1,797 real handwritten digits of a digitnet trained
    only on the synthetic set (default style "realistic"; goal >= 0.90), with PASS or FAIL.
    The 8x8 real digits (0..16) are upscaled MNIST-style: fitted into 20x20, white on black,
    centre of mass in the middle of 28x28. They are only evaluated on, never trained on.

Exits 1 when the accuracy misses its goal.

Usage: python benchmarks/bench_data.py [--per-class 1000] [--epochs 10] [--seed 0] [--style realistic] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

MAKE_DIGITS_GOAL_S = 10.0  # 10 x 1000 images on 2 cores
REAL_ACCURACY_GOAL = 0.90  # digitnet trained only on synthetic digits, tested on scikit-learn's


def real_digits_28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as uint8 (N, 1, 28, 28), MNIST-style, and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    out = np.zeros((len(bunch.images), 1, 28, 28), dtype=np.uint8)
    for i, image in enumerate(bunch.images):
        small = Image.fromarray(np.uint8(np.clip(image * 255.0 / 16.0, 0, 255)), "L")
        big = np.asarray(small.resize((20, 20), Image.Resampling.BICUBIC), dtype=np.float64)
        total = big.sum() or 1.0
        cy = (big.sum(axis=1) @ np.arange(20)) / total
        cx = (big.sum(axis=0) @ np.arange(20)) / total
        top, left = int(round(13.5 - cy)), int(round(13.5 - cx))
        top, left = min(max(top, 0), 8), min(max(left, 0), 8)
        out[i, 0, top : top + 20, left : left + 20] = np.uint8(big)
    return out, bunch.target.astype(np.int64)


def train_digitnet(images, labels, pre, *, epochs: int, seed: int = 0):
    """A plain loop: sgdm (momentum 0.9, one-cycle learning rate up to 0.05), batch 128, CPU."""
    import torch
    from torch import nn

    import zoo

    torch.manual_seed(seed)
    model = zoo.create_model("digitnet")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    steps = epochs * ((len(labels) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), 128):
            batch = order[start : start + 128]
            x = pre(images[batch])
            loss = loss_fn(model(x), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def accuracy(model, images, labels, pre) -> float:
    import torch

    with torch.no_grad():
        predicted = torch.cat([model(pre(images[i : i + 512])).argmax(1) for i in range(0, len(images), 512)])
    return float((predicted == labels).float().mean())


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: comparable on a busy machine."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", default="realistic", help="make-digits style (default: realistic)")
    parser.add_argument("--keep", help="write the digits here instead of a temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-data-"))
    os.environ["ZOO_CACHE"] = str(work / "cache")  # a cold cache, so the first load decodes
    out = Path(args.keep) if args.keep else work / "digits"

    from zoo.data.digits import make_digits

    cpu_before = _cpu_seconds()
    meta = make_digits(out, per_class=args.per_class, seed=args.seed, style=args.style, overwrite=True)
    total = 10 * args.per_class
    print(
        f"make-digits ({args.style}): {total} images in {meta['seconds']:.2f} s on {os.cpu_count()} cores "
        f"({_cpu_seconds() - cpu_before:.1f} CPU-s, {len(meta['fonts'])} fonts; load average {os.getloadavg()[0]:.1f}; "
        f"goal <= {MAKE_DIGITS_GOAL_S:.0f} s for 10000 on 2 cores)"
    )

    import torch  # the trainer has torch loaded; time the loads without its import

    import zoo
    from zoo.data import open_dataset, to_tensors
    from zoo.preprocess import Preprocess

    pre = Preprocess.from_card(zoo.model_info("digitnet"))
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        data = to_tensors(open_dataset(out, "digits"), pre)
        timings.append(time.perf_counter() - started)
    print(f"load {total} images: first (decode) {timings[0]:.2f} s, cached {timings[1]:.3f} s")

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    model = train_digitnet(data.images, data.labels, pre, epochs=args.epochs, seed=args.seed)
    print(f"trained digitnet on the synthetic set: {args.epochs} epochs in {time.perf_counter() - started:.1f} s")
    print(f"synthetic training accuracy: {accuracy(model, data.images, data.labels, pre):.4f}")
    real_images, real_labels = real_digits_28()
    score = accuracy(model, torch.from_numpy(real_images), torch.from_numpy(real_labels), pre)
    verdict = "PASS" if score >= REAL_ACCURACY_GOAL else "FAIL"
    print(
        f"accuracy on scikit-learn's {len(real_labels)} real handwritten digits: {score:.4f} "
        f"(goal >= {REAL_ACCURACY_GOAL:.2f}): {verdict}"
    )
    if verdict == "FAIL":
        sys.exit(1)


if __name__ == "__main__":
    main()
