"""``zoo export --optimize``: node counts and onnxruntime latency of each level, side by side.

Each model (random weights) is exported once per level (none, basic, extended, transformer
where it applies) with zoo's parity check; the files are then timed interleaved, round after
round (batch 1 by default, onnxruntime CPU, the runtime's session options), so that a busy
machine slows every level alike. Prints node counts, median and minimum latency, and the
ratio to ``none``; the load average is printed before and after.

    .venv/bin/python benchmarks/bench_optimize.py [--models timm/vit_tiny_patch16_224] [--rounds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("timm/vit_tiny_patch16_224", "timm/convnext_atto", "timm/resnet18", "timm/efficientnet_b0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per round")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: one per core)")
    args = parser.parse_args()

    import numpy as np
    import onnx

    from zoo.export import export
    from zoo.runtime.providers import make_session

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, batch {args.batch}, "
          f"threads {args.threads or 'default'}")
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
            sessions = {level: make_session(path, "cpu", threads=args.threads)[0] for level, path in files.items()}
            name = next(iter(sessions.values())).get_inputs()[0].name
            h, w = next(iter(sessions.values())).get_inputs()[0].shape[2:]
            x = np.random.default_rng(0).standard_normal((args.batch, 3, h, w)).astype(np.float32)
            times: dict[str, list[float]] = {level: [] for level in sessions}
            for _ in range(args.rounds):
                for level, session in sessions.items():
                    session.run(None, {name: x})
                    start = time.perf_counter()
                    for _ in range(args.calls):
                        session.run(None, {name: x})
                    times[level].append((time.perf_counter() - start) / args.calls * 1e3)
            base = float(np.median(times["none"]))
            for level, spent in times.items():
                nodes, diff = facts[level]
                print(f"{model:28s} {level:12s} nodes {nodes:5d}  median {np.median(spent):8.2f} ms  "
                      f"min {np.min(spent):8.2f} ms  none/this {base / np.median(spent):5.2f}x  parity {diff:.1e}",
                      flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
