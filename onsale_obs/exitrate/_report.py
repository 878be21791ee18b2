"""What a simulated run is judged on: drain time against the physical limit, good SLO minutes,
failed checkouts, overshoot and oscillation.

- **Physical limit**: the earliest the waiting room could be empty if users were admitted at
  exactly the backend's real capacity (Little's law: checkouts/s x 60 / checkouts per user),
  the capacity a user meets being the one a median browse time after admission. A fluid
  queue with the scenario's arrivals; no controller can beat it without overloading.
- **Drain ratio**: time until the last waiting user was admitted / the physical limit.
- **SLO minute**: a 1-minute window with at least one checkout request is good when at
  least ``minute_availability`` (99.9%) of its requests succeeded (fewer than 5 failures,
  the on-sale alert rule's guard, never fail a minute) *and* at least
  ``latency_quantile`` (95%) of its successful requests finished within the latency
  threshold (its p95 <= threshold). The share of good minutes runs from the start until
  the last checkout.
- **Peak overshoot**: the largest 1-minute offered load over capacity, minus 1 (0 if the
  backend was never offered more than it could serve).
- **Oscillation**: direction changes of the rate (up then down, or down then up) and its
  total variation (sum of |changes| over the mean rate) until the drain.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from onsale_obs.exitrate._scenario import Scenario
from onsale_obs.exitrate._sim import Run, arrivals_per_second


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of a run, for the SLO and the plot."""

    start: int
    requests: float
    errors: float
    ok_share_fast: float | None
    capacity: float
    good: bool | None

    def to_json(self) -> dict[str, Any]:
        """Keys as named, ``good`` null for a minute without requests."""
        return {
            "start": self.start,
            "requests": round(self.requests, 3),
            "errors": round(self.errors, 3),
            "fast_share": None if self.ok_share_fast is None else round(self.ok_share_fast, 6),
            "capacity": round(self.capacity, 3),
            "good": self.good,
        }


@dataclass(frozen=True, slots=True)
class ControllerResult:
    """How one controller did on one scenario."""

    controller: str
    drain_time: float | None
    physical_limit: float
    slo_minutes: int
    slo_good_minutes: int
    requests: float
    failed: float
    peak_overshoot: float
    direction_changes: int
    rate_variation: float
    admitted: int
    mean_wait: float
    max_wait: float
    minutes: tuple[Minute, ...] = field(repr=False)
    timeline: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def drain_ratio(self) -> float:
        """Drain time / physical limit (infinite when the queue never drained)."""
        if self.drain_time is None:
            return math.inf
        return self.drain_time / self.physical_limit

    @property
    def slo_share(self) -> float:
        """Share of 1-minute windows meeting the on-sale SLO."""
        return self.slo_good_minutes / self.slo_minutes if self.slo_minutes else 1.0

    def dominates(self, other: ControllerResult) -> bool:
        """At least as good on both drain ratio and SLO share, and better on one."""
        a, b = (self.drain_ratio, self.slo_share), (other.drain_ratio, other.slo_share)
        return a[0] <= b[0] and a[1] >= b[1] and a != b

    def to_json(self, *, timeline: bool = True) -> dict[str, Any]:
        """The documented JSON of one controller's run (see README_SECTION.md)."""
        data: dict[str, Any] = {
            "controller": self.controller,
            "drain_time_s": self.drain_time,
            "physical_limit_s": round(self.physical_limit, 3),
            "drain_ratio": None if math.isinf(self.drain_ratio) else round(self.drain_ratio, 4),
            "slo_minutes": self.slo_minutes,
            "slo_good_minutes": self.slo_good_minutes,
            "slo_share": round(self.slo_share, 4),
            "checkout_requests": round(self.requests, 1),
            "failed_checkouts": round(self.failed, 1),
            "peak_overshoot": round(self.peak_overshoot, 4),
            "direction_changes": self.direction_changes,
            "rate_variation": round(self.rate_variation, 4),
            "admitted_users": self.admitted,
            "mean_wait_s": round(float(self.mean_wait), 1),
            "max_wait_s": round(float(self.max_wait), 1),
        }
        if timeline:
            data["timeline"] = list(self.timeline)
            data["minutes"] = [m.to_json() for m in self.minutes]
        return data


