"""The Prometheus source against a real Prometheus holding planted traffic, and its client.

The planted stream (``tests/slo_traffic.py``) is backfilled once per session with promtool;
on-sale counts must equal its truth exactly, normal-time counts within 0.05%.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale_obs.durations import format_duration
from onsale_obs.exceptions import BadInputError, PrometheusUnavailableError
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import PromQLSLI, spec_from_data
from onsale_obs.slo._data import INF, Aggregate, Collected, CountRequest, Span
from onsale_obs.slo._plan import plan
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._prom_deltas import raw_deltas
from onsale_obs.slo._prom_windows import merge_with_grace, windows_from_gauge
from onsale_obs.slo._prometheus import PrometheusSource
from onsale_obs.testing import free_port
from onsale_obs.testing_prometheus import PrometheusServer
from tests.slo_oracle import oracle
from tests.slo_traffic import (
    AT,
    DAY,
    GRACE,
    HOUR,
    MINUTE,
    ROUTES,
    THRESHOLDS,
    Traffic,
    generate,
)

SPANS = tuple(
    Span(f"last:{format_duration(s)}", AT - s, AT)
    for s in (30 * DAY, 7 * DAY, 3 * DAY, 6 * HOUR, HOUR, 30 * MINUTE, 5 * MINUTE, MINUTE)
)
SERVICES = frozenset({"checkout", "inventory"})
#: spans long enough for the 0.05% bar on normal-time counts (shorter ones hold a few requests)
LONG_SPANS = SPANS[:3]


def _request(traffic: Traffic, **changes: Any) -> CountRequest:
    fields: dict[str, Any] = {
        "at": AT,
        "spans": SPANS,
        "thresholds": frozenset(THRESHOLDS),
        "onsale_windows": traffic.windows,
        "grace": GRACE,
        "services": SERVICES,
    }
    fields.update(changes)
    return CountRequest(**fields)


def _counts(agg: Aggregate, mode: str, service: str, route: str) -> tuple[float, float]:
    """Total and 5xx of one route in one mode (floats: the source may estimate)."""
    total = bad = 0.0
    for (s, r, _, m, code), n in agg.requests.items():
        if (s, r, m) == (service, route, mode):
            total += n
            bad += n if code == "5xx" else 0.0
    return total, bad


def _within(agg: Aggregate, mode: str, service: str, route: str, le: float) -> float:
    return sum(
        n
        for (s, r, _, m, b), n in agg.latency.items()
        if (s, r, m, b) == (service, route, mode, le)
    )


def _is_whole(*values: float) -> bool:
    return all(float(v).is_integer() for v in values)


@pytest.fixture(scope="module")
def collected(planted_prometheus: PrometheusServer, planted_traffic: Traffic) -> Collected:
    """The planted traffic counted with the planted on-sale windows given."""
    return PrometheusSource(planted_prometheus.url).collect(_request(planted_traffic))


@pytest.fixture(scope="module")
def found(planted_prometheus: PrometheusServer, planted_traffic: Traffic) -> Collected:
    """The planted traffic counted with the windows found in ``onsale_mode``."""
    request = _request(planted_traffic, onsale_windows=None)
    return PrometheusSource(planted_prometheus.url).collect(request)


# ---- exactness against the planted truth ---------------------------------------------------


@pytest.mark.parametrize("span", SPANS, ids=lambda s: s.name)
def test_onsale_counts_equal_the_planted_truth(
    collected: Collected, planted_traffic: Traffic, span: Span
) -> None:
    """On-sale totals and 5xx per route are the planted integers, resets included."""
    agg = collected.spans[span.name]
    for service, route, _, _ in ROUTES:
        got = _counts(agg, "onsale", service, route)
        truth = planted_traffic.truth(
            start=span.start, end=span.end, mode="onsale", service=service, routes=[route]
        )
        assert got == (truth.total, truth.bad)
        assert _is_whole(*got)


@pytest.mark.parametrize("span", SPANS, ids=lambda s: s.name)
def test_onsale_latency_counts_are_exact(
    collected: Collected, planted_traffic: Traffic, span: Span
) -> None:
    """Requests within 0.25 s and 1 s (and in all) during on-sales are the planted counts."""
    agg = collected.spans[span.name]
    for service, route, _, _ in ROUTES:
        for threshold in THRESHOLDS:
            truth = planted_traffic.truth(
                start=span.start, end=span.end, mode="onsale", service=service, routes=[route],
                threshold=threshold,
            )  # fmt: skip
            assert _within(agg, "onsale", service, route, threshold) == truth.total - truth.bad
            assert _within(agg, "onsale", service, route, INF) == truth.total


@pytest.mark.parametrize("span", LONG_SPANS, ids=lambda s: s.name)
def test_normal_counts_are_within_the_bar(
    collected: Collected, planted_traffic: Traffic, span: Span
) -> None:
    """Normal-time totals within 0.05%; bad and slow counts move the SLI by under 0.05%."""
    agg = collected.spans[span.name]
    for service, route, _, _ in ROUTES:
        total, bad = _counts(agg, "normal", service, route)
        truth = planted_traffic.truth(
            start=span.start, end=span.end, mode="normal", service=service, routes=[route]
        )
        assert total == pytest.approx(truth.total, rel=5e-4)
        assert abs(bad - truth.bad) <= 5e-4 * truth.total
        slow = planted_traffic.truth(
            start=span.start, end=span.end, mode="normal", service=service, routes=[route],
            threshold=0.25,
        )  # fmt: skip
        good = _within(agg, "normal", service, route, 0.25)
        assert abs(good - (slow.total - slow.bad)) <= 5e-4 * truth.total


def test_window_counts_are_exact(collected: Collected, planted_traffic: Traffic) -> None:
    """Every planted window gets exactly its on-sale requests, bad ones and fast ones."""
    assert [c.window for c in collected.onsales] == list(planted_traffic.windows)
    for counts in collected.onsales:
        truth = planted_traffic.window_truth(counts.window)
        total = sum(counts.counts.requests.values())
        bad = sum(n for k, n in counts.counts.requests.items() if k[4] == "5xx")
        assert (total, bad) == (truth.total, truth.bad)
        fast = planted_traffic.window_truth(counts.window, threshold=1.0)
        assert (
            sum(n for k, n in counts.counts.latency.items() if k[4] == 1.0) == fast.total - fast.bad
        )
        assert sum(sum(m.values()) for m in counts.minutes.values()) == truth.total


def test_window_minutes_fall_inside_the_window(
    collected: Collected, planted_traffic: Traffic
) -> None:
    """Per-minute counts are keyed by whole minutes within the window's counting range."""
    for counts in collected.onsales:
        start, end = planted_traffic.window_range(counts.window)
        minutes = [m for per_route in counts.minutes.values() for m in per_route]
        assert minutes
        assert all(m % 60 == 0 and start - 60 < m <= end for m in minutes)


