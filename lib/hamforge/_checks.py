"""Argument checks shared by every room (ValueError naming the argument); no hamforge imports."""

from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_float"]


def check_int(value, name: str, minimum: int | None = None) -> int:
    """``value`` as an int (bools refused), or ValueError ``"<name>: ..."``; optionally ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def check_float(value, name: str, *, positive: bool = False, allow_zero: bool = True) -> float:
    """``value`` as a finite float (bools refused); with ``positive`` also ``> 0`` (``>= 0`` if ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value
