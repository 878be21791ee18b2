"""OpenTelemetry's context with this service's ``onsale.*`` baggage, read and set on the hot path.

The context keys of OTel's baggage and current span, and its context variable, are read
directly: that saves several Python calls per request (OTel's getters add an ABC isinstance
check and copies). Every one has a public-API fallback, used if a future OTel moves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from opentelemetry import baggage, context

BAGGAGE_KEY: str | None
SPAN_KEY: str | None
try:
    from opentelemetry.baggage import _BAGGAGE_KEY as BAGGAGE_KEY
    from opentelemetry.trace.propagation import _SPAN_KEY as SPAN_KEY
except ImportError:  # pragma: no cover - depends on the OTel version
    BAGGAGE_KEY = SPAN_KEY = None

_PREFIX = "onsale."


def otel_context_var() -> ContextVar[context.Context] | None:
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


OTEL_VAR = otel_context_var()


def with_onsale_baggage(ctx: context.Context, ours: Mapping[str, object]) -> context.Context:
    """``ctx`` with ``ours`` as its ``onsale.*`` baggage, in one copy.

    Every ``onsale.*`` entry already in ``ctx`` (a client's claim an outer OTel middleware
    extracted) is replaced, so it never travels further as if it were this service's.
    """
    if BAGGAGE_KEY is None:  # a future OTel without the key: fall back to the public API
        for key in baggage.get_all(ctx):
            if key.startswith(_PREFIX):
                ctx = baggage.remove_baggage(key, ctx)
        for key, value in ours.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return ctx
    current: Mapping[str, object] | None = ctx.get(BAGGAGE_KEY)  # type: ignore[assignment]
    if current:
        for key in current:
            if not key.startswith(_PREFIX):
                entries = {k: v for k, v in current.items() if not k.startswith(_PREFIX)}
                entries.update(ours)
                return context.Context({**ctx, BAGGAGE_KEY: entries})
        # only onsale.* entries, as a downstream hop receives from upstream: all replaced
    # the request's own entries, shared (OTel never changes a baggage mapping in place)
    return context.Context({**ctx, BAGGAGE_KEY: ours})
