"""The controller at the edges the complete mutation run (docs/mutation.md) left open: what
a cut leaves behind (ceilings, bounds), the first reading of a controller, the words of a
ramp during a software fault, readings that must not measure the capacity, and the exact
boundaries of the shares and intervals, each pinned by a test."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist

import pytest

from onsale_obs.exitrate import ExitRateConfig, ExitRateController, Recommendation
from tests.test_exitrate_controller import CONFIG, _rising, healthy, settle

BLIND = "short burn rate, long burn rate unknown"


# -- a new controller --------------------------------------------------------------------


def test_a_new_controller_has_changed_nothing_yet() -> None:
    assert ExitRateController(CONFIG).last_change_at is None


def test_the_first_reading_without_signals_holds_even_with_no_outage_grace() -> None:
    """outage_after 0: the very first reading without burn rates is an outage at once, but
    no time has passed since any earlier reading, so nothing decays yet: the rate holds and
    says it is decaying toward the safe rate."""
    controller = ExitRateController(replace(CONFIG, outage_after=0))
    rec = controller.recommend(healthy(0, 1000, burn_short=None, burn_long=None))
    assert (rec.action, rec.rate) == ("hold", 1000)
    assert rec.reason == f"{BLIND} for 0ms; decaying toward safe rate"


def test_a_repeated_reading_at_the_same_moment_does_not_decay_again() -> None:
    """In an outage, a second reading at the same time holds; one half a second later decays
    by half a second's worth (10% a minute), not more."""
    controller = ExitRateController(replace(CONFIG, outage_after=0))
    blind = {"burn_short": None, "burn_long": None}
    controller.recommend(healthy(0, 1000, **blind))
    again = controller.recommend(healthy(0, 1000, **blind))
    assert (again.action, again.rate) == ("hold", 1000)
    later = controller.recommend(healthy(0.5, 1000, **blind))
    assert later.action == "decay"
    assert later.rate == pytest.approx(1000 * 0.9 ** (0.5 / 60), rel=1e-9)


def test_the_controller_remembers_when_it_last_changed_the_rate() -> None:
    """After its own step up the controller reports that moment as the last change, and the
    next reading waits for the step to show instead of stepping again."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    step = controller.recommend(healthy(75, rate))
    assert step.action == "increase"
    assert controller.last_change_at == 75
    rec = controller.recommend(healthy(90, step.rate))
    assert rec.action == "hold"
    assert rec.reason == "last change 15s ago, its effect shows after 1m"


def test_a_clamp_to_the_maximum_is_not_a_cut_that_delays_the_next_one() -> None:
    """A start above max_rate is brought down, but that is no answer to an incident: a
    saturated reading 15 s later still cuts."""
    controller = ExitRateController(CONFIG)
    assert controller.recommend(healthy(0, 20_000)).rate == 10_000
    rec = controller.recommend(healthy(15, 10_000, utilisation=0.98))
    assert rec.action == "decrease", rec.reason


# -- the rate before a software fault ------------------------------------------------------


def test_a_latency_cut_on_the_faults_first_readings_is_undone_when_it_clears() -> None:
    """Healthy at 1,000/min; the burn rises (short window only) with latency over: a -10%
    cut; then both windows burn with latency fine: a software fault, and the rate it comes
    back to is the one before the burn rose (1,000), not the cut one (900)."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000))
    cut = controller.recommend(healthy(15, 1000, burn_short=20, burn_long=10, latency_p95=1.5))
    assert (cut.action, cut.rate) == ("decrease", 900)
    rec = controller.recommend(healthy(30, 900, burn_short=20, burn_long=20))
    assert rec.action == "hold"
    assert rec.reason.endswith("hold, back to 1,000/min when it clears"), rec.reason


