"""Putting ``onsale.mode`` and ``onsale.event`` on every span started inside a request."""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from onsale_obs.instrument._context import _current


def tag_span(span: Span | Any, attributes: dict[str, AttributeValue]) -> None:
    """Add the request's attributes to a span that only this request touches.

    That holds for a span in ``on_start`` (``start_span`` has not returned it yet) and for the
    request's server span. The values are short strings this package built, so the SDK's
    per-value validation (about 12,000 CPU instructions per ``set_attribute``, measured with
    callgrind) buys nothing: with the SDK's span they go straight into its attribute store,
    within its attribute limit. Any other span, or an SDK whose internals differ, goes through
    the public ``set_attribute``.
    """
    bounded: Any = getattr(span, "_attributes", None)
    store = getattr(bounded, "_dict", None)
    if (
        type(store) is dict
        and not getattr(bounded, "_immutable", True)
        and len(store) + len(attributes) <= (bounded.maxlen or 1 << 30)
    ):
        store.update(attributes)
        return
    for key, value in attributes.items():
        span.set_attribute(key, value)


class OnsaleSpanProcessor(SpanProcessor):
    """Tags every span started while a request's mode is set (server, child, client, db spans).

    Add it to the tracer provider: ``provider.add_span_processor(OnsaleSpanProcessor())``.
    It only reads a context variable, so it never blocks and never raises.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        rm = _current.get()
        if rm is None:
            return
        # not contextlib.suppress: this runs for every span and a context manager costs more
        try:
            if rm.trace_id is None:  # the request's first span: OTel is inside our middleware
                rm.trace_id = span.get_span_context().trace_id
            # tag_span's fast path, inlined: this runs for every span of every request
            bounded = span._attributes
            store = bounded._dict  # type: ignore[union-attr]
            if type(store) is dict and len(store) + 3 <= (bounded.maxlen or 1 << 30):  # type: ignore[union-attr]
                store.update(rm.span_attributes)
            else:
                tag_span(span, rm.span_attributes)
        except AttributeError:  # not the SDK's span: the public, validated way
            tag_span(span, rm.span_attributes)
        except Exception:  # a tagging failure must never surface in the app
            pass

    # Nothing to do when a span ends. The SDK calls these two hooks for every span; a builtin
    # that ignores its argument costs about a tenth of an empty Python method.
    on_end = staticmethod(id)  # type: ignore[assignment]
    _on_ending = staticmethod(id)  # type: ignore[assignment]

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True
