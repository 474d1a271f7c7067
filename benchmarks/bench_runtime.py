"""Runtime speed of the benchmark set: torch eager, torch.compile, onnxruntime fp32 and int8, batch 1 and 32.

Models: digitnet, alexnet, timm/resnet18, timm/mobilenetv3_small_100, timm/efficientnet_b0,
timm/convnext_atto, timm/vit_tiny_patch16_224 (random weights: speed does not depend on them).
Every figure is measured on this machine by ``zoo bench --json`` (median of timed calls after
warm-up; export, quantization and compile times excluded), each runtime in a process of its own.
onnxruntime fp32 is zoo's default export (``--optimize auto``); onnxruntime int8 is ``--quantize
auto`` (the fastest int8 format; with random weights and no labelled data the accuracy budget is
meaningless, so ``--max-accuracy-drop`` defaults to 100 here and each cell prints the format chosen). GFLOP/s (torch's FlopCounterMode,
multiply-add = 2) is printed beside the machine's fp32 matmul ceiling, measured first
(torch.mm, 2048 x 2048, the same threads). Then a digitnet trained on scikit-learn's real
handwritten digits is exported fp32 and int8 and both are measured on the held-out quarter.

    .venv/bin/python benchmarks/bench_runtime.py [--models digitnet,alexnet] [--no-compile] [--seconds 3]

The goals of issue 13 are checked at the end (best onnxruntime variant >= 1.5x eager at batch 1;
int8 >= 2.5x fp32 onnxruntime on resnet18 and alexnet at batch 32); the load average is printed
before and after, since a shared machine distorts every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digitnet", "alexnet", "timm/resnet18", "timm/mobilenetv3_small_100", "timm/efficientnet_b0",
          "timm/convnext_atto", "timm/vit_tiny_patch16_224")
BATCHES = (1, 32)
COLUMNS = (("torch", "eager"), ("torch-compile", "compile"), ("onnxruntime", "ort fp32"), ("onnxruntime-int8", "ort int8"))


def matmul_ceiling(threads: int | None, size: int = 2048, seconds: float = 2.0) -> float:
    """fp32 GFLOP/s of a large square torch.mm: what a dense kernel reaches on this CPU."""
    import time

    import torch

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def speed_table(models: list[str], runtimes: tuple[str, ...], seconds: float, threads: int | None, device: str,
                providers: str, max_drop: float, ceiling: float) -> list[dict]:
    rows: list[dict] = []
    print(f"{'model':28s} {'batch':>5s} " + " ".join(f"{label + ' img/s':>15s}" for _, label in COLUMNS)
          + f" {'GFLOP/s (best)':>15s} {'% ceiling':>9s} {'best/eager':>10s} {'int8/fp32':>9s}  int8 format")
    for model in models:
        cells = {}
        for runtime in runtimes:
            for r in _bench_alone(model, runtime, seconds, threads, device, providers, max_drop):
                cells[(runtime, r["batch"])] = r
        for batch in BATCHES:
            got = {rt: cells.get((rt, batch)) for rt, _ in COLUMNS}
            eager, fp32, int8 = got["torch"], got["onnxruntime"], got["onnxruntime-int8"]
            ort = [r for r in (fp32, int8) if r]
            best = max(ort, key=lambda r: r["images_per_s"]) if ort else None
            row = {"model": model, "batch": batch, **{rt: (r["images_per_s"] if r else None) for rt, r in got.items()},
                   "best_vs_eager": best["images_per_s"] / eager["images_per_s"] if best and eager else None,
                   "int8_vs_fp32": int8["images_per_s"] / fp32["images_per_s"] if int8 and fp32 else None,
                   "gflops_per_s": best["gflops_per_s"] if best else None,
                   "int8_format": int8["provider"].split(", ")[-1] if int8 else ""}
            rows.append(row)
            fmt = " ".join(f"{(f'{row[rt]:,.1f}' if row[rt] else '-'):>15s}" for rt, _ in COLUMNS)
            gfs = row["gflops_per_s"]
            print(f"{model:28s} {batch:5d} {fmt} {_shown(gfs, '.1f'):>15s} "
                  f"{_shown(gfs and 100 * gfs / ceiling, '.0f', ' %'):>9s} {_shown(row['best_vs_eager'], '.2f', 'x'):>10s} "
                  f"{_shown(row['int8_vs_fp32'], '.2f', 'x'):>9s}  {row['int8_format']}", flush=True)
    return rows


def _bench_alone(model: str, runtime: str, seconds: float, threads: int | None, device: str, providers: str,
                 max_drop: float) -> list[dict]:
    """``zoo bench --json`` for one runtime, in a process of its own: an idle thread pool of another
    runtime (or of another model's session) cannot then take cores from the one being timed."""
    argv = [sys.executable, "-m", "zoo", "bench", model, "--runtime", runtime, "--batch", ",".join(map(str, BATCHES)),
            "--seconds", str(seconds), "--device", device, "--providers", providers,
            "--max-accuracy-drop", str(max_drop), "--json"]
    if threads:
        argv += ["--threads", str(threads)]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        print(f"{model}: {runtime} failed: {lines[-1]}", flush=True)
        return []
    return json.loads(result.stdout)


def _shown(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if not value else f"{value:{spec}}{unit}"


def goals(rows: list[dict]) -> None:
    print("\nGoals (issue 13):")
    for row in rows:
        if row["batch"] == 1 and row["best_vs_eager"]:
            ok = "met" if row["best_vs_eager"] >= 1.5 else "NOT met"
            print(f"  best onnxruntime >= 1.5x eager, batch 1, {row['model']}: {row['best_vs_eager']:.2f}x  {ok}")
    for row in rows:
        if row["batch"] == 32 and row["model"] in ("alexnet", "timm/resnet18") and row["int8_vs_fp32"]:
            ok = "met" if row["int8_vs_fp32"] >= 2.5 else "NOT met"
            print(f"  int8 >= 2.5x fp32 onnxruntime, batch 32, {row['model']}: {row['int8_vs_fp32']:.2f}x  {ok}")


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


def _cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line for line in lines if line.startswith("flags"))
        return f"{name}, {os.cpu_count()} CPUs, avx512_vnni {'yes' if 'avx512_vnni' in flags else 'no'}"
    except (OSError, StopIteration):
        return f"{os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell, at most")
    parser.add_argument("--threads", type=int, help="threads for both torch and onnxruntime")
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--device", default="cpu", help="torch device (cpu: the like-for-like CPU comparison)")
    parser.add_argument("--providers", default="cpu", help="onnxruntime providers (cpu, cuda, auto)")
    parser.add_argument("--max-accuracy-drop", type=float, default=100.0,
                        help="int8 budget in points (random weights: 100, speed only)")
    parser.add_argument("--skip-int8-runtime", action="store_true", help="no onnxruntime-int8 column")
    parser.add_argument("--json", help="also write every row to this JSON file")
    args = parser.parse_args()

    import onnxruntime
    import torch

    threads = args.threads or f"default: torch {torch.get_num_threads()}, onnxruntime 1 per core"
    print(f"torch {torch.__version__}, threads {threads}, onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"CPU: {_cpu_name()}")
    ceiling = matmul_ceiling(args.threads)
    print(f"fp32 matmul ceiling (torch.mm 2048^2, {torch.get_num_threads()} threads): {ceiling:.1f} GFLOP/s, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    runtimes = tuple(rt for rt, _ in COLUMNS if not (args.no_compile and rt == "torch-compile")
                     and not (args.skip_int8_runtime and rt == "onnxruntime-int8"))
    rows = speed_table(args.models.split(","), runtimes, args.seconds, args.threads, args.device, args.providers,
                       args.max_accuracy_drop, ceiling)
    goals(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"ceiling_gflops": ceiling, "rows": rows}, indent=1))
    if not args.skip_int8:
        with tempfile.TemporaryDirectory() as tmp:
            int8_digitnet(Path(tmp))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
