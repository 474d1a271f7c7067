"""Regenerate every picture in the docs from real runs of the ``zoo`` command::

    .venv/bin/python docs/make_figures.py               # about 2-3 minutes on 2 CPU cores
    .venv/bin/python docs/make_figures.py --work runs/figures   # keep the working folder to look at

Nothing is drawn by hand: each picture is what a user gets from the CLI, run in a subprocess in a
fresh working folder with fixed seeds and small but honest sizes (the lecture's data and
commands, fewer images and epochs), then copied into ``docs/img/``. :data:`STEPS` says how each
picture is made and :data:`FIGURES` lists them all (``tests/test_figures.py`` reads it without
running anything).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent
IMG = DOCS / "img"
MAX_BYTES = 300 * 1024  # a docs picture larger than this is reported: the site should stay light
CHECKPOINT = "runs/digitnet/model.safetensors"


@dataclass(frozen=True)
class Step:
    """``zoo`` command lines run in order in the working folder, and the pictures they leave there."""

    what: str
    commands: tuple[tuple[str, ...], ...]
    pictures: dict[str, str] = field(default_factory=dict)  # file in the working folder -> name in docs/img


STEPS: tuple[Step, ...] = (
    Step("the lecture's digits and 20 random samples",
         (("data", "make-digits", "digits", "--per-class", "400", "--seed", "0"),
          ("data", "show", "digits", "--out", "montage.png", "--count", "20", "--seed", "0")),
         {"montage.png": "digits-montage.png"}),
    Step("Lab 6: digitnet trained as the lecture trains it (4 epochs, validation every 30 iterations)",
         (("train", "digitnet", "--data", "digits", "--epochs", "4", "--val-every", "30", "--seed", "0",
           "--out", "runs/digitnet", "--no-progress"),),
         {"runs/digitnet/training-progress.png": "training-progress.png"}),
    Step("the confusion chart of the 25 % the run held out",
         (("evaluate", CHECKPOINT, "--split-of-run", "--plot", "confusion-matrix.png"),),
         {"confusion-matrix.png": "confusion-matrix.png"}),
    Step("labelled predictions on digits the network never saw (a new seed)",
         (("data", "make-digits", "new-digits", "--per-class", "2", "--seed", "7"),
          ("predict", CHECKPOINT, "new-digits/7/00000.png", "--show", "prediction.png",
           "--title", "The digit is {label} ({score})"),
          ("predict", CHECKPOINT, "new-digits", "--show", "predictions.png")),
         {"prediction.png": "prediction.png", "predictions.png": "predictions.png"}),
    Step("Lab 5: mobilenet_v2 fine-tuned on faces and other photos",
         (("data", "make-faces", "Images"),
          ("finetune", "mobilenet_v2", "--data", "Images", "--classes", "2", "--split", "0.8", "--lr", "0.001",
           "--batch-size", "16", "--epochs", "3", "--val-every", "5", "--seed", "0", "--out", "runs/lab5",
           "--no-progress")),
         {"runs/lab5/training-progress.png": "lab5-progress.png"}),
    Step("the network diagrams (MATLAB's plot(lgraph))",
         (("info", "digitnet", "--no-layers", "--plot", "digitnet-diagram.png"),
          ("info", "resnet18", "--no-layers", "--plot", "resnet18-diagram.png")),
         {"digitnet-diagram.png": "digitnet-diagram.png", "resnet18-diagram.png": "resnet18-diagram.png"}),
)

#: every picture in docs/img, by file name
FIGURES: tuple[str, ...] = tuple(name for step in STEPS for name in step.pictures.values())


def zoo_command() -> Path:
    """The ``zoo`` script of the Python running this file (the project's virtual environment)."""
    found = Path(sys.executable).parent / "zoo"
    if not found.is_file():
        raise SystemExit(f"no 'zoo' command beside {sys.executable}: run this with the project's "
                         ".venv/bin/python after 'pip install -e .'")
    return found


def run(zoo: Path, args: tuple[str, ...], work: Path, env: dict[str, str]) -> None:
    """One ``zoo`` command in ``work``; its output is shown only when it fails."""
    shown = " ".join(a if " " not in a and "{" not in a else repr(a) for a in args)
    print(f"  $ zoo {shown}", flush=True)
    done = subprocess.run([str(zoo), *args], cwd=work, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"zoo {shown} failed (exit {done.returncode}): no picture of this step was copied")


def publish(made: Path, name: str) -> Path:
    """Copy a picture into docs/img (whole, or not at all; in 256 colours when it is large) and report its size."""
    target = IMG / name
    temporary = target.with_name(f".{name}.tmp")
    shutil.copyfile(made, temporary)
    if temporary.stat().st_size > MAX_BYTES:
        in_palette(temporary)
    os.replace(temporary, target)
    size = target.stat().st_size
    note = f"  (over {MAX_BYTES // 1024} KB: make it smaller)" if size > MAX_BYTES else ""
    print(f"  wrote {target.relative_to(DOCS.parent)} ({size / 1024:.0f} KB){note}", flush=True)
    return target


def in_palette(path: Path) -> None:
    """Re-encode a PNG in 256 colours, without dithering: charts and diagrams of flat colours and
    anti-aliased text look the same at a third of the size (resnet18's tall diagram: 430 -> 140 KB)."""
    from PIL import Image

    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    flat.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, format="PNG",
                                                                                      optimize=True)


def make(work: Path) -> list[Path]:
    """Run every step in ``work`` and copy its pictures; the files written, in order."""
    zoo = zoo_command()
    env = {**os.environ, "ZOO_CACHE": str(work / "cache")}  # decoded data stays out of the user's cache
    IMG.mkdir(exist_ok=True)
    written = []
    for step in STEPS:
        started = time.perf_counter()
        print(f"{step.what}", flush=True)
        for args in step.commands:
            run(zoo, args, work, env)
        written += [publish(work / made, name) for made, name in step.pictures.items()]
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate every picture in docs/img from real zoo runs.")
    parser.add_argument("--work", type=Path, default=None,
                        help="working folder to keep (default: a temporary one, removed at the end)")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    if options.work is not None:
        if options.work.exists() and any(options.work.iterdir()):
            raise SystemExit(f"--work {options.work} is not empty: give a new or empty folder")
        options.work.mkdir(parents=True, exist_ok=True)
        written = make(options.work.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="zoo-figures-") as work:
            written = make(Path(work))
    print(f"{len(written)} pictures in {IMG.relative_to(DOCS.parent)}/ in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
