"""``kill -9`` at random moments of a real ``zoo train`` and ``zoo export``: files are whole, never half.

Each test first finishes one run into a folder, then starts a second run into the same folder
again and again and kills it (SIGKILL: no handler runs, no cleanup) at a seeded random moment,
three times in four while it writes (from the first file it creates in the folder), otherwise
anywhere in its life. After every kill each output that exists must be complete (the checkpoint
loads, the history parses with its header, the plot decodes, the ONNX file passes the checker and
loads in onnxruntime) and be either the earlier run's file or a new one, and no output of the
earlier run may be gone. Finally a run that is left to finish must leave no temporary files.
Tiny data (6 images per digit, 1 epoch, one thread) keeps each run to a few seconds.
"""

from __future__ import annotations

import csv
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import onnx
import onnxruntime
import pytest
from conftest import VENV_BIN
from PIL import Image

from zoo.checkpoint import load
from zoo.training.loop import HISTORY_FIELDS
from zoo.training.state import load_state

SEED = 14
TEMPORARY = re.compile(r"^\..+\.tmp$")  # what zoo.atomic names a file or folder while it is written
STATS: Counter[str] = Counter()  # kills, files checked, corrupt or lost files, per test: the closing summary line


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    started = time.monotonic()
    yield
    line = "; ".join(f"{key} {n}" for key, n in sorted(STATS.items()))
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\nkill -9 loop: {line}; {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory) -> Path:
    from test_export_support import digit_folder

    return digit_folder(tmp_path_factory.mktemp("tiny-digits"), per_class=6)


# -- running and killing -----------------------------------------------------------------


