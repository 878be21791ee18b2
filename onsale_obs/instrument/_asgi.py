"""Pure ASGI middleware: every request tagged with its on-sale mode (no BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from opentelemetry import context

from onsale_obs.instrument._context import _current
from onsale_obs.instrument._events import RequestParts
from onsale_obs.instrument._otel import OTEL_VAR, with_onsale_baggage
from onsale_obs.instrument._tagger import TaggingMiddleware, now
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


class HandBaggage:
    """Sits just inside an inner OTel ASGI middleware: the app sees this service's baggage.

    OTel's middleware builds its context from the request headers, not from the context it
    was called in, so this service's ``onsale.*`` baggage would be lost inside it. Rewriting
    the ``baggage`` header works but makes OTel parse it on every request (about 70,000 CPU
    instructions for two entries, measured with callgrind); this layer instead puts the same
    entries in the context OTel made, for the requests the middleware marked (``_adopt``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # not a coroutine function: an unmarked request costs no extra coroutine frame
        rm = _current.get()
        if rm is None or rm._adopt is None:
            return self.app(scope, receive, send)
        ours = rm._adopt
        rm._adopt = None
        return self._with_baggage(ours, scope, receive, send)

    async def _with_baggage(
        self, ours: Mapping[str, object], scope: Scope, receive: Receive, send: Send
    ) -> None:
        var = OTEL_VAR
        if var is None:  # another runtime context: the public API
            token = context.attach(with_onsale_baggage(context.get_current(), ours))
            try:
                await self.app(scope, receive, send)
            finally:
                context.detach(token)
            return
        otel_token = var.set(with_onsale_baggage(var.get(), ours))
        try:
            await self.app(scope, receive, send)
        finally:
            try:
                var.reset(otel_token)
            except ValueError:  # made in another context: OTel's detach logs why
                context.detach(otel_token)


def _hand_baggage_inside(app: Any) -> bool:
    """Put ``HandBaggage`` inside the first OTel ASGI middleware down the ``.app`` chain."""
    try:  # imported here: only building a middleware needs it, not importing this package
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as _OTelASGI
    except ImportError:  # pragma: no cover - the instrumentation is a dependency
        return False
    for _ in range(32):
        if app is None:
            return False
        if isinstance(app, _OTelASGI):
            inner = getattr(app, "app", None)
            if inner is None:
                return False
            if type(inner) is not HandBaggage:
                try:
                    app.app = HandBaggage(inner)
                except AttributeError:  # pragma: no cover - an OTel that forbids it
                    return False
            return True
        app = getattr(app, "app", None)
    return False


class OnsaleMiddleware(TaggingMiddleware[ASGIApp]):
    """Tags each HTTP request of an ASGI app with its mode (options: ``TaggingMiddleware``).

    When an OTel ASGI middleware is inside it (found down the ``.app`` chain), a thin
    ``HandBaggage`` layer is put inside that one, so the app sees this service's baggage in
    OTel's context without OTel parsing a rewritten header on every request.
    """

    @staticmethod
    def _hand_baggage_inside(app: ASGIApp) -> bool:
        return _hand_baggage_inside(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
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
            path = scope["path"]
            root = scope.get("root_path")
            if root and path.startswith(root):  # mounted under a prefix: routes exclude it
                path = path[len(root) :] or "/"
            started = tagger.start(scope["method"], path, inbound, _parts, scope)
            if started[3] is not None:
                value = started[3].encode("latin-1")
                scope = {
                    **scope,
                    "headers": [(k, v) for k, v in headers if k != b"baggage"]
                    + [(b"baggage", value)],
                }
        except Exception:
            tagger.failed("asgi request start")
            started = tagger.degraded(str(scope.get("method", "GET")))

        status = 0

        # A plain function returning the real ``send``'s awaitable rather than a coroutine
        # function (no extra coroutine frame per message), and a closure rather than an object
        # with ``__call__`` (a cheaper call): this runs for every message of every request.
        def sender(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message.get("status", 0)
            return send(message)

        failed = False
        try:
            await self.app(scope, receive, sender)
        except BaseException:
            failed = True
            raise
        finally:
            try:
                code = status if type(status) is int else 0
                tagger.end(started, 500 if failed or code == 0 else code, now() - arrived)
            except Exception:
                tagger.failed("asgi request end")
