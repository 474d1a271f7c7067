"""Errors a user can fix. The CLI prints these as one line, without a traceback.

Each kind has its own exit status, so scripts can tell them apart:

| code | class | meaning |
| ---- | ----- | ------- |
| 0 | | done |
| 1 | | internal error: a bug in zoo or a plugin (``--debug`` shows it) |
| 2 | :class:`ZooError` | a bad value or input: an option, a file, a name |
| 3 | :class:`OutputError` | cannot write: disk full, read-only, permission denied |
| 4 | :class:`ResourceError` | the hardware: no such GPU, out of memory |
| 5 | :class:`BusyError` | another zoo run is using the output folder |
| 130 | | interrupted (Ctrl-C); training saved a resumable state |
"""

from __future__ import annotations

import difflib
import errno
import os
import re
from collections.abc import Iterable

__all__ = ["ZooError", "ZooWarning", "UnknownNameError", "AmbiguousNameError", "PluginError", "OutputError",
           "ResourceError", "BusyError", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "close_matches", "first_line",
           "os_errno", "write_error", "NO_ROOM", "REFUSED"]

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class ZooError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class OutputError(ZooError):
    """A file could not be written: disk full, read-only file system, permission denied."""

    exit_code = 3


class ResourceError(ZooError):
    """The hardware cannot do what was asked: no such GPU, out of memory."""

    exit_code = 4


class BusyError(ZooError):
    """Another zoo run holds the output folder's lock."""

    exit_code = 5


class ZooWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI prints one line."""


class UnknownNameError(ZooError, KeyError):
    """A model or dataset name that no catalog declares."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AmbiguousNameError(ZooError):
    """Two catalogs declare the same name; the message says how to pick one."""


class PluginError(ZooError):
    """A plugin that cannot be loaded (raised only with ZOO_STRICT_PLUGINS=1 or on use)."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ' Did you mean: a, b?' for the nearest candidates, or ''."""
    candidates = list(candidates)
    matches = difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)
    if not matches:
        lowered = word.lower()
        matches = [c for c in candidates if lowered in c.lower()][:n]
    return f" Did you mean: {', '.join(matches)}?" if matches else ""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one line (no colour codes, at most ``limit`` characters), or its
    type's name: what a library's error contributes to a :class:`ZooError`."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


#: error numbers of a disk with no room for a write: full, over quota, file too large
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
#: error numbers of a disk refusing a write (no room, read-only, permission denied), for code that
#: must tell them apart from other OS errors, such as a download's network errors
REFUSED = NO_ROOM | {errno.EROFS} | _DENIED


def os_errno(exc: BaseException) -> int | None:
    """The operating system's error number behind ``exc``: an ``OSError``'s, or one a library
    reports as text (safetensors: ``IoError(Os { code: 28, ... })``)."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = re.search(r"\bcode: (\d+)\b|\[Errno (\d+)\]|os error (\d+)", str(exc))
    return int(next(g for g in found.groups() if g)) if found else None


def write_error(path: str | os.PathLike, exc: BaseException, *, elsewhere: str = "--out") -> OutputError:
    """The one line for a failed write of ``path``: what happened and what to do (``elsewhere``: the
    option or setting that picks another place)."""
    code = os_errno(exc)
    where = f"'{path}'"
    if code in NO_ROOM:
        return OutputError(f"no space left to write {where} ({os.strerror(code)}): free some space or "
                           f"write somewhere else ({elsewhere})")
    if code == errno.EROFS:
        return OutputError(f"cannot write {where}: the file system is read-only; write somewhere else ({elsewhere})")
    if code in _DENIED:
        return OutputError(f"cannot write {where}: permission denied; write somewhere else ({elsewhere}) "
                           f"or change the folder's permissions")
    return OutputError(f"cannot write {where}: {os.strerror(code) if code else first_line(exc)}")
