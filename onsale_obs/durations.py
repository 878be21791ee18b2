"""The one duration parser of onsale-obs: ``90s``, ``5m``, ``1h30m``, ``30d``, ``1w``.

Command-line options, spec, schedule, scenario and receivers files all read durations here:
:func:`parse_duration` (text), :func:`duration_value` (a value from a file: text or seconds),
:func:`is_duration`, and :func:`prometheus_duration` for values handed on to Prometheus or
Alertmanager, whose own grammar is stricter (whole numbers, units largest first).
"""

from __future__ import annotations

import math
import re
from typing import Final

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE: Final = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
# Prometheus' model.ParseDuration, as Alertmanager reads it: whole numbers, largest unit first
_PROMETHEUS: Final = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?"
)
_PROMETHEUS_UNITS: Final = (365 * 86400.0, 604800.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
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


def is_duration(text: str) -> bool:
    """True when ``text`` has the form of a duration (``30m``, ``1h30m``), whatever its size."""
    return bool(_WHOLE.fullmatch(text.strip().lower()))


def duration_value(value: object, *, zero: bool = False) -> float:
    """A duration from a file: a string such as ``"1h30m"``, or a plain number of seconds.

    Booleans, non-finite numbers and anything outside (0, 100 years] raise ``ValueError``
    saying what was expected; ``zero`` also allows 0 (``0``, ``0s``: an offset).
    """
    if isinstance(value, str):
        if zero and value.strip() in ("0", "0s"):
            return 0.0
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"expected a duration such as 250ms, 90s, 5m or 1h30m (or a number of seconds), "
            f"not {type(value).__name__} {value!r}"
        )
    if zero and value == 0:
        return 0.0
    if not math.isfinite(value) or not 0 < value <= MAX_DURATION:
        lowest = "zero or more" if zero else "above zero"
        raise ValueError(f"{value!r} seconds is not a duration {lowest} and up to 100 years")
    return float(value)


def prometheus_duration(text: str) -> float:
    """Seconds of a duration in Prometheus' and Alertmanager's own grammar (``1h30m``, ``10s``).

    Stricter than :func:`parse_duration`: whole numbers, units ``y w d h m s ms`` largest first
    (``1.5h`` and ``30m1h`` are refused). Raises ``ValueError`` saying so.
    """
    match = _PROMETHEUS.fullmatch(text)
    total = (
        sum(int(n) * u for n, u in zip(match.groups(), _PROMETHEUS_UNITS, strict=True) if n)
        if match and text
        else 0.0
    )
    if total <= 0:
        raise ValueError(
            "expected a duration such as 10s, 5m, 1h or 1h30m (whole numbers, units y w d h m "
            f"s, largest first), got {text!r}"
        )
    return float(total)


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
