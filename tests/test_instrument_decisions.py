"""What the middleware keeps between requests (decisions, hand-over to an inner OTel) changes nothing.

Requests of one path and inbound baggage share their decision; a mode change applies from the
very next request; the cache stays bounded under random paths and baggage; an inner OTel
middleware sees the same baggage whether it is handed over directly or parsed from a header.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import httpx
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from onsale_obs.instrument import (
    OnsaleMiddleware,
    OnsaleSpanProcessor,
    PathParam,
    RequestParts,
    StarletteRoutes,
    configure_logging,
)
from onsale_obs.instrument import _tagger as tagger_module
from onsale_obs.instrument._asgi import HandBaggage, _parts
from onsale_obs.instrument._tagger import Tagger
from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import FakeClock, key_pair
from onsale_obs.types import ASGIApp

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Modes:
    broadcaster: Broadcaster
    subscriber: ModeSubscriber
    clock: FakeClock

    def set(self, scope: str, mode: str, until: float | None = None) -> None:
        self.broadcaster.set(scope, mode, until=until)
        self.subscriber.sync()


def make_modes() -> Modes:
    signer, verifier = key_pair()
    backend = MemoryBackend()
    clock = FakeClock()
    return Modes(
        Broadcaster(backend, signer, clock=clock),
        ModeSubscriber(backend, verifier, registry=None, clock=clock),
        clock,
    )


@pytest.fixture
def modes() -> Iterator[Modes]:
    """A broadcaster and the subscriber the middleware asks, on a fake clock."""
    configure_logging(stream=io.StringIO())
    yield make_modes()
    structlog.reset_defaults()


def seen_app() -> tuple[Starlette, list[dict[str, Any]]]:
    """An app recording what OTel's context holds inside the request."""
    seen: list[dict[str, Any]] = []

    async def checkout(request: Request) -> Response:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        span = trace.get_current_span().get_span_context()
        seen.append(
            {
                "baggage": list(baggage.get_all().items()),
                "injected": carrier.get("baggage"),
                "trace_id": format(span.trace_id, "032x"),
            }
        )
        return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/events/{event_id}/checkout", checkout, methods=["POST"]),
            Mount("/api", routes=[Route("/orders/{order_id}", checkout, methods=["POST"])]),
        ]
    )
    return app, seen


def call(app: ASGIApp, path: str, headers: dict[str, str] | None = None) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(path, headers=headers)
            assert response.status_code == 200

    asyncio.run(go())


def inner_otel_stack(modes: Modes, hand_over: bool) -> tuple[ASGIApp, list[dict[str, Any]]]:
    app, seen = seen_app()
    provider = TracerProvider()
    provider.add_span_processor(OnsaleSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter())))
    tagged = OnsaleMiddleware(
        OpenTelemetryMiddleware(app, tracer_provider=provider),
        subscriber=modes.subscriber,
        service="checkout",
        event=[PathParam("event_id")],
        route_app=app,
    )
    assert tagged.tagger.hands_baggage_inside
    # off: the rewritten-header path every inner OTel middleware was handed the baggage by
    tagged.tagger.hands_baggage_inside = hand_over
    return tagged, seen


REQUESTS: list[tuple[str, dict[str, str] | None]] = [
    ("/events/final/checkout", None),
    ("/events/other/checkout", None),
    ("/events/final/checkout", {"traceparent": TRACEPARENT}),
    ("/events/final/checkout", {"baggage": "onsale.event=final,onsale.mode=normal"}),
    ("/events/final/checkout", {"baggage": "k=v,onsale.mode=onsale"}),
    ("/api/orders/9", {"baggage": "onsale.event=final,onsale.mode=onsale"}),
    ("/api/orders/9", None),
]