def test_a_burn_at_exactly_the_probe_limit_counts_as_fine_for_the_rate_before_a_fault() -> None:
    """A reading at 800/min with the short burn at its probe limit (3x, inclusive) makes 800
    the last good rate: the fault that follows holds there until it clears."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000))
    controller.recommend(healthy(15, 800, burn_short=3.0, burn_long=3.0))
    rec = controller.recommend(healthy(30, 800, burn_short=20, burn_long=20))
    assert rec.action == "hold"
    assert rec.reason.endswith("hold until it clears"), rec.reason


def test_a_ramp_during_a_fault_says_where_it_goes_and_why() -> None:
    """A fault held at 1,000/min, the operator down to 400: the probe during the fault steps
    back toward 1,000 and says so in the probe's own words, with its own change."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    controller.recommend(healthy(75, rate, burn_short=900, burn_long=300))
    t, rate, rec = 90.0, 400.0, None
    while t < 300:
        rec = controller.recommend(healthy(t, rate, burn_short=900, burn_long=300))
        if rec.action != "hold":
            break
        t += 15
    assert rec is not None
    assert (rec.action, rec.rate) == ("increase", 800)
    assert rec.reason == (
        "during a software fault, back toward the rate before it (1,000/min): healthy "
        "(burn 900x, p95 500ms), 50,000 waiting, utilisation 0.20 < 0.90 "
        "(capacity ~2,000/min): +100%"
    )


# -- cuts at their edges -------------------------------------------------------------------

#: Objectives whose error budget is a power of two, so a burn converts to an exact share of
#: checkouts failing (25.6x is exactly 5% at 1/512, 10% at 1/256, 40% at 1/64).
BUDGET_512 = replace(CONFIG, objective=1 - 1 / 512)
BUDGET_256 = replace(CONFIG, objective=1 - 1 / 256)
BUDGET_64 = replace(CONFIG, objective=1 - 1 / 64)


def _cut_after_two_minutes(config: ExitRateConfig = CONFIG) -> ExitRateController:
    """Two healthy minutes at 1,000/min, then an overload (burn and latency): -40%."""
    controller = ExitRateController(config)
    for t in range(0, 120, 15):
        controller.recommend(healthy(t, 1000))
    rec = controller.recommend(healthy(120, 1000, burn_short=20, burn_long=20, latency_p95=1.5))
    assert (rec.action, rec.rate) == ("decrease", 600)
    return controller


def test_latency_still_over_after_a_deeper_cut_says_it_is_already_cut() -> None:
    """15 s after a cut to 600/min latency is still over for the 1,000/min behind the reading:
    its -10% would be 900, above the rate, so there is nothing to cut: the hold says so."""
    rec = _cut_after_two_minutes().recommend(healthy(135, 600, latency_p95=1.5))
    assert (rec.action, rec.rate) == ("hold", 600)
    assert rec.reason == (
        "latency p95 1.5s > 1s (readings reflect 1,000/min); already cut to 600/min"
    )


def test_a_second_cut_is_allowed_at_exactly_the_cut_interval() -> None:
    """decrease_interval 120 s: latency over again exactly 120 s after a latency cut cuts."""
    controller = ExitRateController(CONFIG)
    assert controller.recommend(healthy(0, 1000, latency_p95=1.5)).rate == 900
    rec = controller.recommend(healthy(120, 900, latency_p95=1.5))
    assert (rec.action, rec.rate) == ("decrease", 810), rec.reason


def test_five_percent_failing_is_a_measured_shed() -> None:
    """Exactly 5% of checkouts failing (``_MEASURED_SHED``, inclusive) on a burn cut: the
    backend sustains 95% of the 1,000/min behind it, which bounds the capacity..."""
    rec = ExitRateController(BUDGET_512).recommend(
        healthy(0, 1000, burn_short=25.6, burn_long=25.6, latency_p95=1.5)
    )
    assert (rec.action, rec.rate) == ("decrease", 600)
    assert rec.capacity_estimate == pytest.approx(950)


def test_five_percent_failing_cuts_a_rate_raised_again_within_the_interval() -> None:
    """... and when the rate is raised back to 1,000/min from outside 15 s after a cut, 5%
    failing of the 1,000/min behind the reading says the backend sustains 950: its target
    share (0.89 since the first cut, a capacity loss: 845.5) is more than 10% under 1,000,
    so it is cut again at once."""
    controller = _cut_after_two_minutes(BUDGET_512)
    rec = controller.recommend(healthy(135, 1000, burn_short=25.6, burn_long=25.6, latency_p95=1.5))
    assert rec.action == "decrease", rec.reason
    assert rec.rate == pytest.approx(845.5)
    assert rec.reason.endswith("; still above what the backend sustains, cut again: -15%")


