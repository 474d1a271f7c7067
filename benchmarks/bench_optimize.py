"""``zoo export --optimize``: node counts and onnxruntime latency of each level, side by side.

Each model (random weights) is exported once per level (none, basic, extended, transformer
where it applies) with zoo's parity check; the files are then timed by ``zoo bench FILE --json``
(onnxruntime CPU, the runtime's session options), each in a process of its own so that no other
session's thread pool competes, level after level, round after round, so that a busy machine
slows every level alike. Prints node counts, the median over rounds of each level's median
latency, and the ratio to ``none``; the load average is printed before and after.

    .venv/bin/python benchmarks/bench_optimize.py [--models timm/vit_tiny_patch16_224] [--rounds 5] [--batch 1,32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MODELS = ("timm/vit_tiny_patch16_224", "timm/convnext_atto", "timm/resnet18", "timm/efficientnet_b0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per level, batch and round")
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: one per core)")
    args = parser.parse_args()

    import numpy as np
    import onnx

    from zoo.export import export

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, batch {args.batch}, "
          f"threads {args.threads or 'default'}, {args.rounds} rounds")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            files, facts = {}, {}
            for level in ("none", "basic", "extended", "transformer"):
                report = export(model, Path(tmp) / f"{level}.onnx", optimize=level)
                if level != "none" and not report.optimization:  # fell back: the level does not apply
                    print(f"{model} {level}: {'; '.join(report.notes)}")
                    continue
                files[level] = report.path
                facts[level] = (len(onnx.load(str(report.path)).graph.node), report.max_abs_diff)
            times: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.rounds):
                for level, path in files.items():
                    for row in _bench(path, args):
                        times.setdefault((level, row["batch"]), []).append(row["median_ms"])
            for batch in sorted({b for _, b in times}):
                base = float(np.median(times[("none", batch)]))
                for level in files:
                    spent = times[(level, batch)]
                    nodes, diff = facts[level]
                    print(f"{model:28s} {level:12s} batch {batch:3d}  nodes {nodes:5d}  median {np.median(spent):8.2f} ms  "
                          f"min {np.min(spent):8.2f} ms  none/this {base / np.median(spent):5.2f}x  parity {diff:.1e}",
                          flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


def _bench(path: Path, args: argparse.Namespace) -> list[dict]:
    argv = [sys.executable, "-m", "zoo", "bench", str(path), "--batch", args.batch, "--seconds", str(args.seconds),
            "--providers", "cpu", "--json"]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    sys.exit(main())
