"""Outbound calls carry the request's scope and this service's mode as W3C baggage."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

from opentelemetry import baggage
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from onsale_obs.instrument._baggage import rewrite_baggage
from onsale_obs.instrument._context import _current


def outbound_baggage(existing: str | None = None) -> str | None:
    """The baggage header to send downstream, or None outside a request.

    ``existing`` is a header already set on the outbound request; without one, the current
    OpenTelemetry baggage is carried along. Either way the ``onsale.*`` members are this
    service's own view.
    """
    rm = _current.get()
    if rm is None:
        return existing
    if existing is None:
        current = baggage.get_all()
        if current:
            existing = ",".join(
                f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in current.items()
            )
    return rewrite_baggage(existing, rm.event, rm.mode)


_TRACE_CONTEXT = TraceContextTextMapPropagator()


def _add_traceparent(headers: MutableMapping[str, str], present: bool) -> None:
    """Continue the trace downstream when no client instrumentation has done it already."""
    if not present:
        _TRACE_CONTEXT.inject(headers)


def inject_onsale_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the on-sale baggage (merging an existing ``baggage`` header) and, if missing, ``traceparent``."""
    key = next((k for k in headers if k.lower() == "baggage"), "baggage")
    value = outbound_baggage(headers.get(key))
    if value is not None:
        headers[key] = value
        _add_traceparent(headers, any(k.lower() == "traceparent" for k in headers))
    return headers


def httpx_hook(request: Any) -> None:
    """``httpx.Client(event_hooks={"request": [httpx_hook]})``: add the on-sale baggage and trace."""
    value = outbound_baggage(request.headers.get("baggage"))
    if value is not None:
        request.headers["baggage"] = value
        _add_traceparent(request.headers, "traceparent" in request.headers)


async def httpx_async_hook(request: Any) -> None:
    """``httpx.AsyncClient(event_hooks={"request": [httpx_async_hook]})``."""
    httpx_hook(request)


def requests_adapter(**kwargs: Any) -> Any:
    """A ``requests`` transport adapter that adds the on-sale baggage to every request.

    ``session.mount("http://", requests_adapter()); session.mount("https://", requests_adapter())``.
    It runs after OpenTelemetry's requests instrumentation has injected its headers, and
    merges with them.
    """
    from requests.adapters import HTTPAdapter

    class OnsaleAdapter(HTTPAdapter):
        def add_headers(self, request: Any, **kw: Any) -> None:
            super().add_headers(request, **kw)
            value = outbound_baggage(request.headers.get("baggage"))
            if value is not None:
                request.headers["baggage"] = value
                _add_traceparent(request.headers, "traceparent" in request.headers)

    return OnsaleAdapter(**kwargs)
