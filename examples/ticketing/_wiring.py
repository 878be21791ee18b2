"""What the three services share: tracing around them, trace context on outbound calls, /metrics."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as TracedASGI
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as TracedWSGI
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from onsale_obs.instrument import RouteResolver, metrics_asgi_app, metrics_wsgi_app
from onsale_obs.types import ASGIApp, Receive, Scope, Send

# Only ``traceparent``: the on-sale baggage is written by onsale-obs' own hooks, and a fixed
# propagator does not depend on (or change) the process-wide one.
_TRACE_CONTEXT = TraceContextTextMapPropagator()

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def tracer_for(provider: trace.TracerProvider | None, name: str) -> trace.Tracer:
    """The service's own tracer; a no-op one when the service is not traced."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(name)


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add ``traceparent`` for the current span, so the next service continues the trace.

    opentelemetry-instrumentation-httpx / -requests do this (and more) when installed; the
    examples avoid depending on them.
    """
    _TRACE_CONTEXT.inject(headers)


async def httpx_trace_hook(request: Any) -> None:
    """``httpx.AsyncClient(event_hooks={"request": [...]})``: add ``traceparent``."""
    inject_trace_context(request.headers)


def _route_name(routes: RouteResolver | None, method: str, path: str) -> tuple[str, str | None]:
    found = routes(method, path) if routes is not None else None
    if found is None:
        return method, None
    return f"{method} {found[0]}", found[0]


def traced_asgi(
    app: ASGIApp, provider: trace.TracerProvider | None, routes: RouteResolver | None
) -> ASGIApp:
    """``app`` inside OpenTelemetry's ASGI middleware (server spans named by route template)."""
    if provider is None:
        return app

    def span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
        # OTel names server spans "POST /events/final/enter" by default: one name per event
        name, route = _route_name(routes, str(scope.get("method", "HTTP")), scope.get("path", ""))
        return name, ({"http.route": route} if route is not None else {})

    traced: ASGIApp = TracedASGI(app, default_span_details=span_details, tracer_provider=provider)
    return traced


def traced_wsgi(
    app: WSGIApp, provider: trace.TracerProvider | None, routes: RouteResolver | None
) -> WSGIApp:
    """``app`` inside OpenTelemetry's WSGI middleware (server spans named by route template)."""
    if provider is None:
        return app

    def name_by_route(span: trace.Span, environ: dict[str, Any]) -> None:
        method = str(environ.get("REQUEST_METHOD", "HTTP"))
        name, route = _route_name(routes, method, str(environ.get("PATH_INFO", "")))
        if route is not None:
            span.update_name(name)
            span.set_attribute("http.route", route)

    traced: WSGIApp = TracedWSGI(app, request_hook=name_by_route, tracer_provider=provider)
    return traced


class WithMetrics:
    """Serves ``GET /metrics`` from ``registry`` ahead of ``app``: scrapes are neither traced nor tagged."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.metrics: ASGIApp = metrics_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await self.metrics(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def wsgi_with_metrics(app: WSGIApp, registry: CollectorRegistry) -> WSGIApp:
    """``app`` with ``/metrics`` served from ``registry`` ahead of it."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    return DispatcherMiddleware(app, {"/metrics": metrics_wsgi_app(registry)})
