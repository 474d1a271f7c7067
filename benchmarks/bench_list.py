"""`zoo list` against timm's own listing: median wall time of whole processes, and the ratio.

Run: .venv/bin/python benchmarks/bench_list.py [--runs 7]
Goal (issue 2): zoo list <= 0.2 s and >= 15x faster than `import timm; timm.list_models()`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, check=True, capture_output=True)  # warm the OS file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    zoo = [str(BIN / "zoo")]
    rows = [
        ("zoo list", median_seconds(zoo + ["list"], args.runs)),
        ("zoo list 'timm/*' (cached names)", median_seconds(zoo + ["list", "timm/*"], args.runs)),
        ("python -c 'import timm; timm.list_models()'",
         median_seconds([sys.executable, "-c", "import timm; timm.list_models()"], args.runs)),
    ]
    for name, seconds in rows:
        print(f"{name:48s} {seconds:7.3f} s  (median of {args.runs})")
    ratio = rows[2][1] / rows[0][1]
    print(f"{'timm listing / zoo list':48s} {ratio:7.1f} x")
    print(f"goal: zoo list <= 0.2 s ({'met' if rows[0][1] <= 0.2 else 'NOT met'}), "
          f">= 15x ({'met' if ratio >= 15 else 'NOT met'})")


if __name__ == "__main__":
    main()
