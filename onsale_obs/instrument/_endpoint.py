"""``/metrics`` for ASGI and WSGI apps, with OpenMetrics (exemplars) when the scraper asks for it."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app, make_wsgi_app

from onsale_obs.types import Receive, Scope, Send


class MetricsASGIApp:
    """An ASGI app serving a registry.

    It is a class instance, so Starlette treats it as an ASGI app in both
    ``Route("/metrics", MetricsASGIApp(registry))`` and ``Mount("/metrics", ...)``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._app = make_asgi_app(registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def metrics_asgi_app(registry: CollectorRegistry) -> MetricsASGIApp:
    """An ASGI app serving ``registry`` (route or mount it at ``/metrics``)."""
    return MetricsASGIApp(registry)


def metrics_wsgi_app(registry: CollectorRegistry) -> Any:
    """A WSGI app serving ``registry`` (dispatch ``/metrics`` to it)."""
    return make_wsgi_app(registry=registry)
