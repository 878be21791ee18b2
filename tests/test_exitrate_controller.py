"""``ExitRateController``: cuts to what the backend sustains, software faults held through and
recovered from, probing toward the target, hold bands, bounds, missing signals."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist
from typing import Any

import pytest

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import ExitRateConfig, ExitRateController, Recommendation, Signals

#: Short lags so tests need few readings: an increase waits 60 s after any change, and
#: readings (30 s old) reflect the exit rate from 70 s after the first one.
CONFIG = ExitRateConfig(
    min_rate=100,
    max_rate=10_000,
    safe_rate=500,
    admission_lag=30,
    admission_lag_spread=0.0,
    signal_lag=30,
    utilisation_window=10,
    decrease_interval=120,
    learn_lag=False,  # the lag stays the one above (learning it is tested on its own)
)


def healthy(t: float, rate: float, **changes: Any) -> Signals:
    """A reading with margin everywhere: no errors, p95 half the threshold, half busy."""
    signals = Signals(
        time=t,
        current_rate=rate,
        burn_short=0.0,
        burn_long=0.0,
        latency_p95=0.5,
        latency_threshold=1.0,
        queue_length=50_000,
        utilisation=0.5,
        arrivals=300.0,
        observed_at=t - 30,
    )
    return replace(signals, **changes)


def settle(controller: ExitRateController, rate: float, until: float, **changes: Any) -> float:
    """Feed readings every 15 s from 0 to ``until`` (exclusive), applying each answer."""
    t = 0.0
    while t < until:
        rate = controller.recommend(healthy(t, rate, **changes)).rate
        t += 15
    return rate


def test_burn_over_both_windows_with_latency_cuts_forty_percent_and_says_why() -> None:
    """Short and long burn over 14.4x with latency over its threshold (an overload) cut the
    rate by 40%, and the reason says so."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=18, burn_long=15, latency_p95=1.5)
    )
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(600)
    assert rec.reason == "burn 18x/15x over 1m/5m >= 14.4x, latency p95 1.5s > 1s: -40%"
    assert rec.change == pytest.approx(-0.4)


def test_a_capacity_loss_cuts_to_what_the_backend_sustains() -> None:
    """Half the checkouts shed with latency at the queue timeout: the backend sustains half
    the load, and the cut goes to the target utilisation of that, not a fixed fraction."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=5000, burn_long=2000, latency_p95=5.0)
    )
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(1000 * 0.5 * 0.92)
    assert "0.50 failing: the backend sustains ~500/min" in rec.reason
    assert rec.capacity_estimate == pytest.approx(500)


def test_errors_without_latency_or_saturation_are_a_software_fault_and_hold() -> None:
    """Errors while p95 has room and the backend is not saturated: a cut would fail as large
    a share of checkouts, so the rate holds and the reason names the fault."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, burn_short=900, burn_long=300))
    assert rec.action == "hold"
    assert rec.rate == 1000
    assert "a software fault, not a lack of capacity" in rec.reason


def test_errors_with_saturation_are_a_capacity_problem() -> None:
    """The same errors with the backend saturated cut the rate."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=900, burn_long=300, utilisation=0.99)
    )
    assert rec.action == "decrease"
    assert "software fault" not in rec.reason


def test_after_a_healed_fault_the_rate_returns_to_where_it_was() -> None:
    """A fault's burn cut the rate before it was told apart (or someone cut it by hand);
    once the short burn clears it goes straight back to the rate before the burn rose, not
    to a ceiling, and the long window's leftover burn does not hold it."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    held = controller.recommend(healthy(75, rate, burn_short=900, burn_long=300))
    assert held.action == "hold"
    assert held.reason.endswith("a software fault, not a lack of capacity: hold until it clears")
    t, rate = 90.0, 400.0  # the operator panicked
    while t < 600:  # p95 in the hold band: still a fault, but no probing either
        rec = controller.recommend(healthy(t, rate, burn_short=900, burn_long=300, latency_p95=0.9))
        assert rec.rate <= rate
        assert "back to 1,000/min when it clears" in rec.reason
        rate = rec.rate
        t += 15
    back = controller.recommend(healthy(t, rate, burn_short=0.5, burn_long=250))
    assert back.action == "increase"
    assert back.rate == pytest.approx(1000)
    assert "cleared after a software fault" in back.reason
    assert "ceiling" not in back.reason


def test_checkout_down_pauses_at_the_minimum_and_comes_back() -> None:
    """A fault failing most checkouts (here all) is an outage: whoever is let in only fails,
    so the room pauses at the minimum, then returns to the rate before it once it clears."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    down = controller.recommend(healthy(75, rate, burn_short=10_000, burn_long=4_000))
    assert down.action == "decrease"
    assert down.rate == CONFIG.min_rate
    assert "checkout is down" in down.reason
    assert "back to 1,000/min when it clears" in down.reason
    t, rate = 90.0, down.rate
    while t < 600:
        rec = controller.recommend(healthy(t, rate, burn_short=10_000, burn_long=4_000))
        assert rec.rate == CONFIG.min_rate, rec.reason
        rate = rec.rate
        t += 15
    back = controller.recommend(healthy(t, rate, burn_short=0.0, burn_long=3_000))
    assert back.rate == pytest.approx(1000)
    assert "cleared after a software fault" in back.reason


def test_during_a_fault_probes_go_no_higher_than_the_rate_before_it() -> None:
    """Latency and utilisation still speak during a fault, up to the pre-fault rate only."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    controller.recommend(healthy(75, rate, burn_short=900, burn_long=300))
    t, rate = 90.0, 400.0
    while t < 900:
        rec = controller.recommend(healthy(t, rate, burn_short=900, burn_long=300))
        assert rec.rate <= 1000
        rate = rec.rate
        t += 15
    assert rate == pytest.approx(1000)


def test_a_healed_fault_is_not_restored_on_missing_signals() -> None:
    """The burn clearing with the latency unknown does not raise the rate yet."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    controller.recommend(healthy(75, rate, burn_short=900, burn_long=300))
    rec = controller.recommend(healthy(90, 500, burn_short=0.5, latency_p95=None))
    assert rec.rate == 500
    assert rec.action == "hold"


def test_a_capacity_prior_cuts_a_start_far_above_it() -> None:
    """Warm start: a start rate well over the prior's capacity comes down on the first
    reading, before any signal arrives."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=1000))
    rec = controller.recommend(Signals(time=0, current_rate=1500))
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(920)
    assert "capacity prior 1.50 >= 0.95" in rec.reason


def test_a_capacity_prior_bounds_a_blind_ramp() -> None:
    """Without utilisation, blind steps stop at the target share of the prior."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=1000))
    rate, t = 800.0, 0.0
    while t < 1800:
        rate = controller.recommend(healthy(t, rate, utilisation=None)).rate
        t += 15
    assert rate == pytest.approx(920)


def test_short_burn_alone_does_not_cut() -> None:
    """Like the alert policy, a burst the long window does not confirm is no reason to cut."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, burn_short=50, burn_long=2))
    assert rec.action == "hold"
    assert rec.rate == 1000


def test_latency_over_threshold_cuts() -> None:
    """p95 over its threshold without errors cuts by latency_backoff (10%): the backlog is
    building, nothing is shed yet; errors would cut to what the backend sustains."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, latency_p95=1.5))
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(900)
    assert rec.reason == "latency p95 1.5s > 1s: -10%"


def test_cuts_take_the_largest_and_name_every_trigger() -> None:
    """Burn and latency together: the larger cut, both reasons."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=100, burn_long=40, latency_p95=3.0)
    )
    assert rec.rate == pytest.approx(600)  # burn -40% over latency -10%
    assert "burn 100x/40x" in rec.reason
    assert "latency p95 3s > 1s" in rec.reason


