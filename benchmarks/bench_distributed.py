"""Distributed benchmark: training images/s of ``zoo train --nproc N`` against one process.

Each configuration runs the real command (``zoo train digitnet ... --json``) on the same
synthetic digit folder, with the same global batch, and reads the trainer's own throughput
(images per second of training, set-up and validation excluded); the wall time of the whole
command (launch, imports, data decoding, rendezvous, saving) is printed beside it.

On the CPU every worker gets cores/N threads; on a 2-core machine two workers cannot beat one
process with two threads (DDP adds an all-reduce per step), so expect no speed-up there.
With CUDA GPUs the script also runs one process on one GPU and N processes on N GPUs (NCCL).

Usage: python benchmarks/bench_distributed.py [--per-class 300] [--epochs 3] [--batch-size 128]
       [--nproc 1,2] [--device cpu|cuda|both] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZOO = [sys.executable, "-m", "zoo"]


def run(data: Path, out: Path, *, nproc: int, device: str, threads: int | None, args: argparse.Namespace) -> dict:
    """The best of ``--repeat`` runs (the least disturbed by other load on the machine), with the spread."""
    runs = [run_once(data, out, nproc=nproc, device=device, threads=threads, args=args) for _ in range(args.repeat)]
    best = max(runs, key=lambda r: r["images_per_s"])
    best["spread"] = f"{min(r['images_per_s'] for r in runs):,.0f}-{best['images_per_s']:,.0f}"
    return best


def run_once(data: Path, out: Path, *, nproc: int, device: str, threads: int | None, args: argparse.Namespace) -> dict:
    command = [*ZOO, "train", "digitnet", "--data", str(data), "--out", str(out), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--split", "1", "--device", device, "--json"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr}")
    metrics = json.loads(proc.stdout[proc.stdout.index("{"):])["metrics"]
    return {"nproc": nproc, "device": device, "threads": threads, "images_per_s": metrics["images_per_s"],
            "train_s": metrics["seconds"], "wall_s": round(wall, 1), "train_acc": metrics["train_acc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the best is shown")
    parser.add_argument("--nproc", default="1,2", help="comma-separated CPU worker counts")
    parser.add_argument("--device", choices=("cpu", "cuda", "both"), default="both")
    parser.add_argument("--keep", type=Path, default=None, help="keep the digit folder here (reused if present)")
    args = parser.parse_args()

    import torch

    from zoo.data.digits import make_digits

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-dist-"))
    data = args.keep or work / "digits"
    if not data.exists():
        make_digits(data, per_class=args.per_class, seed=0)
    cores = os.cpu_count() or 1
    print(f"digitnet, {10 * args.per_class} images 28x28, {args.epochs} epochs, global batch {args.batch_size}; "
          f"{cores} CPU cores, torch {torch.__version__}")
    rows = []
    try:
        if args.device in ("cpu", "both"):
            for nproc in [int(n) for n in args.nproc.split(",")]:
                rows.append(run(data, work / f"cpu{nproc}", nproc=nproc, device="cpu",
                                threads=max(1, cores // nproc), args=args))
                if nproc == 1 and cores > 1:  # the per-worker arithmetic, for reference
                    rows.append(run(data, work / "cpu1t1", nproc=1, device="cpu", threads=1, args=args))
        gpus = torch.cuda.device_count()
        if args.device in ("cuda", "both") and gpus:
            rows.append(run(data, work / "gpu1", nproc=1, device="cuda", threads=None, args=args))
            if gpus > 1:
                rows.append(run(data, work / f"gpu{gpus}", nproc=gpus, device="cuda", threads=None, args=args))
        elif args.device == "cuda":
            print("no CUDA GPU: GPU rows skipped")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base: dict[str, float] = {}
    for r in rows:  # the first one-process row per device: all its cores / one GPU
        if r["nproc"] == 1:
            base.setdefault(r["device"], r["images_per_s"])
    print(f"{'device':>6} {'procs':>5} {'threads/proc':>12} {'images/s':>10} {'vs 1 proc':>9} {'train s':>8} "
          f"{'wall s':>7} {'train acc':>9}  {'images/s over the runs'}")
    for r in rows:
        speedup = r["images_per_s"] / base[r["device"]] if base.get(r["device"]) else float("nan")
        print(f"{r['device']:>6} {r['nproc']:>5} {r['threads'] or '-':>12} {r['images_per_s']:>10,.0f} "
              f"{speedup:>8.2f}x {r['train_s']:>8.2f} {r['wall_s']:>7.1f} {r['train_acc']:>9.3f}  {r['spread']}")


if __name__ == "__main__":
    main()
