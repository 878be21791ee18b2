"""The engine's report around the alert math: windows, calendar months, no-data notes, on-sale
listings, peaks and burn-downs (the behaviours the mutation run found unpinned)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import SLOSpec, spec_from_data
from onsale_obs.slo._data import Collected
from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._plan import plan
from onsale_obs.slo._report import ModeResult, Report
from tests.slo_oracle import Record, oracle

AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z: not a midnight
DAY = 86_400.0
AVAILABILITY: dict[str, Any] = {
    "name": "buy",
    "service": "checkout",
    "sli": {"type": "availability", "routes": ["/buy"], "methods": ["POST"]},
    "objectives": {"normal": 99.0, "onsale": 99.0},
}


def spec(*slos: dict[str, Any]) -> SLOSpec:
    return spec_from_data({"slos": list(slos) or [AVAILABILITY]})


def buy(ts: float, status: int = 200, mode: str = "normal", **kw: Any) -> Record:
    return Record(ts, "checkout", "/buy", "POST", status, 0.1, mode, **kw)


def onsale(ts: float, status: int = 200, route: str = "/buy", method: str = "POST") -> Record:
    return Record(ts, "checkout", route, method, status, 0.1, "onsale", "final", True)


def window(start: float, end: float | None) -> OnSaleWindow:
    return OnSaleWindow("event:final", start, end, "schedule", "final")


def report(
    records: list[Record],
    s: SLOSpec | None = None,
    windows: tuple[OnSaleWindow, ...] = (),
    at: float = AT,
    **kw: Any,
) -> Report:
    s = s or spec()
    planned = plan(s, at, onsale_windows=windows, window=kw.get("window"), bins=kw.get("bins", 0))
    return evaluate(s, oracle(records, planned), at, **kw)


def test_a_report_window_counts_only_its_own_days() -> None:
    """``slo report --window 7d``: totals, budget and window start of the last 7 days only."""
    records = [buy(AT - 10 * DAY, 503), buy(AT - 6 * DAY, 503), buy(AT - DAY), buy(AT - 1)]
    r = report(records, window=7 * DAY).slos[0]
    assert (r.window_start, r.window_end) == (AT - 7 * DAY, AT)
    normal = r.modes["normal"]
    assert (normal.total, normal.bad) == (3, 1)
    full = report(records).slos[0]
    assert (full.window_start, full.modes["normal"].total) == (AT - 30 * DAY, 4)


def test_a_calendar_month_starts_at_midnight_utc_on_the_first_in_any_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The month so far is counted from the 1st, 00:00 UTC, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        s = spec({**AVAILABILITY, "window": "month"})
        first = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
        at = AT + 1234.5  # 08:20:34.5 UTC, 00:20 in Los Angeles
        records = [buy(first - 60, 503), buy(first + 60, 503), buy(at - 60)]
        r = report(records, s, at=at).slos[0]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert r.window_start == first
    assert (r.modes["normal"].total, r.modes["normal"].bad) == (2, 1)


def test_a_threshold_the_source_cannot_count_is_no_data_with_a_note() -> None:
    """A latency threshold off the histogram boundaries: no SLI, no burn, no alert, no on-sale
    breakdown in that mode, and the reason; the other mode is counted as usual."""
    latency = {
        **AVAILABILITY,
        "name": "fast",
        "sli": {"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}},
    }
    s = spec(latency)
    records = [buy(AT - 60 * i, 503) for i in range(1, 40)] + [
        onsale(AT - 30 * i) for i in range(9)
    ]
    planned = plan(s, AT, onsale_windows=(window(AT - 3600, None),), bins=4)
    collected = dataclasses.replace(oracle(records, planned), unknown_thresholds=frozenset({1.0}))
    r = evaluate(s, collected, AT, bins=4).slos[0]
    on, normal = r.modes["onsale"], r.modes["normal"]
    assert on.mode == "onsale"
    assert on.note is not None
    assert on.note.startswith("1.0 s is not a histogram bucket boundary of ")
    assert on.note.endswith("onsale_request_duration_seconds; pick a boundary as the threshold")
    assert (on.total, on.good, on.sli) == (0, 0, None)
    assert on.burn_rates
    assert all(b is None for b in on.burn_rates.values())
    assert (on.rules, on.burn_down, on.alert) == ((), (), None)
    assert r.onsales == ()
    assert normal.note is None  # 250 ms is a boundary: normal time is counted
    assert (normal.total, normal.bad, len(normal.burn_down)) == (39, 0, 4)


def test_a_raw_promql_sli_is_no_data_unless_the_source_counts_it() -> None:
    """Logs cannot count a raw PromQL SLI: the report says so; Prometheus can, and then it counts."""
    promql = {
        **AVAILABILITY,
        "name": "pay",
        "sli": {"type": "promql", "good": 'pay_total{ok="1"}', "total": "pay_total"},
    }
    s = spec(promql)
    planned = plan(s, AT, onsale_windows=(window(AT - 3600, None),))
    collected = oracle([onsale(AT - 60)], planned)
    r = evaluate(s, collected, AT).slos[0]
    note = r.modes["onsale"].note
    assert note is not None
    assert note.startswith("raw PromQL SLIs can only be counted from Prometheus")
    assert note.endswith("(use --prometheus)")
    assert r.onsales == ()
    for span in collected.spans.values():
        span.custom.update({("pay", "total", "onsale"): 10.0, ("pay", "good", "onsale"): 9.0})
        # no good series at all (nothing succeeded) in normal time: every event is bad
        span.custom[("pay", "total", "normal")] = 4.0
    counted = evaluate(s, dataclasses.replace(collected, counts_promql=True), AT).slos[0]
    assert counted.modes["onsale"].note is None
    assert (counted.modes["onsale"].total, counted.modes["onsale"].bad) == (10, 1)
    assert (counted.modes["normal"].total, counted.modes["normal"].bad) == (4, 4)
    assert counted.onsales == ()  # PromQL series carry no event: no per-on-sale breakdown


def test_a_window_the_source_did_not_count_is_no_data_not_a_clean_window() -> None:
    """A burn-rate window missing from the source's answer has no burn rate and no bad events."""
    records = [buy(AT - 30, 503)] * 20
    planned = plan(spec(), AT, onsale_windows=())
    collected = oracle(records, planned)
    del collected.spans[next(sp.name for sp in planned.spans if sp.end - sp.start == 300)]
    normal = evaluate(spec(), collected, AT).slos[0].modes["normal"]
    assert normal.burn_rates[300.0] is None
    fast = next(r for r in normal.rules if r.name == "fast")  # 1h long, 5m short
    assert fast.short_burn is None
    assert not fast.firing
    assert normal.burn_rates[3600.0] == pytest.approx(100.0)  # all failing, 1% budget
    medium = next(r for r in normal.rules if r.name == "medium")
    assert medium.long_bad == 20
    on_fast = next(r for r in r_onsale(collected).rules if r.name == "fast")  # 5m long window
    assert (on_fast.long_burn, on_fast.long_bad) == (None, 0)


