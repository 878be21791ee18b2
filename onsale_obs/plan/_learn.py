"""``plan learn``: past on-sales -> a :class:`Profile`, through the SLO engine's own sources.

The on-sale windows and their exact per-event counts come from the same ``plan`` and
``Source.collect`` that ``slo onsales`` runs (history windows, or the windows the source finds
in its data). A second read of the same source counts each on-sale minute as its own span, so
every minute can be judged against the spec's SLOs with the engine's ``count_events``.

A minute *breaks* an SLO when it would page: its one-minute burn rate is at or above the
on-sale fast rule's threshold (14.4x by default) and it holds at least that rule's
``min_bad_events`` bad events. Minutes are judged, and per-minute rates (peak, sustained, the
rate served with the SLO met) counted, on every on-sale request of the minute: overlapping
on-sales of different events are judged together. Requests per admitted user (the fan-out) are
counted per event, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from onsale_obs.modes import OnSaleWindow
from onsale_obs.plan._profile import Break, BreakKind, OnSaleProfile, Profile, ServiceProfile
from onsale_obs.slo import (
    SLO,
    Aggregate,
    AvailabilitySLI,
    Collected,
    CountRequest,
    LatencySLI,
    OnSaleCounts,
    SLOSpec,
    Source,
    Span,
    count_events,
    plan,
)

MINUTE = 60.0
#: the window of the "sustained" rate: the highest mean over this many minutes
SUSTAINED_MINUTES = 10
DEFAULT_BURN = 14.4
DEFAULT_MIN_BAD = 5
JUDGEMENT = (
    "a minute breaks an SLO when its 1-minute burn rate reaches the on-sale fast rule's "
    "threshold and it holds at least that rule's min_bad_events bad events"
)
#: per minute (epoch second the minute starts): a value
MinuteSeries = dict[int, float]


class Timeline(Protocol):
    """Per-minute values of one thing (admitted users/min of an event, replicas of a service)."""

    def per_minute(self, name: str, start: float, end: float, event: str) -> MinuteSeries | None:
        """Values per minute in ``[start, end)`` of ``name`` (an event, or a service) during
        ``event``'s on-sale; None when nothing is recorded."""
        ...

    @property
    def description(self) -> str:
        """Where the values come from, for the profile."""
        ...


@dataclass(frozen=True, slots=True)
class GivenNumbers:
    """Numbers given on the command line: a constant per name (replicas of a service, or of
    a service during one event's on-sale as ``event/service``) or a total (admitted users of
    an event, spread over its minutes like its requests)."""

    values: Mapping[str, float]
    what: str = "given"

    def per_minute(self, name: str, start: float, end: float, event: str) -> MinuteSeries | None:
        value = self.values.get(f"{event}/{name}", self.values.get(name))
        if value is None:
            return None
        return dict.fromkeys(_minutes(start, end), value)

    @property
    def description(self) -> str:
        return self.what


@dataclass(frozen=True, slots=True)
class PrometheusTimeline:
    """A PromQL query with ``$name`` replaced, read at one-minute steps (summed over series)."""

    query: Callable[[str, float, float, float], list[tuple[float, float]]]
    template: str
    placeholder: str

    def per_minute(self, name: str, start: float, end: float, event: str) -> MinuteSeries | None:
        promql = self.template.replace(self.placeholder, name).replace("$event", event)
        first = math.floor(start / MINUTE) * MINUTE
        points = self.query(promql, first, max(first, end - MINUTE), MINUTE)
        out: MinuteSeries = {}
        for t, v in points:
            if math.isfinite(v):
                key = int(math.floor(t / MINUTE) * MINUTE)
                out[key] = out.get(key, 0.0) + v
        return out or None

    @property
    def description(self) -> str:
        return f"prometheus: {self.template}"


def _minutes(start: float, end: float) -> list[int]:
    first = int(math.floor(start / MINUTE) * MINUTE)
    return list(range(first, int(math.ceil(end / MINUTE) * MINUTE), int(MINUTE)))


@dataclass(frozen=True, slots=True)
class _Judge:
    """The SLOs of one service and the rule a minute is judged by."""

    slos: tuple[SLO, ...]

    def breaks(self, agg: Aggregate) -> BreakKind | None:
        kinds: list[BreakKind] = []
        for slo in self.slos:
            total, good = count_events(slo, "onsale", agg)
            bad = total - good
            rules = slo.policy.get("onsale", ())
            fast = min(rules, key=lambda r: r.long) if rules else None
            threshold = fast.burn_rate if fast else DEFAULT_BURN
            min_bad = fast.min_bad_events if fast else DEFAULT_MIN_BAD
            allowed = 1.0 - slo.objectives["onsale"]
            if (
                total > 0
                and bad >= min_bad
                and allowed > 0
                and (bad / total) / allowed >= threshold
            ):
                kinds.append("latency" if isinstance(slo.sli, LatencySLI) else "errors")
        if not kinds:
            return None
        return "errors" if "errors" in kinds else "latency"


