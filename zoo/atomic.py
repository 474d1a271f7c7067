"""Atomic file writes: a temporary file in the target's folder, then one rename.

Readers never see half a file, and the final file gets the permissions a plain ``open()``
would give (``0o666 & ~umask``, typically 0644) rather than :func:`tempfile.mkstemp`'s 0600.
Every zoo writer goes through here, so durability (fsync) and locking belong here too.
Standard library only (no torch), so any module can use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "default_mode", "publish"]

_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it in /proc."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # set and restore; a restrictive probe value if another thread creates a file meanwhile
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def default_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666 & ~umask``."""
    return 0o666 & ~_umask()


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, mode: int | None = None) -> Path:
    """Give the finished temporary file ``tmp`` ``mode`` (default :func:`default_mode`) and rename it to ``path``."""
    os.chmod(tmp, default_mode() if mode is None else mode)
    os.replace(tmp, path)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; write it, and on success it becomes ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. The folder must exist.
    ``mode`` defaults to :func:`default_mode`. Usage::

        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, path, mode=mode)
    finally:
        tmp.unlink(missing_ok=True)
