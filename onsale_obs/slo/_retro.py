"""What one on-sale looked like minute by minute, for the retrospective page.

Counted from either source: the access logs (every line, so exact) or the Prometheus HTTP API
(``increase`` and ``histogram_quantile`` over one-minute steps, so estimates). Also the alert
times (detect, page, resolve) from the evaluated alert timeline and the waiting room's
exit-rate decisions where they were recorded.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from onsale_obs.generate._promql import matcher, quote, selector
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._report import OnSaleResult, Report, SLOResult
from onsale_obs.slo._spec import SLO, AvailabilitySLI, LatencySLI, severity_of
from onsale_obs.slo._timeline import Firing

MINUTE = 60.0
#: the range of Prometheus' per-minute rates: several scrapes even at one a minute
RATE = "3m"
#: minutes of normal time shown before an on-sale, so its start is visible
LEAD = 5 * MINUTE


@dataclass(slots=True)
class ServiceMinutes:
    """Per-minute requests, 5xx errors and p95 latency (seconds) of one service."""

    requests: dict[int, float] = field(default_factory=dict)
    errors: dict[int, float] = field(default_factory=dict)
    p95: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class SLOMinutes:
    """Per-minute events and bad events of one SLO in on-sale mode, and sample bad traces."""

    total: dict[int, float] = field(default_factory=dict)
    bad: dict[int, float] = field(default_factory=dict)
    traces: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Decision:
    """One exit-rate decision of the waiting room (users per minute)."""

    at: float
    recommended: float
    applied: float | None
    queue: float | None
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class AlertTimes:
    """When an SLO's alerts told people about an on-sale's trouble (None: never)."""

    first_failing_minute: float | None
    detected: float | None
    detected_by: str | None
    paged: float | None
    paged_by: str | None
    resolved: float | None

    @property
    def to_page(self) -> float | None:
        """Seconds from the first failing minute's start to the page."""
        if self.paged is None or self.first_failing_minute is None:
            return None
        return self.paged - self.first_failing_minute


