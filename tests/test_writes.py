"""Writes that survive (zoo.atomic): a full disk or a read-only folder ends as one line naming the
file and leaves nothing behind; every write is fsynced; a killed writer's leftovers are cleaned;
two runs never share a folder.

The full and read-only disks are real: a small tmpfs (tests/small_fs.py). Where mounting is not
allowed, the test ids say ``injected-...`` and the OS error is injected at the lowest call zoo
makes on a finished file (``os.fsync``) instead.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_zoo
from small_fs import FILLER, can_mount, fill, run_zoo_refused, small_filesystem

from zoo.atomic import LOCK_FILE, STALE_AGE_S, atomic_dir, atomic_path, clean_stale, folder_lock, publish, write_file
from zoo.errors import OutputError

FULL = "tmpfs" if can_mount() else "injected-ENOSPC"
READ_ONLY = "tmpfs-ro" if can_mount() else "injected-EROFS"


def _refuse(code: int):
    def refused(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    return refused


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """A folder on a small tmpfs; ``full()`` leaves 8 KiB free. Without mounting: a plain folder,
    and ``full()`` makes ``os.fsync`` fail with ENOSPC."""
    with small_filesystem(512 * 1024, tmp_path) as mount:
        folder = mount or tmp_path / "disk"
        folder.mkdir(exist_ok=True)

        def full(leave: int = 8 * 1024) -> None:
            if mount is not None:
                fill(mount, leave)
            else:
                monkeypatch.setattr(os, "fsync", _refuse(errno.ENOSPC))

        yield SimpleNamespace(path=folder, full=full)


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """An empty read-only folder (a tmpfs mounted ro; without mounting: os.fsync fails with EROFS)."""
    with small_filesystem(64 * 1024, tmp_path, read_only=True) as mount:
        if mount is None:
            mount = tmp_path / "ro"
            mount.mkdir()
            monkeypatch.setattr(os, "fsync", _refuse(errno.EROFS))
        yield mount


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != FILLER)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("how", [FULL])
@pytest.mark.fault("writing a file on a full disk, over an earlier version of it",
                   "one-line OutputError 'no space left to write FILE', no temporary left, the earlier file intact")
def test_a_full_disk_keeps_the_old_file_and_leaves_nothing(disk, how):
    target = disk.path / "history.csv"
    target.write_text("the earlier run\n")
    disk.full()
    with pytest.raises(OutputError) as failed, atomic_path(target) as tmp:
        tmp.write_bytes(b"x" * 64 * 1024)
    message = str(failed.value)
    assert message.startswith(f"no space left to write '{target}'") and "\n" not in message
    assert target.read_text() == "the earlier run\n" and _names(disk.path) == ["history.csv"]


@pytest.mark.parametrize("how", [FULL])
@pytest.mark.fault("saving a checkpoint on a full disk (safetensors writes the file itself)",
                   "safetensors' 'os error 28' becomes the one-line OutputError naming the checkpoint; nothing left")
def test_a_checkpoint_on_a_full_disk_is_one_output_error(disk, how, checkpoint):
    from zoo.checkpoint import load, save

    module, card = load(checkpoint)
    disk.full()
    target = disk.path / "run" / "model.safetensors"
    with pytest.raises(OutputError, match=f"^no space left to write '{target}'"):
        save(target, module, card)
    assert _names(disk.path / "run") == []


@pytest.mark.parametrize("how", [FULL])
@pytest.mark.fault("an output of several files (ONNX graph and weights) on a full disk",
                   "one-line OutputError naming the output, the temporary folder removed, the earlier output intact")
def test_a_temporary_folder_on_a_full_disk_leaves_nothing(disk, how):
    out = disk.path / "m.onnx"
    out.write_bytes(b"earlier")
    disk.full()
    with pytest.raises(OutputError, match=f"^no space left to write '{out}'"), atomic_dir(out) as tmp:
        assert tmp.parent == disk.path and tmp.name.startswith(f".m.onnx.{os.getpid()}.")
        (tmp / "graph.onnx").write_bytes(b"g" * 4096)
        (tmp / "weights.data").write_bytes(b"w" * 64 * 1024)
        publish(tmp / "graph.onnx", out)
    assert out.read_bytes() == b"earlier" and _names(disk.path) == ["m.onnx"]


def _export(checkpoint: Path, out: Path, inject: int | None):
    """``zoo export`` in a subprocess; with ``inject``, every fsync fails with that errno."""
    args = ("export", str(checkpoint), "--out", str(out))
    return run_zoo(*args, check=False, timeout=300) if inject is None else run_zoo_refused(inject, *args)


@pytest.mark.parametrize("leave", [pytest.param(8, id=f"{FULL}-8KiB-free"),
                                   pytest.param(160, id=f"{FULL}-160KiB-free")])
@pytest.mark.fault("zoo export with --out on a nearly full disk (no room for the exporter's file, "
                   "or room for it but not for the checked copy)",
                   "exit 3, one line 'no space left to write OUT', no traceback, nothing left in the folder")
def test_export_to_a_nearly_full_disk(disk, leave, checkpoint):
    disk.full(leave * 1024)
    out = disk.path / "digitnet.onnx"
    done = _export(checkpoint, out, None if FULL == "tmpfs" else errno.ENOSPC)
    assert done.returncode == 3, done.stderr
    assert _lines(done.stderr) == [f"error: no space left to write '{out}' (No space left on device): free some "
                                   "space or write somewhere else (--out)"]
    assert _names(disk.path) == []


@pytest.mark.parametrize("how", [READ_ONLY])
@pytest.mark.fault("zoo export with --out in a read-only folder",
                   "exit 3, one line 'the file system is read-only', no traceback, nothing written")
def test_export_into_a_read_only_folder(read_only, how, checkpoint):
    out = read_only / "digitnet.onnx"
    done = _export(checkpoint, out, None if READ_ONLY == "tmpfs-ro" else errno.EROFS)
    assert done.returncode == 3, done.stderr
    assert _lines(done.stderr) == [f"error: cannot write '{out}': the file system is read-only; "
                                   "write somewhere else (--out)"]
    assert _names(read_only) == []


@pytest.mark.parametrize("how", [READ_ONLY])
@pytest.mark.fault("zoo's cache on a read-only disk (model family names, decoded datasets)",
                   "no error with --cache auto: one warning, the images are decoded from the files instead; "
                   "--cache disk: one-line OutputError; nothing written")
def test_a_read_only_cache_only_costs_speed(read_only, how, monkeypatch, digits):
    from zoo import registry
    from zoo.data import DataWarning, open_dataset, open_source
    from zoo.preprocess import Preprocess

    monkeypatch.setenv("ZOO_CACHE", str(read_only))
    registry._write_atomic(read_only / "families" / "timm-timm-1.json", "[]")
    pre = Preprocess(input_size=(8, 8), channels=1, mean=(0.5,), std=(0.5,))
    dataset = open_dataset(digits)
    with pytest.warns(DataWarning, match="decode cache cannot be written.*decoding from the image files"):
        assert open_source(dataset, pre, cache="auto", workers=0).mode == "none"
    with pytest.raises(OutputError) as refused:
        open_source(dataset, pre, cache="disk")
    assert "\n" not in str(refused.value)
    assert [p for p in read_only.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("how", [FULL])
@pytest.mark.fault("downloading pretrained weights into zoo's cache on a full disk",
                   "one-line OutputError naming the weights cache (not 'weights unavailable'), no partial file left")
def test_a_weights_download_onto_a_full_disk(disk, how, tmp_path, monkeypatch):
    from zoo.card import WeightSource
    from zoo.registry import model_info
    from zoo.weights.locate import download

    served = tmp_path / "weights.pth"
    served.write_bytes(os.urandom(64 * 1024))
    monkeypatch.setenv("ZOO_CACHE", str(disk.path / "cache"))
    disk.full()
    weights = disk.path / "cache" / "weights"
    with pytest.raises(OutputError, match=f"^no space left to write '{weights}'"):
        download(model_info("digitnet"), WeightSource(tag="t", url=served.as_uri()))  # file://: torch.hub's real code
    assert _names(weights) == []


@pytest.mark.fault("a power cut right after zoo wrote a file",
                   "the file was fsynced before its rename and its folder after it")
def test_every_write_is_fsynced_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    write_file(tmp_path / "rank0.json", "{}\n")
    assert synced == ["file", "folder"]
    synced.clear()
    out = tmp_path / "m.onnx"
    with atomic_dir(out) as tmp:
        (tmp / "final.onnx").write_bytes(b"graph")
        (tmp / "m.onnx.data").write_bytes(b"weights")
        publish(tmp / "m.onnx.data", tmp_path / "m.onnx.data")
        publish(tmp / "final.onnx", out)
    assert synced == ["file", "folder", "file", "folder"]
    assert _names(tmp_path) == ["m.onnx", "m.onnx.data", "rank0.json"]
    assert (tmp_path / "rank0.json").read_text() == "{}\n" and out.read_bytes() == b"graph"


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)  # run() waited for it: reaped, so no such process any more


@pytest.mark.fault("zoo train / export killed mid-write (kill -9), leaving hidden temporaries",
                   "clean_stale removes the dead writer's files and folders; a live writer's and other files stay")
def test_clean_stale_removes_only_dead_writers_leftovers(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    leftovers = [f".model.safetensors.{dead}.k3j_x9a2.tmp", f".history.csv.{dead}.tmp",
                 f".resnet-imagenet.{dead}.part", f".w-v1.{dead}.abcdefgh.tmp.{'0' * 32}.partial",
                 f".confusion-matrix.png.{alive}.o1d2e3r4.tmp",  # a PID reused since: goes by age
                 ".training-progress.png.q1w2e3r4.tmp"]  # no PID: goes by age
    for name in leftovers:
        (tmp_path / name).write_bytes(b"half")
    old = time.time() - STALE_AGE_S - 60
    for aged in leftovers[-2:]:
        os.utime(tmp_path / aged, (old, old))
    (tmp_path / f".m.onnx.{dead}.tmp").mkdir()
    (tmp_path / f".m.onnx.{dead}.tmp" / "dynamo.onnx").write_bytes(b"graph")
    (tmp_path / f".digits.partial-{dead}" / "7").mkdir(parents=True)
    kept = [f".model.safetensors.{alive}.zz11yy22.tmp", ".history.csv.a1b2c3d4.tmp", ".hidden", ".env.tmp",
            f".notes.{dead}", "model.safetensors", LOCK_FILE, f"run.{dead}.tmp"]
    for name in kept:
        (tmp_path / name).write_bytes(b"keep")
    removed = clean_stale(tmp_path)
    gone = [*leftovers, f".m.onnx.{dead}.tmp", f".digits.partial-{dead}"]
    assert sorted(p.name for p in removed) == sorted(gone)
    assert _names(tmp_path) == sorted(kept)
    assert clean_stale(tmp_path) == [] and clean_stale(tmp_path / "missing") == []


@pytest.mark.fault("zoo export killed mid-write, then an export of another file into the same folder",
                   "clean_stale(only=NAME) removes just that file's leftovers")
def test_clean_stale_only_one_names_leftovers(tmp_path):
    dead = _dead_pid()
    for name in (f".a.onnx.{dead}.abcdefgh.tmp", f".b.onnx.{dead}.abcdefgh.tmp"):
        (tmp_path / name).mkdir()
    assert [p.name for p in clean_stale(tmp_path, only="a.onnx")] == [f".a.onnx.{dead}.abcdefgh.tmp"]
    assert _names(tmp_path) == [f".b.onnx.{dead}.abcdefgh.tmp"]


HOLDER = textwrap.dedent("""
    import os, sys, time
    from zoo.atomic import folder_lock
    with folder_lock(sys.argv[1]):
        worker = os.fork()
        if worker == 0:  # a worker (as a DataLoader's) that outlives its killed parent
            time.sleep(120)
            os._exit(0)
        print("held", worker, flush=True)
        time.sleep(120)
