"""The SLO arithmetic: counts in, budgets, burn rates and alerts out. Pure: no I/O, no clock.

Ratios are always computed from summed events (good / total over the whole span), never as an
average of ratios over time, so a 10,000x surge weighs exactly as much as its events. A mode
with no events has no SLI ("no data"), never 100%.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from functools import lru_cache
from typing import Any, TypeVar

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

#: (route, method, code or le, n): an aggregate's entry of one mode and service
_Entry = tuple[str, str, Any, float]
_NONE: list[_Entry] = []
_T = TypeVar("_T")
#: (position of an SLO, its routes, its methods, its bad codes or threshold)
_Selected = tuple[int, tuple[str, ...], tuple[str, ...], _T]


class _Index:
    """One aggregate's counts grouped by (mode, service), each group in the aggregate's order.

    An SLO selects one service, so counting it reads only that service's entries instead of
    every label combination of the aggregate: with thousands of SLOs (and services) a report
    costs about the size of the data, not SLOs x label combinations. The entries keep the
    aggregate's order, so sums are added in the same order as a plain scan: bit-identical.
    """

    __slots__ = ("latency", "requests")

    def __init__(self, agg: Aggregate) -> None:
        self.requests: dict[tuple[str, str], list[_Entry]] = {}
        self.latency: dict[tuple[str, str], list[_Entry]] = {}
        for (service, route, method, mode, code), n in agg.requests.items():
            entries = self.requests.get((mode, service))
            if entries is None:
                entries = self.requests[mode, service] = []
            entries.append((route, method, code, n))
        for (service, route, method, mode, le), n in agg.latency.items():
            entries = self.latency.get((mode, service))
            if entries is None:
                entries = self.latency[mode, service] = []
            entries.append((route, method, le, n))


def count(slo: SLO, mode: Mode, agg: Aggregate) -> tuple[float, float]:
    """``(total, good)`` events of ``slo`` in ``mode`` within one aggregate."""
    return _count(slo, mode, agg, _scan)


def _scan(agg: Aggregate, mode: Mode, service: str, latency: bool) -> Iterable[_Entry]:
    """The entries of ``mode`` and ``service`` in ``agg``, by reading all of it."""
    if latency:
        for (svc, route, method, m, le), n in agg.latency.items():
            if m == mode and svc == service:
                yield route, method, le, n
    else:
        for (svc, route, method, m, code), n in agg.requests.items():
            if m == mode and svc == service:
                yield route, method, code, n


def _count(
    slo: SLO,
    mode: Mode,
    agg: Aggregate,
    entries: Callable[[Aggregate, Mode, str, bool], Iterable[_Entry]],
) -> tuple[float, float]:
    """:func:`count` with the aggregate's entries of one mode and service from ``entries``."""
    sli = slo.sli
    total = good = 0.0
    if isinstance(sli, AvailabilitySLI):
        selector = sli.selector
        routes, methods, bad_codes = selector.routes, selector.methods, sli.bad_codes
        for route, method, code, n in entries(agg, mode, selector.service, False):
            if (not routes or route in routes) and (not methods or method in methods):
                total += n
                if code not in bad_codes:
                    good += n
    elif isinstance(sli, LatencySLI):
        selector = sli.selector
        routes, methods = selector.routes, selector.methods
        threshold = sli.threshold[mode]
        for route, method, le, n in entries(agg, mode, selector.service, True):
            if (not routes or route in routes) and (not methods or method in methods):
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


class _Counter:
    """:func:`count` for one evaluation: each aggregate is indexed once, on first use.

    The aggregates must not change while it is in use (an evaluation only reads them).
    """

    __slots__ = ("_indexes",)

    def __init__(self) -> None:
        self._indexes: dict[int, tuple[Aggregate, _Index]] = {}

    def __call__(self, slo: SLO, mode: Mode, agg: Aggregate) -> tuple[float, float]:
        return _count(slo, mode, agg, self._entries)

    def _entries(self, agg: Aggregate, mode: Mode, service: str, latency: bool) -> list[_Entry]:
        found = self._indexes.get(id(agg))
        if found is None or found[0] is not agg:  # held, so an id is never reused meanwhile
            found = self._indexes[id(agg)] = (agg, _Index(agg))
        groups = found[1].latency if latency else found[1].requests
        return groups.get((mode, service), _NONE)


