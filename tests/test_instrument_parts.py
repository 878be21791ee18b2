"""The pieces of request tagging: baggage parsing, metrics, outbound headers, log processor."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from onsale_obs.instrument import (
    DEFAULT_BUCKETS,
    OnsaleSpanProcessor,
    RequestMetrics,
    RequestMode,
    add_onsale_context,
    httpx_hook,
    inject_onsale_headers,
    outbound_baggage,
    requests_adapter,
    status_class,
)
from onsale_obs.instrument._baggage import (
    parse_onsale_baggage,
    rewrite_baggage,
    strip_onsale_baggage,
)
from onsale_obs.instrument._context import _current
from onsale_obs.instrument._events import valid_event
from onsale_obs.testing import free_port


@pytest.fixture
def in_request() -> Iterator[RequestMode]:
    """Code running inside an on-sale request for event ``final``."""
    rm = RequestMode("onsale", "final", "final", None, "/r")
    token = _current.set(rm)
    yield rm
    _current.reset(token)


def test_parse_onsale_baggage() -> None:
    """The scope and upstream mode are read from baggage; other members and properties are ignored."""
    assert parse_onsale_baggage("a=1, onsale.event=final;prop=x ,onsale.mode=onsale") == (
        "final",
        "onsale",
    )
    assert parse_onsale_baggage("a=1") == (None, None)
    assert parse_onsale_baggage("onsale.event=" + "x" * 9000) == (None, None)


@given(st.text(max_size=300))
def test_baggage_parsing_never_raises(header: str) -> None:
    """Any inbound baggage header parses to strings or None, never an exception."""
    event, mode = parse_onsale_baggage(header)
    assert event is None or isinstance(event, str)
    assert mode is None or isinstance(mode, str)
    assert "onsale.mode=normal" in rewrite_baggage(header, None, "normal")
    assert not any(m.strip().startswith("onsale.") for m in strip_onsale_baggage(header).split(","))


def test_rewrite_replaces_every_onsale_member() -> None:
    """Downstream sees this service's view only, with foreign members kept."""
    assert rewrite_baggage("k=v,onsale.mode=onsale,onsale.event=x", "final", "normal") == (
        "k=v,onsale.event=final,onsale.mode=normal"
    )
    assert strip_onsale_baggage("k=v, onsale.mode=onsale") == "k=v"


def test_percent_encoded_onsale_keys_are_onsale_keys() -> None:
    """OTel decodes baggage keys: 'onsale%2Eevent' is onsale.event and is dropped at the edge."""
    assert strip_onsale_baggage("onsale%2Eevent=victim,k=v,onsale%2emode=onsale") == "k=v"
    assert parse_onsale_baggage("onsale%2Eevent=final") == ("final", None)
    assert "victim" not in rewrite_baggage("onsale%2Eevent=victim", None, "normal")


@pytest.mark.parametrize("claimed", ["x" * 6000, 'onsale\n"{}', "ONSALE"])
def test_a_strange_upstream_mode_is_recorded_as_invalid(claimed: str) -> None:
    """The caller's mode goes on every span: only normal/onsale are kept verbatim."""
    assert parse_onsale_baggage(f"onsale.mode={claimed}"[:8000]) == (None, "invalid")
    assert parse_onsale_baggage("onsale.mode=normal") == (None, "normal")


