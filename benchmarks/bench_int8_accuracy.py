"""int8 on trained networks: accuracy on >= 500 real labelled images, and speed, for each int8 format.

Data: scikit-learn's 1,797 real handwritten digits (28 x 28 PNGs, no download). Two of every
three images of each digit train; the third (596 images) is held out. Each model is trained
from random weights with ``zoo train`` (AlexNet, ResNet-18 and EfficientNet-B0 at their 224 x 224
input; ViT-tiny's transformer at 32 x 32, ``benchmarks/vit_digits.py``), then exported with
``zoo export --quantize auto --calibration HELD_OUT --max-accuracy-drop 1``: 64 held-out images
calibrate, 500 others measure fp32 and both int8 formats (static QDQ, dynamic) - accuracy, top-1
agreement with fp32, images/s at batch 1 and 32 on this CPU - and the fastest format within the
budget is written (or the export refuses).

    .venv/bin/python benchmarks/bench_int8_accuracy.py [--models timm/resnet18] [--epochs N] [--work DIR]

Training dominates (minutes per model on 2 cores); ``--work DIR`` keeps the runs, so a second
call only exports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = [sys.executable, "-m", "zoo"]
# Recipes that train from random weights on 1,201 digits within minutes on a CPU (sgdm at 0.01 left
# AlexNet at 25-40 %, a ViT at 5e-4 stayed at chance).
RECIPES = {
    "alexnet": ["--solver", "adam", "--lr", "0.0001", "--epochs", "3"],
    "timm/resnet18": ["--solver", "adam", "--lr", "0.001", "--epochs", "5"],
    "timm/efficientnet_b0": ["--solver", "adam", "--lr", "0.001", "--epochs", "3"],
    # the 224 x 224 ViT stays at chance here (adam at 1e-4 and 5e-4, 3-6 epochs): its blocks at 32 x 32 learn
    "benchmarks/vit_digits.py:make_net": ["--solver", "adam", "--lr", "0.0005", "--epochs", "15"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(RECIPES))
    parser.add_argument("--epochs", type=int, help="instead of each recipe's")
    parser.add_argument("--max-accuracy-drop", default="1")
    parser.add_argument("--work", type=Path, help="folder for data and runs (kept; default: a temporary one)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from test_export_support import digit_folder

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        train = digit_folder(work / "digits-train", part="train", test_every=3)
        held = digit_folder(work / "digits-held", part="test", test_every=3)
        print(f"{sum(1 for _ in train.glob('*/*.png'))} training and {sum(1 for _ in held.glob('*/*.png'))} held-out "
              f"real digits; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n", flush=True)
        for model in args.models.split(","):
            run = work / "runs" / model.replace("/", "_").replace(":", "_")
            checkpoint = run / "model.safetensors"
            if not checkpoint.exists():
                start = time.perf_counter()
                epochs = ["--epochs", str(args.epochs)] if args.epochs else []
                _zoo("train", model, "--data", str(train), "--split", "1", "--batch-size", "32", "--device", "cpu",
                     "--out", str(run), "--no-progress", *RECIPES.get(model, []), *epochs)
                print(f"{model}: trained in {time.perf_counter() - start:.0f} s", flush=True)
            network = ["--network", model] if ".py:" in model else []
            _report(model, checkpoint, held, run / "model.int8.onnx", args.max_accuracy_drop, network)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


def _report(model: str, checkpoint: Path, held: Path, out: Path, max_drop: str, network: list[str]) -> None:
    result = _zoo("export", str(checkpoint), "--out", str(out), "--quantize", "auto", "--calibration", str(held),
                  "--max-accuracy-drop", max_drop, "--json", *network, check=False)
    if result.returncode != 0:
        print(f"{model}: --quantize auto refused: {result.stderr.strip().splitlines()[-1]}\n", flush=True)
        return
    q = json.loads(result.stdout)["quantization"]
    for figures in q["candidates"].values():
        if "error" in figures:
            print(f"{model:28s} {figures['summary']}")
            continue
        print(f"{model:28s} {figures['format']:13s} fp32 {100 * figures['accuracy_fp32']:5.1f} %  "
              f"int8 {100 * figures['accuracy_int8']:5.1f} %  drop {figures['drop_points']:5.2f} pt  "
              f"agreement {100 * figures['top1_agreement']:5.1f} %  "
              f"batch 1 {figures['img_per_s_fp32_b1']:8.1f} -> {figures['img_per_s_int8_b1']:8.1f} img/s "
              f"({figures['speedup_b1']:.2f}x)  batch 32 {figures['img_per_s_fp32_b32']:8.1f} -> "
              f"{figures['img_per_s_int8_b32']:8.1f} img/s ({figures['speedup_b32']:.2f}x)  "
              f"[{figures['measured_on']}]")
    print(f"{model:28s} --quantize auto chose {q['format']}\n", flush=True)


def _zoo(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*ZOO, *argv], capture_output=True, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        sys.exit(f"zoo {' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


if __name__ == "__main__":
    sys.exit(main())
