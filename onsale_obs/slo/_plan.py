"""From a spec and a moment to the :class:`CountRequest` a source answers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import pairwise

from onsale_obs.durations import format_duration
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import CountRequest, Span
from onsale_obs.slo._spec import SLO, LatencySLI, PromQLSLI, SLOSpec


def report_span(slo: SLO, at: float, window: float | None = None) -> Span:
    """The SLO window ending at ``at``: rolling (``last:30d``) or the calendar month so far.

    ``window`` overrides the spec's window (``slo report --window 7d``).
    """
    if window is not None:
        return Span(f"last:{format_duration(window)}", at - window, at)
    if slo.calendar_month:
        moment = datetime.fromtimestamp(at, UTC)
        first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Span(f"month:{first:%Y-%m}", first.timestamp(), at)
    return Span(f"last:{format_duration(slo.window)}", at - slo.window, at)


def burn_span(seconds: float, at: float) -> Span:
    """The burn-rate window of ``seconds`` ending at ``at``."""
    return Span(f"last:{format_duration(seconds)}", at - seconds, at)


def bin_spans(report: Span, bins: int) -> tuple[Span, ...]:
    """``report`` cut into ``bins`` equal consecutive spans (for budget burn-down charts)."""
    width = (report.end - report.start) / bins
    edges = [report.start + i * width for i in range(bins)] + [report.end]
    return tuple(Span(f"bin:{a:.0f}-{b:.0f}", a, b) for a, b in pairwise(edges))


def plan(
    spec: SLOSpec,
    at: float,
    *,
    slos: Iterable[SLO] | None = None,
    window: float | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
    bins: int = 0,
) -> CountRequest:
    """Everything the engine will need counted for ``slos`` (default: all) at ``at``.

    ``bins`` > 0 also counts each SLO window in that many equal parts, for burn-down charts
    (it costs a Prometheus source ``bins`` more queries per metric).
    """
    chosen = tuple(spec.slos if slos is None else slos)
    spans: dict[str, Span] = {}
    for slo in chosen:
        report = report_span(slo, at, window)
        extra = bin_spans(report, bins) if bins > 0 else ()
        for span in (report, *(burn_span(w, at) for w in slo.windows()), *extra):
            spans[span.name] = span
    thresholds = frozenset(
        t for slo in chosen if isinstance(slo.sli, LatencySLI) for t in slo.sli.threshold.values()
    )
    custom = tuple((slo.name, slo.sli) for slo in chosen if isinstance(slo.sli, PromQLSLI))
    services = frozenset(slo.service for slo in chosen if not isinstance(slo.sli, PromQLSLI))
    longest = min(s.start for s in spans.values())
    windows = (
        None
        if onsale_windows is None
        else tuple(w for w in onsale_windows if w.start < at and (w.end is None or w.end > longest))
    )
    return CountRequest(
        at=at,
        spans=tuple(sorted(spans.values(), key=lambda s: (s.start, s.name))),
        thresholds=thresholds,
        custom=custom,
        onsale_windows=windows,
        grace=spec.grace,
        services=services,
    )
