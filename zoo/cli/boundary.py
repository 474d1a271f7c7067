"""The error boundary: every failure that reaches the ``zoo`` command becomes one line and an exit code.

:func:`outcome` says what the user reads and which exit status the process ends with (the table
is in :mod:`zoo.errors`). A user's mistake or the environment (a bad value, a missing file, a
full disk, no GPU, no memory) gets the line that says what to do; anything else is a bug and
says so, with ``--debug`` (or ``ZOO_DEBUG=1``) for the traceback.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import click

from zoo.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    NO_ROOM,
    ResourceError,
    ZooError,
    first_line,
    os_errno,
    write_error,
)

__all__ = ["outcome", "DEBUG_FLAG"]

DEBUG_FLAG = "--debug"

_WRITE_ERRNOS = NO_ROOM | {errno.EROFS}  # not EACCES: an untranslated one may as well be a read
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")


def outcome(exc: BaseException, args: list[str]) -> tuple[int, str]:
    """(exit status, the line printed on stderr) for an exception that ended the command ``args``."""
    if isinstance(exc, ZooError):
        return exc.exit_code, f"error: {error_text(exc, args)}"
    if isinstance(exc, click.exceptions.Abort):
        return EXIT_INTERRUPTED, "aborted"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, click.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "zoo"
        return exc.exit_code, f"error: {_sentence(exc.format_message())} See: {command} --help"
    if isinstance(exc, click.ClickException):
        return exc.exit_code, f"error: {_one_line(exc.format_message())}"
    if _out_of_memory(exc):
        batch = "--batch" if _command(args) in ("bench", "export") else "--batch-size"
        error = ResourceError(f"out of memory: lower {batch}, or use a smaller model or images")
        return error.exit_code, f"error: {error}"
    if isinstance(exc, OSError):
        return _os_failure(exc)
    return EXIT_INTERNAL, (f"error: internal error ({type(exc).__name__}: {first_line(exc)}); "
                           f"run again with {DEBUG_FLAG} for the traceback, and report it")


def error_text(exc: ZooError, args: list[str]) -> str:
    """A ZooError's line for the command in ``args``: an error that words its advice per
    command (``for_command``, e.g. :class:`zoo.weights.WeightsUnavailable`) gets the command's name."""
    for_command = getattr(exc, "for_command", None)
    if for_command is None:
        return str(exc)
    command = _command(args)
    return for_command(command) if command else str(exc)


def _command(args: list[str]) -> str | None:
    """The subcommand's name in ``args`` (the first word that is not an option)."""
    return next((a for a in args if not a.startswith("-")), None)


def _os_failure(exc: OSError) -> tuple[int, str]:
    """An OSError no zoo code translated: a write failure is an OutputError, the rest the user's input."""
    code = os_errno(exc)
    name = exc.filename if exc.filename is not None else None
    if code in _WRITE_ERRNOS:
        error = write_error(name if name is not None else "a file", exc)
        return error.exit_code, f"error: {error}"
    reason = os.strerror(code) if code else first_line(exc)
    where = f" '{name}'" if name is not None else ""
    return ZooError.exit_code, f"error: {reason}{':' if where else ''}{where}"


def _out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch.cuda.OutOfMemoryError, or the CPU allocator's RuntimeError (torch stays unimported)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc).lower() for s in _OUT_OF_MEMORY)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _sentence(text: Any) -> str:
    line = _one_line(text)
    return line if line.endswith((".", "?", "!", ")")) else f"{line}."
