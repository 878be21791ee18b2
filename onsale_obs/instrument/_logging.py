"""structlog: every log line inside a request carries ``onsale_mode``, ``onsale_event`` and the trace id."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import Processor

from onsale_obs.instrument._context import _current


def add_onsale_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the request's mode, event and trace id (keys already set win)."""
    rm = _current.get()
    if rm is not None:
        event_dict.setdefault("onsale_mode", rm.mode)
        event_dict.setdefault("onsale_event", rm.event)
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span_context.span_id, "016x"))
    return event_dict


def _dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def configure_logging(
    *,
    stream: TextIO | None = None,
    level: int = logging.INFO,
    extra_processors: Sequence[Processor] = (),
) -> None:
    """Configure structlog for JSON lines with the on-sale context (call once at start-up)."""
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_onsale_context,
        *extra_processors,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=_dumps),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream if stream is not None else sys.stdout),
        cache_logger_on_first_use=False,
    )