def burn_rate(total: float, good: float, objective: float) -> float | None:
    """Error ratio over the error budget's ratio; None without events.

    Computed exactly and rounded once: the budget is ``1 - objective`` of the decimal the spec
    wrote (99% -> 1/100, where ``1 - 0.99`` in floats is 0.010000000000000009), so a burn of
    exactly a rule's factor (3 bad in 50 at 99% is 6x) is that factor, and the rule fires as
    the generated Prometheus rule (whose budget is written as 0.01) does.
    """
    if total <= 0:
        return None
    num, den = _budget(objective)
    total, good = float(total), float(good)
    if total.is_integer() and good.is_integer():  # counted requests: integers, and fast
        whole = int(total)
        return (whole - int(good)) * den / (whole * num)  # int / int rounds correctly
    return float((Fraction(total) - Fraction(good)) * den / (Fraction(total) * num))


@lru_cache(maxsize=1024)
def _budget(objective: float) -> tuple[int, int]:
    """``1 - objective`` as (numerator, denominator) of the objective's shortest decimal."""
    budget = 1 - Fraction(repr(objective))
    return budget.numerator, budget.denominator


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
    slo: SLO, mode: Mode, collected: Collected, report: Span, bins: int, counter: _Counter
) -> tuple[tuple[float, float, float], ...]:
    """Cumulative (bin end, total, good) over the window, when the source counted bins."""
    out: list[tuple[float, float, float]] = []
    total = good = 0.0
    for span in bin_spans(report, bins) if bins > 0 else ():
        agg = collected.spans.get(span.name)
        if agg is None:
            return ()
        t, g = counter(slo, mode, agg)
        total, good = total + t, good + g
        out.append((span.end, total, good))
    return tuple(out)


def _mode(
    slo: SLO,
    mode: Mode,
    collected: Collected,
    at: float,
    report: Span,
    bins: int,
    counter: _Counter,
) -> ModeResult:
    objective = slo.objectives[mode]
    note = _no_data_note(slo, mode, collected)
    total, good = counter(slo, mode, collected.spans[report.name])
    rules = slo.policy[mode]
    windows = sorted({w for r in rules for w in (r.long, r.short)})
    burns: dict[float, float | None] = {}
    bad: dict[float, float] = {}
    for w in windows:
        span = collected.spans.get(burn_span(w, at).name)
        t, g = counter(slo, mode, span) if span is not None else (0.0, 0.0)
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
        _burn_down(slo, mode, collected, report, bins, counter) if note is None else (),
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