@dataclass(slots=True)
class OnSaleMinutes:
    """Everything the retrospective draws for one on-sale: minutes from ``start`` to ``end``."""

    window: OnSaleWindow
    start: float
    end: float
    onsale_end: float
    grace: float
    origin: str
    services: dict[str, ServiceMinutes] = field(default_factory=dict)
    slos: dict[str, SLOMinutes] = field(default_factory=dict)

    def minutes(self) -> list[int]:
        """Epoch seconds of every minute shown."""
        first = int(self.start // MINUTE * MINUTE)
        return list(range(first, int(self.end), int(MINUTE)))


def onsale_span(
    window: OnSaleWindow, result: OnSaleResult, grace: float, at: float
) -> tuple[float, float]:
    """The stretch a retrospective shows: a little before the on-sale, to its end + grace."""
    return window.start - LEAD, min(result.end + grace, at)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _bad(slo: SLO, status: int, duration: float) -> bool | None:
    """Whether a request is bad for ``slo`` in on-sale mode (None: not countable)."""
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        return f"{status // 100}xx" in sli.bad_codes
    if isinstance(sli, LatencySLI):
        return duration > sli.threshold["onsale"]
    return None


def from_logs(
    paths: Sequence[str | Path],
    slos: Sequence[SLO],
    spans: Sequence[tuple[OnSaleWindow, float, float, float]],
    grace: float,
) -> list[OnSaleMinutes]:
    """Per-minute figures of each ``(window, start, end, on-sale end)`` from access logs."""
    out = [OnSaleMinutes(w, a, b, e, grace, "logs") for w, a, b, e in spans]
    durations: list[dict[tuple[str, int], list[float]]] = [{} for _ in out]
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(Path(path), "rb") as lines:
            for raw in lines:
                try:
                    line: Any = orjson.loads(raw)
                    ts = float(line["ts"])
                    service = str(line["service"])
                    status = int(line["status"])
                    duration = float(line.get("duration_s") or 0.0)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # the SLO report counts and reports skipped lines
                for k, o in enumerate(out):
                    if not o.start < ts <= o.end:
                        continue
                    # minutes are (t, t + 60], like every span of the report
                    minute = int(math.ceil(ts / MINUTE) * MINUTE - MINUTE)
                    sm = o.services.setdefault(service, ServiceMinutes())
                    sm.requests[minute] = sm.requests.get(minute, 0.0) + 1
                    if status >= 500:
                        sm.errors[minute] = sm.errors.get(minute, 0.0) + 1
                    durations[k].setdefault((service, minute), []).append(duration)
                    _count_slos(o, slos, line, ts, minute, status, duration)
    for o, spread in zip(out, durations, strict=True):
        for (service, minute), values in spread.items():
            o.services[service].p95[minute] = _p95(values)
    return out


def _count_slos(
    o: OnSaleMinutes,
    slos: Sequence[SLO],
    line: Any,
    ts: float,
    minute: int,
    status: int,
    duration: float,
) -> None:
    if line.get("mode") != "onsale":
        return
    event = o.window.event
    if event is not None and not (line.get("event_onsale") and line.get("event") == event):
        return
    for slo in slos:
        sli = slo.sli
        if not isinstance(sli, AvailabilitySLI | LatencySLI):
            continue
        if not sli.selector.matches(
            str(line["service"]), str(line.get("route", "")), str(line.get("method", ""))
        ):
            continue
        bad = _bad(slo, status, duration)
        sm = o.slos.setdefault(slo.name, SLOMinutes())
        sm.total[minute] = sm.total.get(minute, 0.0) + 1
        if bad:
            sm.bad[minute] = sm.bad.get(minute, 0.0) + 1
            trace = line.get("trace_id")
            if isinstance(trace, str) and trace and len(sm.traces) < 5:
                sm.traces.append((ts, trace))


def from_prometheus(
    client: Any,
    slos: Sequence[SLO],
    spans: Sequence[tuple[OnSaleWindow, float, float, float]],
    grace: float,
) -> list[OnSaleMinutes]:
    """Per-minute figures of each span from the Prometheus HTTP API (one-minute steps).

    Each minute is ``rate(...[3m]) * 60``: a per-minute rate over three minutes, so that a
    scrape every 60 s (two samples needed per window) still draws every minute. Smoother
    than the logs' exact minutes, and an estimate like every ``rate``.
    """
    out = []
    for w, a, b, e in spans:
        o = OnSaleMinutes(w, a, b, e, grace, "prometheus")
        first, last = math.ceil(a / MINUTE) * MINUTE, math.floor(b / MINUTE) * MINUTE
        queries = {
            "requests": f"sum by (service) (rate(onsale_requests_total[{RATE}])) * 60",
            "errors": f'sum by (service) (rate(onsale_requests_total{{code="5xx"}}[{RATE}])) * 60',
            "p95": "histogram_quantile(0.95, sum by (service, le) "
            f"(rate(onsale_request_duration_seconds_bucket[{RATE}])))",
        }
        for what, promql in queries.items():
            for series in client.query_range(promql, first, last, MINUTE):
                service = series.labels.get("service", "")
                sm = o.services.setdefault(service, ServiceMinutes())
                target = getattr(sm, what)
                for t, v in series.points:
                    if math.isfinite(v):
                        # the minute that ended at t
                        target[int(t - MINUTE)] = v
        event = w.event
        for slo in slos:
            sli = slo.sli
            if not isinstance(sli, AvailabilitySLI):
                continue
            # route and method values are regex-escaped (a route may hold '.', '{', '+')
            sel = [
                f"service={quote(sli.selector.service)}",
                'mode="onsale"',
                f"event={quote(event)}" if event is not None else None,
                matcher("route", sorted(sli.selector.routes)),
                matcher("method", sorted(sli.selector.methods)),
            ]
            base = selector("onsale_requests_total", sel)
            bad_sel = selector(
                "onsale_requests_total", [*sel, matcher("code", sorted(sli.bad_codes))]
            )
            sm2 = o.slos.setdefault(slo.name, SLOMinutes())
            for target, promql in (
                (sm2.total, f"sum(rate({base}[{RATE}])) * 60"),
                (sm2.bad, f"sum(rate({bad_sel}[{RATE}])) * 60"),
            ):
                for series in client.query_range(promql, first, last, MINUTE):
                    for t, v in series.points:
                        if math.isfinite(v):
                            target[int(t - MINUTE)] = v
        out.append(o)
    return out


def read_decisions(path: str | Path) -> list[Decision]:
    """Exit-rate decisions as ``onsale-obs demo`` writes them (``recommendations.json``).

    ``rate`` is what the controller recommended; ``signals.current_rate`` the rate the
    waiting room applied when it decided.
    """
    data = orjson.loads(Path(path).read_bytes())
    items = data if isinstance(data, list) else data.get("recommendations", [])
    out = []
    for item in items:
        signals = item.get("signals") or {}
        applied = signals.get("current_rate")
        queue = signals.get("queue_length")
        out.append(
            Decision(
                float(item["time"]),
                float(item["rate"]),
                None if applied is None else float(applied),
                None if queue is None else float(queue),
                str(item.get("action", "")),
                str(item.get("reason", "")),
            )
        )
    return sorted(out, key=lambda d: d.at)


def alert_times(
    s: SLOResult,
    o: OnSaleMinutes,
    firings: Iterable[Firing],
    times: Sequence[float],
) -> AlertTimes:
    """Detect (first rule firing), page (first P1/P2), resolve (first moment none fires)."""
    mine = sorted(
        (f for f in firings if f.slo == s.slo.name and f.mode == "onsale"),
        key=lambda f: (f.at, f.priority),
    )
    mine = [f for f in mine if o.window.start < f.at <= o.end]
    bad = o.slos.get(s.slo.name, SLOMinutes()).bad
    failing = min((m for m, n in bad.items() if n > 0), default=None)
    if not mine:
        return AlertTimes(None if failing is None else float(failing), None, None, None, None, None)
    detect = mine[0]
    page = next((f for f in mine if severity_of(f.priority) == "page"), None)
    last = mine[-1].at
    resolved = next((t for t in times if t > last), None)
    return AlertTimes(
        None if failing is None else float(failing),
        detect.at,
        f"{detect.priority} {detect.rule}",
        None if page is None else page.at,
        None if page is None else f"{page.priority} {page.rule}",
        resolved,
    )


def spans_of(report: Report, grace: float) -> list[tuple[OnSaleWindow, float, float, float]]:
    """One ``(window, start, end, on-sale end)`` per distinct on-sale of the report."""
    seen: dict[OnSaleWindow, tuple[OnSaleWindow, float, float, float]] = {}
    for s in report.slos:
        for o in s.onsales:
            if o.window not in seen:
                a, b = onsale_span(o.window, o, grace, report.at)
                seen[o.window] = (o.window, a, b, o.end)
    return sorted(seen.values(), key=lambda x: (x[1], x[0].scope))