def test_a_rate_exactly_ten_percent_over_what_is_sustained_is_not_cut_again() -> None:
    """Target utilisation 1.0, 10% failing of 1,000/min: the backend sustains 900, exactly
    10% (``_RECUT``) under the 1,000/min set again from outside: not *well* above it, so the
    one cut per incident stands until the interval. (No loss margin: the first cut is a
    capacity loss, which would otherwise take the target to 0.97.)"""
    config = replace(BUDGET_256, target_utilisation=1.0, saturation=1.0, loss_margin=0.0)
    controller = _cut_after_two_minutes(config)
    rec = controller.recommend(healthy(135, 1000, burn_short=25.6, burn_long=25.6, latency_p95=1.5))
    assert (rec.action, rec.rate) == ("hold", 1000), rec.reason
    assert rec.reason.endswith("; cut 15s ago, next cut allowed after 2m")


def test_forty_percent_failing_says_what_the_backend_sustains() -> None:
    """Exactly 40% failing (the burn back-off, inclusive): the reason names the share and
    what the backend sustains, and the cut goes to the target share of that."""
    rec = ExitRateController(BUDGET_64).recommend(
        healthy(0, 1000, burn_short=25.6, burn_long=25.6, latency_p95=1.5)
    )
    assert rec.rate == pytest.approx(552)
    assert "(0.40 failing: the backend sustains ~600/min)" in rec.reason


def test_eighty_percent_failing_with_latency_fine_is_checkout_down() -> None:
    """Exactly 80% failing (``_OUTAGE_SHARE``, inclusive) with p95 fine: an outage, paused."""
    rec = ExitRateController(BUDGET_64).recommend(healthy(0, 1000, burn_short=51.2, burn_long=51.2))
    assert (rec.action, rec.rate) == ("decrease", 100)
    assert "checkout is down" in rec.reason


def test_a_reading_at_exactly_saturation_bounds_the_capacity() -> None:
    """95% busy at 1,000/min: saturated, and the capacity is at most 1,000/0.95."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, utilisation=0.95))
    assert rec.capacity_estimate == pytest.approx(1000 / 0.95)


def _latency_cut_at_1000() -> ExitRateController:
    """Latency broke at 1,000/min: cut to 900, the capacity bounded by 1,000."""
    controller = ExitRateController(CONFIG)
    rec = controller.recommend(healthy(0, 1000, latency_p95=1.5))
    assert (rec.rate, rec.capacity_estimate) == (900, 1000)
    return controller


def test_a_rate_at_the_capacity_a_cut_measured_is_saturation() -> None:
    """After the latency cut, the rate set back to 1,000/min from outside loads the backend
    1.00 by the measured estimate (not a prior): saturated, back to the target share."""
    rec = _latency_cut_at_1000().recommend(healthy(135, 1000))
    assert (rec.action, rec.rate) == ("decrease", 920)
    assert rec.reason == "utilisation 1.00 >= 0.95 (readings reflect 900/min): -8%"


def test_a_reading_at_exactly_saturation_has_no_room() -> None:
    """After the latency cut, 960/min (0.96 of the estimate) with a reading at exactly 95%:
    the reading does not show room, so the estimate's saturation stands: cut."""
    rec = _latency_cut_at_1000().recommend(healthy(135, 960, utilisation=0.95))
    assert (rec.action, rec.rate) == ("decrease", 920), rec.reason


def test_errors_at_exactly_saturation_of_the_measured_capacity_are_an_overload() -> None:
    """After the latency cut, errors at 950/min (0.95 of the measured 1,000) with p95 fine
    and the reading half busy: saturated by the estimate, so the burn cuts."""
    rec = _latency_cut_at_1000().recommend(
        healthy(15, 950, burn_short=20, burn_long=20, latency_p95=0.5)
    )
    assert (rec.action, rec.rate) == ("decrease", 570), rec.reason


