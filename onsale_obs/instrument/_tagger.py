"""The per-request work shared by the ASGI and WSGI middleware: decide, tag, record.

Everything here is guarded by the middleware: a failure is counted in
``onsale_instrument_errors_total``, logged once, and the request is served untagged.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

import structlog
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import Span as SdkSpan

from onsale_obs.instrument._access_log import AccessLog
from onsale_obs.instrument._baggage import (
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
from onsale_obs.instrument._routes import RouteResolver, routes_for
from onsale_obs.instrument._tracing import tag_span
from onsale_obs.modes import ModeSubscriber, Resolution

# Context keys of OTel's baggage and current span. Reading the context directly saves several
# Python calls on every request (OTel's getters add an ABC isinstance check and copies); if a
# future OTel moves them, the public API is used instead.
_BAGGAGE_KEY: str | None
_SPAN_KEY: str | None
try:
    from opentelemetry.baggage import _BAGGAGE_KEY
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - depends on the OTel version
    _BAGGAGE_KEY = _SPAN_KEY = None

_EMPTY: dict[str, Any] = {}

# The SDK's span classes, checked with ``type() in`` on every request: ``isinstance`` goes
# through the ABC machinery of OTel's Span (about 0.3 us here). The SDK makes ``_Span``s.
_SDK_SPANS: frozenset[type] = frozenset({SdkSpan})
try:
    from opentelemetry.sdk.trace import _Span

    _SDK_SPANS = frozenset({SdkSpan, _Span})
except ImportError:  # pragma: no cover - depends on the OTel version
    pass


def _otel_context_var() -> ContextVar[context.Context] | None:
    """OTel's own context variable, when its runtime context is the default (contextvars) one.

    Setting and resetting it directly is what ``context.attach``/``detach`` do, minus three
    Python calls each way; any other runtime context goes through the public API.
    """
    try:
        from opentelemetry.context import _RUNTIME_CONTEXT
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    except ImportError:  # pragma: no cover - depends on the OTel version
        return None
    if type(_RUNTIME_CONTEXT) is not ContextVarsRuntimeContext:
        return None
    var = getattr(_RUNTIME_CONTEXT, "_current_context", None)
    return var if isinstance(var, ContextVar) else None


AppT = TypeVar("AppT")

#: The monotonic clock durations are measured with.
now = time.perf_counter


#: What ``Tagger.start`` hands back: the request's mode, the two context tokens ``end``
#: resets, the inbound ``baggage`` header inner middleware should see (None: unchanged), and
#: the request's trace id when a span was already open (None: the first span records it).
Started = tuple[RequestMode, Any, Any, "str | None", "int | None"]
#: Builds the generic ``RequestParts`` for extractors other than ``PathParam`` (called lazily).
PartsFactory = Callable[[Any, str, str, Mapping[str, Any]], RequestParts]
#: What a (method, path) always means with path-parameter extractors: route, event, and the
#: RequestMode last made for it with the Resolution it was made for (None, None: not yet).
_Decision = tuple[str, "str | None", "Resolution | None", "RequestMode | None"]
#: How many distinct (method, path) decisions are kept (all dropped when full).
_MAX_DECISIONS = 4096


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
        self._otel_var = _otel_context_var()
        # With only path-parameter extractors, a path always means the same route and event, and
        # the same mode means the same RequestMode: made once, shared by the requests that follow.
        self._decisions: dict[tuple[str, str], _Decision] | None = (
            {} if all(type(e) is PathParam for e in self.extractors) else None
        )

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
        inbound_event = upstream_mode = None
        if inbound is not None:
            # the caller's claimed mode is kept as telemetry even at the edge; its scope is not
            inbound_event, upstream_mode = parse_onsale_baggage(inbound)
            if self.drop_inbound_baggage:
                inbound_event = None
                inbound = strip_onsale_baggage(inbound)
        decisions = self._decisions
        if decisions is not None and upstream_mode is None and inbound_event is None:
            # the usual request: its route, event and RequestMode were made by an earlier one
            key = (method, path)
            decision = decisions.get(key)
            if decision is None:
                route, event = self._route_and_event(method, path, make_parts, raw)
            else:
                route, event = decision[0], decision[1]
            resolution = self.subscriber.resolve(event)
            if decision is not None and (resolution is decision[2] or resolution == decision[2]):
                rm: RequestMode = decision[3]  # type: ignore[assignment]
            else:  # first request of this path, or its mode changed
                rm = RequestMode(
                    resolution.mode, event, resolution.onsale_event, None, route, method
                )
                if len(decisions) >= _MAX_DECISIONS:  # a flood of distinct paths: start over
                    decisions.clear()
                decisions[key] = (route, event, resolution, rm)
            shared = True
        else:
            route, event = self._route_and_event(method, path, make_parts, raw)
            if event is None and self.trust_inbound_scope and inbound_event is not None:
                event = valid_event(inbound_event)
            resolution = self.subscriber.resolve(event)
            rm = RequestMode(
                resolution.mode, event, resolution.onsale_event, upstream_mode, route, method
            )
            shared = False
        otel_var = self._otel_var
        # read once: the span and the baggage both come from it
        ctx = otel_var.get() if otel_var is not None else context.get_current()
        span: Any = ctx.get(_SPAN_KEY) if _SPAN_KEY is not None else trace.get_current_span(ctx)
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
            if shared:
                rm = rm.for_one_request()
            else:
                rm._trace_id = None
        current = ctx.get(_BAGGAGE_KEY) if _BAGGAGE_KEY is not None else None
        if _BAGGAGE_KEY is not None and not current:
            # no inbound baggage: the request's own entries, shared (OTel never changes them)
            ours = context.Context({**ctx, _BAGGAGE_KEY: rm.baggage})
        else:
            ours = _with_onsale_baggage(ctx, rm)
        # With no recording span yet, any OTel middleware is inside us and extracts the context
        # from the inbound headers: hand it this service's view. At an edge that drops inbound
        # baggage, the app's own view of the headers loses the client's onsale.* too.
        header = None
        if (outermost and (inbound is not None or event is not None)) or (
            self.drop_inbound_baggage and inbound is not None
        ):
            header = rewrite_baggage(inbound, event, rm.mode)
        token = _current.set(rm)
        try:
            otel_token = otel_var.set(ours) if otel_var is not None else context.attach(ours)
        except BaseException:
            _current.reset(token)  # a failed start must not leave its mode to the next request
            raise
        return rm, token, otel_token, header, trace_id

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


def _with_onsale_baggage(ctx: context.Context, rm: RequestMode) -> context.Context:
    """``ctx`` with this service's ``onsale.*`` baggage, in one copy.

    Every inbound ``onsale.*`` entry an outer OTel middleware extracted is replaced, so a
    client's claim never travels further as if it were ours.
    """
    if _BAGGAGE_KEY is None:  # a future OTel without the key: fall back to the public API
        for key in baggage.get_all(ctx):
            if key.startswith("onsale."):
                ctx = baggage.remove_baggage(key, ctx)
        for key, value in rm.baggage.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return ctx
    current: Mapping[str, object] | None = ctx.get(_BAGGAGE_KEY)  # type: ignore[assignment]
    if current:
        entries = {k: v for k, v in current.items() if not k.startswith("onsale.")}
        entries.update(rm.baggage)
        return context.Context({**ctx, _BAGGAGE_KEY: entries})
    # no inbound baggage: the request's own entries, shared (OTel never changes them in place)
    return context.Context({**ctx, _BAGGAGE_KEY: rm.baggage})


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
