"""``ExitRateController`` at other cadences than 15 s: the spans it reads its utilisation over
are spans of time, and a scrape read at several ticks is one reading."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from onsale_obs.exitrate import ExitRateController
from tests.test_exitrate_controller import CONFIG, _rising, healthy
from tests.test_exitrate_mutants_lag import _backend_utilisation


def _first_step(tick: float, scrape: float) -> tuple[float, float]:
    """:func:`_first_step_among` called every ``tick`` seconds for 20 minutes on readings
    scraped every ``scrape`` seconds (a scrape read again until the next one)."""
    times = (k * tick for k in range(int(1200 // tick)))
    return _first_step_among([(t, math.floor((t - 30) / scrape) * scrape) for t in times])


@pytest.mark.parametrize(("tick", "scrape"), [(60.0, 60.0), (30.0, 60.0), (30.0, 30.0)])
def test_readings_further_apart_step_up_about_as_soon(tick: float, scrape: float) -> None:
    """The spans the lag is fitted over, the early estimate and the settling are spans of
    time, not counts of readings: readings a minute apart (a 60 s ``serve --interval``, or a
    60 s scrape read at every 30 s tick) reach the early step within two readings (and a
    tick) of readings 15 s apart, at the same rate (92% of the true capacity). Counted in
    readings, the first lag fit alone waited for six of them: a 60 s cadence stepped at 7
    minutes, against 2m45s."""
    at_15, rate_15 = _first_step(15.0, 15.0)
    at, rate = _first_step(tick, scrape)
    assert at <= at_15 + 2 * scrape + tick
    assert rate_15 == pytest.approx(0.92 * 1800, rel=0.01)
    assert rate == pytest.approx(rate_15, rel=0.02)


def _learnt(tick: float) -> dict[float, tuple[tuple[float, float], float | None]]:
    """The fitted lag and capacity estimate at each minute, called every ``tick`` seconds on
    a scrape a minute (data 30 s old), the waiting room at 500/min then 1,000/min from 600 s
    (its maximum, p95 grown into its hold band: the controller never moves it), users reaching
    checkout after 120 s / 0.9 on a backend of 1,500/min."""
    config = replace(CONFIG, learn_lag=True, admission_lag_spread=0.5, max_rate=1000)
    controller = ExitRateController(config)
    rates = [(0.0, 500.0), (600.0, 1000.0)]
    seen = {}
    t = 0.0
    while t <= 1500:
        scraped = math.floor((t - 30) / 60) * 60
        u = _backend_utilisation(scraped + 30, rates, 1500, (120, 0.9))
        rate = 500.0 if t < 600 else 1000.0
        p95 = 0.5 if t == 0 else 0.9
        rec = controller.recommend(
            healthy(t, rate, utilisation=u, latency_p95=p95, observed_at=scraped)
        )
        assert rec.rate == rate
        if t % 60 == 0:
            seen[t] = (controller.admission_lag, rec.capacity_estimate)
        t += tick
    return seen


def test_a_scrape_read_again_is_not_a_new_reading() -> None:
    """Ticks every 30 s on a scrape a minute read each scrape twice: the lag fitted and the
    capacity learnt, minute by minute, are those of ticks a minute apart. Counted twice,
    each scrape weighed double in the fit and the settling."""
    twice, once = _learnt(30.0), _learnt(60.0)
    assert any(estimate is not None for _, estimate in once.values())
    assert twice == once


def test_readings_a_minute_apart_settle() -> None:
    """Readings a minute apart that stopped moving are settled (each half of the span
    compared holds two readings): the capacity is measured from them and probed toward.
    A 45 s span held one reading at most, and the readings never counted as settled."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True))
    controller.recommend(healthy(-1000, 1000, utilisation=None))  # open long before
    rec = None
    for t in range(0, 361, 60):
        rec = controller.recommend(healthy(t, 1000, utilisation=0.5, observed_at=t - 30))
        if rec.action == "increase":
            break
    assert rec is not None
    assert rec.action == "increase", rec.reason
    assert "utilisation 0.50 < 0.90 (capacity ~2,000/min)" in rec.reason


def _first_step_among(readings: list[tuple[float, float]]) -> tuple[float, float]:
    """When and to what the controller first steps up from 1,000/min toward a capacity of
    1,800 (an 80 s / 0.9 lag: the step, to 92% of the early estimate, is under the doubling
    cap), called at each ``(time, data time)`` of ``readings``."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True, admission_lag_spread=0.5))
    for t, scraped in readings:
        u = _rising(scraped + 30, 1000, 1800, 80, 0.9)
        rec = controller.recommend(healthy(t, 1000, utilisation=u, observed_at=scraped))
        if rec.action == "increase":
            return t, rec.rate
    raise AssertionError("no step up")


def test_a_retried_scrape_does_not_make_readings_look_closer() -> None:
    """Readings a minute apart with one more 5 s after one of the first (a retried
    scrape): the spacing read is still a minute (the lower median of the last gaps), so the
    step comes no later than without it, at the same rate. Taken from the shortest gap, the
    readings looked 5 s apart: the fit asked for sixteen of them and the step came a minute
    later."""
    even = [(60.0 * k + 30, 60.0 * k) for k in range(20)]
    at, rate = _first_step_among(even)
    retried_at, retried_rate = _first_step_among(sorted([*even, (95.0, 65.0)]))
    assert retried_at <= at
    assert retried_rate == pytest.approx(rate, rel=0.02)


def test_readings_left_out_of_the_samples_are_no_gap() -> None:
    """Readings 15 s apart, every other one idle (under 5%: left out of the capacity
    samples, as a saturated one is): they still come every 15 s, so the first lag fit and
    the early step still wait for six kept readings. Read from the kept ones alone, the
    readings looked 30 s apart and the controller stepped on four."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True, admission_lag_spread=0.5))
    kept, t, k = 0, 0.0, 0
    while t < 900:
        u = 0.01 if k % 2 else _rising(t, 1000, 1800, 80, 0.9)
        kept += u >= 0.05
        rec = controller.recommend(healthy(t, 1000, utilisation=u))
        if rec.action == "increase":
            break
        t, k = t + 15, k + 1
    assert rec.action == "increase", rec.reason
    assert kept >= 6
