"""Pure ASGI middleware: every request tagged with its on-sale mode (no BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from onsale_obs.instrument._access_log import AccessLog
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


def _parts(scope: Scope, method: str, path: str, params: Mapping[str, Any]) -> RequestParts:
    headers = scope["headers"]
    return RequestParts(
        method,
        path,
        params,
        lambda name: _header(headers, name.encode("latin-1")),
        scope.get("query_string", b"").decode("latin-1"),
        scope,
    )


class OnsaleMiddleware:
    """Tags each HTTP request of an ASGI app with its mode; see the README for the options.

    ``event`` lists extractors tried in order (``PathParam``, ``Header``, ``Query`` or any
    callable taking ``RequestParts``); then the scope propagated in baggage (``onsale.event``)
    unless ``trust_inbound_scope`` is False or ``drop_inbound_baggage`` is True. The mode itself
    always comes from ``subscriber``. ``route_app`` is the app whose router names the routes
    (default: ``app`` itself, when it is a Starlette/FastAPI app).
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
        self.exclude_paths = frozenset(p.rstrip("/") or "/" for p in exclude_paths)
        self.tagger = Tagger(
            subscriber,
            routes=routes
            if routes is not None
            else routes_for(route_app if route_app is not None else app),
            extractors=event,
            metrics=metrics,
            access_log=access_log,
            trust_inbound_scope=trust_inbound_scope,
            drop_inbound_baggage=drop_inbound_baggage,
            logger=logger if logger is not None else structlog.get_logger("onsale_obs.instrument"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        arrived = now()
        tagger = self.tagger
        try:
            headers = scope["headers"]
            inbound = None
            for key, value in headers:  # _header() inlined: once per request
                if key == b"baggage":
                    inbound = value.decode("latin-1")
                    break
            started = tagger.start(scope["method"], scope["path"], inbound, _parts, scope)
            if started[3] is not None:
                value = started[3].encode("latin-1")
                scope = {
                    **scope,
                    "headers": [(k, v) for k, v in headers if k != b"baggage"]
                    + [(b"baggage", value)],
                }
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
                tagger.end(started, 500 if failed or status == 0 else status, now() - arrived)
            except Exception:
                tagger.failed("asgi request end")