@pytest.mark.parametrize(
    ("status", "code"),
    [(200, "2xx"), (204, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (42, "5xx")],
)
def test_status_class(status: int, code: str) -> None:
    """Status codes become classes; nonsense counts as a server error."""
    assert status_class(status) == code


def test_histogram_buckets_differ_per_mode() -> None:
    """Normal requests get millisecond buckets, on-sale requests buckets up to a minute."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("svc", registry=registry)
    metrics.record("/r", "GET", 200, "normal", "", 0.003)
    metrics.record("/r", "GET", 200, "onsale", "final", 12.0)
    text = generate_latest(registry).decode()
    assert 'le="0.005",method="GET",mode="normal"' in text
    assert 'le="60.0",method="GET",mode="onsale"' in text
    assert 'le="0.005",method="GET",mode="onsale"' not in text
    assert DEFAULT_BUCKETS["onsale"][-1] == 60.0
    assert (
        'onsale_request_duration_seconds_bucket{event="final",le="10.0",method="GET",mode="onsale",route="/r",service="svc"} 0.0'
        in text
    )
    assert (
        'onsale_request_duration_seconds_bucket{event="final",le="20.0",method="GET",mode="onsale",route="/r",service="svc"} 1.0'
        in text
    )


def test_unknown_methods_and_overflowing_labels_are_capped() -> None:
    """Odd methods become ``other``; routes and events past their caps share ``other``."""
    metrics = RequestMetrics("svc", max_routes=2, max_events=1)
    for i in range(50):
        metrics.record(f"/r{i}", "BREW", 200, "onsale", f"e{i}", 0.01)
    assert metrics.series_count() == 3  # r0/e0, r1/other, other/other
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    assert (
        'code="2xx",event="other",method="other",mode="onsale",route="other",service="svc"} 48.0'
        in text
    )


def test_the_installed_sdk_span_takes_the_direct_path() -> None:
    """The SDK's spans are recognised, so a server span is tagged without the public setters.

    (An OTel release that renames its span class would otherwise quietly cost every request
    the slower path.)
    """
    from opentelemetry.sdk.trace import TracerProvider

    from onsale_obs.instrument._tagger import _SDK_SPANS

    span = TracerProvider().get_tracer("test").start_span("server")
    assert type(span) in _SDK_SPANS
    span.end()


def test_requests_from_many_threads_are_all_counted() -> None:
    """Requests recorded from several threads at once all reach the scrape, none twice."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("svc", registry=registry)
    barrier = threading.Barrier(8)

    def serve(worker: int) -> None:
        barrier.wait()
        for i in range(1000):
            metrics.record("/r", "GET", 200 if i % 10 else 503, "onsale", "final", 0.01 * worker)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = generate_latest(registry).decode()
    labels = 'event="final",method="GET",mode="onsale",route="/r",service="svc"'
    assert f'onsale_requests_total{{code="2xx",{labels}}} 7200.0' in text
    assert f'onsale_requests_total{{code="5xx",{labels}}} 800.0' in text
    assert f"onsale_request_duration_seconds_count{{{labels}}} 8000.0" in text


def test_a_single_request_shows_at_the_next_scrape() -> None:
    """Requests are counted in batches, but a scrape never misses one that has finished."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("svc", registry=registry)
    metrics.record("/r", "GET", 200, "normal", "", 0.003)
    assert 'code="2xx",event="",method="GET",mode="normal",route="/r",service="svc"} 1.0' in (
        generate_latest(registry).decode()
    )
    metrics.record("/r", "GET", 200, "normal", "", 0.003)
    assert metrics.series_count() == 1
    assert 'route="/r",service="svc"} 2.0' in generate_latest(registry).decode()


def test_outbound_helpers_carry_the_scope(in_request: RequestMode) -> None:
    """httpx hooks and header injection add onsale.event and this service's mode, merging existing baggage."""
    assert outbound_baggage() == "onsale.event=final,onsale.mode=onsale"
    assert inject_onsale_headers({"Baggage": "k=v,onsale.mode=normal"}) == {
        "Baggage": "k=v,onsale.event=final,onsale.mode=onsale"
    }
    request = httpx.Request("GET", "http://127.0.0.1/", headers={"baggage": "k=v"})
    httpx_hook(request)
    assert request.headers["baggage"] == "k=v,onsale.event=final,onsale.mode=onsale"


def test_outside_a_request_nothing_is_added() -> None:
    """Outside a request the helpers leave headers alone."""
    assert outbound_baggage() is None
    assert inject_onsale_headers({}) == {}


def test_requests_adapter_sends_baggage_to_a_real_server(in_request: RequestMode) -> None:
    """A requests session with the adapter mounted sends the on-sale baggage over the wire."""
    seen: list[str | None] = []

    @Request.application
    def echo(req: Request) -> Response:
        seen.append(req.headers.get("baggage"))
        return Response("ok")

    server = make_server("127.0.0.1", free_port(), echo, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as session:
            session.mount("http://", requests_adapter())
            assert session.get(f"http://127.0.0.1:{server.server_port}/", timeout=5).text == "ok"
    finally:
        server.shutdown()
        thread.join(5)
    assert seen == ["onsale.event=final,onsale.mode=onsale"]


def test_log_processor_adds_context(in_request: RequestMode) -> None:
    """Inside a request, log lines get onsale_mode and onsale_event; explicit keys win."""
    assert add_onsale_context(None, "info", {"event": "x"}) == {
        "event": "x",
        "onsale_mode": "onsale",
        "onsale_event": "final",
    }
    assert add_onsale_context(None, "info", {"onsale_mode": "mine"})["onsale_mode"] == "mine"


def test_log_processor_outside_request() -> None:
    """Outside a request the processor adds nothing."""
    assert add_onsale_context(None, "info", {"event": "x"}) == {"event": "x"}


def test_outbound_continues_the_trace(in_request: RequestMode) -> None:
    """Without client instrumentation, the hooks add ``traceparent`` so the trace continues downstream."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("client") as span:
        request = httpx.Request("GET", "http://127.0.0.1/")
        httpx_hook(request)
        headers = inject_onsale_headers({})
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace_id in request.headers["traceparent"]
    assert trace_id in headers["traceparent"]
    existing = inject_onsale_headers({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    assert existing["traceparent"].startswith("00-" + "1" * 32)  # never overwritten


def test_metrics_app_works_as_a_starlette_route() -> None:
    """``metrics_asgi_app`` can be used directly as a Starlette route endpoint."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.routing import Route

    from onsale_obs.instrument import metrics_asgi_app

    registry = CollectorRegistry()
    RequestMetrics("svc", registry=registry).record("/r", "GET", 200, "onsale", "final", 0.1)
    app = Starlette(routes=[Route("/metrics", metrics_asgi_app(registry))])

    async def scrape() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            return await client.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    assert 'mode="onsale"' in response.text


class _Recording(SpanProcessor):
    """An exporting processor that does something on start, as some vendors' processors do."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []
        self.shut = False
        self.flushed: int | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.name)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)

    def shutdown(self) -> None:
        self.shut = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushed = timeout_millis
        return False


def test_wrapping_processor_tags_then_hands_every_span_on(in_request: RequestMode) -> None:
    """Wrapped, the exporting processor still sees every hook, after the span is tagged."""
    recording = _Recording()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(OnsaleSpanProcessor(recording))
    provider.add_span_processor(OnsaleSpanProcessor(SimpleSpanProcessor(exporter)))
    with provider.get_tracer("t").start_as_current_span("SELECT seats"):
        pass
    assert recording.started == recording.ended == ["SELECT seats"]
    (span,) = exporter.get_finished_spans()
    assert span.attributes == {"onsale.mode": "onsale", "onsale.event": "final"}
    assert provider.force_flush(5000) is False  # the wrapped processor's own answer
    assert recording.flushed is not None
    provider.shutdown()
    assert recording.shut


def test_processor_skips_only_hooks_that_do_nothing() -> None:
    """The SDK's processors do nothing on start; one that does is still called."""
    simple = OnsaleSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert simple._then_start is None
    recording = _Recording()
    assert OnsaleSpanProcessor(recording)._then_start == recording.on_start


@pytest.mark.parametrize("event", ["abc\n", "abc\r\n", "", "-x", "a" * 129])
def test_event_ids_are_checked_whole(event: str) -> None:
    """An id with a trailing newline (from %0A in a path or baggage) is not a valid event."""
    assert valid_event(event) is None
    assert valid_event("final-2026.b") == "final-2026.b"
