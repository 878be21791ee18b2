"""What an exit-rate controller reads (``Signals``) and what it answers (``Recommendation``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, TypeAlias

#: What a recommendation does to the rate: ``decay`` is the slow walk down to the safe rate
#: while the signals are out; ``hold`` keeps the current rate (bounds may still clamp it).
Action: TypeAlias = Literal["hold", "increase", "decrease", "decay"]
ACTIONS: tuple[Action, ...] = ("hold", "increase", "decrease", "decay")


@dataclass(frozen=True, slots=True)
class Signals:
    """One reading of the on-sale's health, taken at ``time``.

    Every field but ``time`` and ``current_rate`` may be ``None`` (not known: Prometheus
    down, no requests in the window, a series missing); the controller never raises the
    rate on a reading it lacks. Values that are not finite numbers count as missing.

    Attributes:
        time: seconds on any clock (only differences matter); the controller has no clock
            of its own.
        current_rate: the exit rate the waiting room applies now, users per minute.
        burn_short: on-sale error-budget burn rate over the short window (1m by default).
        burn_long: the same over the long window (5m by default).
        latency_p95: 95th percentile of checkout latency over the latency window, seconds.
        latency_threshold: the on-sale latency SLO threshold, seconds.
        queue_length: users waiting in the waiting room.
        utilisation: busy share of the checkout backend, 0..1 (optional).
        arrivals: users joining the waiting room per minute (optional, for the reason text).
        observed_at: time of the newest data point behind these values (optional; with it
            the controller can tell a stale reading from a fresh one).
        shared_burn: short-window burn of every on-sale request of the service, all events
            together (optional: where several events share one service). While it is at the
            alert threshold and this event's own burn is within a probe's limit, latency
            breaking or the backend filling is read as another event's failure loading the
            service (its retries): the controller holds rather than cuts.
    """

    time: float
    current_rate: float
    burn_short: float | None = None
    burn_long: float | None = None
    latency_p95: float | None = None
    latency_threshold: float | None = None
    queue_length: float | None = None
    utilisation: float | None = None
    arrivals: float | None = None
    observed_at: float | None = None
    shared_burn: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field, ``None`` as ``null``; non-finite numbers as ``null`` too."""
        return {f.name: _finite(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """An exit rate and why.

    Attributes:
        rate: recommended exit rate, users per minute, within the controller's bounds.
        reason: one line a person can act on, e.g. ``burn 18x/15x over 1m/5m >= 14.4x: -40%``.
        action: ``increase``, ``decrease``, ``hold`` or ``decay``.
        previous_rate: the rate the decision started from (``signals.current_rate``).
        time: ``signals.time``.
        signals: the reading the decision used.
        capacity_estimate: the controller's estimate of the backend's capacity as an exit
            rate (users/min at full utilisation), when it has one.
    """

    rate: float
    reason: str
    action: Action
    previous_rate: float
    time: float
    signals: Signals
    capacity_estimate: float | None = None

    @property
    def change(self) -> float:
        """Relative change of the rate, e.g. ``-0.4`` for a 40% cut (0 from a zero rate)."""
        if self.previous_rate <= 0:
            return 0.0
        return self.rate / self.previous_rate - 1.0

    def to_json(self) -> dict[str, Any]:
        """``time``, ``rate``, ``previous_rate``, ``change``, ``action``, ``reason``,
        ``capacity_estimate``, ``signals``."""
        return {
            "time": self.time,
            "rate": self.rate,
            "previous_rate": _finite(self.previous_rate),
            "change": self.change,
            "action": self.action,
            "reason": self.reason,
            "capacity_estimate": self.capacity_estimate,
            "signals": self.signals.to_json(),
        }


class RateController(Protocol):
    """Anything that turns signals into an exit rate: ours, the baselines, a harness's own."""

    def recommend(self, signals: Signals) -> Recommendation:
        """The exit rate to apply now, with the reason."""
        ...


def usable(value: float | None) -> float | None:
    """``value`` if it is a finite, non-negative number, else ``None`` (treated as missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
