"""Counting requests from the Prometheus HTTP API, with exact on-sale counts.

Every span is counted with one query per metric, grouped by the labels SLOs select on (not
one per SLO). Not with ``increase()``: it extrapolates to the edges of its range and takes the
first sample of a series born inside the range as its baseline, so a new series (a new route,
a restarted process, a young deployment) loses every request before its first scrape. The query
is, per series, ``last value in the span - value at its start`` (``last_over_time(x[1h] offset
span)``, or 0 for a series created inside), exact for every series without a reset around the
span; a series with a reset there falls back to ``increase()``. On-sale counts are made exact
even across resets from the raw samples: per
merged on-sale window (its grace included) one range-selector query per metric fetches every
sample, and the deltas are summed in Python, counter resets included:

- a series' increase between two consecutive samples is ``v1 - v0``, or ``v1`` when the value
  dropped (the process restarted and counted from 0);
- the baseline of ``(a, b]`` is the last sample at or before ``a`` (looked for ``lookback``
  seconds back); a series without one was created inside, so its first value counts in full;
- a delta belongs to the time of its later sample, like the scrape that saw it.

This is exact when every reset shows as a drop. A series that vanishes with its process and
reappears at or above its old value hides its reset from any Prometheus-based tool.

On-sale windows come from the request (the broadcaster's history) or, without them, from the
``onsale_mode{scope}`` gauge: every run of 1s (``max by (scope) (onsale_mode) >= 1`` at every
query step) is a window, widened by one query step each side. The gauge is read in two passes,
so the cost grows with on-sale time, not with scopes x window: a coarse one
(``max_over_time`` over buckets of hours, each sample read once, no per-step evaluation) names
the scopes on sale in each bucket, then only those scopes are evaluated step by step, bucket by
bucket. A point at ``t`` is on when a sample at most the server's lookback delta before it is
(5 minutes by default), so each bucket's ``max_over_time`` also looks an hour before it: exact
for any lookback delta up to an hour.

Raw on-sale samples are fetched a day at a time (many overlapping on-sales merge into one range
of weeks), each series carried over from one day to the next, so memory follows the on-sale
samples kept, not the size of one answer.

The increments themselves are ``_prom_deltas.py``; windows from the gauge, ``_prom_windows.py``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, pairwise
from operator import le
from typing import Final

from onsale_obs.exceptions import BadInputError, PrometheusUnavailableError
from onsale_obs.generate._promql import quote, regex_alternatives
from onsale_obs.modes._model import GLOBAL_SCOPE, OnSaleWindow, parse_scope
from onsale_obs.slo._data import (
    INF,
    Aggregate,
    Collected,
    CountRequest,
    OnSaleCounts,
    Progress,
    RouteKey,
    Span,
)
from onsale_obs.slo._prom_client import PrometheusClient, Series
from onsale_obs.slo._prom_deltas import (
    Growing,
    Growth,
    Raw,
    SeriesSet,
    add_minutes,
    counted,
)
from onsale_obs.slo._prom_windows import (
    count_range,
    extend_runs,
    merge_with_grace,
    window_of,
)

REQUESTS: Final = "onsale_requests_total"
BUCKETS: Final = "onsale_request_duration_seconds_bucket"
MODE_GAUGE: Final = "onsale_mode"
_ROUTE_LABELS: Final = ("service", "route", "method")
#: query_range answers at most 11,000 points per series; stay below
_MAX_POINTS: Final = 10_000
#: increase() may exceed the exact on-sale total by this ratio plus slack before a warning
_OUTSIDE_RATIO: Final = 0.01
_OUTSIDE_SLACK: Final = 5.0
_BAD_SCOPE: Final = f"{MODE_GAUGE} series with an invalid scope"
#: the coarse pass over onsale_mode: one bucket per point (a multiple of the query step)
_BUCKET: Final = 6 * 3600.0
#: the longest lookback delta (Prometheus' ``--query.lookback-delta``, 5 minutes by default)
#: for which the coarse pass still finds every point that is on
_MAX_LOOKBACK: Final = 3600.0
#: the coarse pass asks for this many seconds of buckets at a time
_COARSE_CHUNK: Final = 7 * 86_400.0
#: raw on-sale samples are fetched this many seconds at a time
_RAW_PIECE: Final = 86_400.0


def _alternatives(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly ``values``, as a quoted PromQL string."""
    return quote(regex_alternatives(sorted(set(values))))


