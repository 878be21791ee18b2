"""``/metrics`` for ASGI and WSGI apps, with OpenMetrics (exemplars) when the scraper asks for it."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app, make_wsgi_app


def metrics_asgi_app(registry: CollectorRegistry) -> Any:
    """An ASGI app serving ``registry`` (mount it at ``/metrics``)."""
    return make_asgi_app(registry=registry)


def metrics_wsgi_app(registry: CollectorRegistry) -> Any:
    """A WSGI app serving ``registry`` (dispatch ``/metrics`` to it)."""
    return make_wsgi_app(registry=registry)
