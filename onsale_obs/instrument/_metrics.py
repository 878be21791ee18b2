"""``onsale_requests_total`` and ``onsale_request_duration_seconds``, cheap enough for every request.

A request appends one tuple to a queue; the queue is counted in batches of ``BATCH`` (and
before every scrape), which costs a request about a third of counting it on the spot: the
batch runs with the series in cache. One series object per (route, method, mode, event) holds
the histogram and the per-status-class counts together. Series are created once, with the
cardinality caps applied; histogram buckets differ per mode (see ``DEFAULT_BUCKETS``).
Exemplars carry the trace id and show in the OpenMetrics exposition.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat, starmap
from operator import itemgetter
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from onsale_obs.instrument._heavy_hitters import DEFAULT_SLOTS, DEFAULT_TOP, EventHeavyHitters
from onsale_obs.types import Mode

#: Normal time is judged in tens of milliseconds; an on-sale in seconds ("a second is fine,
#: failing is not"). Shared boundaries (0.05 .. 10) allow cross-mode sums on those ``le``.
DEFAULT_BUCKETS: Final[Mapping[Mode, tuple[float, ...]]] = {
    "normal": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    "onsale": (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
}
OTHER: Final = "other"
UNMATCHED_ROUTE: Final = "unmatched"
_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_CODES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: Requests queued before they are counted (a scrape counts the queue first).
BATCH: Final = 128
#: (route, method, mode, event) of a series.
Labels = tuple[str, str, str, str]


#: Index in a series' per-class counts of each status from 100 to 599 (any other: 5xx, 4).
_CODE_INDEX: Final[dict[int, int]] = {status: status // 100 - 1 for status in range(100, 600)}
#: The event id of a queued request.
_EVENT: Final = itemgetter(4)


def status_class(status: int) -> str:
    """``503`` -> ``5xx``; anything outside 100..599 counts as ``5xx``."""
    return _CODES[status // 100 - 1] if 100 <= status < 600 else "5xx"


class _Series:
    __slots__ = ("bounds", "buckets", "codes", "exemplars", "labels", "total")

    def __init__(self, labels: Labels, bounds: tuple[float, ...]) -> None:
        self.labels = labels
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # per bucket, +Inf last; cumulated at scrape
        # (trace id, value) per bucket; turned into Exemplars only at scrape time
        self.exemplars: list[tuple[int, float] | None] = [None] * (len(bounds) + 1)
        self.codes = [0, 0, 0, 0, 0]
        self.total = 0.0


class RequestMetrics(Collector):
    """The two request metrics of one service, registered in ``registry`` (if given)."""

    def __init__(
        self,
        service: str,
        *,
        registry: CollectorRegistry | None = None,
        buckets: Mapping[Mode, Sequence[float]] = DEFAULT_BUCKETS,
        max_routes: int = 200,
        max_events: int = 50,
        top_events: int = DEFAULT_TOP,
        event_slots: int = DEFAULT_SLOTS,
    ) -> None:
        self.service = service
        self._bounds: dict[str, tuple[float, ...]] = {
            mode: tuple(sorted(float(b) for b in buckets[mode])) for mode in ("normal", "onsale")
        }
        self.max_routes = max_routes
        self.max_events = max_events
        self._series: dict[Labels, _Series] = {}
        self._routes: set[str] = set()
        self._events: set[str] = set()
        #: which events the service is busy with, normal time included (``top_events`` of
        #: them exported as onsale_event_requests_top; 0: not kept)
        self.heavy_hitters = (
            EventHeavyHitters(slots=max(event_slots, top_events), top=top_events)
            if top_events > 0
            else None
        )
        # (labels, status, seconds, trace id, event) per request not counted yet; deque appends
        # and pops are atomic, and only the holder of _lock pops and counts
        self._pending: deque[tuple[Labels, int, float, int | None, str | None]] = deque()
        self._lock = threading.Lock()
        self.errors = 0
        if registry is not None:
            registry.register(self)

    def record(
        self,
        route: str,
        method: str,
        status: int,
        mode: str,
        event: str,
        seconds: float,
        trace_id: int | None = None,
    ) -> None:
        """Count one finished request (``event`` is ``""`` unless its event is on sale).

        ``trace_id`` (the integer id of the request's trace) becomes the bucket's exemplar.
        """
        self.observe((route, method, mode, event), status, seconds, trace_id)

    def observe(
        self,
        labels: Labels,
        status: int,
        seconds: float,
        trace_id: int | None = None,
        event: str | None = None,
    ) -> None:
        """``record`` with the labels as one tuple (route, method, mode, event).

        ``event`` is the request's event id whether or not it is on sale (the heavy hitters).
        """
        pending = self._pending
        pending.append((labels, status, seconds, trace_id, event))
        if len(pending) >= BATCH:
            self._count_pending()

    def _count_pending(self) -> None:
        """Count the queued requests, unless another thread is counting them already."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._count_locked()
        finally:
            self._lock.release()

    def _count_locked(self) -> None:
        """Count the queued requests (``_lock`` held): one tight loop over warm series."""
        pending = self._pending
        # popleft what is queued now, in C: requests queued meanwhile by other threads wait
        batch = list(starmap(pending.popleft, repeat((), len(pending))))
        series_of = self._series
        code_of = _CODE_INDEX.get
        for labels, status, seconds, trace_id, _ in batch:
            series = series_of.get(labels)
            if series is None:
                series = self._new_series(*labels)
            index = bisect_left(series.bounds, seconds)
            series.buckets[index] += 1
            series.codes[code_of(status, 4)] += 1
            series.total += seconds
            if trace_id is not None:
                series.exemplars[index] = (trace_id, seconds)
        if batch and self.heavy_hitters is not None:
            self.heavy_hitters.add_events(map(_EVENT, batch))

    def _new_series(self, route: str, method: str, mode: str, event: str) -> _Series:
        """The series of these labels, caps applied (called with ``_lock`` held)."""
        if route not in self._routes:
            if len(self._routes) < self.max_routes:
                self._routes.add(route)
            else:
                route = OTHER
        if event and event not in self._events:
            if len(self._events) < self.max_events:
                self._events.add(event)
            else:
                event = OTHER
        if method not in _METHODS:
            method = OTHER
        if mode not in self._bounds:
            mode = "normal"
        key = (route, method, mode, event)
        series = self._series.get(key)
        if series is None:
            # An overflowing value shares the capped series and is never cached under its
            # own key, so a flood of distinct values cannot grow memory either.
            series = _Series(key, self._bounds[mode])
            self._series[key] = series
        return series

    def series_count(self) -> int:
        """How many label combinations exist (bounded by the caps)."""
        with self._lock:
            self._count_locked()
            return len(self._series)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "onsale_requests",
            "Requests by route template, method, status class, mode and on-sale event.",
            labels=["service", "route", "method", "code", "mode", "event"],
        )
        durations = HistogramMetricFamily(
            "onsale_request_duration_seconds",
            "Request duration in seconds, with per-mode buckets.",
            labels=["service", "route", "method", "mode", "event"],
        )
        with self._lock:
            self._count_locked()
            snapshot = [
                (s.labels, s.bounds, list(s.buckets), list(s.codes), list(s.exemplars), s.total)
                for s in self._series.values()
            ]
        for (route, method, mode, event), bounds, counts, codes, exemplars, total in snapshot:
            for code, value in zip(_CODES, codes, strict=True):
                if value:
                    requests.add_metric([self.service, route, method, code, mode, event], value)
            cumulative = 0
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for bound, count, exemplar in zip(
                (*bounds, float("inf")), counts, exemplars, strict=True
            ):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                if exemplar is None:
                    buckets.append((le, cumulative))
                else:
                    trace_id, observed = exemplar
                    buckets.append(
                        (
                            le,
                            cumulative,
                            Exemplar({"trace_id": format(trace_id, "032x")}, observed),
                        )
                    )
            durations.add_metric([self.service, route, method, mode, event], buckets, total)
        yield requests
        yield durations
        if self.heavy_hitters is not None:
            top = CounterMetricFamily(
                "onsale_event_requests_top",
                "Requests per event, normal time included, for the busiest events only "
                "(counted since the event entered the bounded summary).",
                labels=["service", "event"],
            )
            for tracked in self.heavy_hitters.heaviest():
                top.add_metric([self.service, tracked.event], tracked.requests)
            yield top
        yield CounterMetricFamily(
            "onsale_instrument_errors",
            "Failures inside the on-sale tagging itself (the request was served regardless).",
            value=self.errors,
        )