# -- what a cut leaves behind --------------------------------------------------------------


def _served(
    controller: ExitRateController,
    rates: list[tuple[float, float]],
    capacity: float,
    start: float,
    until: float,
    **changes: float,
) -> list[Recommendation]:
    """Readings every 15 s from ``start`` to ``until`` (exclusive), each answer applied, from
    a backend of ``capacity`` users/min: busy by the rate the room had 65 s earlier (CONFIG's
    30 s old readings of users admitted 30 s before). ``rates`` is the room's (time, rate)
    history so far and grows with the answers; ``changes`` go into every reading."""
    answers = []
    t = start
    while t < until:
        behind = [rate for at, rate in rates if at <= t - 65] or [rates[0][1]]
        rec = controller.recommend(
            healthy(t, rates[-1][1], utilisation=behind[-1] / capacity, **changes)
        )
        rates.append((t, rec.rate))
        answers.append(rec)
        t += 15
    return answers


def test_a_saturation_cut_leaves_a_ceiling_just_under_the_rate_it_cut_from() -> None:
    """98% busy at 1,000/min (at t=1,000 on the room's clock): cut, and for the ceiling's
    memory probes stop at 950/min (5% under) though the backend turns out to take 1,100,
    and the hold says how long ago that was."""
    controller = ExitRateController(CONFIG)
    cut = controller.recommend(healthy(1000, 1000, utilisation=0.98))
    assert cut.action == "decrease"
    answers = _served(controller, [(0, 1000), (1000, cut.rate)], 1100, 1015, 1555)
    assert max(a.rate for a in answers) == pytest.approx(950)
    assert answers[-1].reason == "at 950/min, just under where latency or errors broke 9m ago"


def test_a_saturation_cut_leaves_a_latency_cuts_ceiling_where_it_was() -> None:
    """A latency cut at 1,000/min leaves its ceiling at 950; a saturation cut 135 s later
    (the rate set back to 1,000 from outside) does not move it down to 5% under the 900/min
    behind that reading: the probes climb to 950 again on a backend of 1,050."""
    controller = _latency_cut_at_1000()
    rates: list[tuple[float, float]] = [(-1000, 1000), (0, 900)]
    _served(controller, rates, 1050, 15, 135)
    cut = controller.recommend(healthy(135, 1000))
    assert (cut.action, cut.rate) == ("decrease", 920), cut.reason
    rates.append((135, cut.rate))
    answers = _served(controller, rates, 1050, 150, 560)
    assert max(a.rate for a in answers) == pytest.approx(950)


def test_a_ceiling_is_lifted_by_growth_over_the_capacity_measured_before_its_cut() -> None:
    """The capacity measured at 1,000/min; the rate pushed to 1,000 from outside: a
    saturation cut to 920 with a ceiling under it. The backend grows to 1,150: once the
    estimate is 10% over the 1,000 believed at the cut, the ceiling goes and the rate climbs
    within a minute of the cut showing (not only when the estimate passes 10% over the first
    reading after the cut)."""
    controller = ExitRateController(CONFIG)
    rates: list[tuple[float, float]] = [(0, 500)]
    _served(controller, rates, 1000, 0, 300)
    cut = controller.recommend(healthy(300, 1000, utilisation=0.92))
    assert (cut.action, cut.rate, cut.capacity_estimate) == ("decrease", 920, 1000), cut.reason
    rates.append((300, cut.rate))
    answers = _served(controller, rates, 1150, 315, 375)
    assert answers[-1].action == "increase", answers[-1].reason
    assert answers[-1].rate > 1000


