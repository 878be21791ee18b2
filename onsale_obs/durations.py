"""Prometheus-style durations (shared by the CLI and spec files): ``90s``, ``5m``, ``1h30m``, ``30d``, ``1w``."""

from __future__ import annotations

import math
import re
from typing import Final

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE: Final = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
#: No on-sale, window or SLO period is longer; anything beyond is a typo (and past year 9999).
MAX_DURATION: Final = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """``"1h30m"`` -> ``5400.0`` seconds; raises ``ValueError`` naming the accepted forms."""
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        raise ValueError(
            f"{text!r} is not a duration; expected a number and a unit (ms, s, m, h, d, w), "
            "for example 90s, 5m, 1h30m or 30d"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than 100 years")
    return seconds


def duration_value(value: object) -> float:
    """A duration from a file: a string such as ``"1h30m"``, or a plain number of seconds.

    Booleans, non-finite numbers and anything outside (0, 100 years] raise ``ValueError``
    saying what was expected.
    """
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"expected a duration such as 250ms, 90s, 5m or 1h30m (or a number of seconds), "
            f"not {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value) or not 0 < value <= MAX_DURATION:
        raise ValueError(f"{value!r} seconds is not a duration above zero and up to 100 years")
    return float(value)


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``; the inverse of :func:`parse_duration` for whole seconds."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
