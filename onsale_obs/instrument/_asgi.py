"""Pure ASGI middleware: every request tagged with its on-sale mode (no BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from onsale_obs.instrument._events import RequestParts
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


class OnsaleMiddleware(TaggingMiddleware[ASGIApp]):
    """Tags each HTTP request of an ASGI app with its mode (options: ``TaggingMiddleware``)."""

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
