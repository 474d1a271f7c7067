"""A real, small file system for disk-full and read-only tests: a tmpfs mounted for one test.

Usage::

    from small_fs import fill, small_filesystem

    with small_filesystem(256 * 1024, tmp_path) as disk:   # a Path, or None
        if disk is None:
            ...   # mounting is not allowed here: inject OSError(errno.ENOSPC) instead
        fill(disk, leave=8 * 1024)                        # nearly full: 8 KiB left
        ...                                               # run the writer with its output in `disk`

    with small_filesystem(64 * 1024, tmp_path, read_only=True) as disk:   # an empty, read-only folder
        ...

Mounting needs root (or CAP_SYS_ADMIN) and the ``mount`` command; where it is refused,
:func:`small_filesystem` yields None. :func:`can_mount` tells it in advance (for test ids), and
:func:`run_zoo_refused` runs the CLI with the OS error injected instead (every ``os.fsync`` fails:
zoo fsyncs each finished file before renaming it). Sizes are rounded up to whole pages (4 KiB).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

__all__ = ["small_filesystem", "read_only_folder", "fill", "can_mount", "run_zoo_refused", "FILLER"]

FILLER = "filler.bin"
_REFUSING_ZOO = textwrap.dedent("""
    import os, sys
    code = int(sys.argv[1])
    def refused(fd):
        raise OSError(code, os.strerror(code))
    os.fsync = refused
    from zoo.cli import main
    main(sys.argv[2:])
""")


@contextlib.contextmanager
def small_filesystem(size_bytes: int, where: str | os.PathLike | None = None, *,
                     read_only: bool = False) -> Iterator[Path | None]:
    """Mount a tmpfs of ``size_bytes`` at a new folder in ``where`` (default: a new temporary
    folder), yield it, and unmount it afterwards; yield None where mounting is not allowed."""
    parent = Path(where) if where is not None else Path(tempfile.mkdtemp(prefix="zoo-small-fs-"))
    mount_point = Path(tempfile.mkdtemp(prefix="small-fs-", dir=parent))
    options = f"size={size_bytes},mode=0777" + (",ro" if read_only else "")
    mounted = _mount(options, mount_point)
    try:
        yield mount_point if mounted else None
    finally:
        if mounted:
            _unmount(mount_point)
        mount_point.rmdir()
        if where is None:
            parent.rmdir()


def fill(folder: str | os.PathLike, leave: int) -> Path:
    """Write ``folder/filler.bin`` so that only about ``leave`` bytes stay free; returns the file."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    filler = Path(folder) / FILLER
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@functools.cache
def can_mount() -> bool:
    """Whether this process may mount a tmpfs (checked once, with a real mount)."""
    with small_filesystem(4096) as disk:
        return disk is not None


def run_zoo_refused(code: int, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``zoo ARGS`` in a subprocess where every ``os.fsync`` fails with ``code`` (e.g. ``errno.ENOSPC``)."""
    return subprocess.run([sys.executable, "-c", _REFUSING_ZOO, str(code), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _mount(options: str, mount_point: Path) -> bool:
    if shutil.which("mount") is None:
        return False
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _unmount(mount_point: Path) -> None:
    """Unmount; lazily when something (a killed child) still holds a file open there."""
    if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30, check=True)


@contextlib.contextmanager
def read_only_folder(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """An empty folder the OS refuses to write: a read-only tmpfs, or where mounting is not allowed
    a plain folder in which every ``os.fsync`` fails with EROFS (zoo fsyncs each finished file)."""
    import errno

    with small_filesystem(64 * 1024, tmp_path, read_only=True) as mount:
        if mount is not None:
            yield mount
            return

        def refused(fd: int) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        folder = tmp_path / "ro"
        folder.mkdir()
        monkeypatch.setattr(os, "fsync", refused)
        yield folder

