"""The SLO arithmetic: counts in, budgets, burn rates and alerts out. Pure: no I/O, no clock.

Ratios are always computed from summed events (good / total over the whole span), never as an
average of ratios over time, so a 10,000x surge weighs exactly as much as its events. A mode
with no events has no SLI ("no data"), never 100%.
"""

from __future__ import annotations

from collections.abc import Iterable

from onsale_obs.slo._data import INF, Aggregate, Collected, OnSaleCounts, Span
from onsale_obs.slo._plan import bin_spans, burn_span, report_span
from onsale_obs.slo._report import ModeResult, OnSaleResult, Report, RuleResult, SLOResult
from onsale_obs.slo._spec import (
    MODES,
    SLO,
    AlertRule,
    AvailabilitySLI,
    LatencySLI,
    SLOSpec,
)
from onsale_obs.types import Mode


def count(slo: SLO, mode: Mode, agg: Aggregate) -> tuple[float, float]:
    """``(total, good)`` events of ``slo`` in ``mode`` within one aggregate."""
    sli = slo.sli
    total = good = 0.0
    if isinstance(sli, AvailabilitySLI):
        matches = sli.selector.matches
        for (service, route, method, m, code), n in agg.requests.items():
            if m == mode and matches(service, route, method):
                total += n
                if code not in sli.bad_codes:
                    good += n
    elif isinstance(sli, LatencySLI):
        matches = sli.selector.matches
        threshold = sli.threshold[mode]
        for (service, route, method, m, le), n in agg.latency.items():
            if m == mode and matches(service, route, method):
                if le == INF:
                    total += n
                elif le == threshold:
                    good += n
    else:
        total = agg.custom.get((slo.name, "total", mode), 0.0)
        good = agg.custom.get((slo.name, "good", mode), 0.0)
    # Prometheus estimates good and total separately; neither may exceed the other
    total = max(total, 0.0)
    return total, min(max(good, 0.0), total)


def burn_rate(total: float, good: float, objective: float) -> float | None:
    """Error ratio over the error budget's ratio; None without events."""
    if total <= 0:
        return None
    return ((total - good) / total) / (1 - objective)


def rule_result(
    rule: AlertRule, burns: dict[float, float | None], bad: dict[float, float]
) -> RuleResult:
    long_burn, short_burn = burns.get(rule.long), burns.get(rule.short)
    firing = (
        long_burn is not None
        and short_burn is not None
        and long_burn >= rule.burn_rate
        and short_burn >= rule.burn_rate
        and bad.get(rule.long, 0.0) >= rule.min_bad_events
    )
    return RuleResult(
        rule.name,
        rule.priority,
        rule.long,
        rule.short,
        rule.burn_rate,
        long_burn,
        short_burn,
        bad.get(rule.long, 0.0),
        rule.min_bad_events,
        firing,
    )


def _burn_down(
    slo: SLO, mode: Mode, collected: Collected, report: Span, bins: int
) -> tuple[tuple[float, float, float], ...]:
    """Cumulative (bin end, total, good) over the window, when the source counted bins."""
    out: list[tuple[float, float, float]] = []
    total = good = 0.0
    for span in bin_spans(report, bins) if bins > 0 else ():
        agg = collected.spans.get(span.name)
        if agg is None:
            return ()
        t, g = count(slo, mode, agg)
        total, good = total + t, good + g
        out.append((span.end, total, good))
    return tuple(out)


def _mode(
    slo: SLO, mode: Mode, collected: Collected, at: float, window: float | None, bins: int
) -> ModeResult:
    objective = slo.objectives[mode]
    note = _no_data_note(slo, mode, collected)
    report = report_span(slo, at, window)
    total, good = count(slo, mode, collected.spans[report.name])
    rules = slo.policy[mode]
    windows = sorted({w for r in rules for w in (r.long, r.short)})
    burns: dict[float, float | None] = {}
    bad: dict[float, float] = {}
    for w in windows:
        span = collected.spans.get(burn_span(w, at).name)
        t, g = count(slo, mode, span) if span is not None else (0.0, 0.0)
        burns[w] = burn_rate(t, g, objective)
        bad[w] = t - g
    if note is not None:
        total = good = 0.0
        burns = dict.fromkeys(windows)
    return ModeResult(
        mode,
        objective,
        total,
        good,
        burns,
        tuple(rule_result(r, burns, bad) for r in rules) if note is None else (),
        note,
        _burn_down(slo, mode, collected, report, bins) if note is None else (),
    )


def _no_data_note(slo: SLO, mode: Mode, collected: Collected) -> str | None:
    """Why a mode cannot be counted from this source at all, or None when it can."""
    if isinstance(slo.sli, LatencySLI) and slo.sli.threshold[mode] in collected.unknown_thresholds:
        return (
            f"{slo.sli.threshold[mode]} s is not a histogram bucket boundary of "
            "onsale_request_duration_seconds; pick a boundary as the threshold"
        )
    if slo.sli.type == "promql" and not collected.counts_promql:
        return "raw PromQL SLIs can only be counted from Prometheus (use --prometheus)"
    return None


def _peak(slo: SLO, counts: OnSaleCounts) -> float | None:
    sli = slo.sli
    if not isinstance(sli, AvailabilitySLI | LatencySLI):
        return None
    per_minute: dict[int, float] = {}
    for (service, route, method), minutes in counts.minutes.items():
        if sli.selector.matches(service, route, method):
            for minute, n in minutes.items():
                per_minute[minute] = per_minute.get(minute, 0.0) + n
    return max(per_minute.values()) / 60 if per_minute else None


def _onsales(
    slo: SLO, onsale: ModeResult, collected: Collected, start: float, at: float
) -> Iterable[OnSaleResult]:
    if slo.sli.type == "promql" or onsale.note is not None:
        return
    for oc in collected.onsales:
        w = oc.window
        end = at if w.end is None else min(w.end, at)
        if w.start >= at or end <= start:
            continue
        total, good = count(slo, "onsale", oc.counts)
        yield OnSaleResult(w, total, good, onsale.allowed_bad, _peak(slo, oc), end)


def evaluate(
    spec: SLOSpec,
    collected: Collected,
    at: float,
    *,
    slos: Iterable[SLO] | None = None,
    window: float | None = None,
    bins: int = 0,
) -> Report:
    """Evaluate ``slos`` (default: all of ``spec``) at ``at`` from a source's counts.

    ``collected`` must answer the request that ``plan(spec, at, slos=..., window=...,
    bins=...)`` made.
    """
    results = []
    for slo in spec.slos if slos is None else slos:
        span = report_span(slo, at, window)
        modes = {mode: _mode(slo, mode, collected, at, window, bins) for mode in MODES}
        onsales = tuple(_onsales(slo, modes["onsale"], collected, span.start, at))
        results.append(SLOResult(slo, span.start, span.end, modes, onsales))
    return Report(
        at,
        collected.origin,
        tuple(results),
        collected.exact_onsale,
        tuple(collected.warnings),
        dict(collected.skipped),
    )
