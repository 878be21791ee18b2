"""The report: plain objects with the stable JSON of DESIGN.md ("SLO report JSON").

Per SLO and mode: ``objective``, ``total``, ``good``, ``bad``, ``sli``, ``budget_allowed_bad``,
``budget_consumed``, ``budget_remaining``, ``burn_rates`` (by window), ``alert``
(``priority``, ``firing``); and per SLO a list ``onsales`` with ``scope``, ``start``, ``end``,
``total``, ``bad``, ``sli``, ``budget_consumed``. Fractions are fractions (``0.999``, and a
consumed budget of ``1.5`` means 150%); ``null`` means "no data", never 100%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from onsale_obs.durations import format_duration
from onsale_obs.modes._model import OnSaleWindow, iso
from onsale_obs.slo._spec import SLO, Priority, severity_of
from onsale_obs.types import Mode

Status = Literal["no data", "ok", "breached", "burning"]


def number(value: float | None) -> float | int | None:
    """A count or ratio for JSON: whole counts as integers, no NaN or infinity."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One alert rule of a mode's policy, evaluated now."""

    name: str
    priority: Priority
    long: float
    short: float
    burn_rate: float
    long_burn: float | None
    short_burn: float | None
    long_bad: float
    min_bad_events: int
    firing: bool

    def to_json(self) -> dict[str, Any]:
        """The rule's JSON object."""
        return {
            "name": self.name,
            "priority": self.priority,
            "severity": severity_of(self.priority),
            "long": format_duration(self.long),
            "short": format_duration(self.short),
            "burn_rate_threshold": self.burn_rate,
            "long_burn_rate": number(self.long_burn),
            "short_burn_rate": number(self.short_burn),
            "long_bad": number(self.long_bad),
            "min_bad_events": self.min_bad_events,
            "firing": self.firing,
        }


@dataclass(frozen=True, slots=True)
class ModeResult:
    """One mode of one SLO over its window."""

    mode: Mode
    objective: float
    total: float
    good: float
    burn_rates: dict[float, float | None]
    rules: tuple[RuleResult, ...]
    note: str | None = None
    #: cumulative (time, total, good) at the end of each part of the window (``bins``)
    burn_down: tuple[tuple[float, float, float], ...] = ()

    @property
    def bad(self) -> float:
        """Events that were not good."""
        return self.total - self.good

    @property
    def has_data(self) -> bool:
        """False when the mode saw no events at all (then there is no SLI)."""
        return self.total > 0

    @property
    def sli(self) -> float | None:
        """Good / total, or None without data."""
        return self.good / self.total if self.has_data else None

    @property
    def allowed_bad(self) -> float | None:
        """Bad events the objective allows for this window's traffic."""
        return self.total * (1 - self.objective) if self.has_data else None

    @property
    def budget_consumed(self) -> float | None:
        """Share of the budget spent (1.0 = all of it; more = overspent)."""
        allowed = self.allowed_bad
        return self.bad / allowed if allowed else None

    @property
    def budget_remaining(self) -> float | None:
        """1 - consumed (negative once overspent)."""
        consumed = self.budget_consumed
        return None if consumed is None else 1 - consumed

    @property
    def alert(self) -> RuleResult | None:
        """The most urgent firing rule, or None."""
        firing = [r for r in self.rules if r.firing]
        return min(firing, key=lambda r: r.priority) if firing else None

    @property
    def status(self) -> Status:
        """``burning`` (an alert fires), ``breached`` (SLI below objective), ``ok``, ``no data``."""
        if self.alert is not None:
            return "burning"
        sli = self.sli
        if sli is None:
            return "no data"
        return "breached" if sli < self.objective else "ok"

    def to_json(self) -> dict[str, Any]:
        """The mode's JSON object (keys are a contract)."""
        alert = self.alert
        return {
            "objective": self.objective,
            "total": number(self.total),
            "good": number(self.good),
            "bad": number(self.bad),
            "sli": number(self.sli),
            "budget_allowed_bad": number(self.allowed_bad),
            "budget_consumed": number(self.budget_consumed),
            "budget_remaining": number(self.budget_remaining),
            "burn_rates": {format_duration(w): number(b) for w, b in self.burn_rates.items()},
            "alert": {
                "priority": None if alert is None else alert.priority,
                "severity": None if alert is None else severity_of(alert.priority),
                "rule": None if alert is None else alert.name,
                "firing": alert is not None,
            },
            "status": self.status,
            "budget_requests": self._budget_requests(),
            "rules": [r.to_json() for r in self.rules],
            "note": self.note,
            "burn_down": [self._burn_point(*p) for p in self.burn_down],
        }

    def _budget_requests(self) -> dict[str, Any]:
        """The budget counted in requests: allowed bad, spent (bad) and left (may be negative)."""
        allowed = self.allowed_bad
        return {
            "allowed": number(allowed),
            "spent": number(self.bad) if self.has_data else None,
            "left": None if allowed is None else number(allowed - self.bad),
        }

    def _burn_point(self, end: float, total: float, good: float) -> dict[str, Any]:
        """Budget left at ``end``: bad so far against the whole window's allowance."""
        allowed = self.allowed_bad
        return {
            "end": iso(end),
            "total": number(total),
            "bad": number(total - good),
            "budget_remaining": number(1 - (total - good) / allowed) if allowed else None,
        }