def test_one_cut_per_incident_until_readings_could_show_it() -> None:
    """The same evidence right after a cut holds; it cuts again after decrease_interval."""
    controller = ExitRateController(CONFIG)
    rate = controller.recommend(healthy(0, 1000, latency_p95=2.0)).rate
    again = controller.recommend(healthy(15, rate, latency_p95=2.0))
    assert again.action == "hold"
    assert "next cut allowed after 2m" in again.reason
    later = controller.recommend(healthy(135, rate, latency_p95=2.0))
    assert later.action == "decrease"


def test_more_severe_evidence_cuts_again_at_once() -> None:
    """Errors after a latency cut are worse news: they cut without waiting."""
    controller = ExitRateController(CONFIG)
    rate = controller.recommend(healthy(0, 1000, latency_p95=2.0)).rate
    rec = controller.recommend(healthy(15, rate, latency_p95=2.0, burn_short=50, burn_long=20))
    assert rec.action == "decrease"
    assert "burn 50x/20x" in rec.reason
    assert rec.rate < rate


def test_probes_up_only_after_the_effect_of_the_last_change_could_show() -> None:
    """Healthy and demand-limited: hold while the last change is younger than the lag (and
    readings do not reflect the rate yet), then step up by at most max_increase."""
    controller = ExitRateController(CONFIG)
    answers = [controller.recommend(healthy(t, 1000)) for t in (0, 15, 30, 45, 60)]
    assert all(a.action == "hold" for a in answers)
    assert "its effect shows after 1m" in answers[3].reason
    assert answers[4].reason == "capacity not known yet: readings do not reflect the rate"
    rec = controller.recommend(healthy(75, 1000))
    assert rec.action == "increase"
    # capacity 2000/min: one multiplicative step to the target (0.92), bounded by x2
    assert rec.rate == pytest.approx(1840)
    assert "utilisation 0.50 < 0.90 (capacity ~2,000/min): +84%" in rec.reason
    assert controller.recommend(healthy(90, rec.rate)).action == "hold"


def test_a_large_headroom_is_climbed_at_most_doubling() -> None:
    """Far below the capacity the step is bounded by max_increase (x2 by default)."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75, utilisation=0.2)
    rec = controller.recommend(healthy(75, rate, utilisation=0.2))
    assert rec.rate == pytest.approx(2000)


def test_no_probe_while_utilisation_is_still_moving() -> None:
    """Readings that still climb after a change have not shown it fully (slow browsers)."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75, utilisation=0.3)
    rate = controller.recommend(healthy(75, rate, utilisation=0.3)).rate  # one step up
    t = 90.0
    for u in (0.32, 0.36, 0.4, 0.44, 0.48, 0.52, 0.56, 0.6, 0.62, 0.66):
        rec = controller.recommend(healthy(t, rate, utilisation=u))
        assert rec.action != "increase", rec.reason
        rate = rec.rate
        t += 15
    assert rec.reason == (
        "utilisation still moving (0.56, 0.60, 0.62, 0.66): the last change has not fully shown"
    )


def test_probe_aims_at_the_target_utilisation() -> None:
    """Close to the target, the step is what the capacity estimate says is left."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75, utilisation=0.8)
    rec = controller.recommend(healthy(75, rate, utilisation=0.8))
    assert rec.rate == pytest.approx(0.92 * 1000 / 0.8)


def test_no_increase_while_the_queue_is_empty() -> None:
    """An empty queue means demand, not the exit rate, limits admissions: hold."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 90, queue_length=0)
    rec = controller.recommend(healthy(90, 1000, queue_length=0))
    assert rec.action == "hold"
    assert rec.reason == "queue empty: not demand-limited"


@pytest.mark.parametrize(
    "missing",
    ["burn_short", "burn_long", "latency_p95", "latency_threshold", "queue_length"],
)
def test_a_missing_signal_never_increases(missing: str) -> None:
    """Any missing health signal or queue length holds where it would have increased."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 90, **{missing: None})
    assert rate == 1000
    rec = controller.recommend(healthy(90, rate, **{missing: None}))
    assert rec.action == "hold"
    assert "never increase on missing signals" in rec.reason


def test_utilisation_gone_missing_holds() -> None:
    """Once utilisation was read, losing it holds instead of stepping blind."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 60, utilisation=0.88)  # in the hold band
    rec = controller.recommend(healthy(60, rate, utilisation=None))
    assert rec.action == "hold"
    assert rec.reason == "utilisation unknown: never increase on missing signals"


