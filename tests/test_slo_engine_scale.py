"""The engine's indexed counting (many SLOs, many on-sales) gives the plain scan's numbers, bit
for bit, and the log source's per-event window lookup counts what the oracle counts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import SLOSpec, spec_from_data
from onsale_obs.slo._data import Collected
from onsale_obs.slo._engine import burn_rate, count, evaluate
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._plan import burn_span, plan, report_span
from onsale_obs.slo._report import Report
from onsale_obs.slo._spec import SLO, AvailabilitySLI, LatencySLI
from tests.slo_oracle import Record, oracle

AT = 1_800_000_000.0
SERVICES = ("checkout", "gateway", "inventory")
ROUTES = ("/buy", "/enter", "/seats")
METHODS = ("GET", "POST")
EVENTS = ("final", "tour", "cup")

records = st.lists(
    st.builds(
        Record,
        ts=st.floats(AT - 7 * 86_400, AT, allow_nan=False),
        service=st.sampled_from(SERVICES),
        route=st.sampled_from(ROUTES),
        method=st.sampled_from(METHODS),
        status=st.sampled_from((200, 201, 404, 500, 503)),
        duration_s=st.sampled_from((0.05, 0.2, 0.3, 0.9, 2.0)),
        mode=st.sampled_from(("normal", "onsale")),
        event=st.sampled_from((None, *EVENTS)),
        event_onsale=st.booleans(),
    ),
    max_size=120,
)


@st.composite
def slo_data(draw: st.DrawFn, index: int) -> dict[str, Any]:
    sli: dict[str, Any] = {"type": draw(st.sampled_from(("availability", "latency")))}
    routes = draw(st.lists(st.sampled_from(ROUTES), max_size=2, unique=True))
    methods = draw(st.lists(st.sampled_from(METHODS), max_size=1, unique=True))
    if routes:
        sli["routes"] = routes
    if methods:
        sli["methods"] = methods
    if sli["type"] == "latency":
        sli["threshold"] = {
            "normal": draw(st.sampled_from(("250ms", "1s"))),
            "onsale": draw(st.sampled_from(("250ms", "1s"))),
        }
    return {
        "name": f"slo-{index}",
        "service": draw(st.sampled_from(SERVICES)),
        "sli": sli,
        "objectives": {
            "normal": draw(st.sampled_from((95.0, 99.0, 99.9))),
            "onsale": draw(st.sampled_from((97.5, 99.0, 99.95))),
        },
    }


@st.composite
def specs(draw: st.DrawFn) -> SLOSpec:
    size = draw(st.integers(1, 6))
    return spec_from_data({"slos": [draw(slo_data(i)) for i in range(size)]})


windows = st.lists(
    st.builds(
        OnSaleWindow,
        scope=st.sampled_from(("global", *(f"event:{e}" for e in EVENTS))),
        start=st.floats(AT - 8 * 86_400, AT - 60, allow_nan=False),
        end=st.one_of(st.none(), st.floats(AT - 7 * 86_400, AT + 3600, allow_nan=False)),
        source=st.just("manual"),
        reason=st.just(""),
    ).filter(lambda w: w.end is None or w.end > w.start),
    max_size=6,
)


def windows_of(slo: SLO, mode: str) -> list[float]:
    return sorted({w for r in slo.policy[mode] for w in (r.long, r.short)})  # type: ignore[index]


def plain(spec: SLOSpec, collected: Collected) -> list[Any]:
    """Every figure of the report computed by scanning each aggregate per SLO (no index)."""
    out: list[Any] = []
    for slo in spec.slos:
        span = report_span(slo, AT)
        for mode in ("normal", "onsale"):
            out.append(count(slo, mode, collected.spans[span.name]))
            for w in windows_of(slo, mode):
                agg = collected.spans[burn_span(w, AT).name]
                total, good = count(slo, mode, agg)
                out.append(burn_rate(total, good, slo.objectives[mode]))
        for oc in collected.onsales:
            end = AT if oc.window.end is None else min(oc.window.end, AT)
            if oc.window.start < AT and end > span.start:
                minutes = dict(oc.minutes)
                out.append((count(slo, "onsale", oc.counts), _peak(slo, minutes), end))
    return out


def _peak(slo: SLO, minutes: dict[tuple[str, str, str], dict[int, float]]) -> float | None:
    assert isinstance(slo.sli, AvailabilitySLI | LatencySLI)
    per_minute: dict[int, float] = {}
    for (service, route, method), by_minute in minutes.items():
        if slo.sli.selector.matches(service, route, method):
            for minute, n in by_minute.items():
                per_minute[minute] = per_minute.get(minute, 0.0) + n
    return max(per_minute.values()) / 60 if per_minute else None


def indexed(report: Report) -> list[Any]:
    """The same figures, as the engine reported them."""
    out: list[Any] = []
    for s in report.slos:
        for mode in ("normal", "onsale"):
            m = s.modes[mode]
            out.append((m.total, m.good))
            out.extend(m.burn_rates[w] for w in windows_of(s.slo, mode))
        for o in s.onsales:
            out.append(((o.total, o.good), o.peak_rps, o.end))
    return out


@settings(max_examples=80, deadline=None)
@given(specs(), records, windows)
def test_indexed_counts_are_the_plain_scan_bit_for_bit(
    spec: SLOSpec, lines: list[Record], given_windows: list[OnSaleWindow]
) -> None:
    """Totals, goods, burn rates, on-sale counts and peaks equal a per-SLO scan exactly."""
    collected = oracle(lines, plan(spec, AT, onsale_windows=given_windows))
    report = evaluate(spec, collected, AT)
    assert indexed(report) == plain(spec, collected)
    for s in report.slos:
        allowed = s.modes["onsale"].allowed_bad
        assert all(o.budget_allowed_bad == allowed for o in s.onsales)


def test_an_slo_without_requests_of_its_service_counts_none() -> None:
    """Thousands of SLOs: one whose service sent nothing is zero, not another service's."""
    data = [
        {
            "name": f"slo-{i}",
            "service": f"svc-{i}",
            "sli": {"type": "availability"},
            "objectives": {"normal": 99.0, "onsale": 99.0},
        }
        for i in range(2000)
    ]
    spec = spec_from_data({"slos": data})
    lines = [Record(AT - 10, "svc-7", "/x", "GET", 500, 0.1, "normal")]
    report = evaluate(spec, oracle(lines, plan(spec, AT, onsale_windows=())), AT)
    totals = {s.slo.name: s.modes["normal"].total for s in report.slos if s.modes["normal"].total}
    assert totals == {"slo-7": 1.0}
    assert report.slos[7].modes["normal"].bad == 1.0


def onsale_figures(collected: Collected) -> list[Any]:
    return [(o.window, o.counts.requests, o.counts.latency, o.minutes) for o in collected.onsales]


@settings(max_examples=60, deadline=None)
@given(specs(), records, windows)
def test_the_log_source_counts_each_window_as_the_oracle_does(
    spec: SLOSpec, lines: list[Record], given_windows: list[OnSaleWindow]
) -> None:
    """Global and event windows, overlapping or not: every window's counts and minutes are the
    oracle's (a line meets its own event's windows and the global ones, no other)."""
    lines = [r for r in lines if r.ts != AT]  # the oracle and the log agree on (start, end]
    request = plan(spec, AT, onsale_windows=given_windows)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        log.write_text("".join(json.dumps(r.line()) + "\n" for r in lines))
        collected = LogSource([log]).collect(request)
    expected = oracle(lines, request)
    key = lambda o: (o[0].start, o[0].scope, o[0].end)  # noqa: E731
    assert sorted(onsale_figures(collected), key=key) == sorted(onsale_figures(expected), key=key)
