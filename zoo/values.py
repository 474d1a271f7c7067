"""Option values as users give them: what counts as a number, and how a refused value is shown.

The one vocabulary behind every option rule (:mod:`zoo.training.options`, :mod:`zoo.export.options`,
:mod:`zoo.bench`, the command line's :mod:`zoo.cli.types`): a number is a real, finite one — not
text, not a bool, not nan or inf. Standard library only.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = ["MAX_SEED", "real", "whole", "shown"]

#: seeds run from 0 to this, as MATLAB's ``rng`` (numpy's generators refuse negative seeds)
MAX_SEED = 2**32 - 1


def real(value: Any) -> float | None:
    """``value`` as a finite float, or None (text, bools, nan and inf are no numbers)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return None
    return float(value)


def whole(value: Any, low: float = -math.inf, high: float = math.inf) -> int | None:
    """``value`` as an int within [low, high] (an int or a whole float), or None."""
    number = real(value)
    if number is None or not (isinstance(value, Integral) or number.is_integer()) or not low <= number <= high:
        return None
    return int(number)


def shown(value: Any) -> str:
    """A refused value as the message quotes it: ``inf``, ``'abc'``, ``-1``."""
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)
