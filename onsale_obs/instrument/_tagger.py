"""The per-request work shared by the ASGI and WSGI middleware: decide, tag, record.

Everything here is guarded by the middleware: a failure is counted in
``onsale_instrument_errors_total``, logged once, and the request is served untagged.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import structlog
from opentelemetry import context, trace
from opentelemetry.sdk.trace import Span as SdkSpan

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._baggage import (
    EVENT_KEY,
    MODE_KEY,
    parse_onsale_baggage,
    rewrite_baggage,
    strip_onsale_baggage,
)
from onsale_obs.instrument._context import RequestMode, _current
from onsale_obs.instrument._events import (
    _VALID,
    EventExtractor,
    PathParam,
    RequestParts,
    valid_event,
)
from onsale_obs.instrument._metrics import UNMATCHED_ROUTE, RequestMetrics
from onsale_obs.instrument._otel import BAGGAGE_KEY, OTEL_VAR, SPAN_KEY, with_onsale_baggage
from onsale_obs.instrument._routes import RouteResolver, routes_for
from onsale_obs.instrument._tracing import tag_span
from onsale_obs.modes import ModeSubscriber, Resolution

_EMPTY: dict[str, Any] = {}

# The SDK's span classes, checked with ``type() in`` on every request: ``isinstance`` goes
# through the ABC machinery of OTel's Span (about 0.3 us here). The SDK makes ``_Span``s.
_SDK_SPANS: frozenset[type] = frozenset({SdkSpan})
try:
    from opentelemetry.sdk.trace import _Span

    _SDK_SPANS = frozenset({SdkSpan, _Span})
except ImportError:  # pragma: no cover - depends on the OTel version
    pass


AppT = TypeVar("AppT")

#: The monotonic clock durations are measured with.
now = time.perf_counter


#: What ``Tagger.start`` hands back: the request's mode, the two context tokens ``end``
#: resets, the inbound ``baggage`` header inner middleware should see (None: unchanged), and
#: the request's trace id when a span was already open (None: the first span records it).
Started = tuple[RequestMode, Any, Any, "str | None", "int | None"]
#: Builds the generic ``RequestParts`` for extractors other than ``PathParam`` (called lazily).
PartsFactory = Callable[[Any, str, str, Mapping[str, Any]], RequestParts]
#: How many distinct (method, path, inbound baggage) decisions are kept (all dropped when full).
_MAX_DECISIONS = 4096
#: Inbound baggage headers longer than this are decided afresh on every request, never kept: an
#: upstream service's ``onsale.*`` entries are far shorter, and the cache stays small.
_MAX_KEPT_BAGGAGE = 256


class _Decision:
    """What a request's (method, path, inbound baggage) always means with path-parameter
    extractors, and the RequestMode last made for it with the Resolution it was made for."""

    __slots__ = ("event", "header", "inbound", "resolution", "rm", "route", "upstream_mode")

    def __init__(
        self, route: str, event: str | None, upstream_mode: str | None, inbound: str | None
    ) -> None:
        self.route = route
        self.event = event
        self.upstream_mode = upstream_mode
        #: the inbound baggage header as passed on (``drop_inbound_baggage``: stripped)
        self.inbound = inbound
        self.resolution: Resolution | None = None
        self.rm: RequestMode | None = None
        #: the ``baggage`` header an inner OTel middleware is given with ``rm`` (None: none)
        self.header: str | None = None


class Tagger:
    """Decides a request's mode and records it in spans, baggage, metrics and the access log.

    This runs on every request, so ``start`` and ``end`` are written flat: no per-request
    closures or helper objects beyond the ``RequestMode`` itself.
    """

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
        # a resolver's cached lookup is called directly, one call less per request
        self.routes = getattr(routes, "lookup", routes)
        self.extractors = tuple(extractors)
        self.metrics = metrics
        self.access_log = access_log
        self.trust_inbound_scope = trust_inbound_scope and not drop_inbound_baggage
        self.drop_inbound_baggage = drop_inbound_baggage
        self.logger = logger
        self._failed_once = False
        self._otel_var = OTEL_VAR
        # With only path-parameter extractors, a path and an inbound baggage header always mean
        # the same route, event and upstream mode, and the same mode means the same RequestMode:
        # made once, shared by the requests that follow.
        self._decisions: dict[tuple[str, str, str | None], _Decision] | None = (
            {} if all(type(e) is PathParam for e in self.extractors) else None
        )
        # Whether the inner OTel middleware is handed this service's baggage directly (the ASGI
        # middleware sets it when it finds one, see ``_asgi.HandBaggage``) rather than by a
        # rewritten ``baggage`` header it would parse again.
        self.hands_baggage_inside = False

    def start(
        self,
        method: str,
        path: str,
        inbound: str | None,
        make_parts: PartsFactory,
        raw: Any,
    ) -> Started:
        """Decide the mode of a request and set it in context (spans, baggage, logs).

        ``make_parts(raw, method, path, params)`` is called only if an extractor needs it.
        """
        decisions = self._decisions
        shared = False
        if decisions is not None:
            # the usual request: its route, event and baggage were read by an earlier one
            key = (method, path, inbound)
            decision = decisions.get(key)
            if decision is None:
                decision = self._decide(method, path, inbound, make_parts, raw)
                if inbound is None or len(inbound) <= _MAX_KEPT_BAGGAGE:
                    if len(decisions) >= _MAX_DECISIONS:  # a flood of distinct requests
                        decisions.clear()
                    decisions[key] = decision
                    shared = True
            else:
                shared = True
        else:
            decision = self._decide(method, path, inbound, make_parts, raw)
        event = decision.event
        # the mode always comes from this service's own state, asked on every request
        resolution = self.subscriber.resolve(event)
        made = decision.resolution
        if made is not None and (resolution is made or resolution == made):
            rm: RequestMode = decision.rm  # type: ignore[assignment]
        else:  # first request of this decision, or its mode changed
            rm = RequestMode(
                resolution.mode,
                event,
                resolution.onsale_event,
                decision.upstream_mode,
                decision.route,
                method,
            )
            decision.resolution = resolution
            decision.rm = rm
            decision.header = None
        otel_var = self._otel_var
        # read once: the span and the baggage both come from it
        ctx = otel_var.get() if otel_var is not None else context.get_current()
        span: Any = ctx.get(SPAN_KEY) if SPAN_KEY is not None else trace.get_current_span(ctx)
        trace_id = None
        # An outer OTel middleware started the server span before we knew the mode: tag it here
        # (the span processor only sees spans started from now on).
        if type(span) in _SDK_SPANS:
            # the SDK's own span, read directly: its public getters cost a Python call each
            # (get_span_context two), on every request
            try:
                outermost = span._end_time is not None
                if not outermost:
                    tag_span(span, rm.span_attributes)
                    trace_id = span._context.trace_id
            except AttributeError:  # an SDK whose internals differ: the public way
                outermost = not span.is_recording()
                if not outermost:
                    tag_span(span, rm.span_attributes)
                    trace_id = span.get_span_context().trace_id
        else:
            outermost = span is None or not span.is_recording()
            if not outermost:
                tag_span(span, rm.span_attributes)
                trace_id = span.get_span_context().trace_id
        if outermost:
            # any span of this request is yet to start: the first one records its trace id
            rm = rm.for_one_request() if shared else rm
            rm._trace_id = None
        current = ctx.get(BAGGAGE_KEY) if BAGGAGE_KEY is not None else None
        if BAGGAGE_KEY is not None and not current:
            # no inbound baggage: the request's own entries, shared (OTel never changes them)
            ours = context.Context({**ctx, BAGGAGE_KEY: rm.baggage})
        else:
            ours = with_onsale_baggage(ctx, rm.baggage)
        # With no recording span yet, any OTel middleware is inside us and extracts the context
        # from the inbound headers: hand it this service's view. At an edge that drops inbound
        # baggage, the app's own view of the headers loses the client's onsale.* too.
        header = None
        passed_on = decision.inbound
        if outermost and passed_on is None and event is not None:
            if self.hands_baggage_inside:
                # No inbound baggage to scrub: the inner OTel middleware is handed the entries
                # it would have parsed from the header (same entries, same order) directly.
                rm._adopt = {EVENT_KEY: event, MODE_KEY: rm.mode}
            else:
                header = decision.header
                if header is None:
                    header = decision.header = rewrite_baggage(None, event, rm.mode)
        elif passed_on is not None and (outermost or self.drop_inbound_baggage):
            header = decision.header
            if header is None:
                header = decision.header = rewrite_baggage(passed_on, event, rm.mode)
        token = _current.set(rm)
        try:
            otel_token = otel_var.set(ours) if otel_var is not None else context.attach(ours)
        except BaseException:
            _current.reset(token)  # a failed start must not leave its mode to the next request
            raise
        return rm, token, otel_token, header, trace_id

    def _decide(
        self, method: str, path: str, inbound: str | None, make_parts: PartsFactory, raw: Any
    ) -> _Decision:
        """Route, event and the caller's claims of a request (everything but its mode)."""
        inbound_event = upstream_mode = None
        if inbound is not None:
            # the caller's claimed mode is kept as telemetry even at the edge; its scope is not
            inbound_event, upstream_mode = parse_onsale_baggage(inbound)
            if self.drop_inbound_baggage:
                inbound_event = None
                inbound = strip_onsale_baggage(inbound)
        route, event = self._route_and_event(method, path, make_parts, raw)
        if event is None and self.trust_inbound_scope and inbound_event is not None:
            event = valid_event(inbound_event)
        return _Decision(route, event, upstream_mode, inbound)

    def _route_and_event(
        self, method: str, path: str, make_parts: PartsFactory, raw: Any
    ) -> tuple[str, str | None]:
        """The request's route template and the event id its extractors find (if valid)."""
        found = self.routes(method, path) if self.routes is not None else None
        route, params = found if found is not None else (UNMATCHED_ROUTE, _EMPTY)
        parts = None
        for extract in self.extractors:
            if type(extract) is PathParam:
                value = params.get(extract.name)
                candidate = None if value is None else str(value)
            else:
                if parts is None:
                    parts = make_parts(raw, method, path, params)
                candidate = extract(parts)
            if candidate is not None:
                ok = _VALID.get(candidate)  # valid_event() inlined for the common, cached case
                event = candidate if ok else (valid_event(candidate) if ok is None else None)
                if event is not None:
                    return route, event
        return route, None

    def degraded(self, method: str) -> Started:
        """What to record for a request whose ``start`` failed: never raises.

        The request is still counted (route ``unmatched``), with the mode of no event scope
        (on sale only during a global on-sale), so an SLO never loses its errors.
        """
        try:
            mode = self.subscriber.resolve(None).mode
        except Exception:
            mode = "normal"
        rm = RequestMode(mode, None, None, None, UNMATCHED_ROUTE, method)
        rm._trace_id = None
        return rm, None, None, None, None

    def end(self, started: Started, status: int, seconds: float) -> None:
        """Record the finished request and restore the context."""
        rm, token, otel_token, _, trace_id = started
        try:
            if trace_id is None:
                trace_id = rm._trace_id or None  # recorded by the request's first span, if any
            if self.metrics is not None:
                self.metrics.observe(rm.labels, status, seconds, trace_id, rm.event)
            if self.access_log is not None:
                self.access_log.write(rm, status, seconds, trace_id)
        finally:
            if token is not None:  # None: a degraded start set nothing
                otel_var = self._otel_var
                if otel_var is None:
                    context.detach(otel_token)
                else:
                    try:
                        otel_var.reset(otel_token)
                    except ValueError:  # made in another context: OTel's detach logs why
                        context.detach(otel_token)
                _current.reset(token)

    def failed(self, where: str) -> None:
        """Count a failure inside the tagging; log the first one with its traceback."""
        if self.metrics is not None:
            self.metrics.errors += 1
        if not self._failed_once:
            self._failed_once = True
            with contextlib.suppress(Exception):  # logging must not break the request either
                # the traceback as text: a renderer shown exc_info may print local variables,
                # and these hold the request's headers (cookies, authorization)
                self.logger.error(
                    "on-sale tagging failed; serving the request with a fallback tag",
                    where=where,
                    traceback=traceback.format_exc(),
                )


