"""Errors a user can fix. The CLI prints these as one line, without a traceback."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["ZooError", "ZooWarning", "UnknownNameError", "AmbiguousNameError", "PluginError", "close_matches",
           "first_line"]


class ZooError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


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