@dataclass(frozen=True, slots=True)
class OnSaleResult:
    """How one on-sale window went for one SLO."""

    window: OnSaleWindow
    total: float
    good: float
    budget_allowed_bad: float | None
    peak_rps: float | None
    end: float
    #: set when this on-sale began before the SLO window: the whole on-sale's figures, while
    #: this result counts only the part inside the window (so rows add up to the mode total)
    whole: OnSaleResult | None = None

    @property
    def clipped(self) -> bool:
        """True when the on-sale straddles the SLO window's start and is counted inside only."""
        return self.whole is not None

    @property
    def bad(self) -> float:
        """Events that were not good."""
        return self.total - self.good

    @property
    def sli(self) -> float | None:
        """Good / total, or None when the window saw none of the SLO's events."""
        return self.good / self.total if self.total > 0 else None

    @property
    def budget_consumed(self) -> float | None:
        """Share of the SLO window's whole on-sale budget this one on-sale spent."""
        return self.bad / self.budget_allowed_bad if self.budget_allowed_bad else None

    def to_json(self) -> dict[str, Any]:
        """The window's JSON object (keys are a contract)."""
        return {
            "scope": self.window.scope,
            "event": self.window.event,
            "start": iso(self.window.start),
            "end": iso(self.end),
            "ongoing": self.window.end is None,
            "total": number(self.total),
            "good": number(self.good),
            "bad": number(self.bad),
            "sli": number(self.sli),
            "budget_consumed": number(self.budget_consumed),
            "peak_rps": number(self.peak_rps),
            "reason": self.window.reason,
            "source": self.window.source,
            "clipped": self.clipped,
            "whole": None if self.whole is None else self.whole.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SLOResult:
    """One SLO: both modes and its on-sales."""

    slo: SLO
    window_start: float
    window_end: float
    modes: dict[Mode, ModeResult]
    onsales: tuple[OnSaleResult, ...]

    @property
    def onsale_outside_windows(self) -> float | None:
        """On-sale-mode requests that no listed on-sale window counted (None: none listed).

        The mode counts every request served in on-sale mode in ``(window start, end]``; a
        window counts its requests finished in ``(start, end + grace]``. Requests at the very
        instant an on-sale began, or after an on-sale's grace, fall between the two.
        """
        if not self.onsales or self.modes["onsale"].note is not None:
            return None
        return self.modes["onsale"].total - sum(o.total for o in self.onsales)

    @property
    def failing(self) -> bool:
        """True when a mode is breached or burning (the CLI then exits 1)."""
        return any(m.status in ("breached", "burning") for m in self.modes.values())

    def to_json(self) -> dict[str, Any]:
        """The SLO's JSON object."""
        return {
            "name": self.slo.name,
            "service": self.slo.service,
            "description": self.slo.description,
            "sli_type": self.slo.sli.type,
            "window": {
                "start": iso(self.window_start),
                "end": iso(self.window_end),
                "length": format_duration(self.window_end - self.window_start),
                "calendar_month": self.slo.calendar_month,
            },
            "modes": {mode: result.to_json() for mode, result in self.modes.items()},
            "onsales": [o.to_json() for o in self.onsales],
            "onsale_outside_windows": number(self.onsale_outside_windows),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Every SLO evaluated at one moment from one source."""

    at: float
    origin: str
    slos: tuple[SLOResult, ...]
    exact_onsale: bool = True
    warnings: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        """True when any SLO is breached or an alert would fire."""
        return any(s.failing for s in self.slos)

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON (``slo report --format json``)."""
        return {
            "version": 1,
            "at": iso(self.at),
            "source": self.origin,
            "exact_onsale_counts": self.exact_onsale,
            "slos": [s.to_json() for s in self.slos],
            "skipped": dict(self.skipped),
            "warnings": list(self.warnings),
            "failing": self.failing,
        }
