"""One report, start to end: plan what to count, let a source count it, evaluate."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    with _collector_paused():
        collected = source.collect(request, progress)
        return evaluate(spec, collected, at, slos=chosen, window=window, bins=bins)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report is counted and evaluated.

    Counting builds millions of small dicts and tuples (a few per on-sale window and label
    set) that form no reference cycles, and every full pass of the collector walks all of
    them again: with 200,000 on-sale windows the passes took about a third of the time
    (counting 8.7 -> 6.4 s, evaluating 4.2 -> 2.5 s). Memory is unchanged: nothing here
    waits for the collector to be freed.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
