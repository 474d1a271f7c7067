"""Training benchmarks: Lab 6 end to end, and the trainer's overhead against a plain PyTorch loop.

    .venv/bin/python benchmarks/bench_train.py [--data DIGITS] [--threads N]

1. Lab 6 as the lecture: digitnet, sgdm, 4 epochs, 75/25 split per label, validation every
   30 iterations, on 10 x 1000 synthetic digits (``zoo data make-digits --style lecture``;
   made here if --data is not given). Prints validation accuracy (goal >= 99.5 %) and the wall time of
   the whole training with validation (goal <= 5 s on 2 cores).
2. Overhead: images/s of ``zoo.train`` against a hand-written loop over the same in-memory
   uint8 tensors (same model, optimizer, batches and normalisation; no validation), measured
   in one run, alternating, best of ``--rounds``. Goal: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _digits(path: str | None) -> Path:
    if path:
        return Path(path)
    target = Path(tempfile.gettempdir()) / "zoo-bench-digits-lecture"
    if not (target / "digits.json").is_file():
        from zoo.data.digits import make_digits

        t = time.perf_counter()
        make_digits(target, per_class=1000, seed=0, style="lecture", overwrite=True)
        print(f"made 10 x 1000 digits in {target} ({time.perf_counter() - t:.1f} s)")
    return target


class LoopClock:
    """A zoo.train callback timing the loop itself: wall and CPU seconds from first to last event."""

    def on_train_begin(self, trainer):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.images = trainer.images_seen


def plain_loop(images, labels, *, epochs: int, batch_size: int, channels_last: bool, seed: int = 0) -> tuple[float, float]:
    """The loop a person writes by hand: returns (images per wall second, images per CPU second)."""
    import torch
    import torch.nn.functional as F

    from zoo.models import create_model

    torch.manual_seed(seed)
    model = create_model("digitnet", num_classes=10).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    n = len(labels)
    seen = 0
    start, cpu = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        order = torch.randperm(n)
        for b in range(n // batch_size):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = (images[idx].float() / 255.0 - 0.5) / 0.5
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
    return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="digit folder (default: made in the temp dir)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per overhead measurement")
    args = parser.parse_args()

    import torch

    import zoo
    from zoo.data import open_dataset, to_tensors
    from zoo.models import create_model  # noqa: F401  (import cost outside the timings)
    from zoo.registry import model_info
    from zoo.preprocess import Preprocess

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    digits = _digits(args.data)
    out = Path(tempfile.mkdtemp(prefix="zoo-bench-train-"))

    # -- 1. Lab 6 ------------------------------------------------------------------------------
    zoo.train("digitnet", digits, out=out / "warm", epochs=1, split=0.75, progress=False)  # decode cache, warm-up
    lab6_clock = LoopClock()
    lab6 = zoo.train("digitnet", digits, out=out / "lab6", solver="sgdm", epochs=4, split=0.75, val_every=30,
                     progress=False, callbacks=[lab6_clock])
    m = lab6.metrics
    print("\nLab 6: digitnet, sgdm, 4 epochs, 75/25 split, validation every 30 iterations")
    print(f"  validation accuracy {100 * m['val_acc']:.2f} %   (goal >= 99.5 %)")
    print(f"  training with validation {m['seconds']:.2f} s   (goal <= 5 s on 2 cores; "
          f"{m['iterations']} iterations, {m['train_images']} + {m['val_images']} images)")
    print(f"  CPU time of that loop {lab6_clock.cpu:.2f} s (wall time on a busy machine overstates it)")
    print(f"  decoding (cached) {m['prepare_seconds']:.2f} s; training-only throughput {m['images_per_s']:,.0f} images/s")

    # -- 2. overhead ---------------------------------------------------------------------------
    tensors = to_tensors(open_dataset(digits), Preprocess.from_card(model_info("digitnet")))
    images, labels = tensors.images, tensors.labels
    # Best of several alternating rounds; CPU seconds too, which a busy machine disturbs less than wall time.
    names = ("plain (NCHW)", "plain (channels-last)", "zoo.train")
    best = {name: [0.0, 0.0] for name in names}
    for _ in range(args.rounds):
        for name in names:
            if name == "zoo.train":
                clock = LoopClock()
                zoo.train("digitnet", digits, out=out / "overhead", epochs=args.epochs, split=1.0, progress=False,
                          callbacks=[clock])
                rates = (clock.images / clock.wall, clock.images / clock.cpu)
            else:
                rates = plain_loop(images, labels, epochs=args.epochs, batch_size=128, channels_last="channels" in name)
            best[name] = [max(b, r) for b, r in zip(best[name], rates)]
    print(f"\nTrainer overhead: {len(labels)} in-memory images, batch 128, {args.epochs} epoch(s) per run, "
          f"best of {args.rounds} alternating rounds")
    print(f"  {'':<22} {'images/s (wall)':>16} {'images/CPU-s':>14}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<22} {wall:>16,.0f} {cpu:>14,.0f}")
    for i, unit in enumerate(("wall", "CPU")):
        fastest = max(best["plain (NCHW)"][i], best["plain (channels-last)"][i])
        print(f"  ratio zoo.train / fastest plain loop ({unit} time) = {best['zoo.train'][i] / fastest:.2f}   (goal >= 0.9)")
    print(f"  ratio zoo.train / plain NCHW loop (wall time)     = {best['zoo.train'][0] / best['plain (NCHW)'][0]:.2f}")
    print(f"\noutputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
