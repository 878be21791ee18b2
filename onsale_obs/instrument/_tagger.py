"""The per-request work shared by the ASGI and WSGI middleware: decide, tag, record.

Everything here is guarded by the middleware: a failure is counted in
``onsale_instrument_errors_total``, logged once, and the request is served untagged.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import baggage, context, trace

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._baggage import (
    EVENT_KEY,
    MODE_KEY,
    parse_onsale_baggage,
    rewrite_baggage,
    strip_onsale_baggage,
)
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

#: The monotonic clock durations are measured with.
now = time.perf_counter


class Started:
    """A request the tagger has decided on: its mode, the tokens to reset, the baggage to pass in."""

    __slots__ = ("baggage_header", "otel_token", "rm", "token")

    def __init__(
        self, rm: RequestMode, token: Any, otel_token: Any, baggage_header: str | None
    ) -> None:
        self.rm = rm
        self.token = token
        self.otel_token = otel_token
        #: the inbound ``baggage`` header to hand to inner middleware (None: leave it alone)
        self.baggage_header = baggage_header


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
        drop_inbound_baggage: bool,
        logger: Any,
    ) -> None:
        self.subscriber = subscriber
        self.routes = routes
        self.extractors = tuple(extractors)
        self.metrics = metrics
        self.access_log = access_log
        self.trust_inbound_scope = trust_inbound_scope and not drop_inbound_baggage
        self.drop_inbound_baggage = drop_inbound_baggage
        self.logger = logger
        self._failed_once = False

    def start(
        self,
        method: str,
        path: str,
        inbound: str | None,
        make_parts: Callable[[Mapping[str, Any]], RequestParts],
    ) -> Started:
        """Decide the mode of a request and set it in context (spans, baggage, logs)."""
        route, params = self._route(method, path)
        inbound_event = upstream_mode = None
        if inbound is not None:
            # the caller's claimed mode is kept as telemetry even at the edge; its scope is not
            inbound_event, upstream_mode = parse_onsale_baggage(inbound)
            if self.drop_inbound_baggage:
                inbound = strip_onsale_baggage(inbound)
        event = self._event(params, make_parts, inbound_event)
        resolution = self.subscriber.resolve(event)
        rm = RequestMode(
            resolution.mode, event, resolution.onsale_event, upstream_mode, route, method
        )
        token = _current.set(rm)
        span = trace.get_current_span()
        outermost = not span.is_recording()
        if not outermost:
            # An outer OTel middleware started the server span before we knew the mode: tag it
            # here (the span processor only sees spans started from now on).
            span.set_attributes(rm.server_span_attributes)
            span.update_name(rm.server_span_name)
            rm.trace_id = span.get_span_context().trace_id
        otel_token = context.attach(_with_onsale_baggage(rm.mode, event))
        # With no recording span yet, any OTel middleware is inside us and extracts the context
        # from the inbound headers: hand it this service's view.
        header = None
        if outermost and (inbound is not None or event is not None):
            header = rewrite_baggage(inbound, event, rm.mode)
        return Started(rm, token, otel_token, header)

    def _route(self, method: str, path: str) -> tuple[str, Mapping[str, Any]]:
        if self.routes is None:
            return UNMATCHED_ROUTE, _EMPTY
        found = self.routes(method, path)
        return found if found is not None else (UNMATCHED_ROUTE, _EMPTY)

    def _event(
        self,
        params: Mapping[str, Any],
        make_parts: Callable[[Mapping[str, Any]], RequestParts],
        inbound_event: str | None,
    ) -> str | None:
        """The extractors first (path parameters read directly), then the propagated scope."""
        parts = None
        for extract in self.extractors:
            if type(extract) is PathParam:
                value = params.get(extract.name)
                raw = None if value is None else str(value)
            else:
                if parts is None:
                    parts = make_parts(params)
                raw = extract(parts)
            found = valid_event(raw)
            if found is not None:
                return found
        if self.trust_inbound_scope and inbound_event is not None:
            return valid_event(inbound_event)
        return None

    def end(self, started: Started, status: int, seconds: float) -> None:
        """Record the finished request and restore the context."""
        rm = started.rm
        try:
            if self.metrics is not None:
                self.metrics.record(
                    rm.route,
                    rm.method,
                    status,
                    rm.mode,
                    rm.onsale_event or "",
                    seconds,
                    rm.trace_id,
                )
            if self.access_log is not None:
                self.access_log.write(rm, status, seconds)
        finally:
            context.detach(started.otel_token)
            _current.reset(started.token)

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
    """The current context with this service's ``onsale.*`` baggage, in one copy.

    Every inbound ``onsale.*`` entry an outer OTel middleware extracted is replaced, so a
    client's claim never travels further as if it were ours.
    """
    if _BAGGAGE_KEY is None:  # a future OTel without the key: fall back to the public API
        ctx = context.get_current()
        for key in baggage.get_all(ctx):
            if key.startswith("onsale."):
                ctx = baggage.remove_baggage(key, ctx)
        ctx = baggage.set_baggage(MODE_KEY, mode, ctx)
        return ctx if event is None else baggage.set_baggage(EVENT_KEY, event, ctx)
    current: Mapping[str, object] = context.get_value(_BAGGAGE_KEY) or _EMPTY  # type: ignore[assignment]
    entries = {k: v for k, v in current.items() if not k.startswith("onsale.")} if current else {}
    entries[MODE_KEY] = mode
    if event is not None:
        entries[EVENT_KEY] = event
    return context.set_value(_BAGGAGE_KEY, entries)
