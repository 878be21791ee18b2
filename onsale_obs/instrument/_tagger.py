"""The per-request work shared by the ASGI and WSGI middleware: decide, tag, record.

Everything here is guarded by the middleware: a failure is counted in
``onsale_instrument_errors_total``, logged once, and the request is served untagged.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import baggage, context, trace

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._baggage import EVENT_KEY, MODE_KEY
from onsale_obs.instrument._context import RequestMode, _current
from onsale_obs.instrument._events import EventExtractor, PathParam, RequestParts, valid_event
from onsale_obs.instrument._metrics import UNMATCHED_ROUTE, RequestMetrics
from onsale_obs.instrument._routes import RouteResolver
from onsale_obs.modes import ModeSubscriber

_BAGGAGE_KEY: str | None
try:  # one context copy instead of one per baggage entry (this runs on every request)
    from opentelemetry.baggage import _BAGGAGE_KEY
except ImportError:  # pragma: no cover - depends on the OTel version
    _BAGGAGE_KEY = None

_EMPTY: dict[str, Any] = {}


class Tagger:
    """Decides a request's mode and records it in spans, baggage, metrics and the access log."""

    def __init__(
        self,
        subscriber: ModeSubscriber,
        *,
        routes: RouteResolver | None,
        extractors: Sequence[EventExtractor],
        metrics: RequestMetrics | None,
        access_log: AccessLog | None,
        trust_inbound_scope: bool,
        logger: Any,
    ) -> None:
        self.subscriber = subscriber
        self.routes = routes
        self.extractors = tuple(extractors)
        self.metrics = metrics
        self.access_log = access_log
        self.trust_inbound_scope = trust_inbound_scope
        self.logger = logger
        self._failed_once = False

    def route(self, method: str, path: str) -> tuple[str, Any]:
        """The route template and path parameters (``unmatched`` when no route matches)."""
        if self.routes is None:
            return UNMATCHED_ROUTE, _EMPTY
        found = self.routes(method, path)
        return found if found is not None else (UNMATCHED_ROUTE, _EMPTY)

    def event(
        self, params: Any, make_parts: Callable[[], RequestParts], inbound_event: str | None
    ) -> str | None:
        """The request's event id: the extractors first, then the propagated scope.

        Path parameters are read directly; ``RequestParts`` is built only for other extractors.
        """
        parts = None
        for extract in self.extractors:
            if type(extract) is PathParam:
                value = params.get(extract.name)
                raw = None if value is None else str(value)
            else:
                if parts is None:
                    parts = make_parts()
                raw = extract(parts)
            found = valid_event(raw)
            if found is not None:
                return found
        if self.trust_inbound_scope and inbound_event is not None:
            return valid_event(inbound_event)
        return None

    def begin(
        self, event: str | None, route: str, upstream_mode: str | None, span: trace.Span
    ) -> tuple[RequestMode, Any, Any]:
        """Set the request's mode in context; returns it with the tokens ``end`` resets.

        ``span`` is the current span when the request arrived: when it is recording, an outer
        OTel middleware has started the server span already, so it is tagged here (the span
        processor only sees spans started later).
        """
        resolution = self.subscriber.resolve(event)
        rm = RequestMode(resolution.mode, event, resolution.onsale_event, upstream_mode, route)
        token = _current.set(rm)
        if span.is_recording():
            span.set_attributes(rm.span_attributes)
            rm.trace_id = span.get_span_context().trace_id
        return rm, token, context.attach(_with_onsale_baggage(rm.mode, event))

    def end(
        self, rm: RequestMode, method: str, status: int, seconds: float, tokens: tuple[Any, Any]
    ) -> None:
        """Record the finished request and restore the context."""
        try:
            trace_id = rm.trace_id
            if self.metrics is not None:
                self.metrics.record(
                    rm.route, method, status, rm.mode, rm.onsale_event or "", seconds, trace_id
                )
            if self.access_log is not None:
                self.access_log.write(rm, method, status, seconds, trace_id)
        finally:
            context.detach(tokens[1])
            _current.reset(tokens[0])

    def failed(self, where: str) -> None:
        """Count a failure inside the tagging; log the first one with its traceback."""
        if self.metrics is not None:
            self.metrics.errors += 1
        if not self._failed_once:
            self._failed_once = True
            with contextlib.suppress(Exception):  # logging must not break the request either
                self.logger.exception(
                    "on-sale tagging failed; serving the request untagged", where=where
                )


def _with_onsale_baggage(mode: str, event: str | None) -> context.Context:
    """The current context with ``onsale.mode`` (and ``onsale.event``) baggage, in one copy."""
    if _BAGGAGE_KEY is None:  # a future OTel without the key: fall back to the public API
        ctx = baggage.set_baggage(MODE_KEY, mode)
        return ctx if event is None else baggage.set_baggage(EVENT_KEY, event, ctx)
    entries = dict(context.get_value(_BAGGAGE_KEY) or _EMPTY)  # type: ignore[call-overload]
    entries[MODE_KEY] = mode
    if event is not None:
        entries[EVENT_KEY] = event
    return context.set_value(_BAGGAGE_KEY, entries)


#: The monotonic clock durations are measured with.
now = time.perf_counter
