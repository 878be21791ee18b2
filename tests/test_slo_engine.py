"""The SLO arithmetic: budgets, burn rates, alerts and on-sale breakdowns from counts."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import SLOSpec, spec_from_data
from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._plan import plan
from onsale_obs.slo._report import Report
from onsale_obs.types import Mode
from tests.slo_oracle import Record, oracle

AT = 1_800_000_000.0
DAY = 86_400.0

SPEC: dict[str, Any] = {
    "slos": [
        {
            "name": "checkout-availability",
            "service": "checkout",
            "sli": {"type": "availability", "routes": ["/buy"]},
            "objectives": {"normal": 99.9, "onsale": 99.99},
        },
        {
            "name": "checkout-latency",
            "service": "checkout",
            "sli": {"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}},
            "objectives": {"normal": 99.0, "onsale": 99.0},
        },
    ]
}


def spec() -> SLOSpec:
    return spec_from_data(SPEC)


def report(records: list[Record], windows: tuple[OnSaleWindow, ...] = (), at: float = AT) -> Report:
    s = spec()
    request = plan(s, at, onsale_windows=windows)
    return evaluate(s, oracle(records, request), at)


def window(start: float, end: float | None, scope: str = "event:final") -> OnSaleWindow:
    return OnSaleWindow(scope, start, end, "schedule", "final")


def buy(
    ts: float, status: int = 200, mode: str = "normal", seconds: float = 0.1, **kw: Any
) -> Record:
    return Record(ts, "checkout", "/buy", "POST", status, seconds, mode, **kw)


records_strategy = st.lists(
    st.builds(
        buy,
        ts=st.floats(AT - 40 * DAY, AT, allow_nan=False),
        status=st.sampled_from([200, 201, 404, 500, 503]),
        mode=st.sampled_from(["normal", "onsale"]),
        seconds=st.sampled_from([0.01, 0.25, 0.3, 1.0, 2.0]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(records_strategy)
def test_budgets_add_up_and_splitting_by_mode_keeps_every_event(records: list[Record]) -> None:
    r = report(records)
    in_window = [x for x in records if AT - 30 * DAY < x.ts <= AT]
    availability = r.slos[0]
    assert sum(m.total for m in availability.modes.values()) == len(in_window)
    assert sum(m.bad for m in availability.modes.values()) == sum(
        x.status >= 500 for x in in_window
    )
    for m in availability.modes.values():
        assert m.good + m.bad == m.total
        if m.total == 0:
            assert (m.sli, m.budget_consumed, m.budget_remaining) == (None, None, None)
            assert m.status == "no data"
        else:
            assert m.allowed_bad is not None
            assert math.isclose(m.allowed_bad, m.total * (1 - m.objective))
            assert m.budget_consumed is not None
            assert m.budget_remaining is not None
            assert math.isclose(m.budget_consumed + m.budget_remaining, 1.0)
            assert math.isclose(m.budget_consumed * m.allowed_bad, m.bad)


@settings(max_examples=60, deadline=None)
@given(records_strategy)
def test_latency_counts_each_mode_against_its_own_threshold(records: list[Record]) -> None:
    r = report(records)
    latency = r.slos[1]
    thresholds: tuple[tuple[Mode, float], ...] = (("normal", 0.25), ("onsale", 1.0))
    for mode, threshold in thresholds:
        mine = [x for x in records if x.mode == mode and AT - 30 * DAY < x.ts <= AT]
        assert latency.modes[mode].total == len(mine)
        assert latency.modes[mode].good == sum(x.duration_s <= threshold for x in mine)


@settings(max_examples=40, deadline=None)
@given(records_strategy)
def test_json_round_trips_with_the_contract_keys(records: list[Record]) -> None:
    data = report(records, (window(AT - 2 * DAY, AT - DAY),)).to_json()
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again == data
    for slo in data["slos"]:
        for m in slo["modes"].values():
            assert {
                "objective",
                "total",
                "good",
                "bad",
                "sli",
                "budget_allowed_bad",
                "budget_consumed",
                "budget_remaining",
                "burn_rates",
                "alert",
            } <= m.keys()
            assert {"priority", "firing"} <= m["alert"].keys()
        for o in slo["onsales"]:
            assert {"scope", "start", "end", "total", "bad", "sli", "budget_consumed"} <= o.keys()


def test_no_traffic_is_no_data_not_a_perfect_score() -> None:
    r = report([])
    for s in r.slos:
        for m in s.modes.values():
            assert m.sli is None
            assert m.status == "no data"
            assert all(b is None for b in m.burn_rates.values())
            assert m.alert is None
    assert not r.failing
    assert r.to_json()["slos"][0]["modes"]["onsale"]["sli"] is None


def test_a_full_onsale_outage_pages_p1_within_the_first_minutes() -> None:
    start = AT - 90
    ok = [buy(AT - 20 * DAY + i * 60, 200) for i in range(1000)]
    outage = [
        buy(start + i * 0.5, 503, "onsale", event="final", event_onsale=True) for i in range(180)
    ]
    r = report(ok + outage, (window(start, None),))
    onsale = r.slos[0].modes["onsale"]
    assert onsale.alert is not None
    assert (onsale.alert.priority, onsale.alert.name) == ("P1", "fast")
    assert r.slos[0].modes["normal"].alert is None
    assert r.failing


def test_the_same_burn_in_normal_time_is_a_ticket_not_a_page() -> None:
    burst = [buy(AT - 90 + i * 0.5, 503) for i in range(180)]
    r = report(burst)
    normal = r.slos[0].modes["normal"]
    assert normal.alert is not None
    assert normal.alert.priority == "P3"
    assert r.slos[0].modes["onsale"].alert is None


def test_one_stray_error_in_a_quiet_onsale_minute_pages_nobody() -> None:
    start = AT - 600
    quiet = [
        buy(start + i * 30, 200, "onsale", event="final", event_onsale=True) for i in range(19)
    ]
    stray = [buy(AT - 10, 500, "onsale", event="final", event_onsale=True)]
    r = report(quiet + stray, (window(start, None),))
    onsale = r.slos[0].modes["onsale"]
    fast = next(x for x in onsale.rules if x.name == "fast")
    assert fast.long_burn is not None
    assert fast.long_burn > fast.burn_rate
    assert not fast.firing
    assert onsale.alert is None


def test_a_surge_of_ten_thousand_times_weighs_by_its_events_not_its_minutes() -> None:
    # 10 quiet normal-time requests per day for 29 days, then an on-sale of 100,000 requests in
    # 10 minutes with 0.005% errors: the on-sale SLI is the event ratio, not a per-minute mean.
    start = AT - DAY
    quiet = [buy(AT - 29 * DAY + i * 8640, 200) for i in range(290)]
    surge = [
        buy(
            start + i * 0.006,
            503 if i % 20_000 == 0 else 200,
            "onsale",
            event="final",
            event_onsale=True,
        )
        for i in range(1, 100_001)
    ]
    r = report(quiet + surge, (window(start, start + 600),))
    onsale = r.slos[0].modes["onsale"]
    assert onsale.total == 100_000
    assert onsale.bad == 5
    assert onsale.sli == 1 - 5 / 100_000
    assert onsale.budget_consumed is not None
    assert math.isclose(onsale.budget_consumed, 0.5)
    [o] = r.slos[0].onsales
    assert (o.total, o.bad) == (100_000, 5)
    assert o.budget_consumed is not None
    assert math.isclose(o.budget_consumed, 0.5)
    assert o.peak_rps is not None
    assert math.isclose(o.peak_rps, 100_000 / 600, rel_tol=0.01)
    assert r.slos[0].modes["normal"].sli == 1.0


def test_each_onsale_is_reported_with_its_own_events_and_share_of_the_budget() -> None:
    w1 = window(AT - 10 * DAY, AT - 10 * DAY + 3600, "event:final")
    w2 = window(AT - 5 * DAY, AT - 5 * DAY + 3600, "global")
    final = [
        buy(w1.start + i, 503 if i < 2 else 200, "onsale", event="final", event_onsale=True)
        for i in range(1, 1001)
    ]
    everyone = [
        buy(w2.start + i, 503 if i < 4 else 200, "onsale", event="semi") for i in range(1, 1001)
    ]
    r = report(final + everyone, (w1, w2))
    first, second = r.slos[0].onsales
    assert (first.window.scope, first.total, first.bad) == ("event:final", 1000, 1)
    assert (second.window.scope, second.total, second.bad) == ("global", 1000, 3)
    allowed = 2000 * (1 - 0.9999)
    assert first.budget_consumed is not None
    assert math.isclose(first.budget_consumed, 1 / allowed)
    assert second.budget_consumed is not None
    assert math.isclose(second.budget_consumed, 3 / allowed)


def test_a_calendar_month_window_starts_on_the_first_of_the_month() -> None:
    data = {"slos": [{**SPEC["slos"][0], "window": "month"}]}
    s = spec_from_data(data)
    at = 1_796_083_200.0 + 5 * DAY  # 2026-12-06T00:00:00Z
    before = [buy(at - 6 * DAY, 503)]  # November: not counted
    inside = [buy(at - 4 * DAY, 200), buy(at - 3 * DAY, 503)]
    request = plan(s, at, onsale_windows=())
    r = evaluate(s, oracle(before + inside, request), at)
    assert r.slos[0].window_start == 1_796_083_200.0
    assert (r.slos[0].modes["normal"].total, r.slos[0].modes["normal"].bad) == (2, 1)


@settings(max_examples=30, deadline=None)
@given(records_strategy)
def test_the_burn_down_ends_where_the_window_does(records: list[Record]) -> None:
    s = spec()
    request = plan(s, AT, onsale_windows=(), bins=30)
    r = evaluate(s, oracle(records, request), AT, bins=30)
    for mode in r.slos[0].modes.values():
        points = mode.burn_down
        assert len(points) == 30
        assert points[-1][0] == AT
        assert [p[1] for p in points] == sorted(p[1] for p in points)  # cumulative
        assert (points[-1][1], points[-1][2]) == (mode.total, mode.good)
        last = mode.to_json()["burn_down"][-1]
        assert last["budget_remaining"] == (
            None if mode.budget_remaining is None else pytest.approx(mode.budget_remaining)
        )


def test_the_alert_timeline_fires_during_the_outage_and_not_before_or_long_after() -> None:
    from onsale_obs.slo._timeline import firings, timeline_request

    start = AT - 3600
    ok = [buy(start + i, 200, "onsale", event="final", event_onsale=True) for i in range(1, 1200)]
    outage = [
        buy(start + 1200 + i, 503, "onsale", event="final", event_onsale=True)
        for i in range(1, 300)
    ]
    s = spec()
    times = [start + m * 60 for m in range(0, 61, 5)]
    request = timeline_request(s, times, onsale_windows=(window(start, None),))
    fired = firings(s, oracle(ok + outage, request), times)
    fast = sorted({f.at for f in fired if f.slo == "checkout-availability" and f.rule == "fast"})
    # the outage runs from minute 20 to 25: the fast rule fires at 25 (both windows burning)
    # and stops once the 1-minute window is clean again
    assert fast == [start + 25 * 60]
    assert all(f.mode == "onsale" and f.priority in ("P1", "P2") for f in fired)
    # the same moment through the one-moment engine agrees
    at = start + 25 * 60
    r = evaluate(s, oracle(ok + outage, plan(s, at, onsale_windows=(window(start, None),))), at)
    assert {x.name for x in r.slos[0].modes["onsale"].rules if x.firing} == {
        f.rule for f in fired if f.at == at and f.slo == "checkout-availability"
    }
