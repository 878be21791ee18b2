"""Putting ``onsale.mode`` and ``onsale.event`` on every span started inside a request."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from onsale_obs.instrument._context import RequestMode, _current

MODE_ATTR = "onsale.mode"
EVENT_ATTR = "onsale.event"
UPSTREAM_MODE_ATTR = "onsale.upstream_mode"


def span_attributes(rm: RequestMode) -> dict[str, AttributeValue]:
    """The span attributes of a request's mode (``onsale.mode``, ``onsale.event``, upstream)."""
    return rm.span_attributes


class OnsaleSpanProcessor(SpanProcessor):
    """Tags every span started while a request's mode is set (server, child, client, db spans).

    Add it to the tracer provider: ``provider.add_span_processor(OnsaleSpanProcessor())``.
    It only reads a context variable, so it never blocks and never raises.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        rm = _current.get()
        if rm is not None:
            # not contextlib.suppress: this runs for every span and a context manager costs more
            try:
                if rm.trace_id is None:  # the request's first span: OTel is inside our middleware
                    rm.trace_id = span.get_span_context().trace_id
                    if span.kind is SpanKind.SERVER:
                        span.set_attributes(rm.server_span_attributes)
                        span.update_name(rm.server_span_name)
                        return
                span.set_attributes(rm.span_attributes)
            except Exception:  # a tagging failure must never surface in the app
                pass

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True
