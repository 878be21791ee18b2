"""The mode of the request being served, visible to everything that runs inside it."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from onsale_obs.types import Mode


@dataclass(frozen=True, slots=True)
class RequestMode:
    """What the middleware decided for one request.

    ``event`` is the request's event id (its scope), whether or not that event is on sale;
    ``onsale_event`` is the same id only while that event is on sale (the metric label);
    ``upstream_mode`` is what the calling service said in baggage: recorded, never trusted.
    """

    mode: Mode
    event: str | None = None
    onsale_event: str | None = None
    upstream_mode: str | None = None
    route: str = ""


_current: ContextVar[RequestMode | None] = ContextVar("onsale_request_mode", default=None)


def current_request_mode() -> RequestMode | None:
    """The mode of the request being served in this context, or None outside a request."""
    return _current.get()