def test_without_any_utilisation_signal_it_steps_blind() -> None:
    """A deployment without utilisation probes by blind_increase (10%)."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 60, utilisation=None)
    rec = controller.recommend(healthy(60, 1000, utilisation=None))
    assert rec.rate == pytest.approx(1100)
    assert "no utilisation signal: +10%" in rec.reason


def _blind_after(p95s: tuple[float, float, float]) -> Recommendation:
    """A deployment without utilisation at p95 0.4 s (the on-sale's lowest) at 0 and 15 s,
    then ``p95s`` at 30, 45 and 60 s: the answer at 60 s, the first a step may come at."""
    controller = ExitRateController(CONFIG)
    for t, p95 in zip((0, 15, 30, 45, 60), (0.4, 0.4, *p95s), strict=True):
        rec = controller.recommend(healthy(t, 1000, utilisation=None, latency_p95=p95))
    return rec


def test_without_utilisation_p95_grown_past_its_lowest_holds_the_blind_ramp() -> None:
    """Blind, p95 is the only sign of the load before it breaks: grown more than 10% past
    the on-sale's lowest on each of the last three readings (far under the hold band), the
    ramp holds and says why."""
    rec = _blind_after((0.45, 0.46, 0.45))
    assert rec.action == "hold"
    assert rec.reason == (
        "latency p95 450ms grown +12% past the on-sale's lowest 400ms: with no utilisation "
        "signal, the load is near what the backend takes"
    )


@pytest.mark.parametrize(
    "p95s",
    [
        (0.45, 0.45, 0.43),  # the last reading within 10% (0.44 is the edge)
        (0.43, 0.45, 0.45),  # the oldest of the three within 10%
        (0.439, 0.439, 0.439),  # just under 10%
    ],
)
def test_without_utilisation_p95_not_grown_on_every_reading_steps_blind(
    p95s: tuple[float, float, float],
) -> None:
    """One reading of the last three within 10% of the lowest is noise, not the load: the
    blind step goes on."""
    rec = _blind_after(p95s)
    assert rec.action == "increase", rec.reason
    assert "no utilisation signal: +10%" in rec.reason


def test_nan_and_negative_readings_count_as_missing() -> None:
    """Values that are not finite non-negative numbers are treated as missing."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 90, burn_short=math.nan, latency_p95=-1.0)
    assert rate == 1000


def test_stale_signals_hold() -> None:
    """A reading whose data is older than stale_after is as good as none."""
    controller = ExitRateController(CONFIG)
    rec = controller.recommend(healthy(1000, 1000, observed_at=700))
    assert rec.action == "hold"
    assert rec.reason == "signals stale for 5m: never increase on missing signals"


def test_long_outage_decays_to_the_safe_rate_and_never_below() -> None:
    """Without signals for outage_after (5m) the rate decays to safe_rate, then holds."""
    controller = ExitRateController(CONFIG)
    blind = Signals(time=0, current_rate=2000)
    rate, actions = 2000.0, []
    for t in range(0, 3600, 15):
        rec = controller.recommend(replace(blind, time=t, current_rate=rate))
        assert rec.rate <= rate
        rate = rec.rate
        actions.append(rec.action)
    assert actions[: 300 // 15] == ["hold"] * (300 // 15)
    assert "decay" in actions
    assert rate == pytest.approx(500)
    last = controller.recommend(replace(blind, time=3600, current_rate=rate))
    assert last.action == "hold"
    assert "at or below the safe rate" in last.reason


def test_decay_never_raises_a_rate_under_the_safe_rate() -> None:
    """Below the safe rate an outage holds: decay only ever goes down."""
    controller = ExitRateController(CONFIG)
    for t in range(0, 900, 15):
        rec = controller.recommend(Signals(time=t, current_rate=300))
        assert rec.rate == 300


def test_latency_hold_band() -> None:
    """p95 grown from where it was into the band between latency_margin x threshold and the
    threshold: neither up nor down."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 60, latency_p95=0.5)
    rec = controller.recommend(healthy(60, 1000, latency_p95=0.9))
    assert rec.action == "hold"
    assert rec.reason == "latency p95 900ms in the hold band 800ms..1s"


def test_a_p95_in_the_band_at_rest_leaves_the_probe_to_the_utilisation() -> None:
    """A tight objective: the service's p95 sits in the hold band from the first reading, at
    half its capacity. Holding there kept a room at a third of the capacity for a whole
    on-sale (an objective 1.5x the p95 at rest: 2.8 T*); the utilisation decides instead."""
    controller = ExitRateController(CONFIG)
    answers = [controller.recommend(healthy(t, 1000, latency_p95=0.85)) for t in range(0, 120, 15)]
    rec = next(a for a in answers if a.action != "hold")
    assert rec.action == "increase", rec.reason
    assert rec.rate == pytest.approx(1000 * 0.92 / 0.5)
    assert rec.reason.startswith(
        "healthy (burn 0x, p95 850ms in the hold band but within 10% of the on-sale's lowest "
        "850ms: the service's own, not the load's), 50,000 waiting, utilisation 0.50 < 0.90"
    ), rec.reason


@pytest.mark.parametrize(("p95", "holds"), [(0.93, False), (0.94, True)])
def test_latency_grown_past_a_tenth_over_the_lowest_holds(p95: float, holds: bool) -> None:
    """The lowest p95 of the on-sale (the middle of the last three readings) is the floor,
    and a higher one later does not raise it: within 10% over it the band does not hold,
    past that it does."""
    controller = ExitRateController(CONFIG)
    for t, latency in ((0, 0.95), (15, 0.85), (30, 0.85), (45, 0.9), (60, 0.95)):
        rec = controller.recommend(healthy(t, 1000, latency_p95=latency, utilisation=0.6))
        assert rec.action == "hold", rec.reason  # the capacity is not known yet
    rec = controller.recommend(healthy(75, 1000, latency_p95=p95, utilisation=0.6))
    assert (rec.action == "hold") is holds, rec.reason
    if holds:
        assert rec.reason == f"latency p95 {p95 * 1000:.0f}ms in the hold band 800ms..1s"


def test_one_low_p95_reading_is_no_floor() -> None:
    """p95 at 0.9 s with one reading of 0.5 s among them (a quiet scrape): the floor stays
    0.9 s, and 0.92 s is still within 10% of it (a floor of 0.5 s would hold the band)."""
    controller = ExitRateController(CONFIG)
    for t, latency in ((0, 0.9), (15, 0.9), (30, 0.5), (45, 0.9), (60, 0.9)):
        controller.recommend(healthy(t, 1000, latency_p95=latency, utilisation=0.6))
    rec = controller.recommend(healthy(75, 1000, latency_p95=0.92, utilisation=0.6))
    assert rec.action == "increase", rec.reason


def test_a_zero_p95_is_no_floor() -> None:
    """A p95 of 0 (no requests in its window) would make every later p95 'grown' past the
    floor: it is ignored, and a p95 in the band at rest still leaves the probe to the
    utilisation."""
    controller = ExitRateController(CONFIG)
    answers = [controller.recommend(healthy(0, 1000, latency_p95=0.0))]
    answers += [
        controller.recommend(healthy(t, 1000, latency_p95=0.85)) for t in range(15, 120, 15)
    ]
    assert any(a.action == "increase" for a in answers), [a.reason for a in answers]


class _SlowService:
    """A backend of ``capacity`` users/min whose p95 is whatever a test says (over its 1 s
    threshold: a slow dependency, or an objective set under what the service needs), each
    utilisation reading reflecting the rate 65 s before it (CONFIG's lags); every answer is
    applied."""

    def __init__(self, controller: ExitRateController, capacity: float = 6000) -> None:
        self.controller = controller
        self.capacity = capacity
        self.rates = [(-math.inf, 1000.0)]

    def read(self, t: float, p95: float = 1.3, **changes: Any) -> Recommendation:
        behind = [rate for since, rate in self.rates if since <= t - 65][-1]
        values: dict[str, Any] = {"utilisation": min(1.0, behind / self.capacity)}
        values.update(latency_p95=p95, **changes)
        rec = self.controller.recommend(healthy(t, self.rates[-1][1], **values))
        if rec.rate != self.rates[-1][1]:
            self.rates.append((t, rec.rate))
        return rec

    def until_own(self) -> list[Recommendation]:
        """Readings every 15 s until the latency shows as the service's own (10 minutes)."""
        answers = [self.read(t) for t in range(0, 600, 15)]
        assert "the service's own latency" in answers[-1].reason, answers[-1].reason
        return answers


def test_latency_over_the_threshold_at_every_load_is_not_cut_for() -> None:
    """p95 1.3 s over a 1 s objective at any load. The first readings cannot tell it from
    the load's and cut -10% (no capacity loss: p95 was over at the lightest load too); once
    p95 has been as high at loads 1.2x apart, latency is no reason to cut, the first cut's
    ceiling and bound go, and the utilisation alone takes the room to its target. Before,
    the room cut to the minimum rate and never drained."""
    service = _SlowService(ExitRateController(CONFIG))
    answers = service.until_own()
    cuts = [a for a in answers if a.action == "decrease"]
    assert [a.reason for a in cuts] == [
        "latency p95 1.3s > 1s: -10%",
        "latency p95 1.3s > 1s; p95 was over its threshold at the on-sale's lightest load too "
        "(1.3s): not counted as a capacity loss: -10%",
    ]
    first = next(a for a in answers if a.action == "increase")
    assert first.reason.startswith(
        "latency p95 1.3s > 1s but as high at utilisation 0.14 as at 0.17: the service's own "
        "latency, not the load's, a cut would not bring it under; healthy (burn 0x, p95 1.3s)"
    ), first.reason
    assert first.rate > 900 * 0.95  # no ceiling left under where it first broke
    assert answers[-1].rate == pytest.approx(0.92 * 6000, rel=0.01)


def test_the_services_own_latency_holds_at_a_lower_load_too() -> None:
    """Once known, the service's own latency stays its own when the load falls (the operator
    halves the rate): no cut, nor with a reading whose utilisation is missing."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    service.rates.append((600, 2000.0))
    answers = [service.read(t) for t in range(600, 900, 15)]
    answers.append(service.read(900, utilisation=None))
    assert all(a.action != "decrease" for a in answers), [a.reason for a in answers]


def test_a_software_fault_under_the_services_own_latency_is_held() -> None:
    """Errors at the alert threshold while p95 is the service's own (over its threshold, as
    it always was): a software fault, held, not an overload cut."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    rec = service.read(600, burn_short=20, burn_long=20)
    assert rec.action == "hold"
    assert rec.reason.startswith(
        "burn 20x, p95 1.3s at the service's own level, utilisation 0.91: a software fault, "
        "not a lack of capacity: hold"
    ), rec.reason


def test_an_overload_under_the_services_own_latency_is_no_fault() -> None:
    """Own latency known, then errors with p95 jumping to 5 s and the utilisation missing
    (the backend halved): an overload, cut, not a software fault held (which restored the
    overloaded rate once the burn cleared)."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    rec = service.read(600, p95=5.0, burn_short=450, burn_long=100, utilisation=None)
    assert rec.action == "decrease", rec.reason
    assert rec.reason.startswith("burn 450x/100x over 1m/5m >= 14.4x, latency p95 5s > 1s")


@pytest.mark.parametrize(
    ("p95", "utilisation"), [(1.3, None), (1.6, 0.8)], ids=["utilisation missing", "p95 up"]
)
def test_errors_under_the_services_own_latency_need_it_shown_to_be_a_fault(
    p95: float, utilisation: float | None
) -> None:
    """Errors at the alert threshold under own latency are a software fault only on a
    reading that shows the backend measured and p95 itself at its own level: with the
    utilisation missing, or p95 up a quarter (the middle of three still at its level), they
    are cut as any burn with latency."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    rec = service.read(600, p95=p95, burn_short=20, burn_long=20, utilisation=utilisation)
    assert rec.action == "decrease", rec.reason
    assert rec.reason.startswith("burn 20x/20x over 1m/5m >= 14.4x"), rec.reason


def test_a_jump_of_p95_is_the_loads_at_once() -> None:
    """Own latency known at 1.3 s; one reading at 2 s (more than 1.5x it) is no noise the
    middle of three should smooth: the load's, cut on that reading."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    rec = service.read(600, p95=2.0)
    assert rec.action == "decrease", rec.reason
    assert rec.reason.startswith("latency p95 2s > 1s"), rec.reason


def test_a_p95_pinned_past_twice_its_threshold_is_never_the_services_own() -> None:
    """p95 at 2.5 s over a 1 s objective at every load (a timeout, a histogram's top bucket):
    more likely an overload than a service's pace, so latency keeps cutting."""
    service = _SlowService(ExitRateController(CONFIG))
    answers = [service.read(t, p95=2.5) for t in range(0, 600, 15)]
    assert not any("the service's own latency" in a.reason for a in answers)
    assert sum(a.action == "decrease" for a in answers) >= 4


@pytest.mark.parametrize(("load", "own"), [(0.245, True), (0.235, False)])
def test_the_services_own_latency_needs_loads_a_fifth_apart(load: float, own: bool) -> None:
    """p95 1.3 s at a fifth of the backend, then at 1.2x that load (own: no second cut) or
    just under it (not told apart yet: cut again after the cut interval)."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.2, latency_p95=1.3))
    rec = controller.recommend(healthy(150, 900, utilisation=load, latency_p95=1.3))
    assert (rec.action == "decrease") is not own, rec.reason


def test_latency_grown_past_its_own_level_is_the_loads() -> None:
    """p95 1.5 s where the service's own is 1.3 s (more than 10% over it, on two readings of
    three): the load's after all, cut; not counted as a capacity loss, the threshold being
    no measure of the load where p95 was over it at rest."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    assert service.read(600, p95=1.5).action != "decrease"  # one high reading is noise
    rec = service.read(615, p95=1.5)
    assert rec.action == "decrease"
    assert rec.reason.startswith("latency p95 1.5s > 1s"), rec.reason
    assert "not counted as a capacity loss" in rec.reason


def test_latency_that_crossed_its_threshold_from_under_it_is_the_loads() -> None:
    """p95 at 0.95 s at a fifth of the load, 1.02 s at half of it (within 10% of its lowest,
    but it was under the threshold there): the load took it over, cut."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.2, latency_p95=0.95))
    rec = controller.recommend(healthy(15, 1000, utilisation=0.5, latency_p95=1.02))
    assert rec.action == "decrease"
    assert rec.reason == "latency p95 1.02s > 1s: -10%"


def test_a_cut_the_load_made_keeps_its_ceiling_when_latency_is_the_services_own() -> None:
    """A cut on latency grown past the service's own level leaves its ceiling when p95
    falls back to that level: only a ceiling left by the service's own latency goes."""
    service = _SlowService(ExitRateController(CONFIG))
    service.until_own()
    top = service.rates[-1][1]
    service.read(600, p95=1.5)
    assert service.read(615, p95=1.5).action == "decrease"
    answers = [service.read(t) for t in range(630, 615 + int(CONFIG.ceiling_memory), 15)]
    assert "the service's own latency" in answers[-1].reason
    assert max(a.rate for a in answers) == pytest.approx(top * 0.95)
    assert "just under where latency or errors broke" in answers[-1].reason, answers[-1].reason


def test_a_full_backend_keeps_its_bound_when_latency_is_the_services_own() -> None:
    """A latency cut at the service's own level, then a cut on latency and a full backend
    together (its bound measured): once the latency shows as the service's own, only the
    first cut's bound could go, and the full backend's stays."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.5, latency_p95=1.3))
    full = controller.recommend(healthy(130, 900, utilisation=1.0, latency_p95=1.3))
    assert full.action == "decrease"
    bound = controller.capacity_estimate
    assert bound is not None
    rec = controller.recommend(healthy(145, full.rate, utilisation=0.65, latency_p95=1.3))
    assert "the service's own latency" in rec.reason, rec.reason
    assert controller.capacity_estimate == bound


def test_recognising_the_services_own_latency_undoes_its_first_cut() -> None:
    """A cut on p95 over its threshold at its lowest level left a ceiling and bounded the
    capacity by the rate then; the next reading, at 1.25x the load with the same p95,
    shows the latency for the service's own: the bound goes (nothing measured it) and so
    does the ceiling."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.2, latency_p95=1.3))
    assert controller.capacity_estimate == 1000
    rec = controller.recommend(healthy(15, 900, utilisation=0.25, latency_p95=1.3))
    assert "the service's own latency" in rec.reason
    assert controller.capacity_estimate is None
    assert "just under where" not in rec.reason


def test_a_saturation_cut_between_keeps_its_bound_when_latency_is_the_services_own() -> None:
    """A latency cut at the service's own level (its bound 1,000/min), then, p95 under the
    threshold for a reading, a cut on a full backend alone (a measured bound); when the
    latency shows as the service's own, the first cut's ceiling goes but the full backend's
    bound stays."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.5, latency_p95=1.3))
    full = controller.recommend(healthy(130, 900, utilisation=1.0, latency_p95=0.5))
    assert full.action == "decrease"
    assert full.reason.startswith("full utilisation at 900/min"), full.reason
    bound = controller.capacity_estimate
    assert bound is not None
    assert bound != 1000
    rec = controller.recommend(healthy(145, full.rate, utilisation=0.65, latency_p95=1.3))
    assert "the service's own latency" in rec.reason, rec.reason
    assert controller.capacity_estimate == bound


def test_loads_seen_before_latency_fell_tell_nothing_of_its_new_level() -> None:
    """The service's own 1.3 s known (loads 0.2-0.5), then p95 1.05 s on three readings at
    half the backend (a new, lower level). 1.1 s at 0.55 is within 10% of it, at no more
    than 1.1x the load it was seen at: not yet the service's own, cut."""
    controller = ExitRateController(CONFIG)
    for t, u in ((0, 0.2), (15, 0.3), (30, 0.4), (45, 0.5)):
        controller.recommend(healthy(t, 900, utilisation=u, latency_p95=1.3))
    for t in (150, 165, 180):
        controller.recommend(healthy(t, 900, utilisation=0.5, latency_p95=1.05))
    rec = controller.recommend(healthy(300, 900, utilisation=0.55, latency_p95=1.1))
    assert rec.action == "decrease"
    assert rec.reason.startswith("latency p95 1.1s > 1s"), rec.reason


def test_a_full_backend_is_no_load_the_services_own_latency_was_seen_at() -> None:
    """p95 1.3 s at half the backend and at a full one: a full reading says nothing of the
    load (the backend sheds or queues it), so 0.55 is not yet 1.2x a load p95 was seen at."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, utilisation=0.5, latency_p95=1.3))
    controller.recommend(healthy(15, 900, utilisation=1.0, latency_p95=1.3))
    rec = controller.recommend(healthy(150, 900, utilisation=0.55, latency_p95=1.3))
    assert rec.action == "decrease", rec.reason


def test_without_utilisation_a_p95_in_the_band_holds_even_at_rest() -> None:
    """With no utilisation signal nothing but latency says a blind step has room: the band
    holds, however long p95 has been there."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 90, latency_p95=0.85, utilisation=None)
    rec = controller.recommend(healthy(90, 1000, latency_p95=0.85, utilisation=None))
    assert rec.action == "hold"
    assert rec.reason == "latency p95 850ms in the hold band 800ms..1s"


def test_utilisation_hold_band() -> None:
    """Utilisation within utilisation_band under the target holds."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.9)
    rec = controller.recommend(healthy(75, 1000, utilisation=0.9))
    assert rec.action == "hold"
    assert rec.reason == "utilisation 0.90 in the hold band 0.90..0.95"


def test_burn_hold_band() -> None:
    """A short burn above the probe limit but under the alert threshold holds."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 60, burn_short=5.0)
    rec = controller.recommend(healthy(60, 1000, burn_short=5.0))
    assert rec.action == "hold"
    assert "above the probe limit 3x" in rec.reason


def test_saturation_cuts_back_to_the_target() -> None:
    """A rate over the estimated capacity falls back to the target utilisation before the
    readings show it; an estimate's wobble just under saturation does not cut."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.5)  # capacity ~2000/min
    wobble = controller.recommend(healthy(75, 1950, utilisation=0.5))
    assert wobble.action != "decrease"
    rec = controller.recommend(healthy(90, 2200, utilisation=0.5))
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(0.92 * 2000)
    assert rec.reason == "utilisation 1.10 >= 0.95 (readings reflect 1,000/min): -16%"


def test_a_saturated_reading_cuts_back_to_the_target() -> None:
    """A reading at saturation cuts whatever the estimate says."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.5)
    rec = controller.recommend(healthy(75, 1000, utilisation=0.97))
    assert rec.action == "decrease"


def test_a_latency_cut_leaves_a_ceiling_for_later_probes() -> None:
    """After latency broke at a rate, probes stop just under it (the backend's knee)."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.7)
    rate = controller.recommend(healthy(75, 1000, latency_p95=1.2)).rate  # broke at 1000
    t, answers = 90.0, []
    while t < 600:
        rec = controller.recommend(healthy(t, rate, utilisation=0.5))
        rate = rec.rate
        answers.append(rec)
        t += 15
    assert rate == pytest.approx(950)
    assert answers[-1].reason.startswith("at 950/min, just under where latency or errors broke")


def test_the_ceiling_is_forgotten_after_its_memory() -> None:
    """A ceiling guards against probing straight back into the knee, not for ever: after
    ceiling_memory (10 minutes) probes may try above it again."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.7)
    rate = controller.recommend(healthy(75, 1000, latency_p95=1.2)).rate
    t = 90.0
    while t < 75 + CONFIG.ceiling_memory + 120:
        rate = controller.recommend(healthy(t, rate, utilisation=0.5)).rate
        t += 15
    assert rate > 950


def test_the_ceiling_lifts_when_capacity_grows() -> None:
    """Once the capacity estimate grows 10% over the one learnt after the cut, probing
    goes past the old ceiling (the backend was scaled out)."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.7)
    rate = controller.recommend(healthy(75, 1000, latency_p95=1.2)).rate
    t = 90.0
    while t < 600:
        rate = controller.recommend(healthy(t, rate, utilisation=0.7)).rate
        t += 15
    while t < 1800:  # twice the capacity: the same rate now loads the backend half as much
        rate = controller.recommend(healthy(t, rate, utilisation=0.35 * rate / 950)).rate
        t += 15
    assert rate > 1500


def test_bounds() -> None:
    """Rates outside [min, max] are brought inside; cuts stop at min, probes at max."""
    controller = ExitRateController(CONFIG)
    assert controller.recommend(healthy(0, 20_000)).rate == 10_000
    assert ExitRateController(CONFIG).recommend(healthy(0, 50)).rate == 100
    overload = {"burn_short": 99, "burn_long": 99, "latency_p95": 2.0}
    low = ExitRateController(CONFIG).recommend(healthy(0, 120, **overload))
    assert low.rate == 100
    floor = ExitRateController(CONFIG).recommend(healthy(0, 100, **overload))
    assert floor.action == "hold"
    assert "already at the minimum" in floor.reason
    top = ExitRateController(CONFIG)
    rate = settle(top, 9_900, 75, utilisation=0.1)
    assert top.recommend(healthy(75, rate, utilisation=0.1)).rate == 10_000


def test_a_rate_changed_from_outside_restarts_the_wait() -> None:
    """When the operator moves the rate, the controller waits for that change to show."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 45)
    rec = controller.recommend(healthy(60, 1400))
    assert rec.action == "hold"
    assert "last change 0ms ago" in rec.reason


def test_unknown_current_rate_uses_the_last_answer() -> None:
    """A missing current rate falls back to the last recommendation, and says so."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000))
    rec = controller.recommend(healthy(15, math.nan))
    assert rec.rate == 1000
    assert rec.reason.startswith("current rate unknown, using 1,000/min; ")


def test_recommendation_json() -> None:
    """The JSON has the rate, the reason, the action and the signals used."""
    rec: Recommendation = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=18, burn_long=15, arrivals=math.inf)
    )
    data = rec.to_json()
    assert set(data) == {
        "time",
        "rate",
        "previous_rate",
        "change",
        "action",
        "reason",
        "capacity_estimate",
        "signals",
    }
    assert data["signals"]["burn_short"] == 18
    assert data["signals"]["arrivals"] is None  # not finite: null


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_rate", 0.0, "above zero"),
        ("max_rate", 10.0, "below min_rate"),
        ("burn_backoff", 1.0, "between 0 and 1"),
        ("target_utilisation", 1.5, r"in \(0, 1\]"),
        ("saturation", 0.5, "at or above target_utilisation"),
        ("safe_rate", 1e9, "between min_rate"),
        ("signal_lag", math.inf, "finite number"),
        ("objective", 99.99, "0.9999 for 99.99%"),
        ("capacity_prior", 0.0, "capacity above zero"),
        ("learn_lag", 1.0, "true or false"),
    ],
)
def test_config_errors_name_the_field(field: str, value: float, message: str) -> None:
    """Invalid parameters raise BadInputError naming the parameter."""
    values: dict[str, Any] = {field: value}
    with pytest.raises(BadInputError, match=message) as info:
        ExitRateConfig(**values)
    assert info.value.field == field


def test_cut_interval_defaults_to_when_readings_could_show_the_cut() -> None:
    """Without decrease_interval: admission p90 + signal lag + half the short window."""
    config = ExitRateConfig(admission_lag=60, admission_lag_spread=0.6, signal_lag=60)
    # the 90th percentile of a log-normal lag with median 60 s and sigma 0.6
    p90 = NormalDist(math.log(60), 0.6).inv_cdf(0.9)
    assert config.cut_interval == pytest.approx(math.exp(p90) + 60 + 30, rel=1e-4)
    assert config.effect_lag == 120


@pytest.mark.parametrize("time", [math.nan, math.inf])
def test_a_reading_without_a_usable_time_is_bad_input(time: float) -> None:
    """No clock, no lags: a non-finite time is refused with BadInputError naming it."""
    with pytest.raises(BadInputError, match="finite number of seconds") as info:
        ExitRateController(CONFIG).recommend(healthy(0, 1000, time=time))
    assert info.value.field == "time"


def test_a_cut_bound_gives_way_to_the_first_measurement_below_it() -> None:
    """A cut without a measured capacity leaves the rate it cut from as an upper bound; the
    first utilisation reading that measures less replaces it (no slow smoothing down from the
    bound, which kept probes aiming over the capacity for minutes)."""
    controller = ExitRateController(CONFIG)
    rec = controller.recommend(healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=1.5))
    assert rec.rate == pytest.approx(600)
    assert rec.capacity_estimate == pytest.approx(1000)  # the bound: latency broke at 1000
    t, rate = 15.0, rec.rate
    estimates = []
    while t < 300 and rec.action != "increase":
        # 600/min loads the backend 75%: it takes 800/min
        rec = controller.recommend(healthy(t, rate, utilisation=0.75))
        rate = rec.rate
        estimates.append(rec.capacity_estimate)
        t += 15
    measured = [e for e in estimates if e is not None and e < 1000]
    assert measured, estimates
    assert measured[0] == pytest.approx(800)
    assert rec.action == "increase"
    assert rec.rate == pytest.approx(0.92 * 800)


def _rising(t: float, rate: float, capacity: float, median: float, spread: float) -> float:
    """The utilisation a constant ``rate`` since 0 causes at ``t`` (readings 30 s old over a
    10 s window), when admitted users reach checkout after a log-normal lag."""
    end = t - 30
    shares = []
    for k in range(5):
        at = end - 10 * (k + 0.5) / 5
        z = math.log(at / median) / spread if at > 0 else -math.inf
        shares.append(NormalDist().cdf(z) if at > 0 else 0.0)
    return rate / capacity * sum(shares) / len(shares)


def test_a_rise_the_fitted_lag_explains_is_climbed_before_it_settles() -> None:
    """From a cautious start the readings keep rising for minutes with slow browsers; once
    the lag fitted to them explains the rise, the controller steps toward the target share of
    the capacity they agree on (the lowest under every lag that fits) instead of waiting,
    and never past the target share of the true capacity."""
    config = replace(CONFIG, learn_lag=True, admission_lag_spread=0.5)
    controller = ExitRateController(config)
    rate, capacity = 1000.0, 4000.0
    t = 0.0
    first = None
    while t < 900 and first is None:
        u = _rising(t, rate, capacity, 80.0, 0.9)
        rec = controller.recommend(healthy(t, rate, utilisation=max(u, 0.0)))
        if rec.action == "increase":
            first = (u, rate, rec)
        rate = rec.rate
        t += 15
    assert first is not None
    u, before, rec = first
    assert u < 0.95 * before / capacity  # the readings had not settled yet
    assert "utilisation still rising" in rec.reason
    assert rec.rate <= 0.92 * capacity


@pytest.mark.parametrize(
    ("median", "spread", "most"),
    [
        (600.0, 0.5, 1.0),
        # a later fit picks a shorter lag: the two edge fits before it keep the rule
        (400.0, 0.9, 1.0),
        # an early estimate at the first fit (at the edge) would read 8,966/min; the readings
        # of so wide a tail look settled at 85% of their rise: 4,454 (the rule's limit)
        (600.0, 0.9, 1.15),
    ],
)
def test_a_rise_slower_than_any_candidate_lag_waits_for_the_readings_to_settle(
    median: float, spread: float, most: float
) -> None:
    """Browsers taking 7-10 minutes to reach checkout, past the longest lag fitted (5
    minutes): a lag too short credits the rate too early, and an early estimate reads
    capacity high (5,098/min for 4,000 at 600 s / 0.5). Once the longest candidate fits
    best, the controller waits for the readings to settle and says why, also after a later
    fit over a few readings picks a shorter lag (at 400 s / 0.9 the 240 s lag fitted at 420 s
    read 6,854/min); its first step rests on a capacity not over the true one."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True, admission_lag_spread=0.5))
    rate, t, holds = 1000.0, 0.0, []
    while t < 1800:
        u = _rising(t, rate, 4000, median, spread)
        rec = controller.recommend(healthy(t, rate, utilisation=max(u, 0.0)))
        if rec.action != "hold":
            break
        holds.append(rec.reason)
        t += 15
    assert rec.action == "increase", rec.reason
    assert "still rising" not in rec.reason
    assert any(
        h.endswith(
            "; the longest lag fitted (5m) fits best, users may take longer to reach "
            "checkout: no early estimate"
        )
        for h in holds
    )
    estimate = controller.capacity_estimate
    assert estimate is not None
    assert estimate <= 4000 * most


def test_readings_no_lag_explains_wait_to_settle() -> None:
    """Readings that rise while jumping about (no lag makes them agree) give no early
    estimate: the controller waits for them to settle, as before."""
    config = replace(CONFIG, learn_lag=True, admission_lag_spread=0.5)
    controller = ExitRateController(config)
    rate = settle(controller, 1000, 75, utilisation=0.3)
    rate = controller.recommend(healthy(75, rate, utilisation=0.3)).rate
    t = 90.0
    for u in (0.32, 0.45, 0.38, 0.52, 0.44, 0.6, 0.5, 0.68, 0.56, 0.76):
        rec = controller.recommend(healthy(t, rate, utilisation=u))
        assert rec.action != "increase", rec.reason
        rate = rec.rate
        t += 15
    assert "still moving" in rec.reason


def test_a_rate_still_above_what_a_shedding_backend_sustains_is_cut_again() -> None:
    """Within the cut interval a second cut needs more severe evidence, except when the
    backend sheds a measured share of a known rate: what it serves then (the rate behind the
    reading less the share failing) says the rate is still too high, whatever the lag."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 150, utilisation=0.92)
    assert rate == pytest.approx(1000)  # at the target: held
    first = controller.recommend(
        healthy(150, 1000, burn_short=1000, burn_long=1000, latency_p95=1.5)
    )
    assert first.rate == pytest.approx(600)  # 10% failing: the least cut, -40%
    worse = controller.recommend(
        healthy(165, 600, burn_short=5000, burn_long=2000, latency_p95=5.0)
    )
    # half of the 1,000/min behind the reading fails: it sustains 500; the first cut was a
    # capacity loss under a rate the estimate had room for, so the target is now 0.89: 445
    assert "probes aim at 0.89 from now on" in first.reason
    assert worse.action == "decrease"
    assert worse.rate == pytest.approx(1000 * 0.5 * 0.89)
    assert "still above what the backend sustains, cut again" in worse.reason
    same = controller.recommend(
        healthy(180, worse.rate, burn_short=5000, burn_long=3000, latency_p95=5.0)
    )
    assert same.action == "hold"


def test_shedding_behind_an_unknown_rate_does_not_cut_again() -> None:
    """Before the readings reflect a known rate, the share failing belongs to admissions the
    controller cannot attribute: worse burn readings within the cut interval hold (cutting
    again on them spiralled a hot start down to the minimum)."""
    controller = ExitRateController(CONFIG)
    first = controller.recommend(healthy(0, 1000, burn_short=1000, burn_long=1000, latency_p95=2))
    assert first.rate == pytest.approx(600)
    for t in (15, 30, 45, 60):
        rec = controller.recommend(
            healthy(t, first.rate, burn_short=5000, burn_long=4000, latency_p95=9.0)
        )
        assert rec.action == "hold", rec.reason


def test_shedding_behind_a_rate_half_known_cuts_again_on_the_known_part() -> None:
    """A hot start: 1,000/min from the first call, cut -40% on the first burn (at 45 s).
    15 s later the reading reflects admissions of which under half are known (the lag is
    log-normal, median 30 s, sigma 0.6): hold. 15 s after that over half are: the backend
    sheds half of what the known part sent, so it sustains at most that half; the rest,
    counted as no admissions, makes the cut deeper, never shallower."""
    controller = ExitRateController(replace(CONFIG, admission_lag_spread=0.6))
    controller.recommend(healthy(0, 1000))
    first = controller.recommend(healthy(45, 1000, burn_short=1000, burn_long=1000, latency_p95=2))
    assert first.rate == pytest.approx(600)
    shedding = {"burn_short": 5000.0, "burn_long": 4000.0, "latency_p95": 9.0}
    early = controller.recommend(healthy(60, 600, **shedding))
    assert early.action == "hold", early.reason
    again = controller.recommend(healthy(75, 600, **shedding))
    # the reading's 10 s window ends at 45 s: five slices, each the share of the users
    # admitted from 0 s on who have reached checkout by then
    lag = NormalDist()
    known = sum(lag.cdf(math.log((45 - 10 * (k + 0.5) / 5) / 30) / 0.6) for k in range(5)) / 5
    assert 0.5 < known < 0.9
    assert again.action == "decrease", again.reason
    assert again.rate == pytest.approx(1000 * known * 0.5 * 0.92)
    assert "still above what the backend sustains, cut again" in again.reason
    # the reason and the capacity bound speak of the rate the shed belongs to, not of the
    # current 600/min: the backend sustains half of it
    behind = 1000 * known
    assert f"the backend sustains ~{behind * 0.5:,.0f}/min" in again.reason, again.reason
    assert f"(readings reflect {behind:,.0f}/min)" in again.reason, again.reason
    assert again.capacity_estimate == pytest.approx(behind * 0.5)


def test_shedding_without_latency_needs_the_rate_known_to_cut_again() -> None:
    """The same start, but p95 stays within its threshold while a saturated backend fails
    half its checkouts: the errors may be a software fault the utilisation hides, and half
    known is not enough to cut again on them: hold until the cut interval."""
    controller = ExitRateController(replace(CONFIG, admission_lag_spread=0.6))
    controller.recommend(healthy(0, 1000))
    busy = {"utilisation": 0.99}
    first = controller.recommend(healthy(45, 1000, burn_short=1000, burn_long=1000, **busy))
    assert first.rate == pytest.approx(600)
    again = controller.recommend(healthy(75, 600, burn_short=5000, burn_long=4000, **busy))
    assert again.action == "hold", again.reason
    assert "next cut allowed after" in again.reason


def test_after_a_healed_fault_the_controller_carries_on() -> None:
    """Once a fault has cleared and the rate is restored, the next readings are judged as
    any others: healthy ones hold while the restore shows, then probe; no fault is left
    behind."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    controller.recommend(healthy(75, rate, burn_short=900, burn_long=300))
    back = controller.recommend(healthy(90, rate, burn_short=0.5, burn_long=250))
    t, answers = 105.0, []
    while t < 400:
        rec = controller.recommend(healthy(t, back.rate, burn_long=100))
        answers.append(rec)
        t += 15
    assert not any("software fault" in a.reason for a in answers)
    assert answers[0].action == "hold"
    assert any(a.action == "increase" for a in answers)


def test_a_rate_set_above_the_ceiling_from_outside_is_held_not_raised() -> None:
    """Probes never go above the ceiling; a rate someone set above it is left to the
    back-off rules, not 'increased' down to the ceiling."""
    controller = ExitRateController(CONFIG)
    settle(controller, 1000, 75, utilisation=0.7)
    rate = controller.recommend(healthy(75, 1000, latency_p95=1.2)).rate  # ceiling 950
    t = 90.0
    while t < 300:
        rate = controller.recommend(healthy(t, rate, utilisation=0.5)).rate
        t += 15
    assert rate == pytest.approx(950)
    answers = []
    for _ in range(14):  # set by hand, and kept there (the backend as loaded as it says)
        answers.append(controller.recommend(healthy(t, 1200, utilisation=0.5 * 1200 / 950)))
        t += 15
    assert all(a.rate == pytest.approx(1200) and a.action == "hold" for a in answers)
    assert answers[-1].reason == "at 950/min, just under where latency or errors broke 7m ago"


def test_at_the_maximum_rate_it_holds_and_says_so() -> None:
    """Healthy with headroom at ``max_rate``: hold, and the reason names the maximum (there
    is no ceiling to blame)."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 10_000, 150, utilisation=0.3)
    rec = controller.recommend(healthy(150, rate, utilisation=0.3))
    assert rec.rate == pytest.approx(10_000)
    assert rec.action == "hold"
    assert rec.reason == "at the maximum 10,000/min"


def test_a_long_burn_left_by_an_answered_incident_does_not_hold_probes() -> None:
    """The long window keeps burning for minutes after the short one is clean: once a cut
    answered that incident, probes go on (within the long window of the cut); the same
    long burn with no incident answered holds."""
    answered = ExitRateController(CONFIG)
    settle(answered, 1000, 75)
    rate = answered.recommend(healthy(75, 1000, burn_short=20, burn_long=20, latency_p95=1.5)).rate
    t, answers = 90.0, []
    while t < 75 + CONFIG.long_window:
        rec = answered.recommend(healthy(t, rate, burn_long=10, utilisation=0.3))
        rate = rec.rate
        answers.append(rec)
        t += 15
    assert any(a.action == "increase" for a in answers)
    assert not any("probe limit" in a.reason for a in answers)

    unexplained = ExitRateController(CONFIG)
    rate = settle(unexplained, 1000, 75, utilisation=0.92)
    rec = unexplained.recommend(healthy(75, rate, burn_long=10, utilisation=0.3))
    assert rec.action == "hold"
    assert rec.reason == "burn 10x over 5m above the probe limit 6x"


def _early_run(start: float, until: float) -> list[Recommendation]:
    """Answers to a rise from ``start`` under an 80 s / 0.9 lag, capacity 4,000/min."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True, admission_lag_spread=0.5))
    rate, t, answers = start, 0.0, []
    while t < until:
        rec = controller.recommend(healthy(t, rate, utilisation=_rising(t, rate, 4000, 80, 0.9)))
        answers.append(rec)
        rate = rec.rate
        t += 15
    return answers


def test_an_early_step_goes_to_the_target_share_of_the_early_estimate() -> None:
    """From half the capacity the early step is one multiplicative step to 92% of what the
    readings agree on (+84%), not a doubling and not a wait."""
    answers = _early_run(2000, 300)
    first = next(a for a in answers if a.action == "increase")
    assert first.rate == pytest.approx(0.92 * 4000)
    assert first.reason.endswith(
        "utilisation still rising, the readings so far put the capacity at ~4,000/min "
        "(lag ~1m20s): +84%"
    )


def test_an_early_estimate_with_little_headroom_waits_for_the_readings() -> None:
    """Near the target an early step of under 10% is not worth the risk of a lag fitted to a
    rise: the controller waits for the readings to settle."""
    answers = _early_run(3600, 600)
    assert all(a.action == "hold" for a in answers)
    assert answers[-1].reason.startswith("utilisation 0.90 in the hold band")


def _load(t: float, rates: list[tuple[float, float]], capacity: float) -> float:
    """The utilisation at ``t`` of the rates admitted since each ``(since, rate)`` (readings
    30 s old over a 10 s window, an 80 s / 0.9 log-normal lag to checkout)."""
    end, seen = t - 30, 0.0
    for k in range(5):
        at = end - 10 * (k + 0.5) / 5
        for i, (since, rate) in enumerate(rates):
            until = rates[i + 1][0] if i + 1 < len(rates) else t
            if since >= at:
                break
            reached = NormalDist().cdf(math.log((at - since) / 80) / 0.9)
            later = NormalDist().cdf(math.log((at - until) / 80) / 0.9) if at > until else 0.0
            seen += rate * (reached - later) / 5
    return seen / capacity


def test_a_later_early_estimate_replaces_one_read_before_the_backend_shrank() -> None:
    """The first early estimate (12,000/min) was read before the backend halved; the next,
    on readings after it, says 6,000. It replaces the first, down as well as up: the
    controller steps to 92% of 6,000 and holds there. Keeping the higher one (only raising
    an early estimate) and smoothing the settled readings from it probed +70% into a
    6,000/min backend."""
    controller = ExitRateController(replace(CONFIG, learn_lag=True, admission_lag_spread=0.5))
    rate, t, rates, answers = 1500.0, 0.0, [(0.0, 1500.0)], []
    while t < 1200:
        capacity = 12_000 if t - 30 < 200 else 6000  # readings are 30 s old
        rec = controller.recommend(
            healthy(t, rate, utilisation=_load(t, rates, capacity), queue_length=500_000)
        )
        answers.append(rec)
        if rec.rate != rate:
            rates.append((t, rec.rate))
        rate, t = rec.rate, t + 15
    steps = [a for a in answers if a.action != "hold"]
    assert [a.action for a in steps] == ["increase", "increase"]
    assert "put the capacity at ~12,000/min" in steps[0].reason
    # early or settled (a fit across the change can find the longest lag best: then the
    # readings are waited for), the second step rests on 6,000, not on the first estimate
    assert "capacity ~6,000/min" in steps[1].reason or "at ~6,000/min" in steps[1].reason
    assert steps[1].capacity_estimate == pytest.approx(6000, rel=0.01)
    assert rate == pytest.approx(0.92 * 6000, rel=0.01)
    assert answers[-1].reason.startswith("utilisation 0.92 in the hold band")


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"burn_short": 3.0, "burn_long": 6.0}, "burn rates at their probe limits"),
        ({"latency_p95": 0.8}, "p95 at the latency margin"),
        ({"latency_p95": 1.5, "latency_threshold": 2.0}, "p95 under 80% of a 2 s threshold"),
        ({"queue_length": 1}, "one user waiting"),
    ],
)
def test_probes_at_the_edges_of_the_hold_bands(changes: dict[str, float], what: str) -> None:
    """The probe limits are inclusive ("at or below"), and one waiting user is demand."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    rec = controller.recommend(healthy(75, rate, **changes))
    assert rec.action == "increase", (what, rec.reason)


def test_an_unknown_queue_holds_and_says_so() -> None:
    """Without the queue length the controller cannot tell demand: it holds, and says why."""
    controller = ExitRateController(CONFIG)
    rate = settle(controller, 1000, 75)
    rec = controller.recommend(healthy(75, rate, queue_length=None))
    assert rec.action == "hold"
    assert rec.reason == "queue length unknown: never increase on missing signals"


@pytest.mark.parametrize("truth", [(30.0, 0.5), (80.0, 0.9), (120.0, 0.5), (160.0, 1.3)])
def test_the_lag_is_fitted_to_the_rise_after_the_room_opens(truth: tuple[float, float]) -> None:
    """Readings rising as users admitted since the opening reach checkout after a log-normal
    lag: within a few minutes the fitted lag is that lag (median and spread), whatever the
    configured one."""
    controller = ExitRateController(
        replace(CONFIG, learn_lag=True, admission_lag_spread=0.5, max_rate=1000)
    )
    t = 0.0
    while t <= 300:
        controller.recommend(healthy(t, 1000, utilisation=_rising(t, 1000, 1500, *truth)))
        t += 15
    assert controller.admission_lag == truth


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_the_hold_at_a_ceiling_says_how_long_ago_it_broke_even_from_time_zero(start: float) -> None:
    """A cut at t=0 (a simulation's clock) held at its ceiling 8m45s later says so, not '0ms'."""
    controller = ExitRateController(CONFIG)
    rates = [(-1000.0, 1000.0)]
    rec = controller.recommend(healthy(start, 1000, latency_p95=1.5))  # latency broke at 1,000/min
    rates.append((start, rec.rate))
    t = start + 15
    while t < start + 540:  # a backend of 1,100/min: busy by the rate 65 s earlier
        behind = [r for at, r in rates if at <= t - 65][-1]
        rec = controller.recommend(healthy(t, rates[-1][1], utilisation=behind / 1100))
        rates.append((t, rec.rate))
        t += 15
    assert rec.action == "hold", rec.reason
    assert rec.reason.endswith("just under where latency or errors broke 8m45s ago"), rec.reason


def test_a_clock_that_steps_back_is_read_as_not_moving() -> None:
    """A wall clock stepped back (NTP) between calls: the controller treats the call as made
    at the previous time, so which rate a later reading reflects is as if time had stood still
    (calls at 0, 100 and 50 s give what calls at 0, 100 and 100 s give)."""

    def run(times: list[float]) -> list[Recommendation]:
        config = replace(CONFIG, admission_lag=0.0, signal_lag=0.0)
        controller = ExitRateController(config)
        out = [
            controller.recommend(healthy(t, r))
            for t, r in zip(times, (600, 1200, 1800), strict=True)
        ]
        out.append(controller.recommend(healthy(100.5, 1800, latency_p95=1.5, observed_at=100.5)))
        return out

    stepped_back, stood_still = run([0.0, 100.0, 50.0]), run([0.0, 100.0, 100.0])
    assert stepped_back[2].time == 100.0
    assert [(r.rate, r.reason) for r in stepped_back] == [(r.rate, r.reason) for r in stood_still]