class _OnSaleTable:
    """On-sale counts of many SLOs (availability and latency) in many on-sale windows.

    A window's counts are few (its event's on-sale requests), while a report can have
    thousands of SLOs or hundreds of thousands of windows: reading every window once per SLO
    would cost SLOs x windows x the window's size. Here each window is read once for all
    SLOs: each entry of a window is added to the SLOs of its service only, in the window's
    order (so the sums are those of :func:`count`, bit for bit), and only the (SLO, window)
    results themselves cost per pair.
    """

    def __init__(self, slos: Iterable[SLO]) -> None:
        self.slos = list(slos)
        #: service -> (position in slos, routes, methods, bad codes | on-sale threshold)
        self.available: dict[str, list[_Selected[frozenset[str]]]] = {}
        self.latency: dict[str, list[_Selected[float]]] = {}
        #: service -> (position, routes, methods) of every SLO with a selector
        self.selected: dict[str, list[tuple[int, tuple[str, ...], tuple[str, ...]]]] = {}
        for i, slo in enumerate(self.slos):
            sli = slo.sli
            if isinstance(sli, AvailabilitySLI | LatencySLI):
                sel = sli.selector
                self.selected.setdefault(sel.service, []).append((i, sel.routes, sel.methods))
            if isinstance(sli, AvailabilitySLI):
                codes = (i, sli.selector.routes, sli.selector.methods, sli.bad_codes)
                self.available.setdefault(sli.selector.service, []).append(codes)
            elif isinstance(sli, LatencySLI):
                le = (i, sli.selector.routes, sli.selector.methods, sli.threshold["onsale"])
                self.latency.setdefault(sli.selector.service, []).append(le)

    def counts(self, agg: Aggregate) -> tuple[list[float], list[float]]:
        """Per SLO, on-sale ``(totals, goods)`` in ``agg`` (clamped as :func:`count` does)."""
        size = len(self.slos)
        totals, goods = [0.0] * size, [0.0] * size
        available, latency = self.available, self.latency
        if available:
            for (service, route, method, mode, code), n in agg.requests.items():
                if mode != "onsale" or service not in available:
                    continue
                for i, routes, methods, bad_codes in available[service]:
                    if (not routes or route in routes) and (not methods or method in methods):
                        totals[i] += n
                        if code not in bad_codes:
                            goods[i] += n
        if latency:
            for (service, route, method, mode, le), n in agg.latency.items():
                if mode != "onsale" or service not in latency:
                    continue
                for i, routes, methods, threshold in latency[service]:
                    if (not routes or route in routes) and (not methods or method in methods):
                        if le == INF:
                            totals[i] += n
                        elif le == threshold:
                            goods[i] += n
        for i in range(size):
            total = totals[i] = max(totals[i], 0.0)
            goods[i] = min(max(goods[i], 0.0), total)
        return totals, goods

    def peaks(self, counts: OnSaleCounts) -> list[float | None]:
        """Per SLO, the busiest minute of the window in requests per second (None: none)."""
        per_minute: list[dict[int, float] | None] = [None] * len(self.slos)
        selected = self.selected
        for (service, route, method), minutes in counts.minutes.items():
            for i, routes, methods in selected.get(service, ()):
                if (not routes or route in routes) and (not methods or method in methods):
                    into = per_minute[i]
                    if into is None:
                        into = per_minute[i] = {}
                    for minute, n in minutes.items():
                        into[minute] = into.get(minute, 0.0) + n
        return [max(m.values()) / 60 if m else None for m in per_minute]


def _onsales(
    slos: list[SLO],
    starts: list[float],
    onsale: list[ModeResult],
    collected: Collected,
    at: float,
) -> list[list[OnSaleResult]]:
    """Per SLO, its on-sale windows that overlap its window ``(starts[i], at]``."""
    out: list[list[OnSaleResult]] = [[] for _ in slos]
    wanted = [
        i for i, slo in enumerate(slos) if slo.sli.type != "promql" and onsale[i].note is None
    ]
    if not wanted or not collected.onsales:
        return out
    allowed = [mode.allowed_bad for mode in onsale]
    table = _OnSaleTable(slos[i] for i in wanted)
    earliest = min(starts[i] for i in wanted)
    for oc in collected.onsales:
        w = oc.window
        end = at if w.end is None else min(w.end, at)
        if w.start >= at or end <= earliest:
            continue
        totals, goods = table.counts(oc.counts)
        peaks = table.peaks(oc)
        for k, i in enumerate(wanted):
            if end > starts[i]:
                out[i].append(OnSaleResult(w, totals[k], goods[k], allowed[i], peaks[k], end))
    return out


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
    chosen = list(spec.slos if slos is None else slos)
    counter = _Counter()
    spans = [report_span(slo, at, window) for slo in chosen]
    modes = [
        {mode: _mode(slo, mode, collected, at, span, bins, counter) for mode in MODES}
        for slo, span in zip(chosen, spans, strict=True)
    ]
    starts = [span.start for span in spans]
    onsales = _onsales(chosen, starts, [m["onsale"] for m in modes], collected, at)
    results = (
        SLOResult(slo, span.start, span.end, slo_modes, tuple(slo_onsales))
        for slo, span, slo_modes, slo_onsales in zip(chosen, spans, modes, onsales, strict=True)
    )
    return Report(
        at,
        collected.origin,
        tuple(results),
        collected.exact_onsale,
        tuple(collected.warnings),
        dict(collected.skipped),
    )