def physical_limit(scenario: Scenario) -> float:
    """Seconds until the room could be empty at exactly the real capacity (module docstring)."""
    joined = arrivals_per_second(scenario)
    last_join = max((t for t, n in enumerate(joined) if n), default=0)
    lead = scenario.waiting_room.browse_time.median
    waiting = 0.0
    t = 0
    limit = 100 * len(joined)
    while t < limit:
        if t < len(joined):
            waiting += joined[t]
        per_second = scenario.capacity_rate(t + lead) / 60.0
        if t >= last_join and waiting <= per_second:
            return t + (waiting / per_second if per_second > 0 else 0.0)
        waiting -= per_second
        t += 1
    return float(limit)


def evaluate(run: Run, limit: float | None = None) -> ControllerResult:
    """The metrics of one run (``limit``: the physical limit, computed when not given)."""
    s = run.scenario
    limit = physical_limit(s) if limit is None else limit
    minutes = _minutes(run)
    judged = [m for m in minutes if m.good is not None]
    series = run.series
    end = series.seconds
    drain = run.drain_time if run.drain_time is not None else float(end)
    rates = [tick.rate for tick in run.ticks if tick.t <= drain]
    return ControllerResult(
        controller=run.controller,
        drain_time=run.drain_time,
        physical_limit=limit,
        slo_minutes=len(judged),
        slo_good_minutes=sum(1 for m in judged if m.good),
        requests=series.requests[-1],
        failed=series.errors[-1],
        peak_overshoot=max((m.requests / m.capacity - 1 for m in minutes if m.capacity), default=0)
        if minutes
        else 0.0,
        direction_changes=_direction_changes(rates),
        rate_variation=_variation(rates),
        admitted=run.admitted,
        mean_wait=run.mean_wait,
        max_wait=run.max_wait,
        minutes=tuple(minutes),
        timeline=tuple(
            {
                "t": tick.t,
                "rate": round(tick.rate, 2),
                "capacity_rate": round(tick.capacity_rate, 2),
                "queue": tick.queue,
                "action": tick.action,
                "reason": tick.reason,
            }
            for tick in run.ticks
        ),
    )


def _minutes(run: Run) -> list[Minute]:
    s = run.scenario
    series = run.series
    out = []
    for start in range(0, series.seconds, 60):
        end = min(start + 60, series.seconds)
        span = end - start

        def total(cum: list[float], end: int = end, span: int = span) -> float:
            return series.increase(cum, end, span)

        requests, errors, ok = total(series.requests), total(series.errors), total(series.ok)
        fast_share = total(series.fast) / ok if ok > 0 else None
        good: bool | None = None
        if requests > 0:
            available = (
                errors < s.slo.minute_min_bad_events
                or 1 - errors / requests >= s.slo.minute_availability - 1e-12
            )
            quick = fast_share is not None and fast_share >= s.slo.latency_quantile - 1e-12
            good = available and quick
        out.append(Minute(start, requests, errors, fast_share, total(series.capacity), good))
    return out


def _direction_changes(rates: list[float]) -> int:
    changes, last = 0, 0
    for before, after in itertools.pairwise(rates):
        step = after - before
        if abs(step) <= 1e-9 * max(1.0, abs(before)):
            continue
        sign = 1 if step > 0 else -1
        if last and sign != last:
            changes += 1
        last = sign
    return changes


def _variation(rates: list[float]) -> float:
    if len(rates) < 2:
        return 0.0
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return 0.0
    return sum(abs(b - a) for a, b in itertools.pairwise(rates)) / mean
