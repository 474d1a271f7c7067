"""Writes that survive: every zoo file is written whole and durably, or not at all.

A write goes to a temporary ``.NAME.PID.RANDOM.tmp`` beside the target, is fsynced, renamed in one
step and the folder fsynced, so after a crash the target is the old file or the new one, whole;
it gets the permissions a plain ``open()`` gives (``0o666 & ~umask``), not ``mkstemp``'s 0600.
A failed write (any ``OSError``, or a library's error carrying an OS error code) raises the
one-line :class:`~zoo.errors.OutputError` naming the final path and leaves nothing behind.
:func:`clean_stale` removes what killed writers left; :func:`folder_lock` keeps a second zoo run
out of a folder in use. Standard library only (no torch), so any module can use it.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from zoo.errors import REFUSED, BusyError, ZooError, os_errno, write_error

try:
    import fcntl
except ImportError:  # Windows: folder_lock is a no-op there
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_path", "atomic_dir", "write_file", "publish", "fsync", "new_temp", "is_write_failure", "default_mode",
           "default_dir_mode", "clean_stale", "folder_lock", "LOCK_FILE", "REFUSED", "STALE_AGE_S"]

#: a temporary this old is stale even when its name has no PID, or a live process has that PID now
STALE_AGE_S = 24 * 3600
#: the hidden file :func:`folder_lock` locks; it holds the PID of the run that has the folder
LOCK_FILE = ".zoo.lock"

_NAME_CHARS = 120  # of the target's name kept in a temporary's name: room for .PID.RANDOM.tmp under 255
_NO_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}  # a file system that cannot fsync
_NO_DIR_FSYNC = _NO_FSYNC | {errno.EACCES, errno.EPERM, errno.EISDIR, errno.EBADF}
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


def default_dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: ``0o777 & ~umask``."""
    return 0o777 & ~_umask()


def new_temp(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Create an empty temporary file (or folder) ``.NAME.PID.RANDOM.tmp`` beside ``path``; raises OSError."""
    path = Path(path)
    prefix = f".{path.name[:_NAME_CHARS]}.{os.getpid()}."
    if folder:
        return Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".tmp"))
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    return Path(name)


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, mode: int | None = None) -> Path:
    """Make the finished temporary ``tmp`` durable and rename it to ``path``.

    ``tmp`` is fsynced, given ``mode`` (default: what ``open()`` or ``mkdir`` would give), renamed,
    and ``path``'s folder is fsynced. ``tmp`` may be a folder (only its entries are fsynced, not the
    files in it). Raises the ``OSError``; :func:`atomic_path` and :func:`atomic_dir` translate it.
    """
    tmp, path = Path(tmp), Path(path)
    is_folder = tmp.is_dir()
    fsync(tmp)
    os.chmod(tmp, mode if mode is not None else default_dir_mode() if is_folder else default_mode())
    os.replace(tmp, path)
    fsync(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None, elsewhere: str = "--out") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; write it, and on success it becomes ``path``.

    On an exception the temporary is removed and ``path`` is untouched; a failed write is raised as
    the one-line :class:`OutputError` naming ``path`` (and ``elsewhere``, the option that picks another
    place). A missing folder is made. Usage::

        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    """
    path = Path(path)
    with _temporary(path, folder=False, elsewhere=elsewhere) as tmp:
        yield tmp
        publish(tmp, path, mode=mode)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` for an output of several files.

    Move the finished files out with ``publish(tmp / NAME, FINAL)`` (or the whole folder with
    ``publish(tmp, path)``); whatever is left is removed on exit, and a failed write is raised as
    the one-line :class:`OutputError` naming ``path``. A missing parent folder is made.
    """
    with _temporary(Path(path), folder=True) as tmp:
        yield tmp


def write_file(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` durably and atomically; see :func:`atomic_path`."""
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised while writing, is the operating system refusing the write: any
    ``OSError``, or another library's error whose text carries a refusal's code or EIO (safetensors:
    ``os error 28``); not a :class:`ZooError`, nor other text that happens to hold ``code: N``."""
    if isinstance(exc, ZooError) or not isinstance(exc, Exception):
        return False
    return isinstance(exc, OSError) or os_errno(exc) in REFUSED | {errno.EIO}