def test_a_capacity_prior_does_not_count_as_measured_for_lifting_a_ceiling() -> None:
    """A prior of 800/min, latency breaking at 1,000: the cut leaves a ceiling at 950. The
    readings after it measure about 1,000-1,050, well over the prior but not 10% over what
    was measured after the cut: the ceiling stays, probes stop at 950."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=800))
    cut = controller.recommend(healthy(1000, 1000, latency_p95=1.5))
    assert (cut.action, cut.rate) == ("decrease", 736), cut.reason
    answers = _served(controller, [(0, 1000), (1000, cut.rate)], 1050, 1015, 1555)
    assert max(a.rate for a in answers) == pytest.approx(950)


# -- readings that do and do not measure the capacity --------------------------------------

#: At its maximum rate the controller holds, so readings come from one known rate.
AT_TOP = replace(CONFIG, max_rate=1000)


def test_readings_while_the_queue_was_empty_do_not_measure_the_capacity() -> None:
    """Measured at 2,000/min (1,000/min, half busy). The queue runs empty at t=300: the room
    admitted less than its rate, so a reading 15 s later measures nothing; one exactly
    the horizon (lag 30 s + signal lag 30 s + window 10 s) after the empty queue does."""
    controller = ExitRateController(AT_TOP)
    settle(controller, 1000, 300)
    assert controller.capacity_estimate == 2000
    controller.recommend(healthy(300, 1000, queue_length=0))
    after = controller.recommend(healthy(315, 1000, utilisation=0.4))
    assert after.capacity_estimate == 2000
    later = controller.recommend(healthy(370, 1000, utilisation=0.4, observed_at=270))
    assert later.capacity_estimate == pytest.approx(2000 + 0.3 * (2500 - 2000))


def test_any_clock_measures_the_same() -> None:
    """The same readings from t=0 and from t=10,000: the same capacity and rates."""
    answers = []
    for start in (0, 10_000):
        controller = ExitRateController(CONFIG)
        rate, t, rec = 1000.0, float(start), None
        while t < start + 300:
            rec = controller.recommend(healthy(t, rate))
            rate, t = rec.rate, t + 15
        assert rec is not None
        answers.append((rec.rate, rec.capacity_estimate))
    assert answers[0][1] is not None
    assert answers[1] == answers[0]


def test_a_reading_at_exactly_saturation_does_not_measure_the_capacity() -> None:
    """Measured at 2,000/min; readings at exactly 95% busy (saturated: only an upper bound)
    for two minutes leave the estimate where it was."""
    controller = ExitRateController(AT_TOP)
    settle(controller, 1000, 300)
    t = 300
    while t < 420:
        rec = controller.recommend(healthy(t, 1000, utilisation=0.95))
        assert rec.capacity_estimate == 2000, (t, rec.reason)
        t += 15


def _partly_known(last_observed: float, config: ExitRateConfig = CONFIG) -> Recommendation:
    """Nine level readings (half busy at 1,000/min from t=0), their data 100 s old at first
    (before the room opened) and the last one's ending at ``last_observed``."""
    controller = ExitRateController(config)
    rec = None
    for t in range(0, 120, 15):
        rec = controller.recommend(healthy(t, 1000, observed_at=t - 100))
    rec = controller.recommend(healthy(120, 1000, observed_at=last_observed))
    return rec


def test_a_reading_mostly_before_the_first_admissions_reached_checkout_measures_nothing() -> None:
    """Under a 30 s lag, a reading whose data ends 32 s after the room opened reflects a
    fifth of its window's admissions: too little known (under half), no estimate."""
    assert _partly_known(32).capacity_estimate is None


def test_a_reading_half_known_measures_the_capacity() -> None:
    """A lag of almost exactly 30 s (spread 0.001): the reading ending 35 s after opening
    has exactly half its window after the first admissions reached checkout (the known
    share's limit, inclusive): it measures 500/min known over 50% busy."""
    config = replace(CONFIG, admission_lag_spread=0.001)
    assert _partly_known(35, config).capacity_estimate == pytest.approx(1000)


def test_a_room_under_one_user_a_minute_measures_its_capacity() -> None:
    """A tiny room (minimum 0.1/min) at 0.6/min, 30% busy: the capacity is 2/min, and the
    rate steps toward its target share."""
    controller = ExitRateController(replace(CONFIG, min_rate=0.1, safe_rate=0.1))
    rate = settle(controller, 0.6, 135, utilisation=0.3)
    rec = controller.recommend(healthy(135, rate, utilisation=0.3))
    assert rec.capacity_estimate == pytest.approx(2)
    assert rec.action == "increase", rec.reason


# -- the lag fit and the early estimate ----------------------------------------------------

