"""Peak memory of ``zoo train`` at 224x224 on a small and a large set of photos (issue 11).

    .venv/bin/python benchmarks/bench_memory.py [--keep DIR] [--zoo-args "--cache disk --workers 2"]

Makes ``--large`` 640x480 JPEGs once (quality 90, 4 classes as folders; random crops, resizes and
flips of scikit-image's bundled photos, so no two are alike) and a ``--small`` subset of hard links
to them; ``--keep DIR`` keeps and reuses them. Then runs one epoch of

    zoo train timm/mobilenetv3_small_050 --data SET --epochs 1 --split 1 --batch-size 32

on each set as a subprocess with a fresh, empty ``ZOO_CACHE`` (a cold decode cache), sampling from
/proc every ``--interval`` s the sums of ``RssAnon`` and of ``VmRSS`` over the zoo process and all its
descendants (DataLoader workers, launcher children). Prints their peaks, the wall time, and the
kernel's exact peak RSS of the zoo process alone (a check on the sampling); then the RssAnon growth
large - small against the goal (<= 200 MB).

Why RssAnon: resident memory (VmRSS) also counts file-backed pages, such as the pages of a
memory-mapped decode cache that the process has touched. The kernel can drop those at any time and
read them again from the file, so they do not limit the size of a data set; anonymous memory (heap,
decoded arrays, copies) cannot be dropped without swap and is what runs a machine out of memory.
Both sums count pages a forked worker still shares with its parent once per process: they overstate.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_CLASSES = {"astro": ("astronaut", "hubble_deep_field"), "coffee": ("coffee", "immunohistochemistry"),
                 "cat": ("chelsea", "retina"), "rocket": ("rocket",)}  # class folder -> scikit-image photos
WIDTH, HEIGHT = 640, 480


def random_view(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (30-100 % of the area, aspect near 4:3) of PHOTO resized to 640x480, maybe mirrored."""
    w, h = photo.size
    area = w * h * rng.uniform(0.3, 1.0)
    aspect = WIDTH / HEIGHT * rng.uniform(0.8, 1.25)
    cw, ch = min(w, round((area * aspect) ** 0.5)), min(h, round((area / aspect) ** 0.5))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = photo.crop((left, top, left + cw, top + ch)).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view


def make_photos(root: Path, count: int, seed: int = 0) -> None:
    """Write COUNT JPEGs spread evenly over the classes into ROOT/<class>/NNNNN.jpg."""
    import skimage.data
    rng = np.random.default_rng(seed)
    photos = {c: [Image.fromarray(getattr(skimage.data, n)()).convert("RGB") for n in names]
              for c, names in PHOTO_CLASSES.items()}
    for i in range(count):
        c = list(PHOTO_CLASSES)[i % len(PHOTO_CLASSES)]
        (root / c).mkdir(parents=True, exist_ok=True)
        photo = photos[c][int(rng.integers(len(photos[c])))]
        random_view(photo, rng).save(root / c / f"{i // len(PHOTO_CLASSES):05d}.jpg", quality=90)


def link_subset(source: Path, target: Path, count: int) -> None:
    """TARGET/<class>/ with hard links (copies where links fail) to the first COUNT/classes images of each class."""
    per_class = count // len(PHOTO_CLASSES)
    for c in PHOTO_CLASSES:
        (target / c).mkdir(parents=True, exist_ok=True)
        for src in sorted((source / c).glob("*.jpg"))[:per_class]:
            try:
                os.link(src, target / c / src.name)
            except OSError:
                shutil.copy2(src, target / c / src.name)


def image_count(root: Path) -> int:
    return sum(1 for _ in root.glob("*/*.jpg")) if root.is_dir() else 0


def prepare_sets(root: Path, small: int, large: int) -> tuple[Path, Path]:
    """The small and the large folder under ROOT, made unless they already hold the right number of images."""
    big, little = root / f"photos-{large}", root / f"photos-{small}"
    if image_count(big) != large:
        shutil.rmtree(big, ignore_errors=True)
        start = time.perf_counter()
        make_photos(big, large)
        print(f"made {large} 640x480 JPEGs in {big} ({time.perf_counter() - start:.0f} s)", flush=True)
    if image_count(little) != small:
        shutil.rmtree(little, ignore_errors=True)
        link_subset(big, little, small)
    return little, big