def learn(
    spec: SLOSpec,
    source: Source,
    at: float,
    *,
    window: float | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
    admitted: Timeline | None = None,
    replicas: Timeline | None = None,
    services: Sequence[str] = (),
) -> Profile:
    """Learn a profile from every on-sale the SLO engine finds in ``source`` up to ``at``.

    ``services`` limits the vertical (default: every service of the spec's SLOs that served
    on-sale requests); ``admitted`` gives admitted users/min per event, ``replicas`` replicas
    per service.
    """
    request = plan(spec, at, window=window, onsale_windows=onsale_windows)
    first = source.collect(request)
    windows = [oc.window for oc in first.onsales if _total(oc.counts) > 0]
    minutes = _minute_spans(windows, spec.grace, at)
    per_minute: dict[str, Aggregate] = {}
    second: Collected | None = None
    if minutes:
        again = CountRequest(
            at=at,
            spans=minutes,
            thresholds=request.thresholds,
            onsale_windows=tuple(windows),
            grace=spec.grace,
            services=request.services,
        )
        second = source.collect(again)
        per_minute = second.spans
    judges = _judges(spec)
    onsales = []
    for oc in first.onsales:
        if _total(oc.counts) <= 0:
            continue
        onsales.append(
            _onsale(oc, per_minute, judges, spec.grace, at, admitted, replicas, services)
        )
    warnings = list(first.warnings) + ([] if second is None else list(second.warnings))
    return Profile(
        onsales=tuple(sorted(onsales, key=lambda o: o.start)),
        learned_at=at,
        source=first.origin,
        judgement=JUDGEMENT,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _total(agg: Aggregate) -> float:
    return sum(agg.requests.values())


def _judges(spec: SLOSpec) -> dict[str, _Judge]:
    by_service: dict[str, list[SLO]] = {}
    for slo in spec.slos:
        if isinstance(slo.sli, AvailabilitySLI | LatencySLI):
            by_service.setdefault(slo.service, []).append(slo)
    return {s: _Judge(tuple(slos)) for s, slos in by_service.items()}


def _range(window: OnSaleWindow, grace: float, at: float) -> tuple[float, float]:
    end = at if window.end is None else min(window.end + grace, at)
    return window.start, end


def _minute_spans(windows: Sequence[OnSaleWindow], grace: float, at: float) -> tuple[Span, ...]:
    spans: dict[int, Span] = {}
    for w in windows:
        start, end = _range(w, grace, at)
        for m in _minutes(start, end):
            spans[m] = Span(f"minute:{m}", float(m), min(m + MINUTE, at))
    return tuple(spans[m] for m in sorted(spans))


def _sustained(series: MinuteSeries, minutes: list[int]) -> float:
    values = [series.get(m, 0.0) for m in minutes]
    if not values:
        return 0.0
    width = min(SUSTAINED_MINUTES, len(values))
    best = max(sum(values[i : i + width]) for i in range(len(values) - width + 1))
    return best / width / MINUTE


def _onsale(
    oc: OnSaleCounts,
    per_minute: Mapping[str, Aggregate],
    judges: Mapping[str, _Judge],
    grace: float,
    at: float,
    admitted: Timeline | None,
    replicas: Timeline | None,
    wanted: Sequence[str],
) -> OnSaleProfile:
    w = oc.window
    start, end = _range(w, grace, at)
    minutes = _minutes(start, end)
    notes: list[str] = []
    if w.end is None:
        notes.append("still on sale when learnt: counted up to the learning time")
    totals: dict[str, float] = {}
    routes: dict[str, dict[str, float]] = {}
    for (service, route, method, _mode, _code), n in oc.counts.requests.items():
        totals[service] = totals.get(service, 0.0) + n
        by_route = routes.setdefault(service, {})
        name = f"{method} {route}"
        by_route[name] = by_route.get(name, 0.0) + n
    names = sorted(totals) if not wanted else [s for s in wanted if s in totals]
    event = w.scope.removeprefix("event:")
    # users are admitted while the event is on sale, not in the grace after it
    sale_end = at if w.end is None else w.end
    admissions = None if admitted is None else admitted.per_minute(event, start, sale_end, event)
    # per-minute rates on the (m, m+60] spans the minutes are judged on (every on-sale
    # request of the service in the minute); each source keys its own per-event minutes
    # differently (a log line by its start, a Prometheus increment by its scrape)
    rps = {name: _span_series(per_minute, name, minutes) for name in totals}
    users: float | None = None
    source = None
    if admissions:
        source = admitted.description if admitted is not None else None
        if isinstance(admitted, GivenNumbers):
            # a total: spread over the minutes like the on-sale's requests
            users = admitted.values[event]
            all_requests = {m: sum(s.get(m, 0.0) for s in rps.values()) for m in minutes}
            whole = sum(all_requests.values()) or 1.0
            admissions = {m: users * n / whole for m, n in all_requests.items()}
        else:
            users = sum(admissions.values())  # users/min over one-minute steps
    else:
        notes.append("admitted users not recorded: fan-out and exit rates not learnt")
    good_minutes = {m for m in minutes if _minute_good(per_minute.get(f"minute:{m}"), judges)}
    services: dict[str, ServiceProfile] = {}
    breaks: list[tuple[float, str]] = []
    for name in names:
        series = rps.get(name, {})
        reps = None if replicas is None else replicas.per_minute(name, start, end, event)
        judge = judges.get(name)
        good_rps, good_per, broke = _limits(series, reps, judge, per_minute, minutes)
        if broke is not None:
            breaks.append((broke.at, name))
        if judge is None:
            notes.append(f"{name}: no SLO in the spec, so its limit is not judged")
        services[name] = ServiceProfile(
            requests=totals[name],
            peak_rps=max(series.values(), default=0.0) / MINUTE,
            sustained_rps=_sustained(series, minutes),
            replicas=max(reps.values()) if reps else None,
            requests_per_user=totals[name] / users if users else None,
            routes=routes.get(name, {}),
            good_rps=good_rps,
            good_rps_per_replica=good_per,
            broke=broke,
        )
    max_good = None
    if admissions:
        held = [admissions.get(m, 0.0) for m in minutes if m in good_minutes]
        max_good = max(held, default=None)
    return OnSaleProfile(
        scope=w.scope,
        start=w.start,
        end=sale_end,
        services=services,
        admitted_users=users,
        admitted_peak_per_minute=max(admissions.values()) if admissions else None,
        admitted_source=source,
        max_good_exit_rate=max_good,
        first_break=min(breaks)[1] if breaks else None,
        notes=tuple(notes),
    )


def _span_series(
    per_minute: Mapping[str, Aggregate], service: str, minutes: list[int]
) -> MinuteSeries:
    out: MinuteSeries = {}
    for m in minutes:
        agg = per_minute.get(f"minute:{m}")
        if agg is not None:
            out[m] = sum(
                n for (s, _r, _m, mode, _c), n in agg.requests.items()
                if s == service and mode == "onsale"
            )  # fmt: skip
    return out


def _minute_good(agg: Aggregate | None, judges: Mapping[str, _Judge]) -> bool:
    if agg is None:
        return True
    return all(j.breaks(agg) is None for j in judges.values())


def _limits(
    series: MinuteSeries,
    reps: MinuteSeries | None,
    judge: _Judge | None,
    per_minute: Mapping[str, Aggregate],
    minutes: list[int],
) -> tuple[float | None, float | None, Break | None]:
    """The highest good minute's rate (and per replica) below the first break, and the break."""
    if judge is None:
        return None, None, None
    broke: Break | None = None
    for m in minutes:
        agg = per_minute.get(f"minute:{m}")
        kind = None if agg is None else judge.breaks(agg)
        if kind is not None:
            r = series.get(m, 0.0) / MINUTE
            n = None if not reps else reps.get(m)
            broke = Break(kind, float(m), r, r / n if n else None)
            break
    best: float | None = None
    best_per: float | None = None
    for m in minutes:
        r = series.get(m, 0.0) / MINUTE
        agg = per_minute.get(f"minute:{m}")
        if r <= 0 or (agg is not None and judge.breaks(agg) is not None):
            continue
        if broke is not None and r >= broke.rps:
            continue  # a good minute above the break rate came after a recovery or cut
        if best is None or r > best:
            best = r
        n = None if not reps else reps.get(m)
        if n:
            per = r / n
            if best_per is None or per > best_per:
                best_per = per
    return best, best_per, broke
