"""``--network FILE.py:NAME``: the definition of a checkpoint's network that was written in Python.

A checkpoint of a layer array or a catalog model rebuilds its network itself; one of a
Python network names it only as text, which zoo never imports, so the user gives it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from zoo.cli.types import Text

__all__ = ["network_option"]


def network_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--network", default=None, metavar="FILE.py:NAME", type=Text("FILE.py:NAME"),
        help="For a checkpoint of a network defined in Python: that definition again.")(func)