""")
TRY_LOCK = textwrap.dedent("""
    import sys
    from zoo.atomic import folder_lock
    from zoo.errors import BusyError
    try:
        with folder_lock(sys.argv[1]):
            print("locked")
    except BusyError as exc:
        print(exc)
        sys.exit(exc.exit_code)
""")


def _try_lock(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(folder)], capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.fault("a second zoo run into an output folder in use; then the first killed with kill -9",
                   "BusyError (exit 5) at once naming the folder and the holder's pid; after the kill the folder "
                   "is free, even while the killed run's worker process lives on")
def test_folder_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path):
    folder = tmp_path / "runs" / "x"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        said, worker_pid = holder.stdout.readline().split()
        worker = int(worker_pid)
        assert said == "held"
        second = _try_lock(folder)
        assert second.returncode == 5, second.stderr
        assert second.stdout.strip() == (f"'{folder}' is in use by another zoo run (pid {holder.pid}): wait for it "
                                         "to finish or give another --out")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert _alive(worker)
        third = _try_lock(folder)
        assert (third.returncode, third.stdout.strip()) == (0, "locked"), third.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_folder_lock_is_reentrant_in_a_process_and_released_on_exit(tmp_path):
    import fcntl

    with folder_lock(tmp_path) as held:
        other = os.open(tmp_path / LOCK_FILE, os.O_RDWR)  # as another process would open it
        with folder_lock(tmp_path):
            assert held == tmp_path and (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(BlockingIOError):  # the inner exit kept the outer's lock
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(other)
