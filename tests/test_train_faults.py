"""A training run under faults: a full or read-only disk, a second run on the same --out, leftovers
of killed runs. The trained model is never lost, and each failure is one line with its exit status."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from conftest import run_zoo
from small_fs import FILLER, fill, run_zoo_refused, small_filesystem

from zoo.atomic import folder_lock

PAGE = 4096


def _train_args(digits, out):
    return ("train", "digitnet", "--data", str(digits), "--epochs", "1", "--batch-size", "256", "--split", "0.9",
            "--out", str(out), "--no-progress")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def reference_run(digits, tmp_path_factory):
    """One normal run, started in a folder holding a killed run's leftovers: its files' sizes,
    and what the next run did with the leftovers."""
    out = tmp_path_factory.mktemp("reference")
    dead = _dead_pid()
    leftovers = [out / f".model.safetensors.{dead}.k2j4m8q1.tmp", out / f".history.csv.{dead}.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    (out / f".m.onnx.{dead}.x8a1b2c3.tmp").mkdir()
    leftovers.append(out / f".m.onnx.{dead}.x8a1b2c3.tmp")
    (out / ".notes").write_text("the user's own hidden file")
    run_zoo(*_train_args(digits, out), env={"OMP_NUM_THREADS": "1"})
    sizes = {name: (out / name).stat().st_size for name in ("model.safetensors", "history.csv", "training-progress.png")}
    return out, sizes, leftovers


@pytest.mark.fault("zoo train into a folder holding a killed run's temporaries (files and an export folder)",
                   "the next run removes the dead process's temporaries and keeps the user's own files")
def test_next_run_removes_killed_runs_leftovers(reference_run):
    out, _, leftovers = reference_run
    assert not any(path.exists() for path in leftovers)
    assert (out / ".notes").read_text() == "the user's own hidden file"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.fault("zoo train with --out on a full disk (a real tmpfs; the model does not fit)",
                   "one line naming the file, exit 3; the trained model is kept in zoo's cache and the line says where")
def test_full_disk_keeps_the_trained_model(digits, tmp_path):
    with small_filesystem(256 * 1024, tmp_path) as disk:
        if disk is None:  # no mounting here: every fsync fails with ENOSPC, the cache's too
            out = tmp_path / "run"
            proc = run_zoo_refused(errno.ENOSPC, *_train_args(digits, out))
            assert proc.returncode == 3 and len(_lines(proc.stderr)) == 1
            assert "could not be kept elsewhere either" in proc.stderr
            return
        fill(disk, 4 * PAGE)
        out = disk / "run"
        proc = run_zoo(*_train_args(digits, out), check=False, env={"OMP_NUM_THREADS": "1"})
        assert proc.returncode == 3, proc.stderr
        line = _lines(proc.stderr)[-1]
        assert line.startswith(f"error: no space left to write '{out / 'model.safetensors'}'")
        assert "Traceback" not in proc.stderr
        kept = line.split("the trained model is kept in ")[1].split(" instead")[0]
        assert kept.startswith(os.environ["ZOO_CACHE"])
        names = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert not [n for n in names if n.endswith(".tmp")] and "model.safetensors" not in names

    from zoo.checkpoint import load

    module, card = load(kept)
    assert card.labels == tuple(str(d) for d in range(10)) and card.training["metrics"]["iterations"] == 6


@pytest.mark.fault("zoo train whose disk fills after the model is saved (the progress plot does not fit)",
                   "one line naming the plot, exit 3, saying the trained model is saved and where")
def test_full_disk_after_the_model_says_the_model_is_saved(digits, reference_run, tmp_path):
    _, sizes, _ = reference_run
    room = sizes["model.safetensors"] + sizes["history.csv"] + 6 * PAGE  # the plot (~20 pages) does not fit
    assert sizes["training-progress.png"] > 8 * PAGE
    with small_filesystem(room + 64 * PAGE, tmp_path) as disk:
        if disk is None:
            pytest.skip("cannot mount a small file system here; the full-disk test above covers the fallback")
        fill(disk, room)
        out = disk / "run"
        proc = run_zoo(*_train_args(digits, out), check=False, env={"OMP_NUM_THREADS": "1"})
        assert proc.returncode == 3, proc.stderr
        line = _lines(proc.stderr)[-1]
        assert line.startswith(f"error: no space left to write '{out / 'training-progress.png'}'")
        assert line.endswith(f"(the trained model is saved: {out / 'model.safetensors'})")
        from zoo.checkpoint import read_card

        assert read_card(out / "model.safetensors").num_classes == 10
        assert sorted(p.name for p in out.iterdir() if p.name not in (FILLER, ".zoo.lock")) == [
            "history.csv", "model.safetensors"]


@pytest.mark.fault("zoo train with --out on a read-only file system",
                   "one line before any work: the file system is read-only, write somewhere else; exit 3")
def test_read_only_out(digits, tmp_path):
    with small_filesystem(64 * 1024, tmp_path, read_only=True) as disk:
        if disk is None:
            pytest.skip("cannot mount a read-only file system here")
        proc = run_zoo(*_train_args(digits, disk / "run"), check=False)
    assert proc.returncode == 3
    assert _lines(proc.stderr) == [f"error: cannot write '{disk / 'run'}': the file system is read-only; "
                                   "write somewhere else (--out)"]


@pytest.mark.fault("a second zoo train on an --out another process is using",
                   "fails at once: one line naming the folder and the other run's pid, exit 5; the folder untouched")
def test_second_run_on_the_same_out_fails_at_once(digits, tmp_path):
    out = tmp_path / "run"
    with folder_lock(out):  # this test process stands for the first run
        proc = run_zoo(*_train_args(digits, out), check=False)
    assert proc.returncode == 5
    assert _lines(proc.stderr) == [f"error: '{out}' is in use by another zoo run (pid {os.getpid()}): "
                                   "wait for it to finish or give another --out"]
    assert sorted(p.name for p in out.iterdir()) == [".zoo.lock"]


@pytest.mark.fault("zoo train that fails before training (a data folder that does not exist)",
                   "one line, exit 2, and no empty output folder left behind")
def test_failed_run_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "run"
    proc = run_zoo("train", "digitnet", "--data", str(tmp_path / "nowhere"), "--out", str(out), check=False)
    assert proc.returncode == 2 and len(_lines(proc.stderr)) == 1
    assert not out.exists()
