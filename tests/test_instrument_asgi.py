"""The ASGI middleware: spans, logs, metrics and baggage of every request carry the mode."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
import structlog
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from onsale_obs.instrument import (
    AccessLog,
    EventExtractor,
    Header,
    OnsaleMiddleware,
    OnsaleSpanProcessor,
    PathParam,
    Query,
    RequestMetrics,
    configure_logging,
    current_request_mode,
    outbound_baggage,
)
from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import FakeClock, key_pair
from onsale_obs.types import ASGIApp, Receive, Scope, Send


@dataclass
class Stack:
    broadcaster: Broadcaster
    subscriber: ModeSubscriber
    backend: MemoryBackend
    registry: CollectorRegistry
    metrics: RequestMetrics
    exporter: InMemorySpanExporter
    provider: TracerProvider
    logs: io.StringIO
    access: io.BytesIO
    clock: FakeClock

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def log_lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.logs.getvalue().splitlines()]

    def access_lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.access.getvalue().splitlines()]

    def metrics_text(self) -> str:
        return generate_latest(self.registry).decode()


@pytest.fixture(params=["beside", "wrapping"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Broadcaster, subscriber, tracer provider with the on-sale processor, metrics and logs.

    Every test runs with the on-sale processor added beside the exporting one and wrapping it.
    """
    signer, verifier = key_pair()
    backend = MemoryBackend()
    clock = FakeClock()
    subscriber = ModeSubscriber(backend, verifier, registry=None, clock=clock)
    registry = CollectorRegistry()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    if request.param == "beside":
        provider.add_span_processor(OnsaleSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(OnsaleSpanProcessor(SimpleSpanProcessor(exporter)))
    logs = io.StringIO()
    configure_logging(stream=logs)
    yield Stack(
        Broadcaster(backend, signer, clock=clock),
        subscriber,
        backend,
        registry,
        RequestMetrics("checkout", registry=registry),
        exporter,
        provider,
        logs,
        io.BytesIO(),
        clock,
    )
    structlog.reset_defaults()
    provider.shutdown()


def build_app(stack: Stack) -> Starlette:
    tracer = stack.provider.get_tracer("test")
    log = structlog.get_logger()

    async def checkout(request: Request) -> Response:
        with tracer.start_as_current_span("SELECT seats"):
            log.info("seat reserved", seat=7)
        if request.query_params.get("fail") == "raise":
            raise RuntimeError("payment provider exploded")
        if request.query_params.get("fail") == "500":
            return PlainTextResponse("down", status_code=500)
        rm = current_request_mode()
        return JSONResponse({"mode": rm.mode if rm else None, "baggage": outbound_baggage()})

    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/events/{event_id}/checkout", checkout, methods=["POST"]),
            Route("/health", plain),
            Mount("/api", routes=[Route("/orders/{order_id}", plain)]),
        ]
    )


EXTRACTORS = (PathParam("event_id"), Header("x-event-id"), Query("event"))


def wrap(
    stack: Stack,
    app: Starlette,
    *,
    otel: str = "outer",
    event: tuple[EventExtractor, ...] = EXTRACTORS,
    **options: object,
) -> ASGIApp:
    tagged: ASGIApp = OnsaleMiddleware(
        app,
        subscriber=stack.subscriber,
        service="checkout",
        event=event,
        metrics=stack.metrics,
        access_log=AccessLog(stack.access, service="checkout", flush_interval=0),
        **options,  # type: ignore[arg-type]
    )
    if otel == "outer":
        return OpenTelemetryMiddleware(tagged, tracer_provider=stack.provider)
    if otel == "inner":
        inner = OpenTelemetryMiddleware(app, tracer_provider=stack.provider)
        return OnsaleMiddleware(
            inner,
            subscriber=stack.subscriber,
            service="checkout",
            event=event,
            metrics=stack.metrics,
            access_log=AccessLog(stack.access, service="checkout", flush_interval=0),
            route_app=app,
            **options,  # type: ignore[arg-type]
        )
    return tagged


