"""The request metrics count a batch of requests exactly as counting them one by one would."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onsale_obs.instrument import DEFAULT_BUCKETS, RequestMetrics
from onsale_obs.instrument._metrics import BATCH

Request = tuple[str, str, int, str, str, float, "int | None"]

requests_ = st.tuples(
    st.sampled_from(["/a", "/b", "/c", "/d"]),
    st.sampled_from(["GET", "POST", "BREW"]),
    st.sampled_from([200, 201, 302, 404, 503, 99, 600, 0]),
    st.sampled_from(["normal", "onsale"]),
    st.sampled_from(["", "e1", "e2", "e3", "e4"]),
    st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
    st.one_of(st.none(), st.integers(min_value=1, max_value=2**128 - 1)),
)


def one_by_one(requests: list[Request], max_routes: int, max_events: int) -> dict[Any, Any]:
    """What each series should hold: the requests counted in order, one at a time."""
    routes: list[str] = []
    events: list[str] = []
    series: dict[Any, Any] = {}
    for route, method, status, mode, event, seconds, trace_id in requests:
        if route not in routes:
            if len(routes) < max_routes:
                routes.append(route)
            else:
                route = "other"
        if event and event not in events:
            if len(events) < max_events:
                events.append(event)
            else:
                event = "other"
        method = method if method in ("GET", "POST") else "other"
        bounds = DEFAULT_BUCKETS[mode]  # type: ignore[index]
        one = series.setdefault(
            (route, method, mode, event),
            {"buckets": [0] * (len(bounds) + 1), "codes": [0] * 5, "total": 0.0, "ex": {}},
        )
        index = bisect_left(bounds, seconds)
        one["buckets"][index] += 1
        one["codes"][status // 100 - 1 if 100 <= status < 600 else 4] += 1
        one["total"] += seconds
        if trace_id is not None:
            one["ex"][index] = (trace_id, seconds)
    return series


def counted(metrics: RequestMetrics) -> dict[Any, Any]:
    """What the metrics hold after a scrape would count the queue."""
    metrics.series_count()  # counts what is still queued
    return {
        labels: {
            "buckets": list(s.buckets),
            "codes": list(s.codes),
            "total": s.total,
            "ex": {i: e for i, e in enumerate(s.exemplars) if e is not None},
        }
        for labels, s in metrics._series.items()
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(requests_, min_size=1, max_size=3 * BATCH + 7),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=4),
)
def test_batches_count_as_one_by_one(
    requests: list[Request], max_routes: int, max_events: int
) -> None:
    """Counts, status classes, caps, duration sums (bit for bit) and the latest exemplar of
    each bucket are those of counting every request on its own, across batch boundaries."""
    metrics = RequestMetrics("svc", max_routes=max_routes, max_events=max_events, top_events=0)
    for request in requests:
        metrics.record(*request)
    assert counted(metrics) == one_by_one(requests, max_routes, max_events)


def test_a_batch_of_many_series_is_summed_exactly() -> None:
    """More distinct series in one batch than are summed pass by pass: still exact."""
    requests: list[Request] = [
        (f"/r{i % 40}", "GET", 200, "onsale", "", 0.1 + i / 7, i + 1 if i % 3 else None)
        for i in range(2 * BATCH)
    ]
    metrics = RequestMetrics("svc", max_routes=100, top_events=0)
    for request in requests:
        metrics.record(*request)
    assert counted(metrics) == one_by_one(requests, 100, 50)