LEARNING = replace(CONFIG, learn_lag=True, admission_lag_spread=0.5)


def _first_step(
    median: float, spread: float, start: float, noise: float = 0.0
) -> tuple[Recommendation, list[Recommendation]]:
    """Readings rising from the opening under a ``median``/``spread`` lag toward a capacity of
    4,000/min (each ``noise`` above or below in turn), until the first increase."""
    controller = ExitRateController(LEARNING)
    rate, t, k, answers = start, 0.0, 0, []
    while t < 900:
        u = _rising(t, rate, 4000, median, spread) * (1 + noise * (-1) ** k)
        rec = controller.recommend(healthy(t, rate, utilisation=u))
        answers.append(rec)
        if rec.action == "increase":
            return rec, answers
        rate, t, k = rec.rate, t + 15, k + 1
    raise AssertionError(answers[-1].reason)


def test_an_early_step_waits_until_the_last_readings_are_half_known() -> None:
    """Under a 160 s lag from 2,000/min the lag is fitted at 195 s, but the oldest of the
    last four readings then reflects under half of its admissions: the early step waits
    until they all reflect at least half (not before 240 s), then steps on the last four
    readings alone, without waiting for them to settle."""
    step, answers = _first_step(160, 0.5, 2000)
    assert all(a.action == "hold" for a in answers if a.time < 240)
    assert step.time <= 255
    assert step.rate == pytest.approx(0.92 * 4000)
    assert "utilisation still rising, the readings so far put the capacity at ~4,000/min" in (
        step.reason
    )


def test_an_early_step_takes_the_lowest_capacity_of_the_lags_that_fit_almost_as_well() -> None:
    """Noisy readings (2% either way) under a 240 s / 1.3 lag from 3,000/min: at 330 s the
    best lag alone would put the capacity at ~3,900 (+20%), but lags that fit almost as well
    put it lower; the step waits until even the lowest allows 10% (570 s)."""
    step, answers = _first_step(240, 1.3, 3000, noise=0.02)
    assert all(a.action == "hold" for a in answers if a.time <= 555)
    assert step.rate < 3400
    assert "the readings so far put the capacity at ~3,589/min" in step.reason


def test_a_room_under_one_user_a_minute_steps_early_like_any_other() -> None:
    """The 160 s rise above scaled down 4,000 times (minimum 0.1/min, 0.5/min toward a
    capacity of 1/min): the early step comes as soon, to the same share of the capacity;
    a seen rate under one user a minute is still a rate."""
    config = replace(LEARNING, min_rate=0.1, safe_rate=0.1)
    controller = ExitRateController(config)
    rate, t, step = 0.5, 0.0, None
    while t < 600 and step is None:
        u = _rising(t, rate, 1.0, 160, 0.5)
        rec = controller.recommend(healthy(t, rate, utilisation=u))
        step = rec if rec.action == "increase" else None
        rate, t = rec.rate, t + 15
    assert step is not None
    assert step.time <= 255
    assert step.rate == pytest.approx(0.92)
    assert "utilisation still rising" in step.reason


def _three_readings_over_the_fit_span(
    smoothing: float = 0.3,
) -> tuple[ExitRateController, Recommendation]:
    """A learning controller after three readings (the fewest a lag fit and an early
    estimate take) 7.5 minutes apart, the first exactly ``_FIT_SPAN`` (15 minutes) before the
    last, at 1,000/min and half busy: the last answer."""
    controller = ExitRateController(
        replace(CONFIG, learn_lag=True, admission_lag_spread=0.6, capacity_smoothing=smoothing)
    )
    controller.recommend(healthy(-100, 1000, utilisation=None))
    rec = None
    for t in range(0, 901, 450):
        rec = controller.recommend(healthy(t, 1000, observed_at=t))
    assert rec is not None
    return controller, rec


def test_readings_fifteen_minutes_apart_all_count_toward_the_lag_fit() -> None:
    """Three readings 7.5 minutes apart, the first exactly ``_FIT_SPAN`` (15 minutes) before
    the last: all three are kept, enough to fit the lag (the configured 30 s / 0.6 gives way
    to a fitted one) and to step on the early estimate."""
    controller, rec = _three_readings_over_the_fit_span()
    assert controller.admission_lag != (30, 0.6)
    assert rec.action == "increase", rec.reason


