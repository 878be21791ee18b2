"""Pure ASGI middleware: every request tagged with its on-sale mode (no BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry import trace

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._baggage import (
    parse_onsale_baggage,
    rewrite_baggage,
    strip_onsale_baggage,
)
from onsale_obs.instrument._events import EventExtractor, RequestParts
from onsale_obs.instrument._metrics import RequestMetrics
from onsale_obs.instrument._routes import RouteResolver, routes_for
from onsale_obs.instrument._tagger import Tagger, now
from onsale_obs.modes import ModeSubscriber
from onsale_obs.types import ASGIApp, Message, Receive, Scope, Send


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class OnsaleMiddleware:
    """Tags each HTTP request of an ASGI app with its mode; see the README for the options.

    ``event`` lists extractors tried in order (``PathParam``, ``Header``, ``Query`` or any
    callable taking ``RequestParts``); then the scope propagated in baggage (``onsale.event``)
    unless ``trust_inbound_scope`` is False. The mode itself always comes from ``subscriber``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        subscriber: ModeSubscriber,
        service: str,
        event: Sequence[EventExtractor] = (),
        routes: RouteResolver | None = None,
        metrics: RequestMetrics | None = None,
        access_log: AccessLog | None = None,
        drop_inbound_baggage: bool = False,
        trust_inbound_scope: bool = True,
        exclude_paths: Sequence[str] = ("/metrics",),
        route_app: Any = None,
        logger: Any = None,
    ) -> None:
        self.app = app
        self.service = service
        self.drop_inbound_baggage = drop_inbound_baggage
        self.exclude_paths = frozenset(exclude_paths)
        self.tagger = Tagger(
            subscriber,
            routes=routes
            if routes is not None
            else routes_for(route_app if route_app is not None else app),
            extractors=event,
            metrics=metrics,
            access_log=access_log,
            trust_inbound_scope=trust_inbound_scope and not drop_inbound_baggage,
            logger=logger if logger is not None else structlog.get_logger("onsale_obs.instrument"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        started = now()
        tagger = self.tagger
        try:
            method: str = scope["method"]
            path: str = scope["path"]
            route, params = tagger.route(method, path)
            headers = scope["headers"]
            inbound = _header(headers, b"baggage")
            inbound_event = upstream_mode = None
            if inbound is not None and not self.drop_inbound_baggage:
                inbound_event, upstream_mode = parse_onsale_baggage(inbound)

            def make_parts() -> RequestParts:
                return RequestParts(
                    method,
                    path,
                    params,
                    lambda name: _header(headers, name.encode("latin-1")),
                    scope.get("query_string", b"").decode("latin-1"),
                    scope,
                )

            event = tagger.event(params, make_parts, inbound_event)
            # No recording span yet means any OTel middleware is inside us and will extract
            # the context from the headers: give it this service's view there.
            span = trace.get_current_span()
            outermost = not span.is_recording()
            rm, token, otel_token = tagger.begin(event, route, upstream_mode, span)
            if outermost and (inbound is not None or event is not None):
                scope = self._with_baggage(scope, inbound, event, rm.mode)
        except Exception:
            tagger.failed("asgi request start")
            await self.app(scope, receive, send)
            return

        status = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException:
            failed = True
            raise
        finally:
            try:
                status = 500 if failed or status == 0 else status
                tagger.end(rm, method, status, now() - started, (token, otel_token))
            except Exception:
                tagger.failed("asgi request end")

    def _with_baggage(
        self, scope: Scope, inbound: str | None, event: str | None, mode: str
    ) -> Scope:
        """A scope whose ``baggage`` header carries this service's view, for an inner OTel middleware."""
        if self.drop_inbound_baggage and inbound is not None:
            inbound = strip_onsale_baggage(inbound)
        value = rewrite_baggage(inbound, event, mode).encode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k != b"baggage"]
        headers.append((b"baggage", value))
        return {**scope, "headers": headers}
