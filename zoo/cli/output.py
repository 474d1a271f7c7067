"""Shared output helpers for commands: rich tables on a terminal, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

__all__ = ["console", "print_table", "print_json", "warn"]


def console(stderr: bool = False) -> Any:
    from rich.console import (
        Console,  # rich costs ~50 ms: only when something is printed
    )

    stream = sys.stderr if stderr else sys.stdout
    # On a terminal rich fits the table to the window; piped output keeps one row per line.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, justify: Sequence[str] = ()) -> None:
    from rich.table import Table  # as above

    table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify=justify[i] if i < len(justify) else "left", overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