def call(
    app: ASGIApp, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def put_onsale(stack: Stack, scope: str = "event:final") -> None:
    stack.broadcaster.set(scope, "onsale")
    stack.subscriber.sync()


@pytest.mark.parametrize("otel", ["outer", "inner"])
def test_every_span_and_log_line_of_an_onsale_request_is_tagged(stack: Stack, otel: str) -> None:
    """Server, send and child spans and every log line carry onsale; works with OTel outside or inside."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack), otel=otel)
    response = call(app, "POST", "/events/final/checkout")
    assert response.status_code == 200
    assert response.json()["mode"] == "onsale"
    spans = stack.spans()
    assert "SELECT seats" in {s.name for s in spans}
    assert {s.kind.name for s in spans} == {"SERVER", "INTERNAL"}  # server, send and child spans
    for span in spans:
        assert span.attributes is not None
        assert span.attributes["onsale.mode"] == "onsale", span.name
        assert span.attributes["onsale.event"] == "final", span.name
    (line,) = stack.log_lines()
    assert (line["onsale_mode"], line["onsale_event"]) == ("onsale", "final")
    server = next(s for s in spans if s.kind.name == "SERVER")
    assert server.context is not None
    assert line["trace_id"] == format(server.context.trace_id, "032x")


ONLY_PATH = (PathParam("event_id"),)  # a path always means one route and event: shared tags


@pytest.mark.parametrize("event", [ONLY_PATH, EXTRACTORS], ids=["path-only", "all"])
@pytest.mark.parametrize("otel", ["outer", "inner"])
def test_each_request_of_a_path_keeps_its_own_trace(
    stack: Stack, otel: str, event: tuple[EventExtractor, ...]
) -> None:
    """Requests of one path and mode share their tags, never their trace id (access log, exemplar)."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack), otel=otel, event=event)
    for _ in range(3):
        call(app, "POST", "/events/final/checkout")
    servers = [s for s in stack.spans() if s.kind.name == "SERVER"]
    traces = [format(s.context.trace_id, "032x") for s in servers if s.context is not None]
    assert len(set(traces)) == 3
    assert [line["trace_id"] for line in stack.access_lines()] == traces
    assert all(s.attributes and s.attributes["onsale.mode"] == "onsale" for s in stack.spans())


@pytest.mark.parametrize("event", [ONLY_PATH, EXTRACTORS], ids=["path-only", "all"])
@pytest.mark.parametrize("otel", ["outer", "inner"])
def test_the_same_path_follows_every_mode_change(
    stack: Stack, otel: str, event: tuple[EventExtractor, ...]
) -> None:
    """Each request of a path gets the mode of its moment: on, off, on until a time, past it."""
    app = wrap(stack, build_app(stack), otel=otel, event=event)

    def mode() -> object:
        return call(app, "POST", "/events/final/checkout").json()["mode"]

    assert mode() == "normal"
    put_onsale(stack)
    assert mode() == "onsale"
    stack.broadcaster.set("event:final", "normal")
    stack.subscriber.sync()
    assert mode() == "normal"
    stack.broadcaster.set("event:final", "onsale", until=stack.clock.now + 60)
    stack.subscriber.sync()
    assert mode() == "onsale"
    stack.clock.advance(61)  # the on-sale's end passes with no new message
    assert mode() == "normal"
    modes = [line["mode"] for line in stack.access_lines()]
    assert modes == ["normal", "onsale", "normal", "onsale", "normal"]
    events = [line["event_onsale"] for line in stack.access_lines()]
    assert events == [False, True, False, True, False]


def test_normal_request_is_tagged_normal(stack: Stack) -> None:
    """A request for an event that is not on sale is tagged normal, with an empty event label."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack))
    call(app, "POST", "/events/other/checkout")
    assert all(s.attributes and s.attributes["onsale.mode"] == "normal" for s in stack.spans())
    assert (
        'onsale_requests_total{code="2xx",event="",method="POST",mode="normal",'
        'route="/events/{event_id}/checkout",service="checkout"} 1.0'
    ) in stack.metrics_text()


def test_global_onsale_tags_every_request(stack: Stack) -> None:
    """A global on-sale makes every request onsale; the event label stays empty for other events."""
    put_onsale(stack, "global")
    app = wrap(stack, build_app(stack))
    assert call(app, "POST", "/events/any/checkout").json()["mode"] == "onsale"
    assert 'event="",method="POST",mode="onsale"' in stack.metrics_text()


@pytest.mark.parametrize("otel", ["outer", "inner"])
def test_forged_inbound_mode_is_ignored(stack: Stack, otel: str) -> None:
    """An inbound ``onsale.mode=onsale`` does not make a normal request onsale; it is recorded as upstream."""
    app = wrap(stack, build_app(stack), otel=otel)
    body = call(
        app, "POST", "/events/final/checkout", {"baggage": "onsale.mode=onsale,user=42"}
    ).json()
    assert body["mode"] == "normal"
    assert body["baggage"] == "user=42,onsale.event=final,onsale.mode=normal"
    for span in stack.spans():
        assert span.attributes is not None
        assert span.attributes["onsale.mode"] == "normal"
        assert span.attributes["onsale.upstream_mode"] == "onsale"


def test_scope_comes_from_inbound_baggage_downstream(stack: Stack) -> None:
    """A downstream service without the event in its path takes the scope from baggage, the mode from its own state."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack))
    call(app, "GET", "/api/orders/9", {"baggage": "onsale.event=final,onsale.mode=normal"})
    (line,) = stack.access_lines()
    assert (line["route"], line["mode"], line["event"], line["event_onsale"]) == (
        "/api/orders/{order_id}",
        "onsale",
        "final",
        True,
    )


@pytest.mark.parametrize("otel", ["outer", "inner"])
def test_edge_can_drop_inbound_onsale_baggage(stack: Stack, otel: str) -> None:
    """With ``drop_inbound_baggage`` a client cannot pick the scope, and its claims travel no further."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack), otel=otel, drop_inbound_baggage=True)
    body = call(
        app,
        "POST",
        "/events/other/checkout",
        {"baggage": "onsale.event=final,onsale.mode=onsale,k=v"},
    ).json()
    assert body == {"mode": "normal", "baggage": "k=v,onsale.event=other,onsale.mode=normal"}
    call(app, "GET", "/api/orders/9", {"baggage": "onsale.event=final,onsale.mode=onsale,k=v"})
    lines = stack.access_lines()
    assert [(line["mode"], line["event"]) for line in lines] == [
        ("normal", "other"),
        ("normal", None),
    ]
    # the client's claim is still recorded on the spans, as telemetry
    assert all(
        s.attributes and s.attributes["onsale.upstream_mode"] == "onsale" for s in stack.spans()
    )


def test_otel_context_never_keeps_a_forged_scope(stack: Stack) -> None:
    """Code reading OTel baggage inside the request sees this service's scope, not the client's."""
    from opentelemetry import baggage

    seen: list[dict[str, object]] = []

    async def health(request: Request) -> Response:
        seen.append(dict(baggage.get_all()))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", health)])
    call(
        wrap(stack, app, trust_inbound_scope=False),
        "GET",
        "/healthz",
        {"baggage": "onsale.event=final,k=v"},
    )
    assert seen == [{"k": "v", "onsale.mode": "normal"}]


def test_header_and_query_extractors(stack: Stack) -> None:
    """The event id can come from a header or the query string when the path has none."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack))
    call(app, "GET", "/health", {"x-event-id": "final"})
    call(app, "GET", "/health?event=final")
    call(app, "GET", "/health?event=bad%20id!")
    assert [(line["mode"], line["event"]) for line in stack.access_lines()] == [
        ("onsale", "final"),
        ("onsale", "final"),
        ("normal", None),
    ]


@pytest.mark.parametrize("failure", ["500", "raise"])
def test_app_errors_count_as_5xx_with_the_mode(stack: Stack, failure: str) -> None:
    """A 500 response and an exception from the app are both counted 5xx under the request's mode."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack), otel="none")
    if failure == "raise":
        with pytest.raises(RuntimeError, match="payment provider exploded"):
            call(app, "POST", f"/events/final/checkout?fail={failure}")
    else:
        assert call(app, "POST", f"/events/final/checkout?fail={failure}").status_code == 500
    assert 'code="5xx",event="final",method="POST",mode="onsale"' in stack.metrics_text()
    assert stack.access_lines()[0]["status"] == 500


@pytest.mark.parametrize("event", [ONLY_PATH, EXTRACTORS], ids=["path-only", "all"])
def test_random_paths_and_events_stay_under_the_cap(
    stack: Stack, event: tuple[EventExtractor, ...]
) -> None:
    """10,000 random paths and event ids never become labels beyond the caps, nor fill memory."""
    stack.metrics.max_events = 20
    stack.metrics.max_routes = 10
    for i in range(0, 10_000, 97):
        stack.broadcaster.set(f"event:e{i}", "onsale")
    stack.subscriber.sync()
    app = wrap(stack, build_app(stack), otel="none", event=event)

    async def flood() -> None:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b""}

        async def send(message: object) -> None:
            return None

        for i in range(10_000):  # straight into the ASGI app: the HTTP client is not under test
            path = f"/events/e{i}/checkout" if i % 2 else f"/random/{i}/x{i * 7}"
            scope = {
                "type": "http",
                "method": "POST",
                "path": path,
                "headers": [],
                "query_string": b"",
            }
            await app(scope, receive, send)

    asyncio.run(flood())
    text = stack.metrics_text()
    assert "/random/" not in text  # raw paths never become labels
    assert 'route="unmatched"' in text
    assert stack.metrics.series_count() <= 2 * 21 * 3
    assert 'event="other"' in text
    events = {part.split('"')[1] for part in text.split('event="')[1:]}
    assert len(events) <= 22  # 20 events, "other" and ""
    decisions = app.tagger._decisions  # type: ignore[attr-defined]
    assert decisions is None or 0 < len(decisions) <= 4096  # what paths meant: bounded


def test_survives_a_broadcaster_outage(stack: Stack) -> None:
    """With the store down the last known mode keeps tagging and requests are served."""
    put_onsale(stack)
    stack.backend.unavailable = True
    assert not stack.subscriber.sync()
    app = wrap(stack, build_app(stack))
    assert call(app, "POST", "/events/final/checkout").json()["mode"] == "onsale"


def test_tagging_failure_is_counted_and_request_served(stack: Stack) -> None:
    """A bug inside the tagging is swallowed, counted once per failure, and the app still answers."""

    def broken_routes(method: str, path: str) -> None:
        raise RuntimeError("router exploded")

    app = wrap(stack, build_app(stack), otel="none", routes=broken_routes)
    assert call(app, "POST", "/events/final/checkout").status_code == 200
    assert call(app, "POST", "/events/final/checkout").status_code == 200
    assert "onsale_instrument_errors_total 2.0" in stack.metrics_text()


def test_a_failed_start_still_records_the_request_with_a_fallback_tag(stack: Stack) -> None:
    """A broken extractor during a global on-sale: the app's 500 is still counted, on sale.

    And the failed start leaves no mode behind for the next request.
    """
    put_onsale(stack, "global")

    def broken(parts: object) -> str:
        raise RuntimeError("extractor exploded")

    app = OnsaleMiddleware(
        build_app(stack), subscriber=stack.subscriber, service="checkout", event=[broken],
        metrics=stack.metrics, access_log=AccessLog(stack.access, service="checkout", flush_interval=0),
    )  # fmt: skip
    assert call(app, "POST", "/events/final/checkout?fail=500").status_code == 500
    text = stack.metrics_text()
    assert 'code="5xx",event="",method="POST",mode="onsale",route="unmatched"' in text
    assert "onsale_instrument_errors_total 1.0" in text
    assert [(x["status"], x["mode"]) for x in stack.access_lines()] == [(500, "onsale")]
    assert current_request_mode() is None


def test_an_app_mounted_under_a_root_path_is_routed(stack: Stack) -> None:
    """Behind a path prefix (uvicorn --root-path), routes and path parameters are still found."""
    put_onsale(stack)
    app = wrap(stack, build_app(stack), otel="none")

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/shop")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post("/shop/events/final/checkout")

    assert asyncio.run(go()).json()["mode"] == "onsale"
    assert 'route="/events/{event_id}/checkout"' in stack.metrics_text()


def test_add_middleware_finds_the_router(stack: Stack) -> None:
    """The usual Starlette/FastAPI pattern: app.add_middleware(OnsaleMiddleware, ...)."""
    put_onsale(stack)
    app = build_app(stack)
    app.add_middleware(
        OnsaleMiddleware,
        subscriber=stack.subscriber,
        service="checkout",
        event=[PathParam("event_id")],
        metrics=stack.metrics,
    )
    assert call(app, "POST", "/events/final/checkout").json()["mode"] == "onsale"
    assert 'route="/events/{event_id}/checkout"' in stack.metrics_text()


def test_non_http_and_metrics_paths_pass_through(stack: Stack) -> None:
    """Lifespan/websocket scopes and /metrics scrapes are not counted as requests."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(str(scope["type"]))

    middleware = OnsaleMiddleware(
        app, subscriber=stack.subscriber, service="x", metrics=stack.metrics
    )

    async def go() -> None:
        async def receive() -> dict[str, object]:
            return {}

        async def send(message: object) -> None:
            return None

        await middleware({"type": "lifespan"}, receive, send)
        for path in ("/metrics", "/metrics/"):
            scope: Scope = {"type": "http", "path": path, "method": "GET", "headers": []}
            await middleware(scope, receive, send)

    asyncio.run(go())
    assert seen == ["lifespan", "http", "http"]
    assert "onsale_requests_total{" not in stack.metrics_text()


def test_exemplars_carry_the_trace_id(stack: Stack) -> None:
    """The OpenMetrics exposition links a latency bucket to the trace of a request."""
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    put_onsale(stack)
    call(wrap(stack, build_app(stack)), "POST", "/events/final/checkout")
    server = next(s for s in stack.spans() if s.kind.name == "SERVER")
    assert server.context is not None
    assert (
        f'trace_id="{format(server.context.trace_id, "032x")}"'
        in openmetrics(stack.registry).decode()  # type: ignore[no-untyped-call]
    )