def test_inner_otel_is_handed_the_same_baggage_as_by_a_header(modes: Modes) -> None:
    """OTel inside sees the same baggage, in the same order, handed over or parsed from a header."""
    handed, seen_handed = inner_otel_stack(modes, hand_over=True)
    parsed, seen_parsed = inner_otel_stack(modes, hand_over=False)
    for transition in (None, ("event:final", "onsale"), ("global", "onsale")):
        if transition is not None:
            modes.set(*transition)
        for path, headers in REQUESTS:
            call(handed, path, headers)
            call(parsed, path, headers)
    assert len(seen_handed) == len(seen_parsed) == 3 * len(REQUESTS)
    for a, b in zip(seen_handed, seen_parsed, strict=True):
        assert a["baggage"] == b["baggage"]
        assert a["injected"] == b["injected"]
    first = seen_handed[0]
    assert first["baggage"] == [("onsale.event", "final"), ("onsale.mode", "normal")]
    # the inbound trace is still continued inside
    assert seen_handed[2]["trace_id"] == TRACEPARENT.split("-")[1]
    # the mode of every request is its own moment's
    assert seen_handed[len(REQUESTS)]["baggage"][1] == ("onsale.mode", "onsale")
    assert seen_handed[len(REQUESTS) + 1]["baggage"][1] == ("onsale.mode", "normal")
    assert baggage.get_all() == {}  # nothing left behind in the caller's context


def test_hand_over_layer_is_put_in_once_and_keeps_the_router_reachable(modes: Modes) -> None:
    """Two middlewares over one OTel middleware share one hand-over layer; routes are still found."""
    app, _ = seen_app()
    otel = OpenTelemetryMiddleware(app, tracer_provider=TracerProvider())
    for _ in range(2):
        tagged = OnsaleMiddleware(otel, subscriber=modes.subscriber, service="checkout")
        assert tagged.tagger.hands_baggage_inside
    assert type(otel.app) is HandBaggage
    assert type(otel.app.app) is not HandBaggage
    assert tagged.tagger.routes is not None
    assert tagged.tagger.routes("POST", "/events/final/checkout") == (
        "/events/{event_id}/checkout",
        {"event_id": "final"},
    )


def test_no_inner_otel_means_no_hand_over(modes: Modes) -> None:
    """Without an OTel middleware down the chain the app is left as it is."""
    app, _ = seen_app()
    tagged = OnsaleMiddleware(app, subscriber=modes.subscriber, service="checkout")
    assert not tagged.tagger.hands_baggage_inside


ROUTES = Starlette(
    routes=[
        Route("/events/{event_id}/checkout", lambda r: None, methods=["POST"]),
        Mount("/api", routes=[Route("/orders/{order_id}", lambda r: None)]),
    ]
)


def make_tagger(modes: Modes, *, cached: bool, **options: bool) -> Tagger:
    path_param = PathParam("event_id")

    def not_a_path_param(parts: RequestParts) -> str | None:
        return path_param(parts)  # the same answer, but never kept between requests

    tagger = Tagger(
        modes.subscriber,
        routes=StarletteRoutes(ROUTES),
        extractors=[path_param if cached else not_a_path_param],
        metrics=None,
        access_log=None,
        trust_inbound_scope=options.get("trust_inbound_scope", True),
        drop_inbound_baggage=options.get("drop_inbound_baggage", False),
        logger=structlog.get_logger(),
    )
    assert (tagger._decisions is not None) is cached
    return tagger


def decide(tagger: Tagger, path: str, inbound: str | None) -> tuple[Any, ...]:
    """What one request (outside any OTel span) was tagged with, and the header passed on."""
    scope = {"headers": [], "query_string": b""}
    started = tagger.start("POST", path, inbound, _parts, scope)
    rm, header = started[0], started[3]
    try:
        return (
            rm.mode,
            rm.event,
            rm.onsale_event,
            rm.upstream_mode,
            rm.route,
            rm.labels,
            dict(rm.span_attributes),
            dict(rm.baggage),
            header,
        )
    finally:
        tagger.end(started, 200, 0.01)


HOP = "onsale.event=final,onsale.mode=normal"


