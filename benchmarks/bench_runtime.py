"""Runtime speed: torch eager vs torch.compile vs onnxruntime, batch 1 and 32; int8 vs fp32 digitnet.

Models: digitnet, alexnet, timm/resnet18, timm/mobilenetv3_small_100 (random weights:
speed does not depend on them). Every figure is measured on this machine by zoo.bench
(median of timed calls after warm-up; torch.compile's compile time excluded). Then a
digitnet trained on scikit-learn's real handwritten digits (3/4 of each digit) is exported
fp32 and static int8 (calibrated on 64 training images) and both are measured on the
held-out quarter: size, speed, accuracy.

    .venv/bin/python benchmarks/bench_runtime.py [--models digitnet,alexnet] [--no-compile] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digitnet", "alexnet", "timm/resnet18", "timm/mobilenetv3_small_100")


def speed_table(models: list[str], runtimes: tuple[str, ...], seconds: float, threads: int | None,
                device: str, providers: str) -> None:
    from zoo.bench import bench

    print(f"{'model':28s} {'batch':>5s} {'torch img/s':>12s} {'compile img/s':>14s} {'ort img/s':>11s} "
          f"{'ort/torch':>9s} {'ort/compile':>11s}  provider")
    for model in models:
        results = bench(model, batches=(1, 32), runtimes=runtimes, seconds=seconds, iters=500, threads=threads,
                        device=device, providers=providers)
        by = {(r.runtime, r.batch): r for r in results}
        for batch in (1, 32):
            eager, ort = by[("torch", batch)], by[("onnxruntime", batch)]
            compiled = by.get(("torch-compile", batch))
            print(f"{model:28s} {batch:5d} {eager.images_per_s:12,.1f} "
                  f"{(f'{compiled.images_per_s:,.1f}' if compiled else '-'):>14s} {ort.images_per_s:11,.1f} "
                  f"{ort.images_per_s / eager.images_per_s:8.2f}x "
                  f"{(f'{ort.images_per_s / compiled.images_per_s:.2f}x' if compiled else '-'):>11s}  {ort.provider}",
                  flush=True)


def int8_digitnet(workdir: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_export_support import digit_folder, trained_digitnet

    from zoo.export import export
    from zoo.export.quantize import calibration_set, compare_models

    train = digit_folder(workdir / "train", part="train")
    test = digit_folder(workdir / "test", part="test")
    checkpoint = trained_digitnet(train, workdir / "digitnet.safetensors", epochs=4)
    fp32 = export(checkpoint, workdir / "fp32.onnx").path
    int8 = export(checkpoint, workdir / "int8.onnx", quantize="int8", calibration=train).path
    card = __import__("zoo.resolver", fromlist=["x"]).read_onnx_card(fp32)
    _, pixels, labels, _ = calibration_set(card, test, calibration_size=0, eval_size=10_000)
    figures = compare_models(fp32, int8, card, pixels, labels, repeats=300)
    print(f"\nint8 digitnet (static QDQ, calibrated on 64 training images), {len(labels)} held-out real digits:")
    for key, value in figures.items():
        print(f"  {key:24s} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell, at most")
    parser.add_argument("--threads", type=int, help="threads for both torch and onnxruntime")
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--device", default="cpu", help="torch device (cpu: the like-for-like CPU comparison)")
    parser.add_argument("--providers", default="cpu", help="onnxruntime providers (cpu, cuda, auto)")
    args = parser.parse_args()

    import onnxruntime
    import torch

    threads = args.threads or f"default: torch {torch.get_num_threads()}, onnxruntime 1 per core"
    print(f"torch {torch.__version__}, threads {threads}, onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    runtimes = ("torch", "onnxruntime") if args.no_compile else ("torch", "torch-compile", "onnxruntime")
    speed_table(args.models.split(","), runtimes, args.seconds, args.threads, args.device, args.providers)
    if not args.skip_int8:
        with tempfile.TemporaryDirectory() as tmp:
            int8_digitnet(Path(tmp))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
