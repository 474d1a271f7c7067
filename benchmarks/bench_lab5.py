"""Lab 5 wall time: ``zoo finetune mobilenet_v2`` on the 2-class Images folder, as scripts/demo.sh runs it.

    .venv/bin/python benchmarks/bench_lab5.py [--data IMAGES] [--runs 2] [--zoo-args "--cache memory"]

Makes the Lab 5 folder with ``zoo data make-faces`` (or reuses ``--data``), then runs, as a
subprocess, the lecture's Lab 5 command from scripts/demo.sh:

    zoo finetune mobilenet_v2 --data IMAGES --classes 2 --weights auto --split 0.8 --solver sgdm \\
        --lr 0.001 --batch-size 64 --epochs 6 --val-every 2 --seed 0

once to warm the caches (a fresh ``ZOO_CACHE``, unless ``--zoo-cache`` names one), then ``--runs``
more times, timing each from start to exit (Python's start-up and imports included: what a student
waits for). Every zoo cache under ``ZOO_CACHE`` is warm for the timed runs: decoded pixels, and
whatever else a run caches there (backbone features, once zoo caches them). Prints each run's wall
time, its CPU time (user + system, zoo and its workers; steadier than wall time on a shared
machine), the training time and the validation accuracy the run recorded in its checkpoint's card
(``zoo info CKPT --json``), against the goal: wall <= 8 s on 2 cores, the same validation accuracy
in every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAB5_OPTIONS = ["--classes", "2", "--weights", "auto", "--split", "0.8", "--solver", "sgdm", "--lr", "0.001",
                "--batch-size", "64", "--epochs", "6", "--val-every", "2", "--seed", "0"]


def zoo_command() -> list[str]:
    """.venv/bin/zoo next to this Python, else python -m zoo."""
    exe = Path(sys.executable).with_name("zoo")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "zoo"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_zoo(args: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run zoo ARGS to its end: (its output, wall seconds, CPU seconds); stop the benchmark when it fails.
    CPU seconds (user + system, the process and the children it waited for) vary less than wall time
    on a busy machine."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run([*zoo_command(), *args], check=False, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"$ zoo {shlex.join(args)}\nexited with {done.returncode}:\n{done.stdout[-3000:]}")
    return done.stdout, wall, cpu


def find_metrics(node) -> dict | None:
    """The first dict under a "metrics" key anywhere in a JSON document."""
    if isinstance(node, dict):
        if isinstance(node.get("metrics"), dict):
            return node["metrics"]
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = find_metrics(child)
            if found is not None:
                return found
    return None


def run_metrics(out: Path, env: dict[str, str]) -> dict:
    """The metrics a run recorded: its checkpoint's card, else the last validation row of history.csv."""
    checkpoint = out / "model.safetensors"
    if checkpoint.is_file():
        text, *_ = run_zoo(["info", str(checkpoint), "--json"], env)
        metrics = find_metrics(json.loads(text))
        if metrics:
            return metrics
    rows = [r for r in csv.DictReader((out / "history.csv").read_text().splitlines()) if r.get("val_accuracy")]
    return {"val_acc": float(rows[-1]["val_accuracy"]), "val_loss": float(rows[-1]["val_loss"])} if rows else {}


def figure(metrics: dict, key: str, form: str) -> str:
    return format(metrics[key], form) if isinstance(metrics.get(key), (int, float)) else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="an existing Lab 5 Images folder (default: made with zoo data make-faces)")
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up (default 2)")
    parser.add_argument("--zoo-cache", metavar="DIR", help="ZOO_CACHE for every run (default: a fresh temp dir)")
    parser.add_argument("--goal-s", type=float, default=8.0, help="largest allowed wall time (default 8)")
    parser.add_argument("--expect-acc", type=float, help="validation accuracy to match (e.g. the baseline's)")
    parser.add_argument("--zoo-args", default="", help='extra zoo finetune options, e.g. "--cache memory --workers 0"')
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-lab5-"))
    env = {**os.environ, "ZOO_CACHE": args.zoo_cache or str(work / "cache"), "ZOO_OFFLINE": "1"}
    data = Path(args.data) if args.data else work / "Images"
    if not args.data:
        run_zoo(["data", "make-faces", str(data)], env)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; ZOO_CACHE={env['ZOO_CACHE']}; "
          f"runs in {work}", flush=True)
    finetune = ["finetune", args.model, "--data", str(data), *LAB5_OPTIONS, "--no-progress",
                *shlex.split(args.zoo_args)]
    print("$ zoo " + shlex.join([*finetune, "--out", "OUT"]), flush=True)

    print(f"\n{'run':<14} {'wall (s)':>9} {'CPU (s)':>8} {'training (s)':>13} {'val accuracy':>13} {'val loss':>9}")
    timed = []
    for i in range(args.runs + 1):
        out = work / f"run-{i}"
        _, wall, cpu = run_zoo([*finetune, "--out", str(out)], env)
        metrics = run_metrics(out, env)
        name = "warm-up" if i == 0 else f"timed {i}"
        print(f"{name:<14} {wall:>9.2f} {cpu:>8.1f} {figure(metrics, 'seconds', '.2f'):>13} "
              f"{figure(metrics, 'val_acc', '.4f'):>13} {figure(metrics, 'val_loss', '.4f'):>9}", flush=True)
        if i:
            timed.append((wall, metrics.get("val_acc")))

    best = min(wall for wall, _ in timed)
    accuracies = {acc for _, acc in timed}
    print(f"\nfastest timed run {best:.2f} s   (goal <= {args.goal_s:g} s on 2 cores)  "
          f"{'PASS' if best <= args.goal_s else 'FAIL'}")
    print(f"validation accuracy of the timed runs: {', '.join(str(a) for a in sorted(accuracies, key=str))}"
          f"  ({'the same in every run' if len(accuracies) == 1 else 'DIFFERS between runs'})")
    if args.expect_acc is not None:
        same = all(isinstance(a, (int, float)) and abs(a - args.expect_acc) < 1e-9 for a in accuracies)
        print(f"expected validation accuracy {args.expect_acc:g}  {'PASS' if same else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