def r_onsale(collected: Collected) -> ModeResult:
    return evaluate(spec(), collected, AT).slos[0].modes["onsale"]


def _listed(records: list[Record], windows: tuple[OnSaleWindow, ...], **kw: Any) -> list[float]:
    return [o.window.start for o in report(records, windows=windows, **kw).slos[0].onsales]


def test_onsales_outside_the_report_window_are_not_listed_and_the_rest_are() -> None:
    """With ``--window 1d``, an on-sale that ended before the window (even exactly at its start)
    is left out, without hiding the on-sales after it."""
    day_ago = AT - DAY
    before = window(AT - 2 * DAY, AT - 2 * DAY + 3600)
    at_start = window(day_ago - 3600, day_ago)
    inside = window(AT - 3600, AT - 1800)
    records = [onsale(w.start + 60, 503) for w in (before, at_start, inside)]
    assert _listed(records, (before, at_start, inside), window=DAY) == [inside.start]
    assert _listed(records, (before, at_start, inside)) == [w.start for w in (before, at_start, inside)]  # fmt: skip


def test_an_onsale_starting_at_the_report_moment_is_not_listed() -> None:
    """A window a source found that opens exactly at ``at`` has no requests yet: not listed."""
    s = spec()
    planned = dataclasses.replace(
        plan(s, AT, onsale_windows=()), onsale_windows=(window(AT, None), window(AT - 60, None))
    )
    r = evaluate(s, oracle([onsale(AT - 30)], planned), AT).slos[0]
    assert [o.window.start for o in r.onsales] == [AT - 60]


def test_an_onsale_ends_at_its_window_end_or_now_if_still_open() -> None:
    """The listed end: the window's end when it closed, the report moment while it is open."""
    closed, still = window(AT - 7200, AT - 3600), window(AT - 600, None)
    r = report([onsale(AT - 7000), onsale(AT - 300)], windows=(closed, still)).slos[0]
    assert [(o.window.start, o.end) for o in r.onsales] == [
        (closed.start, closed.end),
        (still.start, AT),
    ]


def test_the_peak_is_the_busiest_minute_of_the_slo_routes_only() -> None:
    """Peak requests per second: the SLO's routes and methods, minutes summed across routes."""
    two_routes = {**AVAILABILITY, "sli": {"type": "availability", "methods": ["POST"]}}
    w = window(AT - 3600, None)
    minute = AT - 1200 - (AT - 1200) % 60
    records = (
        [onsale(minute + 1 + i * 0.5) for i in range(30)]  # 30 on /buy
        + [onsale(minute + 2 + i, route="/hold") for i in range(18)]  # 18 on /hold, same minute
        + [onsale(minute + 60 + i * 0.1, method="GET") for i in range(500)]  # not the SLO's method
        + [onsale(minute + 120 + i) for i in range(12)]
    )
    [o] = report(records, spec(two_routes), (w,)).slos[0].onsales
    assert o.peak_rps == 48 / 60


