"""Inventory (WSGI, Flask): seat stock per event.

``POST /seats/reserve`` has no event id in its path or body: the event is the scope that
checkout propagated in W3C baggage (``onsale.event``), which the onsale middleware reads, so
``current_request_mode().event`` says which event's seat to take. ``GET /seats/<event_id>``
says how many seats are left.
"""

from __future__ import annotations

import threading

import structlog
from flask import Flask
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from examples.ticketing._wiring import WSGIApp, traced_wsgi, tracer_for, wsgi_with_metrics
from onsale_obs.instrument import (
    AccessLog,
    FlaskRoutes,
    OnsaleWSGIMiddleware,
    PathParam,
    RequestMetrics,
    current_request_mode,
)
from onsale_obs.modes import ModeSubscriber

SERVICE = "inventory"


class SeatStock:
    """How many seats each event has left (every event starts with ``seats_per_event``)."""

    def __init__(self, seats_per_event: int) -> None:
        self.seats_per_event = seats_per_event
        self._taken: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, event_id: str) -> int | None:
        """Take the next seat: its number (1-based), or None when sold out."""
        with self._lock:
            taken = self._taken.get(event_id, 0)
            if taken >= self.seats_per_event:
                return None
            self._taken[event_id] = taken + 1
            return taken + 1

    def remaining(self, event_id: str) -> int:
        """Seats still free for ``event_id``."""
        with self._lock:
            return self.seats_per_event - self._taken.get(event_id, 0)


def create_app(
    *,
    subscriber: ModeSubscriber,
    registry: CollectorRegistry,
    tracer_provider: trace.TracerProvider | None = None,
    access_log: AccessLog | None = None,
    seats_per_event: int = 1000,
) -> WSGIApp:
    """Inventory; ``/metrics`` serves ``registry``."""
    metrics = RequestMetrics(SERVICE, registry=registry)
    tracer = tracer_for(tracer_provider, __name__)
    log = structlog.get_logger().bind(service=SERVICE)
    stock = SeatStock(seats_per_event)
    app = Flask(__name__)

    @app.post("/seats/reserve")
    def reserve() -> ResponseReturnValue:
        request_mode = current_request_mode()
        event_id = request_mode.event if request_mode is not None else None
        if event_id is None:
            log.warning("reserve without an event scope")
            return {"error": "no event scope: send onsale.event in the baggage header."}, 400
        with tracer.start_as_current_span("take seat"):
            seat = stock.reserve(event_id)
        if seat is None:
            log.info("sold out", event_id=event_id)
            return {"error": "sold out", "event": event_id}, 409
        log.info("seat reserved", event_id=event_id, seat=seat)
        return {"event": event_id, "seat": seat}

    @app.get("/seats/<event_id>")
    def seats(event_id: str) -> ResponseReturnValue:
        remaining = stock.remaining(event_id)
        log.info("seats counted", event_id=event_id, remaining=remaining)
        return {"event": event_id, "remaining": remaining}

    routes = FlaskRoutes(app)
    tagged = OnsaleWSGIMiddleware(
        app,
        subscriber=subscriber,
        service=SERVICE,
        event=[PathParam("event_id")],
        routes=routes,
        metrics=metrics,
        access_log=access_log,
    )
    return wsgi_with_metrics(traced_wsgi(tagged, tracer_provider, routes), registry)
