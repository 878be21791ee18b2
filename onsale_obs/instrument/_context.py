"""The mode of the request being served, visible to everything that runs inside it."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry.util.types import AttributeValue

from onsale_obs.instrument._baggage import EVENT_KEY, MODE_KEY
from onsale_obs.types import Mode

#: Span attribute names (a contract, see DESIGN.md).
MODE_ATTR = "onsale.mode"
EVENT_ATTR = "onsale.event"
UPSTREAM_MODE_ATTR = "onsale.upstream_mode"

#: ``_trace_id`` of a RequestMode shared between requests (a trace id is never 0).
SHARED = 0


class RequestMode:
    """What the middleware decided for one request.

    ``event`` is the request's event id (its scope), whether or not that event is on sale;
    ``onsale_event`` is the same id only while that event is on sale (the metric label);
    ``upstream_mode`` is what the calling service said in baggage: recorded, never trusted.
    ``span_attributes`` (every span of the request gets them) and ``baggage`` (the
    ``onsale.*`` baggage entries this service passes on) are computed once here; both are
    shared, read-only mappings.

    Treat it as immutable: the middleware shares one instance between the requests that reach
    the same route of the same event in the same mode.
    """

    __slots__ = (
        "_adopt",
        "_trace_id",
        "baggage",
        "event",
        "labels",
        "method",
        "mode",
        "onsale_event",
        "route",
        "span_attributes",
        "upstream_mode",
    )

    def __init__(
        self,
        mode: Mode,
        event: str | None = None,
        onsale_event: str | None = None,
        upstream_mode: str | None = None,
        route: str = "",
        method: str = "",
    ) -> None:
        self.mode: Mode = mode
        self.event = event
        self.onsale_event = onsale_event
        self.upstream_mode = upstream_mode
        self.route = route
        self.method = method
        tags = _tags(mode, event, upstream_mode)
        self.span_attributes: dict[str, AttributeValue] = tags[0]
        self.baggage: dict[str, object] = tags[1]
        #: the request metrics' labels: (route, method, mode, on-sale event or "")
        self.labels = (route, method, mode, onsale_event or "")
        # Where the request's first span records its trace id, when no span was open at the
        # start of the request (tracing inside the middleware): None until then. A shared
        # instance holds SHARED and is never written; the middleware keeps that trace id itself.
        self._trace_id: int | None = SHARED
        # The baggage entries to hand to the context an inner OTel ASGI middleware makes (see
        # _asgi.HandBaggage): set on a request's own copy only, None otherwise.
        self._adopt: dict[str, object] | None = None

    def for_one_request(self) -> RequestMode:
        """A copy whose first span may record its trace id (see ``_trace_id``)."""
        copy = RequestMode.__new__(RequestMode)
        copy.mode = self.mode
        copy.event = self.event
        copy.onsale_event = self.onsale_event
        copy.upstream_mode = self.upstream_mode
        copy.route = self.route
        copy.method = self.method
        copy.span_attributes = self.span_attributes
        copy.baggage = self.baggage
        copy.labels = self.labels
        copy._trace_id = None
        copy._adopt = None
        return copy

    def __repr__(self) -> str:
        return (
            f"RequestMode(mode={self.mode!r}, event={self.event!r}, onsale_event={self.onsale_event!r}, "
            f"upstream_mode={self.upstream_mode!r}, route={self.route!r})"
        )


_Tags = tuple[dict[str, AttributeValue], dict[str, object]]
_TAGS: dict[tuple[str, str | None, str | None], _Tags] = {}
#: How many (mode, event, upstream mode) combinations keep their mappings made in advance.
_MAX_TAGS = 4096


def _tags(mode: str, event: str | None, upstream_mode: str | None) -> _Tags:
    """The span attributes and baggage entries of a request, made once per combination."""
    key = (mode, event, upstream_mode)
    found = _TAGS.get(key)
    if found is not None:
        return found
    baggage: dict[str, object] = {MODE_KEY: mode}
    if event is not None:
        baggage[EVENT_KEY] = event
    attrs: dict[str, AttributeValue] = {MODE_ATTR: mode}
    if event is not None:
        attrs[EVENT_ATTR] = event
    if upstream_mode is not None:
        attrs[UPSTREAM_MODE_ATTR] = upstream_mode
    if len(_TAGS) >= _MAX_TAGS:  # event ids are bounded by the extractors, but never trust that
        _TAGS.clear()
    found = _TAGS[key] = (attrs, baggage)
    return found


_current: ContextVar[RequestMode | None] = ContextVar("onsale_request_mode", default=None)


def current_request_mode() -> RequestMode | None:
    """The mode of the request being served in this context, or None outside a request."""
    return _current.get()
