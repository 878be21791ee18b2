"""Checkout (ASGI): reserves a seat in inventory for an admitted user.

It answers 200 with the seat, passes a sold-out 409 through, and answers 502 when inventory
fails. Failures can be planted for SLO and alerting demos: ``fail_rate`` (0..1, drawn from a
seeded RNG, so a run is repeatable) makes that share of checkouts answer 503 before calling
inventory, and ``POST /admin/fail {"rate": 0.5}`` changes it while the service runs.
The call to inventory uses ``requests`` (in a worker thread) to show the sync client helper.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import AsyncIterator
from typing import Any

import requests
import structlog
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.ticketing._wiring import WithMetrics, inject_trace_context, traced_asgi, tracer_for
from onsale_obs.instrument import (
    AccessLog,
    OnsaleMiddleware,
    PathParam,
    RequestMetrics,
    StarletteRoutes,
    requests_adapter,
)
from onsale_obs.modes import ModeSubscriber
from onsale_obs.types import ASGIApp

SERVICE = "checkout"


class FailureSwitch:
    """Decides which checkouts fail on purpose: a share ``rate`` of them, from a seeded RNG."""

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.rate = rate

    @property
    def rate(self) -> float:
        """The share of checkouts that fail (0 never, 1 always)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fail rate must be between 0 and 1, got {value!r}.")
        self._rate = value

    def should_fail(self) -> bool:
        """Draw for one checkout (every call draws, so the sequence depends only on the seed)."""
        with self._lock:
            return self._rng.random() < self._rate


def create_app(
    *,
    subscriber: ModeSubscriber,
    registry: CollectorRegistry,
    inventory_url: str,
    tracer_provider: trace.TracerProvider | None = None,
    access_log: AccessLog | None = None,
    fail_rate: float = 0.0,
    seed: int = 0,
    timeout: float = 5.0,
) -> ASGIApp:
    """Checkout, calling inventory at ``inventory_url``; ``/metrics`` serves ``registry``."""
    metrics = RequestMetrics(SERVICE, registry=registry)
    tracer = tracer_for(tracer_provider, __name__)
    log = structlog.get_logger().bind(service=SERVICE)
    failures = FailureSwitch(fail_rate, seed)
    session = requests.Session()
    session.mount("http://", requests_adapter())
    session.mount("https://", requests_adapter())
    reserve_url = inventory_url.rstrip("/") + "/seats/reserve"

    def reserve(user: str) -> requests.Response:
        # runs in a worker thread with a copy of the request's context (mode, span, baggage)
        with tracer.start_as_current_span("reserve seat", kind=trace.SpanKind.CLIENT):
            headers: dict[str, str] = {}
            inject_trace_context(headers)
            # no event id in the body or path: inventory gets it from the baggage
            return session.post(reserve_url, json={"user": user}, headers=headers, timeout=timeout)

    async def checkout(request: Request) -> Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str):
            user = "anonymous"
        if failures.should_fail():
            log.warning("checkout failed", user=user, cause="planted failure")
            return JSONResponse({"error": "payment provider timed out"}, status_code=503)
        try:
            answer = await run_in_threadpool(reserve, user)
        except requests.RequestException as exc:
            log.warning("checkout failed", user=user, cause=type(exc).__name__)
            return JSONResponse({"error": "inventory is unreachable"}, status_code=502)
        if answer.status_code == 409:
            log.info("checkout sold out", user=user)
            return JSONResponse({"error": "sold out"}, status_code=409)
        if answer.status_code != 200:
            log.warning("checkout failed", user=user, inventory_status=answer.status_code)
            return JSONResponse(
                {"error": "inventory failed", "inventory_status": answer.status_code},
                status_code=502,
            )
        try:
            seat = answer.json()["seat"]
        except (ValueError, TypeError, KeyError):
            log.warning("checkout failed", user=user, cause="inventory answered without a seat")
            return JSONResponse({"error": "inventory answered without a seat"}, status_code=502)
        log.info("checkout completed", user=user, seat=seat)
        return JSONResponse({"user": user, "seat": seat})

    async def admin_fail(request: Request) -> Response:
        if request.method == "POST":
            try:
                body: Any = await request.json()
                failures.rate = float(body["rate"])
            except (ValueError, TypeError, KeyError) as exc:
                message = 'expected a JSON body {"rate": R} with R between 0 and 1'
                return JSONResponse({"error": f"{message} ({exc})."}, status_code=400)
            log.info("fail rate changed", fail_rate=failures.rate)
        return JSONResponse({"fail_rate": failures.rate})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            session.close()

    app = Starlette(
        routes=[
            Route("/events/{event_id}/checkout", checkout, methods=["POST"]),
            Route("/admin/fail", admin_fail, methods=["GET", "POST"]),
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
    )
    return WithMetrics(traced_asgi(tagged, tracer_provider, routes), registry)