@contextlib.contextmanager
def _temporary(path: Path, *, folder: bool, elsewhere: str = "--out") -> Iterator[Path]:
    """A new temporary beside ``path``, removed on exit; a failed write in the block names ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temp(path, folder=folder)
        try:
            yield tmp
        finally:
            _remove(tmp)
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        raise write_error(path, exc, elsewhere=elsewhere) from exc


def fsync(path: str | os.PathLike) -> None:
    """Flush the written file ``path`` (or a folder's entries) to disk; a folder only where the OS
    allows (not on Windows, nor some file systems). Raises the ``OSError``."""
    folder = os.path.isdir(path)
    if folder and os.name == "nt":
        return
    flags = os.O_RDONLY if folder or os.name != "nt" else os.O_RDWR  # Windows flushes only writable handles
    try:
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in (_NO_DIR_FSYNC if folder else _NO_FSYNC):
            raise


def _remove(path: Path) -> None:
    """Remove a temporary file or folder, quietly: a leftover is clean_stale's to take."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


_PARTIAL = r"(?:\.[0-9a-f]{32}\.partial)?"  # torch.hub downloads to DEST.HEX.partial first
_STALE_PATTERNS = (
    re.compile(rf"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{{8}}\.tmp{_PARTIAL}$"),  # new_temp's
    re.compile(rf"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?:tmp|part){_PARTIAL}$"),  # older zoo: .NAME.PID.tmp, .part
    re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$"),  # older make-digits
    re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$"),  # older atomic_path (mkstemp, no PID): by age
)


def clean_stale(folder: str | os.PathLike, *, only: str | None = None) -> list[Path]:
    """Remove the temporaries zoo writers left in ``folder`` (not below it) when they were killed.

    A temporary goes when its writer's PID is not running on this host, or when it is older than
    :data:`STALE_AGE_S` (a name without a PID; a PID reused since, as in a restarted container).
    ``only``: just the temporaries of that final name. Nothing else is touched; returns what went.
    Where other hosts write into the same folder, call it while holding :func:`folder_lock`.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if entry.is_symlink() or not _is_stale(entry, now, only):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _is_stale(entry: os.DirEntry, now: float, only: str | None) -> bool:
    for pattern in _STALE_PATTERNS:
        found = pattern.match(entry.name)
        if found is None:
            continue
        if only is not None and found["name"] != only[:_NAME_CHARS]:
            return False
        if "pid" in pattern.groupindex and _pid_alive(int(found["pid"])) is False:
            return True
        with contextlib.suppress(OSError):
            return now - entry.stat(follow_symlinks=False).st_mtime > STALE_AGE_S
        return False
    return False


def _pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this host; None where that cannot be told."""
    if os.name == "nt":
        return None  # os.kill there would end the process, not probe it
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, ValueError):
        return False  # no such PID can exist
    except OSError:
        return None
    return True


_held: dict[str, list[int]] = {}  # real path -> [lock fd, depth]: the same process may lock again
_held_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process; another zoo run gets :class:`BusyError` at once.

    An advisory ``flock`` on ``folder/.zoo.lock``, which records the holder's PID. The operating
    system drops it when the process ends, however it ends, so a killed run never blocks the next.
    Re-entrant within a process; a no-op where ``fcntl`` is missing or the file system has no locks.
    """
    folder = Path(folder)
    key = _acquire(folder)
    try:
        yield folder
    finally:
        _release(key)


def _acquire(folder: Path) -> str | None:
    """Lock ``folder``; its key in ``_held``, or None when nothing was locked."""
    if fcntl is None:
        return None
    lock_file = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(folder)
        with _held_guard:
            if key in _held:
                _held[key][1] += 1
                return key
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, default_mode())
    except OSError as exc:
        raise write_error(folder, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        pid = f" (pid {holder})" if holder else ""
        raise BusyError(f"'{folder}' is in use by another zoo run{pid}: wait for it to finish or give "
                        "another --out") from None
    except OSError:  # ENOLCK, EOPNOTSUPP: a file system without locks; go on unlocked
        os.close(fd)
        return None
    with contextlib.suppress(OSError):  # the PID is for the message only
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    with _held_guard:
        _held[key] = [fd, 1]
    return key


def _release(key: str | None) -> None:
    if key is None:
        return
    with _held_guard:
        held = _held[key]
        held[1] -= 1
        if held[1]:
            return
        del _held[key]
    fd = held[0]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    return None


def _forget_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): close the inherited lock files, so that a child
    outliving a killed parent does not keep the folder locked (closing a copy keeps the parent's lock)."""
    global _held_guard
    _held_guard = threading.Lock()  # another thread may have held it at the fork
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_locks)