def test_source_agrees_with_the_oracle_on_a_spec(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """For a spec's plan, on-sale counts equal the slow oracle's and normal ones are close."""
    spec = spec_from_data(
        {
            "slos": [
                {
                    "name": "checkout-availability",
                    "service": "checkout",
                    "sli": {"type": "availability", "routes": ["/events/{event_id}/checkout"]},
                    "objectives": {"normal": 99.9, "onsale": 99.99},
                },
                {
                    "name": "inventory-latency",
                    "service": "inventory",
                    "sli": {"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}},
                    "objectives": {"normal": 99.0, "onsale": 99.0},
                },
            ]
        }
    )
    request = plan(spec, AT, onsale_windows=planted_traffic.windows)
    got = PrometheusSource(planted_prometheus.url).collect(request)
    want = oracle(planted_traffic.records, request)
    for name, truth in want.spans.items():
        for key, n in truth.requests.items():
            if key[3] == "onsale":
                assert got.spans[name].requests.get(key, 0.0) == n, (name, key)
        for lkey, n in truth.latency.items():
            if lkey[3] == "onsale":
                assert got.spans[name].latency.get(lkey, 0.0) == n, (name, lkey)
    longest = want.spans[request.spans[0].name]
    normal = sum(n for k, n in longest.requests.items() if k[3] == "normal")
    estimated = sum(
        n for k, n in got.spans[request.spans[0].name].requests.items() if k[3] == "normal"
    )
    assert estimated == pytest.approx(normal, rel=5e-4)


def test_restart_inside_an_onsale_is_a_drop_and_still_counted(
    collected: Collected, planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """The planted checkout restart shows as a drop in Prometheus, and the window stays exact."""
    arena = next(w for w in planted_traffic.windows if w.scope == "event:arena-tour")
    assert arena.end is not None
    with PrometheusClient(planted_prometheus.url) as client:
        answer = client.query_matrix(
            'onsale_requests_total{service="checkout",code="2xx",event="arena-tour"}'
            f"[{int(arena.end - arena.start)}s]",
            arena.end,
        )
    drops = [(a, b) for series in answer for (_, a), (_, b) in pairwise(series.points) if b < a]
    assert drops
    counts = next(c for c in collected.onsales if c.window == arena)
    assert sum(counts.counts.requests.values()) == planted_traffic.window_truth(arena).total


def test_no_warnings_when_the_windows_are_complete(collected: Collected) -> None:
    """Complete windows and real bucket boundaries give a clean answer."""
    assert collected.warnings == []
    assert collected.exact_onsale


# ---- windows found in onsale_mode ----------------------------------------------------------


def test_found_windows_match_the_planted_ones(found: Collected, planted_traffic: Traffic) -> None:
    """Each planted window is found once, widened by at most one step plus one scrape."""
    windows = [c.window for c in found.onsales]
    planted = sorted(planted_traffic.windows, key=lambda w: (w.start, w.scope))
    assert [w.scope for w in windows] == [w.scope for w in planted]
    slack = 60.0 + planted_traffic.scrape_interval
    for got, want in zip(windows, planted, strict=True):
        assert (got.source, got.reason) == ("auto", "found in onsale_mode")
        assert want.start - slack <= got.start <= want.start
        if want.end is None:
            assert got.end is None
        else:
            assert got.end is not None
            assert want.end <= got.end <= want.end + slack


def test_counts_with_found_windows_are_exact(found: Collected, planted_traffic: Traffic) -> None:
    """Found windows give the same exact span counts, and exact counts for their own ranges."""
    for span in SPANS:
        truth = planted_traffic.truth(start=span.start, end=span.end, mode="onsale")
        got = sum(n for k, n in found.spans[span.name].requests.items() if k[3] == "onsale")
        assert got == truth.total
    for counts in found.onsales:
        assert (
            sum(counts.counts.requests.values())
            == planted_traffic.window_truth(counts.window).total
        )


def test_onsale_traffic_outside_the_windows_warns(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """Leaving a window out loses exactly its requests and says so in a warning."""
    arena = next(w for w in planted_traffic.windows if w.scope == "event:arena-tour")
    windows = tuple(w for w in planted_traffic.windows if w != arena)
    request = _request(planted_traffic, onsale_windows=windows)
    got = PrometheusSource(planted_prometheus.url).collect(request)
    assert any("outside any known on-sale window" in w for w in got.warnings)
    span = SPANS[0]
    total = sum(n for k, n in got.spans[span.name].requests.items() if k[3] == "onsale")
    everything = planted_traffic.truth(start=span.start, end=span.end, mode="onsale")
    assert total == everything.total - planted_traffic.window_truth(arena).total


def test_threshold_that_is_no_bucket_boundary_warns(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """A 0.3 s threshold is named in a warning that lists the boundaries found."""
    request = _request(
        planted_traffic, spans=SPANS[-2:], thresholds=frozenset({0.25, 0.3}), onsale_windows=()
    )
    got = PrometheusSource(planted_prometheus.url).collect(request)
    [warning] = [w for w in got.warnings if "bucket boundary" in w]
    assert "threshold 0.3 s" in warning
    assert "0.25" in warning
    assert "threshold 0.25 s" not in warning


# ---- queries, progress, custom SLIs, empty answers -----------------------------------------


def test_one_query_per_metric_per_span_and_progress(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """Queries grow with spans and windows, not SLOs; progress counts each one."""
    calls: list[tuple[float, float | None]] = []
    request = _request(planted_traffic)
    got = PrometheusSource(planted_prometheus.url).collect(
        request, lambda done, total: calls.append((done, total))
    )
    intervals = merge_with_grace(planted_traffic.windows, GRACE, AT)
    expected = 2 * len(SPANS) + 2 * len(intervals)
    assert got.origin == f"prometheus: {planted_prometheus.url} ({expected} queries)"
    assert [done for done, _ in calls] == list(range(1, expected + 1))
    assert {total for _, total in calls} == {expected}


def test_custom_promql_sli_is_counted_by_mode(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """Raw-PromQL SLIs get good and total per mode; on-sale ones exact from raw samples."""
    sli = PromQLSLI(
        good='onsale_requests_total{service="checkout",code!="5xx"}',
        total='onsale_requests_total{service="checkout"}',
    )
    request = _request(planted_traffic, spans=SPANS[:1], custom=(("checkout-ok", sli),))
    got = PrometheusSource(planted_prometheus.url).collect(request).spans[SPANS[0].name].custom
    span = SPANS[0]
    normal = planted_traffic.truth(
        start=span.start, end=span.end, mode="normal", service="checkout"
    )
    assert got[("checkout-ok", "total", "normal")] == pytest.approx(normal.total, rel=5e-4)
    good = got[("checkout-ok", "good", "normal")]
    assert abs(good - (normal.total - normal.bad)) <= 5e-4 * normal.total
    onsale = planted_traffic.truth(
        start=span.start, end=span.end, mode="onsale", service="checkout"
    )
    assert got[("checkout-ok", "total", "onsale")] == onsale.total
    assert got[("checkout-ok", "good", "onsale")] == onsale.total - onsale.bad


def test_a_bad_custom_selector_is_bad_input_naming_the_query(
    planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """Prometheus' parse error comes back as bad input that quotes the query."""
    sli = PromQLSLI(good="sum(broken", total="up")
    request = _request(planted_traffic, spans=SPANS[-1:], custom=(("broken", sli),))
    with pytest.raises(BadInputError, match=r"sum\(broken") as info:
        PrometheusSource(planted_prometheus.url).collect(request)
    assert info.value.exit_code == 2


def test_no_data_is_empty_not_an_error(prometheus_server: PrometheusServer) -> None:
    """An empty Prometheus answers with empty aggregates and says no windows are known."""
    request = CountRequest(at=AT, spans=SPANS, thresholds=frozenset(THRESHOLDS), services=SERVICES)
    got = PrometheusSource(prometheus_server.url).collect(request)
    assert all(agg == Aggregate() for agg in got.spans.values())
    assert got.onsales == []
    assert any("no onsale_mode series" in w for w in got.warnings)


def test_a_bad_query_is_bad_input(prometheus_server: PrometheusServer) -> None:
    """A query Prometheus cannot parse is exit-code-2 input, with the query in the message."""
    with (
        PrometheusClient(prometheus_server.url) as client,
        pytest.raises(BadInputError, match=r"'sum\(rate\(x\[5m\]\)'") as info,
    ):
        client.query("sum(rate(x[5m])", AT)
    assert "parse error" in str(info.value)


# ---- the client against scripted servers ---------------------------------------------------

_VECTOR = orjson.dumps(
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [AT, "7"]}]},
    }
)
_BAD_DATA = orjson.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})
_JSON = {"content-type": "application/json"}
Reply = tuple[int, dict[str, str], bytes]


class _ScriptedServer(ThreadingHTTPServer):
    """Answers POSTs with ``replies`` in turn (the last one repeats) and records them."""

    replies: list[Reply]
    seen: list[tuple[str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _ScriptedServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        seen = self.server.seen
        seen.append((self.path, body))
        status, headers, payload = self.server.replies[min(len(seen), len(self.server.replies)) - 1]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def scripted(*replies: Reply) -> Iterator[_ScriptedServer]:
    """A loopback HTTP server that plays ``replies``."""
    server = _ScriptedServer(("127.0.0.1", 0), _Handler)
    server.replies, server.seen = list(replies), []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _client(server: _ScriptedServer, waits: list[float], **options: Any) -> PrometheusClient:
    host, port = server.server_address[:2]
    return PrometheusClient(f"http://{host!s}:{port}", sleep=waits.append, **options)


def test_503_then_200_is_retried() -> None:
    """A 503 is retried after a short backoff and the second answer is used."""
    waits: list[float] = []
    with scripted((503, {}, b"busy"), (200, _JSON, _VECTOR)) as server, _client(server, waits) as c:
        samples = c.query("up", AT)
    assert [s.value for s in samples] == [7.0]
    assert len(server.seen) == 2
    assert waits == [0.2]


def test_429_waits_as_long_as_retry_after_says() -> None:
    """A 429 with Retry-After is retried after that many seconds."""
    waits: list[float] = []
    reply = (429, {"retry-after": "2"}, b"")
    with scripted(reply, (200, _JSON, _VECTOR)) as server, _client(server, waits) as client:
        client.query("up", AT)
    assert waits == [2.0]


def test_5xx_that_persists_is_unavailable() -> None:
    """After the retries, a failing server is exit-code-3 unavailable, naming what happened."""
    waits: list[float] = []
    with scripted((502, {}, b"bad gateway")) as server, _client(server, waits, retries=2) as c:
        with pytest.raises(PrometheusUnavailableError, match="failed 3 time") as info:
            c.query("up", AT)
        assert len(server.seen) == 3
    assert "HTTP 502" in str(info.value)
    assert info.value.exit_code == 3


def test_bad_data_is_not_retried() -> None:
    """A 400 bad_data answer is bad input at once, quoting the query and the error."""
    waits: list[float] = []
    with scripted((400, _JSON, _BAD_DATA)) as server, _client(server, waits) as client:
        with pytest.raises(BadInputError, match=r"'rate\(x\)'.*parse error"):
            client.query("rate(x)", AT)
        assert len(server.seen) == 1
    assert waits == []


def test_an_answer_that_is_not_the_api_is_unavailable() -> None:
    """An HTML page (a wrong URL, a login proxy) is named as not the Prometheus API."""
    waits: list[float] = []
    page = (200, {"content-type": "text/html"}, b"<html>Grafana</html>")
    with (
        scripted(page) as server,
        _client(server, waits) as client,
        pytest.raises(PrometheusUnavailableError, match="not the Prometheus API"),
    ):
        client.query("up", AT)


def test_unreachable_port_is_unavailable() -> None:
    """Nothing listening: retried, then exit-code-3 unavailable with the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    with (
        PrometheusClient(url, retries=1, sleep=waits.append) as client,
        pytest.raises(PrometheusUnavailableError, match="failed 2 time") as info,
    ):
        client.query("up", AT)
    assert info.value.url == url
    assert "could not connect" in str(info.value)
    assert len(waits) == 1


def test_a_server_that_never_answers_times_out() -> None:
    """A listener that never replies ends in a timeout error, not a hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with (
            PrometheusClient(f"http://127.0.0.1:{port}", timeout=0.2, retries=0) as client,
            pytest.raises(PrometheusUnavailableError, match="timed out"),
        ):
            client.query("up", AT)


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> PrometheusClient:
    return PrometheusClient(
        "http://prom.example/prometheus/", transport=httpx.MockTransport(handler), retries=0
    )


def test_queries_are_form_posts_under_the_path_prefix() -> None:
    """The URL's path prefix is kept and the query travels form-encoded in a POST."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=_VECTOR, headers=_JSON)

    _mock(handler).query('x{a="1"}', 1_700_000_000.5)
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/prometheus/api/v1/query")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.content == b"query=x%7Ba%3D%221%22%7D&time=1700000000.500"


def test_nan_and_infinity_are_parsed() -> None:
    """Prometheus' "NaN", "+Inf" and "-Inf" become floats, in vectors and matrices."""
    result = [
        {"metric": {"k": "nan"}, "values": [[AT, "NaN"], [AT + 15, "+Inf"], [AT + 30, "-Inf"]]}
    ]
    body = orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})
    client = _mock(lambda _: httpx.Response(200, content=body, headers=_JSON))
    [series] = client.query_matrix("x[1m]", AT)
    values = [v for _, v in series.points]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize(
    "result",
    [
        [{"metric": {"k": "v"}, "value": [AT, "many"]}],
        [{"metric": {"k": 1}, "value": [AT, "1"]}],
        [{"metric": {}, "value": [AT]}],
        {"not": "a list"},
    ],
)
def test_malformed_answers_are_unavailable_not_tracebacks(result: Any) -> None:
    """Values, labels or results of the wrong shape are reported, never raised raw."""
    body = orjson.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
    client = _mock(lambda _: httpx.Response(200, content=body, headers=_JSON))
    with pytest.raises(PrometheusUnavailableError, match="Prometheus API"):
        client.query("x", AT)


def test_a_url_without_scheme_is_bad_input() -> None:
    """``localhost:9090`` is refused with an example of what is expected."""
    with pytest.raises(BadInputError, match="http://"):
        PrometheusClient("localhost:9090")


# ---- the arithmetic ------------------------------------------------------------------------


def test_raw_deltas_count_resets_and_new_series() -> None:
    """A drop counts the new value; a series without a baseline counts its first value."""
    points = [(0.0, 10.0), (15.0, 12.0), (30.0, 3.0), (45.0, 5.0)]
    assert raw_deltas(points, 0.0) == ([15.0, 30.0, 45.0], [2.0, 3.0, 2.0])
    assert raw_deltas(points[1:], 0.0) == ([15.0, 30.0, 45.0], [12.0, 3.0, 2.0])
    assert raw_deltas([(0.0, 1.0), (15.0, math.nan), (30.0, 4.0)], 0.0) == ([30.0], [3.0])


@given(
    st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=40),
    st.integers(0, 100),
)
def test_raw_deltas_sum_to_what_was_counted(steps: list[tuple[int, bool]], base: int) -> None:
    """Whatever the visible resets, the deltas add up to the increments that happened."""
    points, value, counted = [(0.0, float(base))], base, 0
    for i, (increment, restart) in enumerate(steps, 1):
        if restart and value > 0:
            increment %= value  # a restart is visible only when the value drops
            value = increment
        else:
            value += increment
        counted += increment
        points.append((i * 15.0, float(value)))
    _, increments = raw_deltas(points, 0.0)
    assert sum(increments) == counted


def test_windows_from_gauge_runs() -> None:
    """Runs of 1 become windows widened by a step; a run reaching the end stays open."""
    step = 60.0
    on = [(t * step, 1.0 if 3 <= t <= 5 or t >= 9 else 0.0) for t in range(11)]
    windows = windows_from_gauge([("event:x", on)], step, 10 * step)
    assert [(w.scope, w.start, w.end) for w in windows] == [
        ("event:x", 2 * step, 6 * step),
        ("event:x", 8 * step, None),
    ]


def test_merge_with_grace_joins_windows_the_grace_bridges() -> None:
    """Windows closer than the grace are fetched as one range, clipped at ``at``."""
    w = [
        OnSaleWindow("event:a", 0.0, 100.0, "manual", ""),
        OnSaleWindow("event:b", 350.0, 400.0, "manual", ""),
        OnSaleWindow("global", 1000.0, None, "manual", ""),
    ]
    assert merge_with_grace(w, 300.0, 1200.0) == [(0.0, 700.0), (1000.0, 1200.0)]


def test_planted_stream_is_deterministic_and_as_described(planted_traffic: Traffic) -> None:
    """The same seed gives the same stream, with the scopes, errors and resets promised."""
    again = generate(scrape_interval=planted_traffic.scrape_interval)
    assert again.records == planted_traffic.records
    scopes = {w.scope for w in planted_traffic.windows}
    assert {"global", "event:cup-final", "event:arena-tour"} <= scopes
    assert planted_traffic.windows[-1].end is None
    assert planted_traffic.windows[-1].start > AT - DAY
    for mode in ("normal", "onsale"):
        assert planted_traffic.truth(start=AT - 32 * DAY, end=AT, mode=mode).bad > 0
    restarts = [t for times in planted_traffic.restarts.values() for t in times]
    inside = [t for t in restarts for w in planted_traffic.windows if w.end and w.start < t < w.end]
    assert inside
    assert len(inside) < len(restarts)
    assert len(planted_traffic.records) < 300_000


def test_access_log_view_is_the_same_stream(planted_traffic: Traffic) -> None:
    """The access-log lines carry the middleware's schema, one per planted request."""
    lines = list(planted_traffic.access_log_lines())
    assert len(lines) == len(planted_traffic.records)
    first = orjson.loads(lines[0])
    assert set(first) == {
        "ts", "service", "route", "method", "status", "duration_s", "mode", "event",
        "event_onsale", "trace_id",
    }  # fmt: skip
    onsale = [orjson.loads(line) for line in lines if b'"event_onsale":true' in line]
    assert onsale
    assert all(line["mode"] == "onsale" for line in onsale)


# ---- garbage from a server that speaks the API -----------------------------------------------

_ONE_SLO = {
    "slos": [
        {
            "name": "checkout-availability",
            "service": "checkout",
            "sli": {"type": "availability"},
            "objectives": {"normal": 99.9, "onsale": 99.99},
        }
    ]
}


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "-5000"])
def test_a_count_that_is_not_a_count_is_no_answer_not_zero(value: str) -> None:
    """NaN, infinities or a negative count must not read as "no errors, SLO ok"."""
    vector = [{"metric": {"service": "checkout", "mode": "normal", "code": "5xx"},
               "value": [AT, value]}]  # fmt: skip
    body = orjson.dumps({"status": "success", "data": {"resultType": "vector", "result": vector}})
    source = PrometheusSource(_mock(lambda _: httpx.Response(200, content=body, headers=_JSON)))
    request = plan(spec_from_data(_ONE_SLO), AT, onsale_windows=[])
    with pytest.raises(PrometheusUnavailableError, match="counts must be finite"):
        source.collect(request)


