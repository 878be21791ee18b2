"""Split SLOs: budgets, burn rates and alert priorities for on-sale windows and normal time.

``load_spec`` reads a spec file; a source (``LogSource`` for access logs, ``PrometheusSource``
for the Prometheus HTTP API) counts requests; ``evaluate`` turns counts into a ``Report``.
"""

from typing import TYPE_CHECKING, Any

from onsale_obs.durations import format_duration, parse_duration
from onsale_obs.slo._data import (
    Aggregate,
    Collected,
    CountRequest,
    OnSaleCounts,
    Source,
    Span,
)
from onsale_obs.slo._engine import count as count_events
from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._load import load_spec, spec_from_data
from onsale_obs.slo._plan import plan
from onsale_obs.slo._policy import DEFAULT_POLICY
from onsale_obs.slo._report import ModeResult, OnSaleResult, Report, SLOResult
from onsale_obs.slo._run import open_source, run_report
from onsale_obs.slo._spec import (
    SLI,
    SLO,
    AlertRule,
    AvailabilitySLI,
    LatencySLI,
    PromQLSLI,
    Selector,
    SLOSpec,
    off_bucket_thresholds,
)

if TYPE_CHECKING:
    from onsale_obs.slo._html import AlertTimeline, render_html


def __getattr__(name: str) -> Any:
    """The HTML report on first use: it loads jinja2, which counting and the CLI's other
    commands (``mode auto`` reads Prometheus through this package) never need."""
    if name in ("AlertTimeline", "render_html"):
        from onsale_obs.slo import _html

        return getattr(_html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_POLICY",
    "SLI",
    "SLO",
    "Aggregate",
    "AlertRule",
    "AlertTimeline",
    "AvailabilitySLI",
    "Collected",
    "CountRequest",
    "LatencySLI",
    "ModeResult",
    "OnSaleCounts",
    "OnSaleResult",
    "PromQLSLI",
    "Report",
    "SLOResult",
    "SLOSpec",
    "Selector",
    "Source",
    "Span",
    "count_events",
    "evaluate",
    "format_duration",
    "load_spec",
    "off_bucket_thresholds",
    "open_source",
    "parse_duration",
    "plan",
    "render_html",
    "run_report",
    "spec_from_data",
]