def test_an_early_step_after_a_fit_no_lag_could_score() -> None:
    """The first reading's data ends before the room opened, so no candidate lag explains
    every reading and the fit keeps the configured one; the last four readings, rising as
    that lag says, still give an early estimate (4,000/min) and a step."""
    controller = ExitRateController(LEARNING)
    controller.recommend(healthy(0, 1000, utilisation=0.3, observed_at=-100))
    rec = None
    for t in (60, 75, 90, 105, 120):
        end = t - 10
        known = sum(_share(end - 10 * (k + 0.5) / 5, 30, 0.5) for k in range(5)) / 5
        rec = controller.recommend(healthy(t, 1000, utilisation=0.25 * known, observed_at=end))
    assert rec is not None
    assert rec.action == "increase", rec.reason
    assert "the readings so far put the capacity at ~4,000/min (lag ~30s)" in rec.reason


def test_readings_after_an_early_step_move_its_estimate_like_any_other() -> None:
    """An early estimate (~2,000/min) is not a cut's upper bound: the first settled reading
    that measures more replaces it, it is not kept as a ceiling on the estimate."""
    controller, rec = _three_readings_over_the_fit_span()
    assert rec.action == "increase"
    early = rec.capacity_estimate
    assert early is not None
    assert early == pytest.approx(2000, rel=0.002)
    rate, estimates = rec.rate, []
    for t in range(915, 990, 15):
        rec = controller.recommend(healthy(t, rate))
        rate = rec.rate
        estimates.append(rec.capacity_estimate)
    assert estimates[-1] is not None
    assert estimates[-1] > early * 1.01


def test_the_first_settled_reading_replaces_an_early_estimate_whole() -> None:
    """An early estimate rests on a few rising readings: the first settled reading replaces
    it rather than being smoothed into it, so how much weight a reading gets
    (``capacity_smoothing`` 0.3 or 1) makes no difference to that first estimate. The
    estimate is measured from then on: the next reading, busier, is smoothed into it."""
    firsts, seconds = [], []
    for smoothing in (0.3, 1.0):
        controller, rec = _three_readings_over_the_fit_span(smoothing)
        early = rec.capacity_estimate
        assert early == pytest.approx(2000, rel=0.002)
        rate, t = rec.rate, 915
        while rec.capacity_estimate == pytest.approx(early) and t < 1200:
            rec = controller.recommend(healthy(t, rate, utilisation=0.3))
            rate, t = rec.rate, t + 15
        firsts.append(rec.capacity_estimate)
        seconds.append(controller.recommend(healthy(t, rate, utilisation=0.25)).capacity_estimate)
    assert firsts[0] is not None
    assert firsts[0] > 2000 * 1.01
    assert firsts[0] == pytest.approx(firsts[1])
    assert seconds[0] is not None
    assert seconds[1] is not None
    assert firsts[0] < seconds[0] < seconds[1] * 0.95  # 30% of the way, not all of it


def test_a_cut_after_an_early_step_bounds_the_estimate_like_any_other() -> None:
    """A latency break after an early step bounds the capacity by the rate behind the
    reading; that bound is measured, not early: a first settled reading above it leaves the
    estimate at the bound (it does not replace it, as it would an early estimate)."""
    controller, rec = _three_readings_over_the_fit_span()
    rate = rec.rate
    for t in (915, 930, 945):
        rate = controller.recommend(healthy(t, rate)).rate
    # saturated as latency breaks: a break at a low utilisation would say the signal
    # under-reads the backend, and read the utilisations after it against that
    cut = controller.recommend(healthy(960, rate, latency_p95=1.5, utilisation=0.96))
    assert cut.action == "decrease"
    bound = cut.capacity_estimate
    assert bound is not None
    assert bound < 2000
    after = controller.recommend(healthy(975, cut.rate, utilisation=0.3))
    assert after.capacity_estimate == pytest.approx(bound)
    # the reading was measured (not skipped): the next one moves the estimate off the bound
    later = controller.recommend(healthy(990, cut.rate, utilisation=0.3))
    assert later.capacity_estimate is not None
    assert later.capacity_estimate > bound * 1.01


