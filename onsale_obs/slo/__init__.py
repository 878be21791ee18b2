"""Split SLOs: budgets, burn rates and alert priorities for on-sale windows and normal time.

``load_spec`` reads a spec file; a source (``LogSource`` for access logs, ``PrometheusSource``
for the Prometheus HTTP API) counts requests; ``evaluate`` turns counts into a ``Report``.

Every public name is imported from its module on first use (PEP 562): the CLI's commands that
only read a spec, and their --help, load neither the engine nor the HTML report (jinja2).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from onsale_obs.slo._html import AlertTimeline, render_html
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

#: Where each public name lives: (module, attribute there).
_EXPORTS: dict[str, tuple[str, str]] = {
    "DEFAULT_POLICY": ("onsale_obs.slo._policy", "DEFAULT_POLICY"),
    "SLI": ("onsale_obs.slo._spec", "SLI"),
    "SLO": ("onsale_obs.slo._spec", "SLO"),
    "Aggregate": ("onsale_obs.slo._data", "Aggregate"),
    "AlertRule": ("onsale_obs.slo._spec", "AlertRule"),
    "AlertTimeline": ("onsale_obs.slo._html", "AlertTimeline"),
    "AvailabilitySLI": ("onsale_obs.slo._spec", "AvailabilitySLI"),
    "Collected": ("onsale_obs.slo._data", "Collected"),
    "CountRequest": ("onsale_obs.slo._data", "CountRequest"),
    "LatencySLI": ("onsale_obs.slo._spec", "LatencySLI"),
    "ModeResult": ("onsale_obs.slo._report", "ModeResult"),
    "OnSaleCounts": ("onsale_obs.slo._data", "OnSaleCounts"),
    "OnSaleResult": ("onsale_obs.slo._report", "OnSaleResult"),
    "PromQLSLI": ("onsale_obs.slo._spec", "PromQLSLI"),
    "Report": ("onsale_obs.slo._report", "Report"),
    "SLOResult": ("onsale_obs.slo._report", "SLOResult"),
    "SLOSpec": ("onsale_obs.slo._spec", "SLOSpec"),
    "Selector": ("onsale_obs.slo._spec", "Selector"),
    "Source": ("onsale_obs.slo._data", "Source"),
    "Span": ("onsale_obs.slo._data", "Span"),
    "count_events": ("onsale_obs.slo._engine", "count"),
    "evaluate": ("onsale_obs.slo._engine", "evaluate"),
    "format_duration": ("onsale_obs.durations", "format_duration"),
    "load_spec": ("onsale_obs.slo._load", "load_spec"),
    "off_bucket_thresholds": ("onsale_obs.slo._spec", "off_bucket_thresholds"),
    "open_source": ("onsale_obs.slo._run", "open_source"),
    "parse_duration": ("onsale_obs.durations", "parse_duration"),
    "plan": ("onsale_obs.slo._plan", "plan"),
    "render_html": ("onsale_obs.slo._html", "render_html"),
    "run_report": ("onsale_obs.slo._run", "run_report"),
    "spec_from_data": ("onsale_obs.slo._load", "spec_from_data"),
}

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


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for."""
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = where
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