@pytest.mark.parametrize("inbound", [None, HOP, "k=v,onsale.mode=onsale"])
@pytest.mark.parametrize("path", ["/events/final/checkout", "/api/orders/9"])
def test_a_kept_decision_follows_every_mode_change(
    modes: Modes, path: str, inbound: str | None
) -> None:
    """Each request of a kept (path, baggage) decision gets the mode of its moment, from its own state."""
    tagger = make_tagger(modes, cached=True)
    from_baggage = path.startswith("/api")

    def mode() -> str:
        return str(decide(tagger, path, inbound)[0])

    assert mode() == "normal"
    modes.set("event:final", "onsale")
    # the scope is the path's, or the baggage's where the path has none (never its mode)
    expected = "normal" if from_baggage and inbound != HOP else "onsale"
    assert mode() == expected
    modes.set("event:final", "normal")
    assert mode() == "normal"
    modes.set("event:final", "onsale", until=modes.clock.now + 60)
    assert mode() == expected
    modes.clock.advance(61)  # the on-sale ends with no new message
    assert mode() == "normal"
    modes.set("global", "onsale")
    assert mode() == "onsale"
    modes.set("global", "normal")
    assert mode() == "normal"


def test_inbound_mode_is_never_trusted_by_a_kept_decision(modes: Modes) -> None:
    """A claimed onsale.mode=onsale, repeated, is recorded as upstream and never decides the mode."""
    tagger = make_tagger(modes, cached=True)
    claim = "onsale.event=final,onsale.mode=onsale"
    for _ in range(3):
        mode, event, _, upstream, *_ = decide(tagger, "/api/orders/9", claim)
        assert (mode, event, upstream) == ("normal", "final", "onsale")


EVENTS = ["final", "other", "semi-1"]
SCOPES = ["global", *(f"event:{e}" for e in EVENTS)]
paths = st.one_of(
    st.sampled_from([f"/events/{e}/checkout" for e in EVENTS] + ["/api/orders/9", "/nope"]),
    st.text(min_size=1, max_size=40).map(lambda s: "/events/" + s + "/checkout"),
)
members = st.one_of(
    st.builds("onsale.event={}".format, st.sampled_from([*EVENTS, "bad id!", ""])),
    st.builds("onsale.mode={}".format, st.sampled_from(["onsale", "normal", "x", ""])),
    st.builds("{}={}".format, st.text(max_size=8), st.text(max_size=8)),
    st.text(max_size=20),
)
headers = st.one_of(
    st.none(),
    st.lists(members, max_size=4).map(",".join),
    st.builds("onsale.event=final,pad={}".format, st.text(min_size=250, max_size=400)),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("request"), paths, headers),
        st.tuples(st.just("set"), st.sampled_from(SCOPES), st.sampled_from(["onsale", "normal"])),
    ),
    max_size=40,
)


@settings(max_examples=60)
@given(steps=steps, drop=st.booleans(), trust=st.booleans())
def test_kept_decisions_match_fresh_ones_and_stay_bounded(
    steps: list[tuple[str, str, str | None]], drop: bool, trust: bool
) -> None:
    """Under random paths, baggage and transitions, kept decisions equal fresh ones; the cache stays bounded."""
    modes = make_modes()
    options = {"drop_inbound_baggage": drop, "trust_inbound_scope": trust}
    cached = make_tagger(modes, cached=True, **options)
    fresh = make_tagger(modes, cached=False, **options)
    with mock.patch.object(tagger_module, "_MAX_DECISIONS", 5):
        for kind, a, b in steps:
            if kind == "set":
                modes.set(a, str(b))
                continue
            assert decide(cached, a, b) == decide(fresh, a, b)
            assert cached._decisions is not None
            assert len(cached._decisions) <= 5
            assert all(
                key[2] is None or len(key[2]) <= tagger_module._MAX_KEPT_BAGGAGE
                for key in cached._decisions
            )
