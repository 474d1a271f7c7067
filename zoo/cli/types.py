"""Click parameter types for every command: each value is checked while the command line is read.

So a bad value fails before any work starts, as one line that reads after click's prefix:
``Invalid value for '--lr': must be a positive number, not inf``. Numbers are finite (click's
``FloatRange`` lets ``nan`` through: it compares false to every bound). Where the Python API
states a rule (:mod:`zoo.training.options`, :mod:`zoo.export.options`, :mod:`zoo.bench`,
:mod:`zoo.data.augment`, :mod:`zoo.data.split`), the type asks that rule, so the command and
the API refuse the same values with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from zoo import values
from zoo.card import MAX_CLASSES, MAX_SIDE
from zoo.errors import ZooError
from zoo.values import MAX_SEED

__all__ = ["Checked", "Text", "NonEmptyPath", "InputSize", "size_pair", "whole", "positive", "api_rule", "MAX_SEED",
           "COUNT", "SEED", "CLASSES", "CHANNELS", "ENDPOINT", "NNODES", "AUGMENT", "SPLIT_OR_COUNT"]


Problem = Callable[[Any], "str | None"]


def _as_int(text: str) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        return text  # the rule says what it should have been


def _as_float(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _as_number(text: str) -> float | int | str:
    """Digits as a whole count, anything else as a float (``--split 50`` or ``--split 0.75``)."""
    return int(text) if text.strip().isdigit() else _as_float(text)


class Checked(click.ParamType):
    """Text parsed by ``parse`` (text that is no number stays text), then checked by ``problem``,
    which returns what is wrong (``"must be ..., not ..."``) or None."""

    def __init__(self, name: str, problem: Problem, parse: Callable[[str], Any] = str) -> None:
        self.name = name
        self.problem = problem
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        parsed = self.parse(value) if isinstance(value, str) else value
        problem = self.problem(parsed)
        if problem:
            self.fail(problem, param, ctx)
        return parsed


def whole(low: int, high: int | None = None) -> Checked:
    """A whole number from ``low`` (to ``high``)."""
    requirement = f"a whole number from {low} " + (f"to {high}" if high is not None else "up")

    def problem(value: Any) -> str | None:
        ok = isinstance(value, int) and values.whole(value, low, math.inf if high is None else high) is not None
        return None if ok else f"must be {requirement}, not {values.shown(value)}"

    return Checked("integer", problem, _as_int)


def positive(high: float = math.inf, unit: str = "") -> Checked:
    """A finite number above 0 (up to ``high``)."""
    requirement = f"a positive number{' of ' + unit if unit else ''}" + (f" up to {high:,.0f}" if high < math.inf else "")

    def problem(value: Any) -> str | None:
        ok = values.real(value) is not None and 0 < value <= high
        return None if ok else f"must be {requirement}, not {values.shown(value)}"

    return Checked("float", problem, _as_float)


def api_rule(rules: Callable[[], Callable[[str, Any], str | None]], name: str, kind: str = "float") -> Checked:
    """The Python API's own rule for its option ``name``: ``rules()(name, value)``.

    ``rules`` returns an API module's ``option_problem``, importing it when a value is checked
    (some modules import torch), never for ``zoo CMD --help``. ``kind`` (float, integer or
    text) says how the text is read first.
    """
    parse = {"float": _as_float, "integer": _as_int}.get(kind, str)

    def problem(value: Any) -> str | None:
        return rules()(name, value)

    return Checked(kind, problem, parse)


class Text(click.ParamType):
    """Text that is not empty (an empty ``--out ""`` would mean the current folder)."""

    name = "text"

    def __init__(self, what: str = "a value") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"must be {self.what}, not {value!r}", param, ctx)
        return value


class NonEmptyPath(click.Path):
    """:class:`click.Path` that refuses empty text (``Path("")`` is the current folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"must be a path, not {value!r}", param, ctx)
        return super().convert(value, param, ctx)


class InputSize(click.ParamType):
    """``28`` or ``224x224``, each side 1 to the card's largest: written back as ``HxW`` (text, so
    that ``--nproc`` can hand it to its workers); :func:`size_pair` reads it."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        parts = str(value).lower().replace("×", "x").split("x")
        if 1 <= len(parts) <= 2 and all(p.strip().isdigit() and 1 <= int(p) <= MAX_SIDE for p in parts):
            return f"{int(parts[0])}x{int(parts[-1])}"
        self.fail(f"must be a size like 28 or 224x224, 1 to {MAX_SIDE} pixels a side, not {value!r}", param, ctx)


def size_pair(text: str) -> tuple[int, int]:
    """(height, width) of an :class:`InputSize` value ``HxW``."""
    height, width = text.split("x")
    return int(height), int(width)


def _endpoint_problem(value: Any) -> str | None:
    host, _, port = str(value).rpartition(":")
    ok = bool(host.strip("[] ")) and port.isdigit() and 1 <= int(port) <= 65535
    return None if ok else f"must be HOST:PORT with a port from 1 to 65535, not {value!r}"


def _nnodes_problem(value: Any) -> str | None:
    from zoo.distributed.launch import parse_nnodes  # torch: only when --nnodes is given

    try:
        parse_nnodes(value)
    except ZooError:
        return f"must be a number of machines N or a range MIN:MAX with 0 < MIN <= MAX, not {value!r}"
    return None


def _augment_problem(value: Any) -> str | None:
    from zoo.data.augment import augment_problem  # zoo.data brings numpy: only when --augment is read

    return augment_problem(value)


def _split_problem(value: Any) -> str | None:
    from zoo.data.split import check_fraction  # numpy: only when --split is given

    try:
        check_fraction(value)
    except ZooError:
        return (f"must be a number between 0 and 1 (the fraction of each label, 0.75) or a whole count "
                f"per label (50), not {values.shown(value)}")
    return None


COUNT = whole(1)
SEED = whole(0, MAX_SEED)
CLASSES = whole(1, MAX_CLASSES)
CHANNELS = Checked("integer", lambda v: None if v in (1, 3) and not isinstance(v, bool) else
                   f"must be 1 (grayscale) or 3 (RGB), not {values.shown(v)}", _as_int)
ENDPOINT = Checked("host:port", _endpoint_problem)
NNODES = Checked("n|min:max", _nnodes_problem)
AUGMENT = Checked("text", _augment_problem)
SPLIT_OR_COUNT = Checked("f", _split_problem, _as_number)