def process_tree(root_pid: int) -> list[int]:
    """ROOT_PID and every live descendant, found through the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()  # "pid (name) state ppid ..."
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
            except OSError:
                continue  # exited while we looked
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """Sums of RssAnon and VmRSS (kB) over PIDS; processes that have exited count zero."""
    sums = {"RssAnon": 0, "VmRSS": 0}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue  # exited
        for key, _, value in (line.partition(":") for line in lines):
            if key in sums:
                sums[key] += int(value.split()[0])
    return sums["RssAnon"], sums["VmRSS"]


def measure(command: list[str], env: dict[str, str], log: Path, interval: float) -> dict[str, float]:
    """Run COMMAND to its end, sampling its process tree every INTERVAL s: peak sums in MB, the most
    processes seen, wall seconds, and the kernel's exact peak RSS of the zoo process alone (a check on
    the sampling, which can miss a short spike)."""
    peak_anon = peak_rss = most = 0
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    while not (ended := os.wait4(proc.pid, os.WNOHANG))[0]:
        pids = process_tree(proc.pid)
        anon, rss = memory_kb(pids)
        peak_anon, peak_rss, most = max(peak_anon, anon), max(peak_rss, rss), max(most, len(pids))
        time.sleep(interval)
    wall, proc.returncode = time.perf_counter() - start, os.waitstatus_to_exitcode(ended[1])  # reaped here
    if proc.returncode != 0:
        sys.exit(f"zoo exited with {proc.returncode}; its output:\n{log.read_text()[-3000:]}")
    return {"anon": peak_anon / 1024, "rss": peak_rss / 1024, "wall": wall, "procs": most,
            "maxrss": ended[2].ru_maxrss / 1024}


def zoo_command() -> list[str]:
    """.venv/bin/zoo next to this Python, else python -m zoo."""
    exe = Path(sys.executable).with_name("zoo")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "zoo"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=500, help="images in the small set")
    parser.add_argument("--large", type=int, default=4000, help="images in the large set")
    parser.add_argument("--keep", metavar="DIR", help="make the images here once and reuse them (default: a temp dir)")
    parser.add_argument("--model", default="timm/mobilenetv3_small_050", help="a 224x224 model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between samples (default 0.05)")
    parser.add_argument("--goal-mb", type=float, default=200.0, help="largest allowed RssAnon growth (default 200)")
    parser.add_argument("--zoo-args", default="", help='extra zoo train options, e.g. "--cache disk --workers 2"')
    args = parser.parse_args()
    if not 0 < args.small < args.large or args.small % len(PHOTO_CLASSES) or args.large % len(PHOTO_CLASSES):
        parser.error(f"need 0 < --small < --large, both multiples of {len(PHOTO_CLASSES)} (the classes)")

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-memory-"))
    sets = prepare_sets(Path(args.keep) if args.keep else work, args.small, args.large)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; runs and logs in {work}", flush=True)
    results = {}
    for data in sets:
        n = image_count(data)
        out, cache = work / f"run-{n}", work / f"cache-{n}"
        cache.mkdir()
        env = {**os.environ, "ZOO_CACHE": str(cache), "ZOO_OFFLINE": "1"}
        command = [*zoo_command(), "train", args.model, "--data", str(data), "--epochs", "1", "--split", "1",
                   "--batch-size", str(args.batch_size), "--seed", "0", "--no-progress", "--out", str(out),
                   *shlex.split(args.zoo_args)]
        print("$ " + shlex.join(command), flush=True)
        results[n] = measure(command, env, work / f"zoo-{n}.log", args.interval)
        shutil.rmtree(cache, ignore_errors=True)  # its decoded set can be large

    print(f"\n{'images':>8} {'peak RssAnon (MB)':>18} {'peak RSS (MB)':>14} {'wall (s)':>9} {'processes':>10} {'zoo alone, kernel peak RSS (MB)':>32}")
    for n, r in results.items():
        print(f"{n:>8} {r['anon']:>18,.0f} {r['rss']:>14,.0f} {r['wall']:>9.1f} {r['procs']:>10} {r['maxrss']:>32,.0f}")
    (n_small, small), (n_large, large) = results.items()
    growth = large["anon"] - small["anon"]
    verdict = "PASS" if growth <= args.goal_mb else "FAIL"
    print(f"\nRssAnon {n_large} - {n_small} images: {growth:+,.0f} MB   (goal <= {args.goal_mb:.0f} MB)  {verdict}")
    print(f"VmRSS   {n_large} - {n_small} images: {large['rss'] - small['rss']:+,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
