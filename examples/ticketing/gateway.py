"""The queue front (ASGI): admits a user to an event's sale and hands them to checkout.

It faces the internet, so it takes the event only from its own path: a client's
``baggage: onsale.event=...`` is not trusted to give a request a scope, and a client's
``onsale.mode`` is only recorded (``onsale.upstream_mode``), never believed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.ticketing._wiring import WithMetrics, httpx_trace_hook, traced_asgi, tracer_for
from onsale_obs.instrument import (
    AccessLog,
    OnsaleMiddleware,
    PathParam,
    RequestMetrics,
    StarletteRoutes,
    httpx_async_hook,
)
from onsale_obs.modes import ModeSubscriber
from onsale_obs.types import ASGIApp

SERVICE = "gateway"


async def _user(request: Request) -> str:
    """The user named in the JSON body (``{"user": "ana"}``), or ``anonymous``."""
    try:
        body: Any = await request.json()
    except ValueError:
        return "anonymous"
    user = body.get("user") if isinstance(body, dict) else None
    return user if isinstance(user, str) and 0 < len(user) <= 64 else "anonymous"


def create_app(
    *,
    subscriber: ModeSubscriber,
    registry: CollectorRegistry,
    checkout_url: str,
    tracer_provider: trace.TracerProvider | None = None,
    access_log: AccessLog | None = None,
    timeout: float = 5.0,
) -> ASGIApp:
    """The gateway, calling checkout at ``checkout_url``; ``/metrics`` serves ``registry``."""
    metrics = RequestMetrics(SERVICE, registry=registry)
    tracer = tracer_for(tracer_provider, __name__)
    log = structlog.get_logger().bind(service=SERVICE)
    client = httpx.AsyncClient(
        base_url=checkout_url,
        timeout=timeout,
        event_hooks={"request": [httpx_trace_hook, httpx_async_hook]},
    )
    tickets = itertools.count(1)  # queue tickets, in the order users were admitted

    async def enter(request: Request) -> Response:
        event_id: str = request.path_params["event_id"]
        user = await _user(request)
        ticket = next(tickets)
        with tracer.start_as_current_span("checkout", kind=trace.SpanKind.CLIENT):
            try:
                answer = await client.post(
                    f"/events/{quote(event_id, safe='')}/checkout", json={"user": user}
                )
            except httpx.HTTPError as exc:
                log.warning("admitted; checkout unreachable", user=user, error=type(exc).__name__)
                return JSONResponse({"error": "checkout is unreachable"}, status_code=502)
        if answer.status_code >= 500:
            log.warning("admitted; checkout failed", user=user, checkout_status=answer.status_code)
            return JSONResponse(
                {"error": "checkout failed", "checkout_status": answer.status_code},
                status_code=502,
            )
        log.info("admitted", user=user, ticket=ticket, checkout_status=answer.status_code)
        try:
            detail: Any = answer.json()
        except ValueError:
            detail = None
        return JSONResponse(
            {"event": event_id, "user": user, "ticket": ticket, "checkout": detail},
            status_code=answer.status_code,
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    app = Starlette(
        routes=[
            Route("/events/{event_id}/enter", enter, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    routes = StarletteRoutes(app)
    tagged = OnsaleMiddleware(
        app,
        subscriber=subscriber,
        service=SERVICE,
        event=[PathParam("event_id")],
        routes=routes,
        metrics=metrics,
        access_log=access_log,
        trust_inbound_scope=False,
    )
    return WithMetrics(traced_asgi(tagged, tracer_provider, routes), registry)
