"""The WSGI middleware, served by a real threaded werkzeug server and a real uvicorn for ASGI."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import structlog
import uvicorn
from flask import Flask, request
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from werkzeug.serving import BaseWSGIServer, make_server

from onsale_obs.instrument import (
    AccessLog,
    OnsaleMiddleware,
    OnsaleSpanProcessor,
    OnsaleWSGIMiddleware,
    PathParam,
    RequestMetrics,
    configure_logging,
    current_request_mode,
    metrics_asgi_app,
    metrics_wsgi_app,
)
from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import free_port, key_pair


@pytest.fixture
def modes() -> tuple[Broadcaster, ModeSubscriber, MemoryBackend]:
    """A broadcaster and a subscriber sharing an in-memory store."""
    signer, verifier = key_pair()
    backend = MemoryBackend()
    return Broadcaster(backend, signer), ModeSubscriber(backend, verifier, registry=None), backend


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """structlog configured for JSON lines into a buffer."""
    out = io.StringIO()
    configure_logging(stream=out)
    yield out
    structlog.reset_defaults()


def serve_wsgi(app: object) -> tuple[BaseWSGIServer, threading.Thread, str]:
    server = make_server("127.0.0.1", free_port(), app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def flask_app(provider: TracerProvider) -> Flask:
    app = Flask("inventory")
    tracer = provider.get_tracer("test")
    log = structlog.get_logger()

    @app.post("/events/<event_id>/seats")
    def reserve(event_id: str) -> tuple[str, int]:
        with tracer.start_as_current_span("UPDATE seats"):
            log.info("seat held", event_id=event_id)
        if request.args.get("fail"):
            raise RuntimeError("inventory database down")
        rm = current_request_mode()
        return (rm.mode if rm else "none"), 200

    return app


def test_wsgi_request_tagged_through_a_real_server(
    modes: tuple[Broadcaster, ModeSubscriber, MemoryBackend], logs: io.StringIO
) -> None:
    """Behind werkzeug, with OTel WSGI outside: spans, log lines, access log and /metrics carry the mode."""
    broadcaster, subscriber, _ = modes
    broadcaster.set("event:final", "onsale")
    subscriber.sync()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(OnsaleSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    access = io.BytesIO()
    flask = flask_app(provider)
    tagged = OnsaleWSGIMiddleware(
        flask.wsgi_app,
        subscriber=subscriber,
        service="inventory",
        event=[PathParam()],
        metrics=RequestMetrics("inventory", registry=registry),
        access_log=AccessLog(access, service="inventory", flush_interval=0),
        route_app=flask,
    )
    metrics_app = metrics_wsgi_app(registry)

    def root(environ: dict[str, object], start_response: object) -> object:
        if environ.get("PATH_INFO") == "/metrics":
            return metrics_app(environ, start_response)
        return OpenTelemetryMiddleware(tagged, tracer_provider=provider)(environ, start_response)  # type: ignore[arg-type]

    server, thread, url = serve_wsgi(root)
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.post("/events/final/seats").text == "onsale"
            assert client.post("/events/other/seats").text == "normal"
            assert client.post("/events/final/seats?fail=1").status_code == 500
            scraped = client.get("/metrics").text
    finally:
        server.shutdown()
        thread.join(5)
    assert (
        'onsale_requests_total{code="2xx",event="final",method="POST",mode="onsale",'
        'route="/events/<event_id>/seats",service="inventory"} 1.0'
    ) in scraped
    assert 'code="5xx",event="final",method="POST",mode="onsale"' in scraped
    assert 'code="2xx",event="",method="POST",mode="normal"' in scraped
    spans = exporter.get_finished_spans()
    by_mode = {
        (s.attributes or {}).get("onsale.event"): (s.attributes or {}).get("onsale.mode")
        for s in spans
    }
    assert by_mode == {"final": "onsale", "other": "normal"}
    assert all(s.attributes and "onsale.mode" in s.attributes for s in spans)
    lines = [orjson.loads(x) for x in logs.getvalue().splitlines() if '"seat held"' in x]
    assert [(x["onsale_mode"], x["onsale_event"]) for x in lines] == [
        ("onsale", "final"),
        ("normal", "other"),
        ("onsale", "final"),
    ]
    access_lines = [orjson.loads(x) for x in access.getvalue().splitlines()]
    assert [(x["status"], x["mode"]) for x in access_lines] == [
        (200, "onsale"),
        (200, "normal"),
        (500, "onsale"),
    ]


def test_wsgi_forged_baggage_and_outage(
    modes: tuple[Broadcaster, ModeSubscriber, MemoryBackend],
) -> None:
    """Inbound onsale.mode is never trusted, and an unreachable store does not fail requests."""
    broadcaster, subscriber, backend = modes
    provider = TracerProvider()
    flask = flask_app(provider)
    app = OnsaleWSGIMiddleware(
        flask.wsgi_app,
        subscriber=subscriber,
        service="inventory",
        event=[PathParam()],
        route_app=flask,
    )
    server, thread, url = serve_wsgi(app)
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            forged = client.post("/events/final/seats", headers={"baggage": "onsale.mode=onsale"})
            assert forged.text == "normal"
            broadcaster.set("event:final", "onsale")
            subscriber.sync()
            backend.unavailable = True
            assert not subscriber.sync()
            assert client.post("/events/final/seats").text == "onsale"
    finally:
        server.shutdown()
        thread.join(5)


def test_asgi_under_real_uvicorn(modes: tuple[Broadcaster, ModeSubscriber, MemoryBackend]) -> None:
    """Behind a real uvicorn on loopback the middleware tags requests and /metrics is served."""
    broadcaster, subscriber, _ = modes
    broadcaster.set("event:final", "onsale")
    subscriber.sync()
    registry = CollectorRegistry()

    async def checkout(req: Request) -> Response:
        rm = current_request_mode()
        return PlainTextResponse(rm.mode if rm else "none")

    inner = Starlette(
        routes=[
            Route("/events/{event_id}/checkout", checkout, methods=["POST"]),
            Mount("/metrics", app=metrics_asgi_app(registry)),
        ]
    )
    app = OnsaleMiddleware(
        inner,
        subscriber=subscriber,
        service="checkout",
        event=[PathParam()],
        metrics=RequestMetrics("checkout", registry=registry),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert client.post("/events/final/checkout").text == "onsale"
            assert client.post("/events/x/checkout").text == "normal"
            scraped = client.get("/metrics/").text
    finally:
        server.should_exit = True
        thread.join(10)
    assert (
        'code="2xx",event="final",method="POST",mode="onsale",route="/events/{event_id}/checkout"'
        in scraped
    )
    assert 'event="",method="POST",mode="normal",route="/events/{event_id}/checkout"' in scraped


class _Body:
    """A streamed WSGI body that can fail part-way and records that the server closed it."""

    def __init__(self, fail: bool, closed: list[str], name: str) -> None:
        self.fail = fail
        self.closed = closed
        self.name = name

    def __iter__(self) -> Iterator[bytes]:
        yield b"first part;"
        if self.fail:
            raise RuntimeError("the stream broke")
        yield b"second part"

    def close(self) -> None:
        self.closed.append(self.name)


def test_wsgi_streamed_body_failure_is_5xx_and_the_apps_close_is_called(
    modes: tuple[Broadcaster, ModeSubscriber, MemoryBackend],
) -> None:
    """A body that raises after the 200 went out counts as 5xx; the app's close() still runs."""
    broadcaster, subscriber, _ = modes
    broadcaster.set("event:final", "onsale")
    subscriber.sync()
    closed: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> _Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        name = str(environ["PATH_INFO"])
        return _Body(name.endswith("/broken"), closed, name)

    registry = CollectorRegistry()
    tagged = OnsaleWSGIMiddleware(
        app,
        subscriber=subscriber,
        service="tickets",
        event=[lambda parts: "final"],
        routes=lambda method, path: (path, {}),
        metrics=RequestMetrics("tickets", registry=registry),
    )
    server, thread, url = serve_wsgi(tagged)
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.get("/stream/ok").text == "first part;second part"
            with contextlib.suppress(httpx.HTTPError):  # the connection ends mid-body
                client.get("/stream/broken")
    finally:
        server.shutdown()
        thread.join(5)
    scraped = generate_latest(registry).decode()
    assert 'code="2xx",event="final",method="GET",mode="onsale",route="/stream/ok"' in scraped
    assert 'code="5xx",event="final",method="GET",mode="onsale",route="/stream/broken"' in scraped
    assert (
        'code="2xx",event="final",method="GET",mode="onsale",route="/stream/broken"' not in scraped
    )
    assert sorted(closed) == ["/stream/broken", "/stream/ok"]