def _share(lag: float, median: float, spread: float) -> float:
    """Share of users admitted at the opening who reached checkout ``lag`` seconds later."""
    return NormalDist().cdf(math.log(lag / median) / spread) if lag > 0 else 0.0


# -- when a grown capacity lifts a ceiling -------------------------------------------------


def test_a_capacity_exactly_ten_percent_over_the_one_at_the_cut_keeps_the_ceiling() -> None:
    """A latency cut at 1,000/min leaves a ceiling at 950 and the first measurement after it
    (1,000) as the capacity believed at the cut. With every reading taken at face value
    (smoothing 1.0) the next one measures exactly 1,100: 10% more is not *more* than 10%,
    the ceiling stays, and probes stop at 950 on a backend of 1,099."""
    controller = ExitRateController(replace(CONFIG, capacity_smoothing=1.0))
    cut = controller.recommend(healthy(0, 1000, latency_p95=1.5))
    assert (cut.rate, cut.capacity_estimate) == (900, 1000)
    for t in range(15, 75, 15):  # the operator sets 550/min
        controller.recommend(healthy(t, 550))
    measured = controller.recommend(healthy(75, 550))  # reflects the 900/min: 1,800 > bound
    assert measured.capacity_estimate == 1000
    grown = controller.recommend(healthy(90, measured.rate))  # reflects 550/min at 0.5
    assert grown.capacity_estimate == 1100
    answers = _served(controller, [(0, 900), (15, 550), (75, measured.rate)], 1099, 105, 500)
    assert max(a.rate for a in answers) == pytest.approx(950)


def test_a_reading_exactly_nine_tenths_known_sets_what_a_ceiling_is_lifted_from() -> None:
    """A lag of almost exactly 30 s: after a latency cut at 1,000/min (ceiling 950), the first
    measurement comes from a reading whose window is exactly 90% after the first admissions
    reached checkout (inclusive: well known). It fixes the capacity believed at the cut
    (1,000); the next one, 30% more, lifts the ceiling, and probes climb past 950."""
    controller = ExitRateController(replace(CONFIG, admission_lag_spread=0.001))
    controller.recommend(healthy(0, 1000, latency_p95=1.5, utilisation=0.81))
    for t, end in ((15, -45), (30, 0), (45, 15)):  # data from before the first admissions
        controller.recommend(healthy(t, 900, utilisation=0.81, observed_at=end))
    first = controller.recommend(healthy(60, 900, utilisation=0.81, observed_at=39))
    assert first.capacity_estimate == pytest.approx(1000)
    grown = controller.recommend(healthy(75, 900, utilisation=0.45, observed_at=45))
    assert grown.capacity_estimate == pytest.approx(1300)
    answers = _served(controller, [(0, 900)], 1300, 90, 500)
    assert max(a.rate for a in answers) > 1100


def test_a_partly_known_reading_does_not_set_what_a_ceiling_is_lifted_from() -> None:
    """The same with the first measurement on a reading only 70% known (partly known
    readings read low): it updates the estimate but not the capacity believed at the cut;
    the next, well-known reading sets that (1,300), so the ceiling stays and probes stop at
    950."""
    controller = ExitRateController(replace(CONFIG, admission_lag_spread=0.001))
    controller.recommend(healthy(0, 1000, latency_p95=1.5, utilisation=0.63))
    for t, end in ((15, -45), (30, 0), (45, 15)):
        controller.recommend(healthy(t, 900, utilisation=0.63, observed_at=end))
    first = controller.recommend(healthy(60, 900, utilisation=0.63, observed_at=37))
    assert first.capacity_estimate == pytest.approx(1000)
    grown = controller.recommend(healthy(75, 900, utilisation=0.45, observed_at=45))
    assert grown.capacity_estimate == pytest.approx(1300)
    answers = _served(controller, [(0, 900)], 1300, 90, 500)
    assert max(a.rate for a in answers) == pytest.approx(950)
