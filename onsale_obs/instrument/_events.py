"""Where a request's event id (its scope) comes from: a path parameter, a header, the query."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from onsale_obs.modes._model import EVENT_ID_PATTERN


class RequestParts:
    """What an extractor may look at, the same for ASGI and WSGI requests."""

    __slots__ = ("headers", "method", "params", "path", "query_string", "raw")

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        headers: Callable[[str], str | None],
        query_string: str,
        raw: Any,
    ) -> None:
        self.method = method
        self.path = path
        self.params = params
        #: ``headers("x-event-id")`` -> the value, or None (names in lower case)
        self.headers = headers
        self.query_string = query_string
        #: the ASGI scope or the WSGI environ, for custom extractors
        self.raw = raw


#: An extractor returns the event id of a request, or None.
EventExtractor = Callable[[RequestParts], str | None]


@dataclass(frozen=True)
class PathParam:
    """The event id is a path parameter of the route (``/events/{event_id}/checkout``)."""

    name: str = "event_id"

    def __call__(self, req: RequestParts) -> str | None:
        value = req.params.get(self.name)
        return None if value is None else str(value)


@dataclass(frozen=True)
class Header:
    """The event id is a request header (``X-Event-Id``)."""

    name: str = "x-event-id"

    def __call__(self, req: RequestParts) -> str | None:
        return req.headers(self.name.lower())


@dataclass(frozen=True)
class Query:
    """The event id is a query parameter (``?event=final-2026``)."""

    name: str = "event"

    def __call__(self, req: RequestParts) -> str | None:
        if not req.query_string or self.name not in req.query_string:
            return None
        values = parse_qs(req.query_string).get(self.name)
        return values[0] if values else None


_VALID: dict[str, bool] = {}
_VALID_CACHE_SIZE = 10_000


def valid_event(value: str | None) -> str | None:
    """An event id usable as a scope, or None (garbage from the network is ignored)."""
    if value is None:
        return None
    ok = _VALID.get(value)
    if ok is None:
        ok = EVENT_ID_PATTERN.match(value) is not None
        if len(_VALID) < _VALID_CACHE_SIZE:  # bounded: random ids from the network cannot grow it
            _VALID[value] = ok
    return value if ok else None
