"""Helpers shared by the export/runtime/bench tests (no tests here).

Real data: scikit-learn's 1,797 bundled handwritten digits (8x8), written as 28x28 PNGs in
``DIR/<digit>/``; a real digitnet trained on them for a few hundred steps (about 95 %).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digit_folder(root: Path, per_class: int | None = None, part: str | None = None, test_every: int = 4) -> Path:
    """scikit-learn's handwritten digits as PNG files in ``root/<digit>/``, 28 x 28 white on black.

    ``part``: ``"test"`` (every ``test_every``-th image of each digit) or ``"train"`` (the others), else all.
    """
    from sklearn.datasets import load_digits

    done = root / ".done"
    if done.exists():
        return root
    digits = load_digits()
    counts: dict[int, int] = {}
    for image, label in zip(digits.images, digits.target):
        label = int(label)
        if per_class is not None and counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        if part is not None and (counts[label] % test_every == 0) != (part == "test"):
            continue
        pixels = np.clip(image / 16.0 * 255.0, 0, 255).astype(np.uint8)
        big = Image.fromarray(pixels).resize((20, 20), Image.Resampling.BILINEAR)
        canvas = Image.new("L", (28, 28))
        canvas.paste(big, (4, 4))
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        canvas.save(folder / f"{label}_{counts[label]:04d}.png")
    done.touch()
    return root


def trained_digitnet(folder: Path, out: Path, *, epochs: int = 3, seed: int = 0) -> Path:
    """Train the real digitnet on ``folder`` (every image) and save a checkpoint at ``out``."""
    if out.exists():
        return out
    import torch

    import zoo
    from zoo.checkpoint import save
    from zoo.preprocess import Preprocess, normalize, open_image

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is as fast, and immune to a busy machine
    card = zoo.model_info("digitnet")
    pre = Preprocess.from_card(card)
    files = sorted(folder.glob("*/*.png"))
    x = np.stack([pre.pixels(open_image(f)) for f in files]).transpose(0, 3, 1, 2)
    y = torch.tensor([int(f.parent.name) for f in files])
    x = normalize(torch.from_numpy(np.ascontiguousarray(x)), pre)
    model = zoo.create_model("digitnet").train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    torch.set_num_threads(threads)
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    save(out, model, card.replace(training={"data": str(folder), "train_accuracy": round(accuracy, 4)}))
    return out
