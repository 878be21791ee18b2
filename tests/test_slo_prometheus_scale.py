"""The Prometheus source at scale: on-sale windows in two passes, raw samples a day at a time.

Both are checked on a real Prometheus against what they replace: the windows against a scan
of ``max by (scope) (onsale_mode) >= 1`` at every step, the counts against the planted truth
(which the single whole-range fetch counted exactly).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from onsale_obs.exceptions import PrometheusUnavailableError
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import CountRequest, Span
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._prom_deltas import raw_deltas
from onsale_obs.slo._prom_windows import windows_from_gauge
from onsale_obs.slo._prometheus import PrometheusSource
from onsale_obs.testing import find_binary
from onsale_obs.testing_prometheus import PrometheusServer, backfill

pytestmark = pytest.mark.skipif(
    find_binary("prometheus") is None or find_binary("promtool") is None,
    reason="needs the Debian package prometheus",
)

AT = 1_760_000_040.0  # on the minute
HOUR = 3600.0
DAY = 86_400.0
STEP = 60.0
SPAN = Span("last:3d", AT - 3 * DAY, AT)


def _gauge_series(name: str, on: list[tuple[float, float]], first: float, last: float) -> str:
    """``onsale_mode`` every minute from ``first`` to ``last``: 1 inside any ``on`` range."""
    lines = []
    t = first
    while t <= last:
        value = int(any(a <= t < b for a, b in on))
        lines.append(f"{name} {value} {int(t)}\n")
        t += STEP
    return "".join(lines)


def _gauges() -> str:
    start, end = AT - 3 * DAY - 2 * HOUR, AT
    text = ["# TYPE onsale_mode gauge\n"]
    scopes: list[tuple[str, list[tuple[float, float]], float]] = [
        # across a coarse bucket's edge (AT - 48 h is one)
        ('{scope="event:a"}', [(AT - 50 * HOUR, AT - 47 * HOUR)], end),
        # two subscribers, each on for an hour: one window (max by scope)
        ('{scope="event:b",instance="one"}', [(AT - 30 * HOUR, AT - 29 * HOUR)], end),
        ('{scope="event:b",instance="two"}', [(AT - 29 * HOUR, AT - 28 * HOUR)], end),
        # scraped for the last time while on, a minute before a bucket's end: the lookback
        # delta keeps it on for five more minutes, in a bucket without any sample
        ('{scope="event:c"}', [(AT - 19 * HOUR, AT)], AT - 18 * HOUR - STEP),
        # on before the span starts, and on at the end (still open)
        ('{scope="event:d"}', [(AT - 3 * DAY - HOUR, AT - 3 * DAY + 2 * HOUR)], end),
        ('{scope="event:e"}', [(AT - 2 * HOUR, AT + HOUR)], end),
        # one scrape
        ('{scope="event:f"}', [(AT - 10 * HOUR, AT - 10 * HOUR + 1)], end),
        ('{scope="global"}', [], end),
    ]
    for labels, on, last in scopes:
        text.append(_gauge_series(f"onsale_mode{labels}", on, start, last))
    return "".join(text)


def _counters() -> tuple[str, float, OnSaleWindow]:
    """On-sale counters over a 40-hour window (two fetches), and how many requests they hold.

    ``steady`` counts 3 a minute and restarts from 0 once, on the second day; ``gappy`` is not
    scraped for two hours around the first day's end and then carries on from its value.
    """
    window = OnSaleWindow("event:x", AT - 44 * HOUR, AT - 4 * HOUR, "manual", "")
    assert window.end is not None
    lines = ["# TYPE onsale_requests counter\n"]
    labels = 'service="checkout",route="/buy",method="POST",mode="onsale",event="x"'
    truth = 0.0
    value, t = 0.0, window.start + STEP
    restart = AT - 12 * HOUR
    while t <= window.end:
        if t == restart:
            value = 2.0  # restarted: counted 2 since
            truth += 2.0
        else:
            value += 3.0
            truth += 3.0
        lines.append(f'onsale_requests_total{{{labels},code="2xx"}} {value:g} {int(t)}\n')
        t += STEP
    value, t = 0.0, window.start + STEP
    gap = (AT - 25 * HOUR, AT - 23 * HOUR)  # the first piece ends 150 s after AT - 24 h
    while t <= window.end:
        value += 1.0
        truth += 1.0
        if not gap[0] <= t < gap[1]:
            lines.append(f'onsale_requests_total{{{labels},code="5xx"}} {value:g} {int(t)}\n')
        t += STEP
    return "".join(lines), truth, window


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    tsdb: Path = tmp_path_factory.mktemp("scale") / "tsdb"
    counters, _, _ = _counters()
    backfill(_gauges() + counters, tsdb)
    with PrometheusServer(tsdb_path=tsdb) as server:
        yield server


def _every_step(url: str) -> list[OnSaleWindow]:
    """The windows as a scan of every step finds them (what the two passes replace)."""
    with PrometheusClient(url) as client:
        series = client.query_range("max by (scope) (onsale_mode) >= 1", SPAN.start, AT, STEP)
    return windows_from_gauge(((s.labels["scope"], list(s.points)) for s in series), STEP, AT)


def test_two_passes_find_the_windows_a_scan_of_every_step_finds(
    prometheus: PrometheusServer,
) -> None:
    """Bucket edges, several series per scope, lookback after the last scrape, open windows."""
    request = CountRequest(at=AT, spans=(SPAN,), services=frozenset({"checkout"}))
    found = PrometheusSource(prometheus.url).collect(request)
    got = [(w.scope, w.start, w.end) for w in (c.window for c in found.onsales)]
    want = [(w.scope, w.start, w.end) for w in _every_step(prometheus.url)]
    assert got == want
    scopes = [scope for scope, _, _ in got]
    assert scopes.count("event:b") == 1
    assert sorted(set(scopes)) == [f"event:{x}" for x in "abcdef"]
    [c] = [w for w in got if w[0] == "event:c"]
    assert c[2] == AT - 18 * HOUR + 5 * STEP  # on 4 more minutes after its last scrape, + 1 step


def test_raw_samples_fetched_a_day_at_a_time_count_exactly(
    prometheus: PrometheusServer,
) -> None:
    """A 40-hour window is fetched in two pieces; a reset and a scrape gap still count right."""
    _, truth, window = _counters()
    span = Span("last:2d", AT - 2 * DAY, AT)
    request = CountRequest(
        at=AT, spans=(span,), onsale_windows=(window,), services=frozenset({"checkout"})
    )
    got = PrometheusSource(prometheus.url).collect(request)
    assert got.origin.endswith("(3 queries)")  # the span, then the window in two pieces
    [counts] = got.onsales
    assert sum(counts.counts.requests.values()) == truth
    onsale = sum(n for k, n in got.spans[span.name].requests.items() if k[3] == "onsale")
    assert onsale == truth
    assert sum(sum(m.values()) for m in counts.minutes.values()) == truth


def test_raw_deltas_leave_out_what_came_before_the_start() -> None:
    """Samples at or before the start are only the baseline; a reset there counts nothing."""
    points = [(-30.0, 5.0), (-15.0, 7.0), (0.0, 1.0), (15.0, 4.0), (30.0, 4.0), (45.0, 6.0)]
    assert raw_deltas(points, 0.0) == ([15.0, 45.0], [3.0, 2.0])
    assert raw_deltas(points, -20.0) == ([-15.0, 0.0, 15.0, 45.0], [2.0, 1.0, 3.0, 2.0])


def _matrix_client(result: object) -> PrometheusClient:
    body = orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})
    headers = {"content-type": "application/json"}
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=body, headers=headers))
    return PrometheusClient("http://prom.example", transport=transport, retries=0)


def test_matrices_decode_to_the_same_floats_whichever_way_they_are_read() -> None:
    """The fast decoder and the checking one agree, NaN and +Inf included."""
    values = [[AT, "1"], [AT + 15.5, "2.5"], [AT + 30, "NaN"]]
    fast = _matrix_client([{"metric": {"k": "v"}, "values": values}]).query_matrix("x[1m]", AT)
    slow = _matrix_client(
        [{"metric": {"k": "v"}, "values": [*values, [AT + 45, "+Inf"]]}]
    ).query_matrix("x[1m]", AT)
    assert fast[0].labels == slow[0].labels == {"k": "v"}
    assert fast[0].points[:2] == slow[0].points[:2] == ((AT, 1.0), (AT + 15.5, 2.5))
    assert math.isnan(fast[0].points[2][1])
    assert math.isnan(slow[0].points[2][1])
    assert slow[0].points[3] == (AT + 45, math.inf)


@pytest.mark.parametrize("value", ["many", None, [1, 2]])
def test_a_matrix_value_that_is_no_number_is_the_servers_fault(value: object) -> None:
    """A value the fast decoder refuses is looked at again, and reported, not raised raw."""
    client = _matrix_client([{"metric": {}, "values": [[AT, value]]}])
    with pytest.raises(PrometheusUnavailableError, match="Prometheus API"):
        client.query_range("x", AT, AT, 60)


@pytest.mark.parametrize(
    ("url", "compress", "asked"),
    [
        ("http://127.0.0.1:9090", None, "identity"),
        ("http://localhost:9090/prometheus", None, "identity"),
        ("http://[::1]:9090", None, "identity"),
        ("http://prom.example:9090", None, "gzip"),
        ("http://10.0.0.7:9090", None, "gzip"),
        ("http://127.0.0.1:9090", True, "gzip"),
        ("http://prom.example:9090", False, "identity"),
    ],
)
def test_answers_are_gzipped_only_from_off_this_machine(
    url: str, compress: bool | None, asked: str
) -> None:
    """A server on loopback sends plain JSON (faster than gzipping it); others gzip."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding", ""))
        body = orjson.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    transport = httpx.MockTransport(handler)
    with PrometheusClient(url, transport=transport, compress=compress) as client:
        client.query("x", AT)
    [header] = seen
    assert asked in header
    if asked == "identity":
        assert header == "identity"