class TaggingMiddleware(Generic[AppT]):
    """What the ASGI and WSGI middleware share: their options and the ``Tagger`` built from them.

    ``event`` lists extractors tried in order (``PathParam``, ``Header``, ``Query`` or any
    callable taking ``RequestParts``); then the scope propagated in baggage (``onsale.event``)
    unless ``trust_inbound_scope`` is False or ``drop_inbound_baggage`` is True. The mode itself
    always comes from ``subscriber``. ``route_app`` is the app whose router names the routes
    (default: ``app`` itself, when it is a Starlette/FastAPI or Flask app); ``routes`` replaces
    the router lookup entirely. Requests to ``exclude_paths`` are passed through untagged.
    """

    def __init__(
        self,
        app: AppT,
        *,
        subscriber: ModeSubscriber,
        service: str,
        event: Sequence[EventExtractor] = (),
        routes: RouteResolver | None = None,
        metrics: RequestMetrics | None = None,
        access_log: AccessLog | None = None,
        drop_inbound_baggage: bool = False,
        trust_inbound_scope: bool = True,
        exclude_paths: Sequence[str] = ("/metrics",),
        route_app: Any = None,
        logger: Any = None,
    ) -> None:
        self.app = app
        self.service = service
        # each path with and without its trailing slash: one set lookup per request
        bases = [p.rstrip("/") for p in exclude_paths]
        self.exclude_paths = frozenset([*(b or "/" for b in bases), *(b + "/" for b in bases)])
        if routes is None:
            routes = routes_for(route_app if route_app is not None else app)
            if routes is None and any(type(e) is PathParam for e in event):
                (logger or structlog.get_logger("onsale_obs.instrument")).warning(
                    "no router found for the path parameters; PathParam will find no event "
                    "(pass route_app= or routes=)",
                    service=service,
                )
        self.tagger = Tagger(
            subscriber,
            routes=routes,
            extractors=event,
            metrics=metrics,
            access_log=access_log,
            trust_inbound_scope=trust_inbound_scope,
            drop_inbound_baggage=drop_inbound_baggage,
            logger=logger if logger is not None else structlog.get_logger("onsale_obs.instrument"),
        )
        self.tagger.hands_baggage_inside = self._hand_baggage_inside(app)

    @staticmethod
    def _hand_baggage_inside(app: AppT) -> bool:
        """Whether an inner OTel middleware is handed the baggage directly (ASGI: see there)."""
        return False
