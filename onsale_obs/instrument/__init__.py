"""Request tagging: every span, log line and metric of a request says whether it was an on-sale request."""

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._asgi import OnsaleMiddleware
from onsale_obs.instrument._baggage import EVENT_KEY, MODE_KEY
from onsale_obs.instrument._context import RequestMode, current_request_mode
from onsale_obs.instrument._endpoint import metrics_asgi_app, metrics_wsgi_app
from onsale_obs.instrument._events import EventExtractor, Header, PathParam, Query, RequestParts
from onsale_obs.instrument._logging import add_onsale_context, configure_logging
from onsale_obs.instrument._metrics import DEFAULT_BUCKETS, RequestMetrics, status_class
from onsale_obs.instrument._outbound import (
    httpx_async_hook,
    httpx_hook,
    inject_onsale_headers,
    outbound_baggage,
    requests_adapter,
)
from onsale_obs.instrument._routes import FlaskRoutes, RouteResolver, StarletteRoutes
from onsale_obs.instrument._tracing import OnsaleSpanProcessor
from onsale_obs.instrument._wsgi import OnsaleWSGIMiddleware

__all__ = [
    "DEFAULT_BUCKETS",
    "EVENT_KEY",
    "MODE_KEY",
    "AccessLog",
    "EventExtractor",
    "FlaskRoutes",
    "Header",
    "OnsaleMiddleware",
    "OnsaleSpanProcessor",
    "OnsaleWSGIMiddleware",
    "PathParam",
    "Query",
    "RequestMetrics",
    "RequestMode",
    "RequestParts",
    "RouteResolver",
    "StarletteRoutes",
    "add_onsale_context",
    "configure_logging",
    "current_request_mode",
    "httpx_async_hook",
    "httpx_hook",
    "inject_onsale_headers",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "outbound_baggage",
    "requests_adapter",
    "status_class",
]
