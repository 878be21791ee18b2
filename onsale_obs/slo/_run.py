"""One report, start to end: plan what to count, let a source count it, evaluate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import Progress, Source
from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._plan import plan
from onsale_obs.slo._report import Report
from onsale_obs.slo._spec import SLO, SLOSpec


def run_report(
    spec: SLOSpec,
    source: Source,
    at: float,
    *,
    slos: Iterable[SLO] | None = None,
    window: float | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
    progress: Progress | None = None,
    bins: int = 0,
) -> Report:
    """Count what ``slos`` need at ``at`` from ``source`` and evaluate them.

    ``onsale_windows`` come from the broadcaster's history; without them the source finds
    the on-sales in its own data (the ``mode`` label, ``onsale_mode``). ``bins`` > 0 adds a
    budget burn-down in that many steps.
    """
    chosen = tuple(spec.slos if slos is None else slos)
    request = plan(spec, at, slos=chosen, window=window, onsale_windows=onsale_windows, bins=bins)
    collected = source.collect(request, progress)
    return evaluate(spec, collected, at, slos=chosen, window=window, bins=bins)


def open_source(
    *,
    prometheus: str | None = None,
    logs: Sequence[str | Path] = (),
    timeout: float = 10.0,
) -> Source:
    """The Prometheus HTTP API at ``prometheus``, or the access-log files ``logs``."""
    if prometheus is not None:
        from onsale_obs.slo._prom_client import PrometheusClient
        from onsale_obs.slo._prometheus import PrometheusSource

        return PrometheusSource(PrometheusClient(prometheus, timeout=timeout))
    from onsale_obs.slo._logs import LogSource

    return LogSource(list(logs))