def start(args: list[str]) -> subprocess.Popen:
    """The real ``zoo`` command, in its own process group (killed whole, never anything else)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([str(VENV_BIN / "zoo"), *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def entries(folder: Path) -> set[tuple[str, int]]:
    """(name, inode) of the outputs and temporaries in ``folder`` (not the lock): a new pair is a
    file created or replaced."""
    try:
        return {(e.name, e.inode()) for e in os.scandir(folder) if TEMPORARY.match(e.name) or e.name[0] != "."}
    except FileNotFoundError:
        return set()


def finish(args: list[str], folder: Path) -> tuple[float, float]:
    """Run to the end; (seconds until it first wrote into ``folder``, seconds it kept writing there)."""
    before, started, writes = entries(folder), time.monotonic(), []
    proc = start(args)
    while proc.poll() is None:
        now = entries(folder)
        if now != before:
            writes.append(time.monotonic() - started)
            before = now
        time.sleep(0.002)
    assert proc.returncode == 0, f"zoo {' '.join(args)} failed ({proc.returncode}): {proc.stderr.read()}"
    total = time.monotonic() - started
    return (writes[0], writes[-1] - writes[0]) if writes else (total, 0.0)


def kill_at_random(args: list[str], folder: Path, timing: tuple[float, float], rng: random.Random) -> str:
    """Start ``zoo args`` and SIGKILL it at a seeded random moment: "writing" (a random delay after
    it first creates or replaces a file in ``folder``, up to a little past the span a whole run kept writing) or
    "anywhere" (up to the end of that span); "" when it finished first."""
    first_write, span = timing
    phase = "writing" if rng.random() < 0.75 else "anywhere"
    delay = rng.uniform(0, 1.2 * span + 0.05) if phase == "writing" else rng.uniform(0, first_write + span)
    before, started = entries(folder), time.monotonic()
    proc = start(args)
    armed = started if phase == "anywhere" else None
    while proc.poll() is None:
        now = time.monotonic()
        if armed is None and entries(folder) - before:
            armed = now
        if armed is not None and now - armed >= delay:
            writing = any(TEMPORARY.match(name) for name, _ in entries(folder) - before)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"{phase}, a temporary file open" if writing else phase
        time.sleep(0.002)
    assert proc.returncode == 0, f"zoo {' '.join(args)} failed ({proc.returncode}): {proc.stderr.read()}"
    return ""


def kill_loop(earlier_args: list[str], args: list[str], folder: Path, kills: int, what: str) -> Counter[str]:
    """Finish ``zoo earlier_args`` into ``folder``, then kill ``kills`` runs of ``zoo args`` (which
    write other bytes) at random moments; after each, every file the run replaced or added must read
    back whole and none may be gone. Returns what happened (also added to the module's summary)."""
    timing = finish(earlier_args, folder)  # also warms the caches, as a user's second run finds them
    rng = random.Random(f"{SEED}-{what}")
    seen: Counter[str] = Counter()
    for _ in range(3 * kills):
        if seen["kills"] >= kills:
            break
        before = outputs(folder)  # whole: the earlier run's, or checked after the previous kill
        phase = kill_at_random(args, folder, timing, rng)
        seen["kills"] += bool(phase)
        seen[f"killed {phase}" if phase else "finished before the kill"] += 1
        after = outputs(folder)
        replaced = [name for name, data in after.items() if before.get(name) != data]
        seen["files checked"] += len(after)
        seen["files replaced by the killed run"] += len(replaced)
        seen["corrupt files"] += sum(not complete(folder / name) for name in replaced)
        seen["lost files"] += len(set(before) - set(after))
    STATS.update({f"{what}: {key}": n for key, n in seen.items()})
    assert seen["kills"] >= kills, f"only {seen['kills']} runs were killed before they ended"
    return seen


# -- what a complete file is -------------------------------------------------------------


def complete(path: Path) -> bool:
    """Whether ``path`` reads back whole with the reader of its kind (an unknown file is not)."""
    read = read_onnx if path.suffix == ".onnx" else READERS.get(path.name)
    try:
        if read is None:
            raise ValueError("a file no zoo run writes here")
        read(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read it back is a damaged file
        print(f"damaged: {path} ({type(exc).__name__}: {exc})")
        return False
    return True


def read_history(path: Path) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(HISTORY_FIELDS) and len(rows) > 1
    assert all(len(row) == len(HISTORY_FIELDS) and int(row[1]) > 0 for row in rows[1:])


def read_png(path: Path) -> None:
    with Image.open(path) as image:
        image.load()


def read_onnx(path: Path) -> None:
    onnx.checker.check_model(str(path))
    onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


READERS = {"model.safetensors": load, "history.csv": read_history, "training-progress.png": read_png,
           "resume.safetensors": load_state}
RUN_FILES = ("model.safetensors", "history.csv", "training-progress.png")


def outputs(folder: Path) -> dict[str, bytes]:
    """The bytes of each file in ``folder`` but the hidden ones (temporaries, the lock)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMPORARY.match(p.name))


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.fault("zoo train killed with SIGKILL at 12 random moments, over a finished run in the same folder",
                   "model, history and plot there are each the earlier run's or the new run's, whole; "
                   "the next run to finish leaves no temporary files")
def test_train_killed_at_random_leaves_whole_files(tiny_digits, tmp_path):
    out = tmp_path / "run"
    args = ["train", "digitnet", "--data", str(tiny_digits), "--epochs", "1", "--batch-size", "16",
            "--val-every", "2", "--device", "cpu", "--no-progress", "--out", str(out)]
    seen = kill_loop([*args, "--seed", "0"], [*args, "--seed", "1"], out, 12, "train")
    assert seen["corrupt files"] == 0 and seen["lost files"] == 0
    finish([*args, "--seed", "2"], out)
    assert all(complete(out / name) for name in RUN_FILES)
    assert temporaries(out) == [], "a finished run must remove what killed runs left (zoo.atomic.clean_stale)"


@pytest.mark.fault("zoo export killed with SIGKILL at 8 random moments, over a finished export of the same file",
                   "the .onnx there is the earlier export or the new one, whole (passes onnx's checker, loads in "
                   "onnxruntime); the next export to finish leaves no temporary files")
def test_export_killed_at_random_leaves_whole_files(tiny_digits, tmp_path):
    run = tmp_path / "run"
    finish(["train", "digitnet", "--data", str(tiny_digits), "--epochs", "1", "--batch-size", "16",
            "--device", "cpu", "--no-progress", "--out", str(run)], run)
    out = tmp_path / "export"
    args = ["export", str(run / "model.safetensors"), "--out", str(out / "digitnet.onnx"), "--exporter", "torchscript"]
    out.mkdir()
    seen = kill_loop([*args, "--opset", "17"], args, out, 8, "export")
    assert seen["corrupt files"] == 0 and seen["lost files"] == 0
    finish(args, out)
    assert complete(out / "digitnet.onnx")
    assert temporaries(out) == []