def test_the_burn_down_is_cut_into_equal_parts_with_each_parts_requests() -> None:
    """``bins`` parts of the window, equal in length, each point the running count to its end."""
    records = [buy(AT - d * DAY + 1, 503 if d % 3 == 0 else 200) for d in range(1, 30)]
    r = report(records, bins=10).slos[0].modes["normal"]
    width = 3 * DAY
    assert [p[0] for p in r.burn_down] == [AT - 30 * DAY + (i + 1) * width for i in range(10)]
    for end, total, good in r.burn_down:
        seen = [x for x in records if x.ts <= end]
        assert (total, good) == (len(seen), sum(x.status < 500 for x in seen))
    one = report(records, bins=1).slos[0].modes["normal"]
    assert one.burn_down == ((AT, len(records), sum(x.status < 500 for x in records)),)
    assert report(records).slos[0].modes["normal"].burn_down == ()  # none unless asked for


def test_only_the_slos_asked_for_are_evaluated() -> None:
    """``slo report --slo NAME``: the report holds that SLO alone."""
    s = spec(AVAILABILITY, {**AVAILABILITY, "name": "other"})
    other = s.get("other")
    r = evaluate(s, oracle([buy(AT - 1)], plan(s, AT, slos=[other], onsale_windows=())), AT, slos=[other])  # fmt: skip
    assert [x.slo.name for x in r.slos] == ["other"]


def test_the_report_carries_what_the_source_said_about_itself() -> None:
    """Origin, exactness, warnings and skipped lines reach the report (and its JSON)."""
    collected = oracle([buy(AT - 1)], plan(spec(), AT, onsale_windows=()))
    collected = dataclasses.replace(
        collected,
        origin="logs: 2 files",
        exact_onsale=False,
        warnings=["clock skew"],
        skipped={"not JSON": 3},
    )
    r = evaluate(spec(), collected, AT)
    assert (r.at, r.origin, r.exact_onsale, r.warnings, r.skipped) == (
        AT,
        "logs: 2 files",
        False,
        ("clock skew",),
        {"not JSON": 3},
    )


def test_the_plan_asks_the_source_for_only_what_the_report_needs() -> None:
    """Each span and query costs a Prometheus source: the chosen SLOs' counts, their services,
    no burn-down parts unless asked, and only the on-sales that overlap the windows."""
    pay = {
        **AVAILABILITY,
        "name": "pay",
        "service": "payments",
        "sli": {"type": "promql", "good": 'pay_total{ok="1"}', "total": "pay_total"},
    }
    s = spec_from_data({"slos": [AVAILABILITY, pay], "onsale_grace": "10m"})
    old, inside, future = window(AT - 40 * DAY, AT - 39 * DAY), window(AT - DAY, None), window(AT + 60, None)  # fmt: skip
    # the edges: ends exactly where the 30-day window starts, opens exactly at the report moment
    ended, opens = window(AT - 31 * DAY, AT - 30 * DAY), window(AT, None)
    only_buy = plan(s, AT, slos=[s.get("buy")], onsale_windows=(old, ended, inside, opens, future))
    assert only_buy.custom == ()
    assert only_buy.services == {"checkout"}
    assert only_buy.onsale_windows == (inside,)
    assert only_buy.grace == 600  # the spec's onsale_grace
    assert not any(sp.name.startswith("bin:") for sp in only_buy.spans)
    both = plan(s, AT)
    assert both.custom == (("pay", s.get("pay").sli),)
    assert both.services == {"checkout"}  # a raw PromQL SLI names no middleware service
    assert both.onsale_windows is None  # no history given: the source finds the on-sales


def test_only_the_slos_routes_and_methods_count_summed_over_routes() -> None:
    """Availability and latency SLIs count their selector's requests, every route of it."""
    two = {"routes": ["/buy", "/hold"], "methods": ["POST"]}
    availability = {**AVAILABILITY, "sli": {"type": "availability", **two}}
    latency = {
        **AVAILABILITY,
        "name": "fast",
        "sli": {"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}, **two},
    }

    def req(route: str, method: str, status: int, seconds: float) -> Record:
        return Record(AT - 60, "checkout", route, method, status, seconds, "normal")

    records = (
        [req("/buy", "POST", 503, 0.1)] * 3
        + [req("/hold", "POST", 200, 0.5)] * 2
        + [req("/hold", "POST", 200, 0.1)] * 4
        + [req("/buy", "GET", 503, 2.0)] * 5  # not the SLO's method
        + [req("/other", "POST", 503, 2.0)] * 7  # not the SLO's route
    )
    r = report(records, spec(availability, latency))
    assert (r.slos[0].modes["normal"].total, r.slos[0].modes["normal"].bad) == (9, 3)
    assert (r.slos[1].modes["normal"].total, r.slos[1].modes["normal"].bad) == (9, 2)