#: how far before a span's start its baseline sample is looked for (a longer scrape gap there
#: makes the series count as new, from 0)
BASELINE_LOOKBACK: Final = 3600.0


def delta(selector: str, seconds: float, lookback: float = BASELINE_LOOKBACK) -> str:
    """PromQL for the requests each series of ``selector`` counted in the last ``seconds``.

    ``last - baseline`` (baseline 0 for a series created in the span) where no reset happened
    in the span or since its baseline; ``increase()`` for the few series with one.
    """
    span, base = _duration(seconds), _duration(lookback)
    around = _duration(seconds + lookback)
    last = f"last_over_time({selector}[{span}])"
    start = f"last_over_time({selector}[{base}] offset {span})"
    return (
        f"(({last} - ({start} or 0 * {last})) and (resets({selector}[{around}]) == 0))"
        f" or (increase({selector}[{span}]) and (resets({selector}[{around}]) > 0))"
    )


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _le_value(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _match_threshold(le: float, thresholds: Iterable[float]) -> float | None:
    """The requested threshold that ``le`` is (as floats; ``1`` and ``1.0`` alike), INF kept."""
    if le == INF:
        return INF
    for t in thresholds:
        if math.isclose(le, t, rel_tol=1e-9, abs_tol=1e-12):
            return t
    return None


class PrometheusSource:
    """Answers a :class:`CountRequest` from a Prometheus-compatible HTTP API.

    ``lookback`` is how far before an on-sale window raw samples are fetched to find each
    series' baseline (longer than a scrape interval, and than any scrape gap to tolerate);
    ``mode_step`` the step of the ``onsale_mode`` range query (default: 15-60 s by span).
    """

    def __init__(
        self,
        client: PrometheusClient | str,
        *,
        lookback: float = 600.0,
        mode_step: float | None = None,
    ) -> None:
        self.client = PrometheusClient(client) if isinstance(client, str) else client
        self.lookback = lookback
        self.mode_step = mode_step

    def collect(self, request: CountRequest, progress: Progress | None = None) -> Collected:
        """Count everything ``request`` asks for (see the module docstring for how).

        The client's connections are closed afterwards; the source can collect again.
        """
        try:
            return _Collection(self, request, progress).run()
        finally:
            self.client.close()


class _Collection:
    """The state of one ``collect`` call: queries done, answers, warnings."""

    def __init__(
        self, source: PrometheusSource, request: CountRequest, progress: Progress | None
    ) -> None:
        self.client = source.client
        self.source = source
        self.request = request
        self.progress = progress
        self.done = 0
        self.total = 0
        self.warnings: list[str] = []
        self.skipped: dict[str, int] = {}
        self.unknown_thresholds: set[float] = set()
        self.boundaries: dict[str, set[float]] = {}
        self.le_texts: set[str] = {"+Inf"}
        self.services = _alternatives(request.services) if request.services else None
        self.first_query = self.client.queries
        self.first_warning = len(self.client.warnings)

    # ---- bookkeeping -------------------------------------------------------------------

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))

    def _selector(self, metric: str, *matchers: str) -> str:
        parts = [*matchers]
        if self.services is not None:
            parts.append(f"service=~{self.services}")
        return f"{metric}{{{','.join(parts)}}}"

    def _count(self, value: float, query: str) -> float:
        """A count from Prometheus: finite and not negative, or the answer is garbage."""
        if math.isfinite(value) and value >= -1e-6:  # float noise around 0 is 0
            return max(value, 0.0)
        raise self._garbage(value, query)

    def _garbage(self, value: float, query: str) -> PrometheusUnavailableError:
        # counted as "no answer" (exit 3; the exit-rate loop holds), never as zero errors
        return PrometheusUnavailableError(
            f"Prometheus answered {value!r} for a counter (query {query[:200]!r}); counts "
            "must be finite and not negative, so nothing was reported.",
            url=self.client.shown_url,
        )

    # ---- the whole read ----------------------------------------------------------------

    def run(self) -> Collected:
        request = self.request
        spans = [s for s in request.spans if s.end > s.start]
        per_span = 1 + bool(request.thresholds) + 2 * len(request.custom)
        self.total = len(spans) * per_span
        windows = self._windows(spans)
        intervals = merge_with_grace(windows, request.grace, request.at)
        self.total += sum(len(_pieces(a, b)) for a, b in intervals) * per_span
        aggregates = {s.name: Aggregate() for s in request.spans}
        for span in spans:
            aggregates[span.name] = self._span(span)
        self._warn_thresholds()
        raws = self._raws(intervals)
        estimated = self._onsale_total(aggregates, spans)
        for span in spans:
            _replace_onsale(aggregates[span.name], self._exact(raws, span.start, span.end))
        self._warn_outside(estimated, aggregates, spans)
        onsales = [self._window_counts(w, raws) for w in windows]
        self.warnings.extend(self.client.warnings[self.first_warning :])
        return Collected(
            spans=aggregates,
            onsales=onsales,
            origin=f"prometheus: {self.client.shown_url} ({self.client.queries - self.first_query} queries)",
            exact_onsale=True,
            skipped=self.skipped,
            warnings=self.warnings,
            unknown_thresholds=frozenset(self.unknown_thresholds),
            counts_promql=True,
        )

    # ---- on-sale windows ---------------------------------------------------------------

    def _windows(self, spans: list[Span]) -> list[OnSaleWindow]:
        if self.request.onsale_windows is not None:
            return list(self.request.onsale_windows)
        at = self.request.at
        start = min((s.start for s in spans), default=at)
        if start >= at:
            return []
        step = self.source.mode_step or min(60.0, max(15.0, math.ceil((at - start) / 2000)))
        start = at - math.ceil((at - start) / step) * step  # the last point falls on ``at``
        bucket = step * max(1, math.ceil(_BUCKET / step))
        hits = self._buckets_on_sale(start, at, step, bucket)
        self.total += len(hits)
        runs: dict[str, list[list[float]]] = {}
        for end in sorted(hits):
            # only the scopes on sale in this bucket, only at its points: the answer (and the
            # memory) grows with on-sale time, not with scopes x window
            lo = max(start, end - bucket + step)
            query = f"{MODE_GAUGE}{{scope=~{_alternatives(hits[end])}}} >= 1"
            on: dict[str, set[float]] = {}
            for series in self.client.query_range(query, lo, end, step):
                scope = self._scope(series.labels.get("scope", ""))
                if scope is not None:  # several series of a scope: on when any is (max by)
                    on.setdefault(scope, set()).update(t for t, _ in series.points)
            for scope, times in on.items():
                extend_runs(runs.setdefault(scope, []), sorted(times), step)
            self._tick()
        if not runs:
            self.warnings.append(
                f"no {MODE_GAUGE} series found, so no on-sale windows are known; on-sale counts "
                "are 0 unless the windows are given (--backend with the mode history)."
            )
        windows = [
            window_of(scope, run, step, at) for scope, found in runs.items() for run in found
        ]
        return sorted(windows, key=lambda w: (w.start, w.scope))

    def _buckets_on_sale(
        self, start: float, at: float, step: float, bucket: float
    ) -> dict[float, set[str]]:
        """The scope label values on sale in each bucket ``(end - bucket, end]``, by ``end``.

        One coarse pass: each point's ``max_over_time`` reads the bucket's samples and an
        hour before it (a point is on from a sample up to the lookback delta before it).
        """
        first = at - math.floor((at - start) / bucket) * bucket  # the first bucket's end
        # a week per query: each reads a week of every scope's samples, well within a timeout
        chunk = bucket * min(_MAX_POINTS - 1, max(1, math.ceil(_COARSE_CHUNK / bucket) - 1))
        chunks = [(t, min(t + chunk, at)) for t in _frange(first, at, chunk + bucket)]
        self.total += len(chunks)
        reach = _duration(bucket + _MAX_LOOKBACK)
        query = f"max by (scope) (max_over_time({MODE_GAUGE}[{reach}])) >= 1"
        hits: dict[float, set[str]] = {}
        for lo, hi in chunks:
            for series in self.client.query_range(query, lo, hi, bucket):
                for end, _ in series.points:
                    hits.setdefault(end, set()).add(series.labels.get("scope", ""))
            self._tick()
        return hits

    def _scope(self, text: str) -> str | None:
        try:
            return parse_scope(text)
        except BadInputError:
            self.skipped[_BAD_SCOPE] = self.skipped.get(_BAD_SCOPE, 0) + 1
            return None

    # ---- counts per span --------------------------------------------------------------

    def _span(self, span: Span) -> Aggregate:
        agg = Aggregate()
        grouping = "sum by (service, route, method, mode, code)"
        query = f"{grouping} ({delta(self._selector(REQUESTS), span.end - span.start)})"
        for sample in self.client.query(query, span.end):
            key = (
                *_route(sample.labels),
                sample.labels.get("mode", ""),
                sample.labels.get("code", ""),
            )
            agg.requests[key] = agg.requests.get(key, 0.0) + self._count(sample.value, query)
        self._tick()
        if self.request.thresholds:
            grouping = "sum by (service, route, method, mode, le)"
            query = f"{grouping} ({delta(self._selector(BUCKETS), span.end - span.start)})"
            for sample in self.client.query(query, span.end):
                self._add_bucket(agg, sample.labels, self._count(sample.value, query))
            self._tick()
        for name, sli in self.request.custom:
            for kind, selector in (("good", sli.good), ("total", sli.total)):
                query = f"sum by (mode) ({delta(selector, span.end - span.start)})"
                for sample in self.client.query(query, span.end):
                    self._add_custom(
                        agg, (name, kind), sample.labels, self._count(sample.value, query)
                    )
                self._tick()
        return agg

    def _add_bucket(self, agg: Aggregate, labels: Mapping[str, str], value: float) -> None:
        text = labels.get("le", "")
        le = _le_value(text)
        mode = labels.get("mode", "")
        if le is None:
            return
        self.boundaries.setdefault(mode, set()).add(le)
        threshold = _match_threshold(le, self.request.thresholds)
        if threshold is None:
            return
        self.le_texts.add(text)
        key = (*_route(labels), mode, threshold)
        agg.latency[key] = agg.latency.get(key, 0.0) + value

    def _add_custom(
        self, agg: Aggregate, slo_kind: tuple[str, str], labels: Mapping[str, str], value: float
    ) -> None:
        mode = labels.get("mode")
        if mode is None:
            reason = "promql series without a mode label"
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            return
        key = (*slo_kind, mode)
        agg.custom[key] = agg.custom.get(key, 0.0) + value

    def _warn_thresholds(self) -> None:
        found = set().union(*self.boundaries.values()) if self.boundaries else set()
        if not found:
            return
        for t in sorted(self.request.thresholds):
            if _match_threshold(t, found) is None:
                self.unknown_thresholds.add(t)
                listed = "; ".join(
                    f"{mode}: {', '.join(f'{b:g}' for b in sorted(bs) if b != INF)}"
                    for mode, bs in sorted(self.boundaries.items())
                )
                self.warnings.append(
                    f"latency threshold {t:g} s is not a bucket boundary of "
                    f"onsale_request_duration_seconds (boundaries found, by mode: {listed}); "
                    "latency SLIs with it count no request as good."
                )

    # ---- raw on-sale samples -----------------------------------------------------------

    def _raws(self, intervals: list[tuple[float, float]]) -> list[Raw]:
        """Resets-aware deltas of every on-sale series the request needs in each interval."""
        raws: list[Raw] = []
        jobs: list[tuple[str, float, float, Growth]] = []
        done: list[tuple[Growth, SeriesSet]] = []
        for start, end in intervals:
            raw = Raw(start, end)
            raws.append(raw)
            for selector, into in self._raw_selectors(raw):
                growth: Growth = {}
                done.append((growth, into))
                for lo, hi in _pieces(start, end):
                    # the first piece reaches back for each series' baseline; the others
                    # overlap the piece before by a second (a sample seen once is skipped)
                    reach = hi - lo + (self.source.lookback if lo == start else 1.0)
                    jobs.append((f"{selector}[{_duration(reach)}]", hi, start, growth))
        answers = self._prefetched([(query, at) for query, at, _, _ in jobs])
        for (query, _, start, growth), series in zip(jobs, answers, strict=True):
            self._feed(query, series, start, growth)
        for growth, into in done:
            for key in sorted(growth):  # in label order, as Prometheus answers
                if growth[key].times:
                    into.add(growth[key].deltas())
        return raws

    def _raw_selectors(self, raw: Raw) -> list[tuple[str, SeriesSet]]:
        onsale = 'mode="onsale"'
        selectors = [(self._selector(REQUESTS, onsale), raw.requests)]
        if self.request.thresholds:
            variants = {txt for t in self.request.thresholds for txt in (repr(t), f"{t:g}")}
            le = "le=~" + _alternatives(self.le_texts | variants)
            selectors.append((self._selector(BUCKETS, onsale, le), raw.buckets))
        for name, sli in self.request.custom:
            for kind, selector in (("good", sli.good), ("total", sli.total)):
                selectors.append((selector, raw.custom.setdefault((name, kind), SeriesSet())))
        return selectors

    def _prefetched(self, queries: list[tuple[str, float]]) -> Iterator[list[Series]]:
        """The answers to range-selector queries, in order, each asked while the one before
        is being read (Prometheus encodes one answer while this process decodes another)."""
        if len(queries) < 2:
            yield from (self.client.query_matrix(query, at) for query, at in queries)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="onsale-prom") as pool:
            pending = pool.submit(self.client.query_matrix, *queries[0])
            try:
                for following in [*queries[1:], None]:
                    answer = pending.result()
                    if following is not None:
                        pending = pool.submit(self.client.query_matrix, *following)
                    yield answer
            finally:
                pending.cancel()

    def _feed(self, query: str, answer: list[Series], start: float, growth: Growth) -> None:
        """Feed the on-sale series of one range-selector answer to their deltas."""
        for series in answer:
            if series.labels.get("mode") != "onsale":
                continue  # a custom SLI's selector may match normal series too
            flat = array("d", chain.from_iterable(series.points))
            times, values = flat[0::2], flat[1::2]
            if values and not (min(values) >= 0 and math.isfinite(sum(values))):
                for value in values:  # NaN, infinite or negative: say which
                    if not (math.isfinite(value) and value >= 0):
                        raise self._garbage(value, query)
            if not all(map(le, times, times[1:])):  # Prometheus answers in time order
                ordered = sorted(series.points)
                times = array("d", (t for t, _ in ordered))
                values = array("d", (v for _, v in ordered))
            key = tuple(sorted(series.labels.items()))
            if key not in growth:
                growth[key] = Growing(series.labels, start)
            growth[key].extend_arrays(times, values)
        self._tick()

    def _exact(
        self, raws: list[Raw], start: float, end: float, event: str | None = None
    ) -> Aggregate:
        """Exact on-sale counts in ``(start, end]`` (of one event's series, if given)."""
        agg = Aggregate()
        for raw in raws:
            lo, hi = max(raw.start, start), min(raw.end, end)
            if hi <= lo:
                continue
            for d, n in counted(raw.requests.of(event), lo, hi):
                key = (*_route(d.labels), "onsale", d.labels.get("code", ""))
                agg.requests[key] = agg.requests.get(key, 0.0) + n
            for d, n in counted(raw.buckets.of(event), lo, hi):
                le = _le_value(d.labels.get("le", ""))
                threshold = None if le is None else _match_threshold(le, self.request.thresholds)
                if threshold is not None:
                    lkey = (*_route(d.labels), "onsale", threshold)
                    agg.latency[lkey] = agg.latency.get(lkey, 0.0) + n
            for (name, kind), deltas in raw.custom.items():
                ckey = (name, kind, "onsale")
                total = sum(n for _, n in counted(deltas.of(event), lo, hi))
                agg.custom[ckey] = agg.custom.get(ckey, 0.0) + total
        return agg

    def _window_counts(self, window: OnSaleWindow, raws: list[Raw]) -> OnSaleCounts:
        start, end = count_range(window, self.request.grace, self.request.at)
        event = None if window.scope == GLOBAL_SCOPE else window.event
        counts = OnSaleCounts(window, self._exact(raws, start, end, event))
        for raw in raws:
            lo, hi = max(raw.start, start), min(raw.end, end)
            for d, _ in counted(raw.requests.of(event), lo, hi):
                add_minutes(counts.minutes.setdefault(_route(d.labels), {}), d, lo, hi)
        return counts

    # ---- the check against increase() --------------------------------------------------

    @staticmethod
    def _onsale_total(aggregates: dict[str, Aggregate], spans: list[Span]) -> float:
        if not spans:
            return 0.0
        longest = max(spans, key=lambda s: s.end - s.start)
        return sum(n for k, n in aggregates[longest.name].requests.items() if k[3] == "onsale")

    def _warn_outside(
        self, estimated: float, aggregates: dict[str, Aggregate], spans: list[Span]
    ) -> None:
        exact = self._onsale_total(aggregates, spans)
        if estimated > exact * (1 + _OUTSIDE_RATIO) + _OUTSIDE_SLACK:
            self.warnings.append(
                f"increase() counts {estimated:.0f} on-sale requests but the on-sale windows hold "
                f"{exact:.0f}: on-sale traffic outside any known on-sale window: give --backend "
                "with the mode history."
            )


def _route(labels: Mapping[str, str]) -> RouteKey:
    service, route, method = (labels.get(name, "") for name in _ROUTE_LABELS)
    return service, route, method


def _frange(start: float, stop: float, step: float) -> list[float]:
    count = max(1, math.ceil((stop - start) / step))
    return [start + i * step for i in range(count) if start + i * step <= stop]


def _pieces(start: float, end: float) -> list[tuple[float, float]]:
    """``(start, end]`` cut into consecutive ranges of at most ``_RAW_PIECE`` seconds."""
    count = max(1, math.ceil((end - start) / _RAW_PIECE))
    bounds = [start + (end - start) * k / count for k in range(count)] + [end]
    return list(pairwise(bounds))


def _replace_onsale(agg: Aggregate, exact: Aggregate) -> None:
    """Swap the estimated on-sale entries of a span for the exact ones."""
    agg.requests = {k: v for k, v in agg.requests.items() if k[3] != "onsale"}
    agg.latency = {k: v for k, v in agg.latency.items() if k[3] != "onsale"}
    agg.custom = {k: v for k, v in agg.custom.items() if k[2] != "onsale"}
    agg.add(exact)
