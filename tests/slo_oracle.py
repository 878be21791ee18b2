"""A slow, obviously-correct counter of request records: the truth the sources are held to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