def test_an_instant_query_answered_with_a_matrix_is_the_servers_fault() -> None:
    """Not our bad input (exit 2) but a server that is not Prometheus-compatible (exit 3)."""
    body = orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
    client = _mock(lambda _: httpx.Response(200, content=body, headers=_JSON))
    with pytest.raises(PrometheusUnavailableError, match="not a vector"):
        client.query("up", AT)


def test_a_retry_after_longer_than_the_timeout_gives_up_at_once() -> None:
    waits: list[float] = []
    reply = (429, {"retry-after": "3600"}, b"")
    with (
        scripted(reply) as server,
        _client(server, waits) as client,
        pytest.raises(PrometheusUnavailableError, match="retry after 3600 s"),
    ):
        client.query("up", AT)
    assert waits == []


def test_a_server_trickling_its_answer_is_cut_at_the_timeout() -> None:
    """Headers at once, then a byte at a time: --timeout bounds the whole answer."""
    stop = threading.Event()

    def trickle(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n")  # fmt: skip
            while not stop.wait(0.05):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        thread = threading.Thread(target=trickle, args=(listener,), daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        try:
            with (
                PrometheusClient(f"http://127.0.0.1:{port}", timeout=0.5, retries=0) as client,
                pytest.raises(PrometheusUnavailableError, match=r"took longer than 0\.5 s"),
            ):
                client.query("up", AT)
        finally:
            stop.set()
            thread.join(5)
