"""A slow, obviously-correct counter of request records: the truth the sources are held to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from onsale_obs.instrument._metrics import status_class
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import INF, Aggregate, Collected, CountRequest, OnSaleCounts


@dataclass(frozen=True)
class Record:
    """One finished request, as the access log writes it."""

    ts: float
    service: str
    route: str
    method: str
    status: int
    duration_s: float
    mode: str
    event: str | None = None
    event_onsale: bool = False

    def line(self) -> dict[str, object]:
        """The access-log JSON object of this record."""
        return {
            "ts": self.ts,
            "service": self.service,
            "route": self.route,
            "method": self.method,
            "status": self.status,
            "duration_s": self.duration_s,
            "mode": self.mode,
            "event": self.event,
            "event_onsale": self.event_onsale,
            "trace_id": None,
        }


def _add(agg: Aggregate, r: Record, thresholds: Iterable[float]) -> None:
    key = (r.service, r.route, r.method, r.mode)
    rk = (*key, status_class(r.status))
    agg.requests[rk] = agg.requests.get(rk, 0.0) + 1
    for le in (*thresholds, INF):
        if r.duration_s <= le:
            lk = (*key, le)
            agg.latency[lk] = agg.latency.get(lk, 0.0) + 1


def _in_window(r: Record, w: OnSaleWindow, request: CountRequest) -> bool:
    end = min((request.at if w.end is None else w.end) + request.grace, request.at)
    if not (w.start < r.ts <= end) or r.mode != "onsale":
        return False
    return w.event is None or (r.event == w.event and r.event_onsale)


def oracle(records: Iterable[Record], request: CountRequest) -> Collected:
    """Count ``records`` for ``request`` one by one (windows must be given)."""
    assert request.onsale_windows is not None
    spans = {s.name: Aggregate() for s in request.spans}
    onsales = [OnSaleCounts(w, Aggregate()) for w in request.onsale_windows]
    for r in records:
        if request.services and r.service not in request.services:
            continue
        for s in request.spans:
            if s.start < r.ts <= s.end:
                _add(spans[s.name], r, request.thresholds)
        for oc in onsales:
            if _in_window(r, oc.window, request):
                _add(oc.counts, r, request.thresholds)
                per_route = oc.minutes.setdefault((r.service, r.route, r.method), {})
                minute = int(r.ts // 60) * 60
                per_route[minute] = per_route.get(minute, 0.0) + 1
    return Collected(spans, onsales, origin="oracle")


# ---- alerting, from the definitions ----------------------------------------------------------
# Written from the SRE Workbook's multiwindow, multi-burn-rate alerts and README's "Alert
# policy" table, in exact fractions, without onsale_obs.slo: the engine and the generated
# Prometheus rules are both held to it.


@dataclass(frozen=True)
class BurnAlert:
    """One rule: fires when the error ratio over *both* windows is at least ``factor`` times
    the error budget (1 - objective) and the long window holds ``min_bad`` bad events."""

    name: str
    long_s: int
    short_s: int
    factor: Fraction
    min_bad: int
    priority: str


_M, _H = 60, 3600
#: README's table: the Workbook's 30-day factors; on-sale windows twelve times shorter.
WORKBOOK_POLICY: dict[str, tuple[BurnAlert, ...]] = {
    "onsale": (
        BurnAlert("fast", 5 * _M, 1 * _M, Fraction("14.4"), 5, "P1"),
        BurnAlert("slow", 30 * _M, 5 * _M, Fraction(6), 5, "P2"),
    ),
    "normal": (
        BurnAlert("fast", 1 * _H, 5 * _M, Fraction("14.4"), 10, "P3"),
        BurnAlert("medium", 6 * _H, 30 * _M, Fraction(6), 10, "P3"),
        BurnAlert("slow", 72 * _H, 6 * _H, Fraction(1), 10, "P4"),
    ),
}


def is_bad(r: Record) -> bool:
    """An availability failure: a 5xx answer (4xx are the client's doing)."""
    return 500 <= r.status <= 599


def window_counts(
    records: Iterable[Record], mode: str, end: float, seconds: float
) -> tuple[int, int]:
    """``(events, bad events)`` of ``mode`` that finished in ``(end - seconds, end]``."""
    total = bad = 0
    for r in records:
        if r.mode == mode and end - seconds < r.ts <= end:
            total += 1
            bad += is_bad(r)
    return total, bad


def burn(total: int, bad: int, objective_percent: str) -> Fraction | None:
    """Error ratio over the error budget, exactly; None without events (no data, no burn)."""
    if total == 0:
        return None
    return Fraction(bad, total) / (1 - Fraction(objective_percent) / 100)


def fires(
    rule: BurnAlert, records: Iterable[Record], mode: str, at: float, objective_percent: str
) -> bool:
    """Whether ``rule`` fires at ``at`` for ``mode`` (a tie with the factor fires)."""
    records = list(records)
    long_total, long_bad = window_counts(records, mode, at, rule.long_s)
    long_burn = burn(long_total, long_bad, objective_percent)
    short_burn = burn(*window_counts(records, mode, at, rule.short_s), objective_percent)
    return (
        long_burn is not None
        and short_burn is not None
        and long_burn >= rule.factor
        and short_burn >= rule.factor
        and long_bad >= rule.min_bad
    )
