"""The SLO spec as plain, frozen objects: what the engine, the sources and the generators read.

A spec file is YAML (validated by :mod:`onsale_obs.slo._spec_model`)::

    slos:
      - name: checkout-availability
        service: checkout
        description: Pressing "buy" gets a ticket.
        sli:
          type: availability        # bad = a status class in bad_codes (default 5xx)
          routes: ["/events/{event_id}/checkout"]
          methods: [POST]
        objectives: {normal: 99.9, onsale: 99.99}   # percent
        window: 30d                 # rolling; or `month` for the calendar month (UTC)
      - name: checkout-latency
        service: checkout
        sli:
          type: latency             # good = finished within the threshold of its mode
          threshold: {normal: 250ms, onsale: 1s}
        objectives: {normal: 99, onsale: 99}

See the README ("SLO spec") for every field and the alert-policy defaults in ``_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from onsale_obs.types import Mode

MODES: Final[tuple[Mode, Mode]] = ("normal", "onsale")
Priority = Literal["P1", "P2", "P3", "P4"]


def severity_of(priority: Priority) -> Literal["page", "ticket"]:
    """``P1``/``P2`` page a person (P2 only in business hours); ``P3``/``P4`` open a ticket."""
    return "page" if priority in ("P1", "P2") else "ticket"


@dataclass(frozen=True, slots=True)
class Selector:
    """Which requests of the service an SLI counts: empty tuples mean "all"."""

    service: str
    routes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()

    def matches(self, service: str, route: str, method: str) -> bool:
        """True when a request (or series) with these labels belongs to the SLI."""
        return (
            service == self.service
            and (not self.routes or route in self.routes)
            and (not self.methods or method in self.methods)
        )


@dataclass(frozen=True, slots=True)
class AvailabilitySLI:
    """Good = the status class is not in ``bad_codes`` (default ``5xx``)."""

    selector: Selector
    bad_codes: frozenset[str] = frozenset({"5xx"})
    type: Literal["availability"] = "availability"


@dataclass(frozen=True, slots=True)
class LatencySLI:
    """Good = finished within ``threshold[mode]`` seconds (a histogram bucket boundary)."""

    selector: Selector
    threshold: dict[Mode, float]
    type: Literal["latency"] = "latency"
    #: the service's histogram boundaries per mode when they are not ``DEFAULT_BUCKETS``
    buckets: dict[Mode, tuple[float, ...]] | None = None


@dataclass(frozen=True, slots=True)
class PromQLSLI:
    """Counter selectors for anything else; each series must carry a ``mode`` label."""

    good: str
    total: str
    type: Literal["promql"] = "promql"


SLI = AvailabilitySLI | LatencySLI | PromQLSLI


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One multiwindow burn-rate alert: fires when both windows burn at ``burn_rate`` or more
    and the long window holds at least ``min_bad_events`` bad events."""

    name: str
    long: float
    short: float
    burn_rate: float
    priority: Priority
    min_bad_events: int

    @property
    def severity(self) -> Literal["page", "ticket"]:
        """``page`` or ``ticket``, from the priority."""
        return severity_of(self.priority)


@dataclass(frozen=True, slots=True)
class SLO:
    """One service level objective with an objective and an alert policy per mode."""

    name: str
    service: str
    sli: SLI
    objectives: dict[Mode, float]  # fractions, e.g. 0.999
    policy: dict[Mode, tuple[AlertRule, ...]]
    description: str = ""
    window: float = 30 * 86400.0
    calendar_month: bool = False
    runbook: str | None = None

    def windows(self) -> tuple[float, ...]:
        """Every burn-rate window of the policy (seconds), sorted and without repeats."""
        return tuple(
            sorted({w for rules in self.policy.values() for r in rules for w in (r.long, r.short)})
        )


@dataclass(frozen=True, slots=True)
class SLOSpec:
    """Every SLO of one spec file."""

    slos: tuple[SLO, ...]
    source: str = "<spec>"
    grace: float = field(default=300.0)

    def get(self, name: str) -> SLO:
        """The SLO called ``name``; ``KeyError`` if there is none."""
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)


def off_bucket(sli: LatencySLI) -> list[tuple[Mode, str]]:
    """``(mode, why)`` for each threshold that is not a boundary of the SLI's histogram buckets.

    Prometheus counts "fast" requests from the ``le`` bucket equal to the threshold; with no
    such bucket, every request counts as slow and the SLO burns at once. The buckets are
    the service's ``RequestMetrics`` defaults unless the SLI declares its own (``buckets``).
    """
    from onsale_obs.instrument._metrics import DEFAULT_BUCKETS

    out: list[tuple[Mode, str]] = []
    for mode, threshold in sli.threshold.items():
        bounds = (sli.buckets or DEFAULT_BUCKETS)[mode]
        if not any(abs(threshold - b) < 1e-9 for b in bounds):
            listed = ", ".join(_seconds(b) for b in bounds)
            whose = "the declared 'buckets'" if sli.buckets else "onsale_request_duration_seconds"
            out.append(
                (
                    mode,
                    f"{_seconds(threshold)} is not a bucket boundary of {whose} in {mode} mode "
                    f"({listed}); Prometheus would count every request as slow",
                )
            )
    return out


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def off_bucket_thresholds(spec: SLOSpec) -> list[str]:
    """Warnings for latency thresholds that are not boundaries of their SLI's buckets.

    Spec files with such a threshold do not load (unless the SLI declares the ``buckets``
    that have it); this catches SLOs built in code.
    """
    out = []
    for index, slo in enumerate(spec.slos):
        if isinstance(slo.sli, LatencySLI):
            for mode, why in off_bucket(slo.sli):
                out.append(
                    f"{spec.source}, field 'slos.{index}.sli.threshold.{mode}': {why} unless "
                    "the service's RequestMetrics has that boundary."
                )
    return out
