"""What a capacity loss leaves behind in the controller: a cautious first probe after an
overload that shed, and more margin once the capacity has fallen under a rate it had room for.

Both come from the families' tuning seeds: after a drop, the readings right after the
overload under-read the load (users who failed and gave up do not come back), so the first
probe went straight back into a second overload; and on a capacity that wanders, a probe to
0.92 of the estimate is an overload after any fall of more than 8%.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import ExitRateConfig, ExitRateController, Recommendation
from tests.test_exitrate_controller import CONFIG, healthy
from tests.test_exitrate_mutants_edges import _served as _run

#: An overload: both burn windows over the threshold, p95 over its threshold, the backend
#: saturated (a saturated reading measures no capacity).
OVERLOAD = {"burn_short": 20.0, "burn_long": 20.0, "latency_p95": 1.5, "utilisation": 0.99}


def _increases(answers: list[Recommendation]) -> list[Recommendation]:
    return [a for a in answers if a.action == "increase"]


# -- the first probe after shedding --------------------------------------------------------


def _cut_on_a_first_overload(config: ExitRateConfig = CONFIG) -> ExitRateController:
    """The first reading is an overload at 1,000/min: -40% to 600, the capacity bounded by
    the 1,000 where latency broke (no estimate before it, so no loss is counted)."""
    controller = ExitRateController(config)
    rec = controller.recommend(healthy(0, 1000, **OVERLOAD))
    assert (rec.action, rec.rate, rec.capacity_estimate) == ("decrease", 600, 1000)
    assert "from now on" not in rec.reason
    return controller


def test_the_first_probe_after_a_cut_on_errors_steps_up_at_most_a_quarter() -> None:
    """The estimate (1,000) has room for +53% from 600, but the first probe after a cut on
    errors is capped at +25% (750) and says so. The backend turns out to take 2,000: the
    next probe is not capped, it doubles (the largest step)."""
    controller = _cut_on_a_first_overload()
    answers = _run(controller, [(-1000, 1000), (0, 600)], 2000, 15, 600)
    ups = _increases(answers)
    assert len(ups) >= 2, [a.reason for a in answers]
    assert ups[0].rate == pytest.approx(750)
    assert ups[0].reason.endswith(", the first step after shedding at most +25%: +25%")
    assert ups[1].rate == pytest.approx(1500)
    assert "after shedding" not in ups[1].reason


def test_a_cut_on_latency_alone_leaves_the_first_probe_uncapped() -> None:
    """No errors, only latency over its threshold: nothing was shed, so nothing under-reads
    the load; the first probe from 900 on a backend of 2,000 steps by more than a quarter."""
    controller = ExitRateController(CONFIG)
    rec = controller.recommend(healthy(0, 1000, latency_p95=1.5, utilisation=0.99))
    assert (rec.action, rec.rate) == ("decrease", 900)
    answers = _run(controller, [(-1000, 1000), (0, 900)], 2000, 15, 600)
    ups = _increases(answers)
    assert ups, [a.reason for a in answers]
    assert ups[0].rate > 900 * 1.25 + 1, ups[0].reason
    assert "after shedding" not in ups[0].reason


def test_the_return_after_a_software_fault_is_not_capped() -> None:
    """An overload cut (errors with latency) whose errors then go on with p95 fine and the
    backend idle is a software fault: the burn was the fault's, so the ramp back toward the
    rate before it is not the cautious first step after shedding."""
    controller = ExitRateController(CONFIG)
    for t in range(0, 120, 15):
        controller.recommend(healthy(t, 1000, utilisation=0.5))
    cut = controller.recommend(healthy(120, 1000, **OVERLOAD))
    assert (cut.action, cut.rate) == ("decrease", 600)
    answers = _run(
        controller,
        [(-1000, 1000), (120, 600)],
        2000,
        135,
        400,
        burn_short=20.0,
        burn_long=20.0,
    )
    ups = _increases(answers)
    assert ups, [a.reason for a in answers]
    assert ups[0].reason.startswith("during a software fault"), ups[0].reason
    # the ceiling 5% under where latency broke, not 600 x 1.25 = 750
    assert ups[0].rate == pytest.approx(950)


# -- more margin after a loss --------------------------------------------------------------


def _held_at(capacity: float, config: ExitRateConfig = CONFIG) -> ExitRateController:
    """Five minutes at 1,000/min on a backend of ``capacity``: the estimate measured."""
    controller = ExitRateController(config)
    answers = _run(controller, [(-1000, 1000)], capacity, 0, 300)
    assert {a.rate for a in answers} == {1000}, [a.reason for a in answers]
    assert answers[-1].capacity_estimate == pytest.approx(capacity)
    return controller


def test_a_loss_under_a_rate_with_room_lowers_the_target_and_says_so() -> None:
    """Held at 1,000/min on a measured 1,100 (0.91: room under saturation), the backend
    breaks: the capacity fell. Probes aim at 0.89 from then on: on the backend's new 800
    the rate climbs to 0.89 x 800 = 712, not 0.92 x 800 = 736."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert cut.action == "decrease"
    assert cut.reason.endswith(
        "; the capacity fell under a rate it had room for: probes aim at 0.89 from now on: -40%"
    )
    answers = _run(controller, [(-1000, 1000), (300, cut.rate)], 800, 315, 1200)
    assert max(a.rate for a in answers) == pytest.approx(0.89 * 800)


def test_each_loss_takes_three_points_down_to_a_floor_of_084() -> None:
    """Losses one after another: 0.89, 0.86, then the floor 0.84 (not 0.83)."""
    controller = _held_at(1100)
    targets = []
    t, rate = 300.0, 1000.0
    for _ in range(3):
        cut = controller.recommend(healthy(t, rate, **OVERLOAD))
        targets.append(cut.reason.split("probes aim at ")[1].split(" ")[0])
        rates = [(t - 1000, rate), (t, cut.rate)]
        # the backend takes the rate it broke at again: measured, held, until the next loss
        _run(controller, rates, rate * 1.1, t + 15, t + 900)
        t, rate = t + 900, rates[-1][1]
    assert targets == ["0.89", "0.86", "0.84"]


def test_a_break_above_saturation_of_the_estimate_is_not_a_loss() -> None:
    """The rate pushed from outside to 1,200/min on a measured 1,100 (1.09: past
    saturation): a break there is the overload the estimate predicted, not a capacity
    that moved, and the target stays 0.92."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1200, **OVERLOAD))
    assert cut.action == "decrease"
    assert "from now on" not in cut.reason


def test_a_target_configured_under_the_floor_is_never_raised_or_lowered() -> None:
    """A team that aims at 0.8 already keeps more margin than the floor: a loss leaves the
    target where it is (and the reason does not claim a change): on the backend's new 800
    the rate climbs to 0.8 x 800 = 640."""
    controller = _held_at(1100, replace(CONFIG, target_utilisation=0.8))
    cut = controller.recommend(healthy(300, 820, **OVERLOAD))
    assert cut.action == "decrease"
    assert "from now on" not in cut.reason, cut.reason
    answers = _run(controller, [(-1000, 820), (300, cut.rate)], 800, 315, 1200)
    assert max(a.rate for a in answers) == pytest.approx(0.8 * 800)


def test_one_incident_counts_one_loss() -> None:
    """Held at 1,000/min on a measured 1,100, the rate is pushed to 1,150 from outside: by
    the estimate that is saturation, cut to 0.92 of it (no loss: the estimate said there was
    no room). Latency breaking 15 s later, under saturation of the estimate, is the same
    incident (a cut within the interval, on more severe evidence): still no loss."""
    controller = _held_at(1100)
    first = controller.recommend(healthy(300, 1150, utilisation=0.9))
    assert first.action == "decrease", first.reason
    assert first.rate < 0.95 * 1100
    again = controller.recommend(healthy(315, first.rate, latency_p95=1.5, utilisation=0.99))
    assert again.action == "decrease", again.reason
    assert "from now on" not in first.reason + again.reason


def test_a_zero_loss_margin_keeps_the_configured_target() -> None:
    """``loss_margin=0``: a team that wants its target kept gets it after a loss too: on
    the backend's new 800 the rate climbs to 0.92 x 800 = 736."""
    controller = _held_at(1100, replace(CONFIG, loss_margin=0.0))
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert "from now on" not in cut.reason, cut.reason
    answers = _run(controller, [(-1000, 1000), (300, cut.rate)], 800, 315, 1200)
    assert max(a.rate for a in answers) == pytest.approx(0.92 * 800)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("loss_margin", 1.0, "expected a share from 0 up to 1 (exclusive)."),
        ("loss_margin", -0.1, "expected a finite number >= 0, got -0.1."),
        ("loss_floor", 0.0, "expected a share in (0, 1]."),
        ("loss_floor", 1.5, "expected a share in (0, 1]."),
        ("loss_floor", 0.02, "expected a floor above utilisation_band 0.02"),
        ("loss_backoff", 1.0, "expected a share from 0 up to 1 (exclusive)."),
        ("loss_backoff", -0.1, "expected a finite number >= 0, got -0.1."),
    ],
)
def test_a_bad_loss_setting_names_the_field(field: str, value: float, expected: str) -> None:
    settings: dict[str, Any] = {field: value}
    with pytest.raises(BadInputError) as caught:
        ExitRateConfig(**settings)
    assert caught.value.field == field
    assert expected in str(caught.value)


def test_latency_breaking_under_a_rate_with_room_is_a_loss_too() -> None:
    """No errors yet, only latency over its threshold at 1,000/min on a measured 1,100: the
    capacity fell as surely as when checkouts fail."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, latency_p95=1.5, utilisation=0.99))
    assert cut.action == "decrease"
    assert "probes aim at 0.89 from now on" in cut.reason, cut.reason


def test_a_cuts_bound_is_not_a_measurement_that_had_room() -> None:
    """Latency broke at 1,000/min before anything was measured: the capacity is only bounded
    by 1,000. Latency breaking again at 900 after the cut interval, still with nothing
    measured, says the bound was loose, not that a measured capacity fell."""
    controller = ExitRateController(CONFIG)
    first = controller.recommend(healthy(0, 1000, latency_p95=1.5, utilisation=0.99))
    assert (first.rate, first.capacity_estimate) == (900, 1000)
    again = controller.recommend(healthy(150, 900, latency_p95=1.5, utilisation=0.99))
    assert again.action == "decrease", again.reason
    assert "from now on" not in first.reason + again.reason


def test_a_capacity_prior_is_not_a_measurement_that_had_room() -> None:
    """A prior of 1,100 from a past on-sale, an overload at 1,000 on the first reading: the
    prior was wrong about today, which is not a capacity seen to fall."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=1100))
    cut = controller.recommend(healthy(0, 1000, **OVERLOAD))
    assert cut.action == "decrease"
    assert "from now on" not in cut.reason


# -- at their edges (mutation survivors) ---------------------------------------------------


def test_a_first_step_of_exactly_a_quarter_is_not_said_to_be_capped() -> None:
    """``max_increase`` 0.25: the step is exactly the cap, so the cap did not bind and the
    reason does not claim it; the reason keeps its whole text."""
    controller = _cut_on_a_first_overload(replace(CONFIG, max_increase=0.25))
    answers = _run(controller, [(-1000, 1000), (0, 600)], 2000, 15, 600)
    ups = _increases(answers)
    assert ups, [a.reason for a in answers]
    assert ups[0].rate == pytest.approx(750)
    assert ups[0].reason.startswith("healthy (burn 0x, p95 500ms), 50,000 waiting, "), ups[0]
    assert "after shedding" not in ups[0].reason


def test_the_capped_step_keeps_the_whole_reason() -> None:
    controller = _cut_on_a_first_overload()
    ups = _increases(_run(controller, [(-1000, 1000), (0, 600)], 2000, 15, 600))
    assert ups[0].reason == (
        "healthy (burn 0x, p95 500ms), 50,000 waiting, utilisation 0.60 < 0.90 "
        "(capacity ~1,000/min), the first step after shedding at most +25%: +25%"
    )


def test_a_loss_keeps_the_whole_reason_of_the_cut() -> None:
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert cut.reason.startswith("burn 20x/20x over 1m/5m >= 14.4x, latency p95 1.5s > 1s")


def test_a_break_at_exactly_saturation_of_the_estimate_had_room() -> None:
    """``saturation`` 1.0: a rate exactly at the measured capacity is still under
    saturation (inclusive), so latency breaking there is a loss. No utilisation in the
    breaking reading, so the estimate is the one measured before it."""
    controller = _held_at(1100, replace(CONFIG, saturation=1.0))
    capacity = controller.capacity_estimate
    assert capacity is not None
    cut = controller.recommend(
        healthy(300, capacity, burn_short=20.0, burn_long=20.0, latency_p95=1.5, utilisation=None)
    )
    assert cut.action == "decrease", cut.reason
    assert "probes aim at 0.89 from now on" in cut.reason, cut.reason


def test_a_break_exactly_one_cut_interval_after_a_loss_is_a_new_loss() -> None:
    """A cut interval of 180 s after a loss, the capacity measured again in between (1,000):
    a break exactly then is a new incident (inclusive), the second loss."""
    controller = _held_at(1100, replace(CONFIG, decrease_interval=180))
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert "probes aim at 0.89" in cut.reason
    rates: list[tuple[float, float]] = [(-1000, 1000), (300, cut.rate)]
    _run(controller, rates, 1000, 315, 480)
    assert controller.capacity_estimate == pytest.approx(1000)
    again = controller.recommend(healthy(480, rates[-1][1], **OVERLOAD))
    assert again.action == "decrease", again.reason
    assert "probes aim at 0.86 from now on" in again.reason, again.reason


# -- a software fault is not a capacity loss -----------------------------------------------


def test_a_loss_counted_on_a_faults_first_readings_is_taken_back() -> None:
    """Held at 1,000/min on a measured 1,100. The first reading of a fault looks like an
    overload (errors with latency over): cut, and counted a loss (0.89). The next readings
    show errors with p95 fine on an idle backend: a software fault, so the loss was the
    fault's. Once it clears the rate goes back to 1,000 and holds in the band of the
    configured target (0.90..0.95), not of a lowered one (0.87..0.95)."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert "probes aim at 0.89 from now on" in cut.reason
    rates: list[tuple[float, float]] = [(-1000, 1000), (300, cut.rate)]
    during = _run(controller, rates, 1100, 315, 600, burn_short=20.0, burn_long=20.0)
    assert any("software fault" in a.reason for a in during), [a.reason for a in during]
    after = _run(controller, rates, 1100, 600, 1200)
    assert after[0].rate == pytest.approx(1000), after[0].reason
    assert after[-1].reason == "utilisation 0.91 in the hold band 0.90..0.95", after[-1].reason


def test_a_fault_long_after_a_loss_leaves_the_loss() -> None:
    """A real loss at 300 s (0.89 from then on) and, twenty minutes later, a software fault:
    the fault takes back only a loss counted on its own first readings. After it clears, the
    rate holds in the lowered band (0.87..0.95)."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert "probes aim at 0.89 from now on" in cut.reason
    rates: list[tuple[float, float]] = [(-1000, 1000), (300, cut.rate)]
    _run(controller, rates, 1000, 315, 1500)
    during = _run(controller, rates, 1000, 1500, 1800, burn_short=20.0, burn_long=20.0)
    assert any("software fault" in a.reason for a in during), [a.reason for a in during]
    after = _run(controller, rates, 1000, 1800, 2400)
    assert after[-1].reason.endswith("in the hold band 0.87..0.95"), after[-1].reason


def test_latency_during_a_software_fault_is_not_a_loss() -> None:
    """A fault recognised (errors, p95 fine, backend idle); then p95 breaks while it still
    fails (the fault's retries load the backend): cut as an overload, but the capacity did
    not fall: no loss."""
    controller = _held_at(1100)
    held = controller.recommend(healthy(300, 1000, burn_short=20.0, burn_long=20.0))
    assert "software fault" in held.reason, held.reason
    cut = controller.recommend(
        healthy(315, 1000, burn_short=20.0, burn_long=20.0, latency_p95=1.5, utilisation=0.99)
    )
    assert cut.action == "decrease", cut.reason
    assert "from now on" not in cut.reason
    assert cut.rate == pytest.approx(900), cut.reason  # latency's -10%, not a loss's -30%


# -- the cut on a loss ---------------------------------------------------------------------


def test_latency_breaking_under_a_rate_with_room_cuts_at_least_loss_backoff() -> None:
    """Held at 1,000/min on a measured 1,100, latency breaks: the capacity fell, and the
    users admitted before it keep arriving for a browse time. The cut is -30%
    (``loss_backoff``), not latency's -10%, and the reason says why."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, latency_p95=1.5, utilisation=0.99))
    assert cut.rate == pytest.approx(700), cut.reason
    assert cut.reason == (
        "latency p95 1.5s > 1s; the capacity fell under a rate it had room for, cut at "
        "least -30% while the users already admitted arrive: probes aim at 0.89 from now "
        "on: -30%"
    )


BOUNDED = "cut as far as the minimum rate and max_decrease allow"


@pytest.mark.parametrize(
    ("config", "expected", "claim"),
    [
        (replace(CONFIG, loss_backoff=0.0), 900.0, None),  # off: latency's -10%
        (replace(CONFIG, loss_backoff=0.1), 900.0, None),  # the same as latency's: no claim
        (replace(CONFIG, loss_backoff=0.5), 500.0, "cut at least -50%"),
        (replace(CONFIG, loss_backoff=0.9), 300.0, BOUNDED),  # max_decrease 0.7 bounds it
        (replace(CONFIG, loss_backoff=0.9, min_rate=400.0), 400.0, BOUNDED),  # and min_rate
        (replace(CONFIG, min_rate=800.0, safe_rate=900.0), 800.0, BOUNDED),  # the default
    ],
)
def test_the_loss_cut_follows_loss_backoff_within_the_bounds(
    config: ExitRateConfig, expected: float, claim: str | None
) -> None:
    """The cut goes to ``loss_backoff`` under the rate behind the reading, no further than
    ``max_decrease`` and ``min_rate`` allow, and the reason says which one set it (never a
    share the cut did not reach)."""
    controller = _held_at(1100, config)
    cut = controller.recommend(healthy(300, 1000, latency_p95=1.5, utilisation=0.99))
    assert cut.action == "decrease"
    assert cut.rate == pytest.approx(expected), cut.reason
    if claim is None:
        assert ", cut " not in cut.reason, cut.reason
    else:
        assert f"had room for, {claim} while the users already admitted arrive" in cut.reason


def test_the_loss_cut_is_measured_from_the_rate_behind_the_reading() -> None:
    """The room was raised to 1,040/min from outside 10 s before latency broke: the reading
    still reflects the 1,000 admitted a browse time earlier, and the loss is cut 30% under
    that (700), not under the rate just set (728)."""
    controller = _held_at(1100)
    controller.recommend(healthy(290, 1040, utilisation=1000 / 1100))
    cut = controller.recommend(healthy(300, 1040, latency_p95=1.5, utilisation=0.99))
    assert cut.rate == pytest.approx(700), cut.reason
    assert "(readings reflect 1,000/min)" in cut.reason


def test_a_deeper_cut_on_errors_is_kept() -> None:
    """A loss shown by errors: the burn's -40% is already deeper than -30% and stays, and
    the reason does not claim the loss's cut."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert cut.rate == pytest.approx(600)
    assert "cut at least" not in cut.reason


@pytest.mark.parametrize("prior", [None, 1100.0])
def test_a_break_that_is_not_a_loss_is_cut_as_latency_alone(prior: float | None) -> None:
    """Latency breaking on the first reading (nothing measured yet), or under a capacity
    prior from a past on-sale: not a loss, so latency's -10%."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=prior))
    cut = controller.recommend(healthy(0, 1000, latency_p95=1.5, utilisation=0.99))
    assert cut.rate == pytest.approx(900), cut.reason


def test_a_break_above_saturation_is_cut_as_latency_alone() -> None:
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1100, latency_p95=1.5, utilisation=0.99))
    assert cut.action == "decrease"
    assert "cut at least" not in cut.reason, cut.reason


def test_a_fault_recognised_after_a_loss_cut_returns_to_the_rate_before_it() -> None:
    """Latency broke at 1,000/min (a loss: -30% to 700), a clean reading followed, then the
    errors without latency showed it was a software fault. The loss is taken back, and so
    is its cut: once the burn clears the rate returns to 1,000, not to 700."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, latency_p95=1.5, utilisation=0.99))
    assert cut.rate == pytest.approx(700)
    controller.recommend(healthy(315, 700))
    held = controller.recommend(healthy(330, 700, burn_short=20.0, burn_long=20.0))
    assert held.action == "hold", held.reason
    assert held.reason.endswith("back to 1,000/min when it clears"), held.reason
    back = controller.recommend(healthy(345, 700, burn_long=20.0))
    assert back.rate == pytest.approx(1000), back.reason


# -- another event failing on the same service ---------------------------------------------


#: Latency broken on a full backend.
_BROKEN: dict[str, float] = {"latency_p95": 1.5, "utilisation": 0.99}


def _held_for_another_event() -> ExitRateController:
    """At 1,000/min on a measured 1,100, held at t = 300 for another event's failure."""
    controller = _held_at(1100)
    held = controller.recommend(healthy(300, 1000, shared_burn=14.4, **_BROKEN))
    assert held.action == "hold", held.reason
    return controller


def test_latency_while_another_event_fails_holds() -> None:
    """Events sharing checkout: another event's checkouts fail (the service's burn is at
    the alert threshold, this event's own is clean) and their retries load the backend.
    Latency breaking here is the other event's to answer: this event holds (no cut, no
    loss counted, the target stays 0.92)."""
    controller = _held_at(1100)
    held = controller.recommend(
        healthy(300, 1000, latency_p95=1.5, utilisation=0.99, shared_burn=14.4)
    )
    assert (held.action, held.rate) == ("hold", 1000), held.reason
    assert held.reason == (
        "latency p95 1.5s > 1s; another event on the service is failing (the service's "
        "on-sale burn 14.4x, this event's own 0x, within 3x): its retries load the backend, "
        "not this rate: hold"
    )


@pytest.mark.parametrize(
    ("own", "rate"),
    [
        ({}, 900),  # the service's burn cleared: latency's -10%
        ({"shared_burn": 20.0, "burn_short": 15.0, "burn_long": 15.0}, 600),  # its own shed
    ],
)
def test_a_break_right_after_holding_for_another_event_is_no_loss(
    own: dict[str, float], rate: float
) -> None:
    """Held for another event's failure, the next reading is this event's to answer (the
    service's burn cleared while latency still shows the retries, or this event's own
    requests now shed): it cuts, but what broke was the other event's load, so no capacity
    loss is counted within a cut interval (120 s here) of the hold: no "capacity fell", no
    lower target for the probes."""
    controller = _held_for_another_event()
    cut = controller.recommend(healthy(315, 1000, **(_BROKEN | own)))
    assert (cut.action, cut.rate) == ("decrease", rate), cut.reason
    assert cut.reason.startswith("burn 15x/15x" if own else "latency p95 1.5s > 1s"), cut.reason
    assert cut.reason.endswith(
        "; held for another event's failure 15s ago: not counted as a capacity loss: "
        f"{(rate - 1000) / 10:.0f}%"
    ), cut.reason


def test_a_break_a_cut_interval_after_holding_for_another_event_is_a_loss() -> None:
    """The memory of the hold lasts one cut interval (120 s here): a break at a rate with
    room after it is a capacity loss again."""
    controller = _held_for_another_event()
    loss = controller.recommend(healthy(420, 1000, **_BROKEN))
    assert "the capacity fell under a rate it had room for" in loss.reason, loss.reason
    assert "another event" not in loss.reason


@pytest.mark.parametrize(("own", "action"), [(3.0, "hold"), (5.0, "decrease")])
def test_own_requests_failing_past_a_probes_limit_cut_while_another_fails(
    own: float, action: str
) -> None:
    """This event's own burn at a probe's limit (3x) still holds for the other event's
    failure; at 5x (over it, under the alert threshold) the shared backend is shedding its
    requests too, so it cuts (as latency, no loss counted)."""
    controller = _held_at(1100)
    answer = controller.recommend(
        healthy(300, 1000, latency_p95=1.5, utilisation=0.99, shared_burn=20.0, burn_short=own)
    )
    assert answer.action == action, answer.reason
    if action == "decrease":
        assert answer.rate == 900
        assert answer.reason == (
            "latency p95 1.5s > 1s; another event on the service is failing: not counted as "
            "a capacity loss: -10%"
        )
    else:
        assert "this event's own 3x, within 3x" in answer.reason


def test_a_missing_signal_while_another_fails_is_not_held_for_it() -> None:
    """Latency not known and the rate at its estimate while another event fails: the hold
    for the other's failure needs a complete reading; without one the usual rules decide
    (here a saturation cut), as they did before the hold existed."""
    controller = _held_at(1100)
    answer = controller.recommend(
        healthy(300, 1100, latency_p95=None, utilisation=0.99, shared_burn=20.0)
    )
    assert answer.action == "decrease", answer.reason
    assert "another event" not in answer.reason


def test_a_healed_neighbour_leaves_the_target_where_it_was() -> None:
    """After holding through another event's failure, the backend takes 1,300: the hold
    band is still 0.92's (the other event's retries were no loss of this event's)."""
    controller = _held_for_another_event()
    answers = _run(controller, [(-1000, 1000)], 1300, 315, 2400)
    assert answers[-1].reason.endswith("in the hold band 0.90..0.95"), answers[-1].reason


@pytest.mark.parametrize(
    "changes",
    [
        {"shared_burn": 14.3},  # the service under the threshold
        {"shared_burn": math.nan},  # not known
        {"shared_burn": math.inf},  # not a reading either
        {"shared_burn": 20.0, "burn_short": 14.4, "burn_long": 14.4},  # its own at the threshold
        {"shared_burn": 20.0, "burn_short": None},  # its own not known: not innocent
        {"shared_burn": 20.0, "burn_short": 20.0, "burn_long": 20.0},  # this event fails too
    ],
)
def test_a_loss_is_a_loss_unless_only_other_events_fail(changes: dict[str, float]) -> None:
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, latency_p95=1.5, utilisation=0.99, **changes))
    assert "probes aim at 0.89 from now on" in cut.reason, cut.reason
    assert "another event" not in cut.reason


@pytest.mark.parametrize("p95", [1.5, 0.5])
def test_a_saturated_rate_holds_too_while_another_fails(p95: float) -> None:
    """Past saturation of the estimate (1,100 on a measured 1,100), with latency broken or
    not, a reading this event would cut on its own: while another event fails, its retries
    are what filled the backend, and this event holds; without the other's failure it
    cuts."""
    for shared, action in ((20.0, "hold"), (None, "decrease")):
        controller = _held_at(1100)
        answer = controller.recommend(
            healthy(300, 1100, latency_p95=p95, utilisation=0.99, shared_burn=shared)
        )
        assert answer.action == action, (shared, answer.reason)
        assert ("another event" in answer.reason) == (shared is not None), answer.reason


# -- the cap and the shared-backend guard --------------------------------------------------


def test_a_first_step_held_back_by_the_guard_leaves_the_cap_for_the_next() -> None:
    """The first increase after a cut on errors is held back from outside (the shared-
    backend guard turns it into a hold): the rate stays at 600, so the next increase is
    still the first step after shedding, capped at +25%."""
    controller = _cut_on_a_first_overload()
    rates: list[tuple[float, float]] = [(-1000, 1000), (0, 600)]
    vetoed = 0
    applied: list[Recommendation] = []
    t = 15.0
    while t < 900 and not applied:
        behind = [rate for at, rate in rates if at <= t - 65][-1]
        rec = controller.recommend(healthy(t, rates[-1][1], utilisation=behind / 2000))
        if rec.action == "increase" and not vetoed:
            vetoed += 1  # the guard's hold: the room keeps its rate
        elif rec.action == "increase":
            applied.append(rec)
            rates.append((t, rec.rate))
        t += 15
    assert vetoed == 1
    assert applied, "no increase after the held one"
    assert applied[0].rate == pytest.approx(750), applied[0].reason
    assert "the first step after shedding at most +25%" in applied[0].reason


def test_a_rate_set_lower_from_outside_after_the_cut_keeps_the_cap() -> None:
    """After the cut to 600 the room is set to 500 from outside (an operator): the rate did
    not rise above where the cut left it, so the first step is still capped (+25%: 625)."""
    controller = _cut_on_a_first_overload()
    answers = _run(controller, [(-1000, 1000), (0, 600), (15, 500)], 2000, 15, 600)
    ups = _increases(answers)
    assert ups, [a.reason for a in answers]
    assert ups[0].rate == pytest.approx(625), ups[0].reason
    assert "the first step after shedding at most +25%" in ups[0].reason


def test_a_fault_recognised_exactly_one_cut_interval_after_a_loss_leaves_it() -> None:
    """A loss at 300 s; errors with latency over go on (the same incident, held); the fault
    is recognised at 420 s, exactly the cut interval (120 s) later: the loss is older than
    the fault's first readings could explain, so it stays (the band after it is 0.87..)."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    assert "probes aim at 0.89 from now on" in cut.reason
    for t in range(315, 420, 15):
        held = controller.recommend(healthy(t, cut.rate, **OVERLOAD))
        assert held.action == "hold", held.reason
    fault = controller.recommend(healthy(420, cut.rate, burn_short=20.0, burn_long=20.0))
    assert "software fault" in fault.reason, fault.reason
    rates: list[tuple[float, float]] = [(-1000, 1000), (300, cut.rate)]
    _run(controller, rates, 1100, 435, 600, burn_short=20.0, burn_long=20.0)
    after = _run(controller, rates, 1100, 600, 1200)
    assert after[-1].reason.endswith("in the hold band 0.87..0.95"), after[-1].reason


def test_a_second_fault_after_a_loss_was_taken_back_is_read_as_a_fault() -> None:
    """The loss taken back by a first fault; once it cleared, a second fault later is read
    as a fault again (nothing left to take back)."""
    controller = _held_at(1100)
    cut = controller.recommend(healthy(300, 1000, **OVERLOAD))
    rates: list[tuple[float, float]] = [(-1000, 1000), (300, cut.rate)]
    _run(controller, rates, 1100, 315, 600, burn_short=20.0, burn_long=20.0)
    _run(controller, rates, 1100, 600, 1200)
    again = _run(controller, rates, 1100, 1200, 1300, burn_short=20.0, burn_long=20.0)
    assert "software fault" in again[0].reason, again[0].reason


def test_the_cap_follows_later_cuts_down() -> None:
    """After the cut on errors (600), three latency cuts take the rate to 437: the capped
    first step (+25%, 547) is above where the *last* cut left it, though under the first
    cut's 600, so the next step is not capped (x2 on a backend of 2,000)."""
    controller = _cut_on_a_first_overload()
    rates: list[tuple[float, float]] = [(-1000, 1000), (0, 600)]
    for t in (150, 300, 450):
        cut = controller.recommend(healthy(t, rates[-1][1], latency_p95=1.5, utilisation=0.99))
        assert cut.action == "decrease", cut.reason
        rates.append((t, cut.rate))
    assert rates[-1][1] == pytest.approx(437.4)
    ups = _increases(_run(controller, rates, 2000, 465, 1500))
    assert ups[0].rate == pytest.approx(437.4 * 1.25), ups[0].reason
    assert "after shedding" in ups[0].reason
    assert ups[1].rate == pytest.approx(437.4 * 1.25 * 2), ups[1].reason


# -- a full reading of a known rate outvotes an estimate read high --------------------------


def _held_at_the_target_of(
    capacity: float,
) -> tuple[ExitRateController, list[tuple[float, float]]]:
    """Ten minutes on a backend of ``capacity``: the estimate learns it and the rate climbs
    to 0.92 of it, where it holds. Returns the controller and the room's (time, rate)
    history, for ``_run`` to go on from."""
    controller = ExitRateController(CONFIG)
    rates: list[tuple[float, float]] = [(-1000, 1000)]
    answers = _run(controller, rates, capacity, 0, 600)
    assert controller.capacity_estimate == pytest.approx(capacity)
    assert answers[-1].rate == pytest.approx(0.92 * capacity), answers[-1].reason
    return controller, rates


def test_a_full_reading_of_a_known_rate_cuts_though_the_estimate_has_room() -> None:
    """The backend turns out to take 1,000/min, not the 2,000 learnt (an autoscaled tier
    read across its step, a tier that went away without latency): every reading is now
    full. Saturated readings teach the estimate nothing, so by it 1,840 is still at 0.92
    and would be held for as long as the readings stay full; the full reading of a rate
    the controller knows cuts at once, to 0.92 of that rate, and bounds the estimate."""
    controller, rates = _held_at_the_target_of(2000)
    cut = _run(controller, rates, 1000, 600, 615)[0]
    assert cut.action == "decrease"
    assert cut.rate == pytest.approx(0.92 * 1840)
    assert cut.reason == (
        "full utilisation at 1,840/min (the estimate read high): load 1.00 >= 0.95: -8%"
    )
    assert controller.capacity_estimate == pytest.approx(1840)


def test_a_full_reading_of_a_rate_over_the_estimate_leaves_the_estimate_in_charge() -> None:
    """After that cut (the estimate bounded to 1,840/min), an operator sets 2,000/min within
    the cut interval. Once it may cut again the readings are full of a known 2,000/min: the
    estimate did not read high this time (the rate is over it), so the cut is the
    estimate's own, to 0.92 of 1,840, not to 0.92 of the 2,000 the reading shows."""
    controller, rates = _held_at_the_target_of(2000)
    _run(controller, rates, 1000, 600, 615)
    rates.append((615, 2000))  # the operator's rate
    answers = _run(controller, rates, 1000, 615, 735)
    assert [a.action for a in answers[:-1]] == ["hold"] * 7, [a.reason for a in answers]
    cut = answers[-1]
    assert cut.rate == pytest.approx(0.92 * 1840)
    assert cut.reason == "utilisation 1.09 >= 0.95: -15%"


def test_a_saturated_reading_short_of_full_leaves_the_estimate_in_charge() -> None:
    """The same estimate and rate, the backend 1,900/min: readings of 0.97 are saturated
    but not full, and an estimate that says 0.92 holds (its wobble is not a cut)."""
    controller, rates = _held_at_the_target_of(2000)
    after = _run(controller, rates, 1900, 600, 660)
    assert [a.action for a in after] == ["hold"] * 4, [a.reason for a in after]


def test_a_full_reading_waits_for_the_rate_behind_it_to_be_known() -> None:
    """A capacity prior of 2,000 and full readings from the first one at 1,000/min: the
    readings belong to admissions from before the controller's first rate until a lag has
    passed, so it holds; once the rate behind them is known it cuts, naming the prior."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=2000))
    answers = [controller.recommend(healthy(t, 1000, utilisation=1.0)) for t in range(0, 90, 15)]
    assert [a.action for a in answers[:5]] == ["hold"] * 5, [a.reason for a in answers]
    assert (answers[5].action, answers[5].rate) == ("decrease", 920), answers[5].reason
    assert answers[5].reason.startswith("full utilisation at 1,000/min (the capacity prior")


def test_a_full_reading_while_another_event_fails_leaves_the_estimate_in_charge() -> None:
    """The same full readings while the service's on-sale requests, every event together,
    burn at the alert threshold and this event's own do not: the failing event's retries
    fill the shared backend, and this event's estimate is not what read high, so it holds
    (the failing event's own controller answers its fault). Its own burn at the threshold
    too, or not known, is not another event's failure: it cuts."""
    for own, action in ((0.0, "hold"), (14.4, "decrease"), (math.nan, "decrease")):
        controller, rates = _held_at_the_target_of(2000)
        after = _run(controller, rates, 1000, 600, 615, shared_burn=20.0, burn_short=own)
        assert after[0].action == action, (own, after[0].reason)
        assert after[0].reason.startswith("full utilisation") == (action == "decrease")


def test_the_ceiling_of_a_full_reading_cut_lifts_on_the_estimate_it_leaves() -> None:
    """After the cut on a backend of 1,800 (from 1,840 to 1,693, the ceiling 5% under
    1,840), the backend takes 2,100: the ceiling is lifted by growth past the estimate the
    cut left (1,840), not past the 2,000 it found read high, so the probes pass it within
    two minutes instead of waiting out the ceiling's ten-minute memory."""
    controller, rates = _held_at_the_target_of(2000)
    cut = _run(controller, rates, 1800, 600, 615)[0]
    assert cut.reason.startswith("full utilisation at 1,840/min"), cut.reason
    after = _run(controller, rates, 2100, 615, 900)
    assert max(a.rate for a in after) > 0.95 * 1840 * 1.05, [a.reason for a in after]


def test_a_full_reading_during_this_events_own_fault_is_the_faults() -> None:
    """A software fault (burn over the threshold in both windows, p95 fine) and then full
    readings: the failing checkouts' retries fill the backend, which says nothing about the
    estimate, so the controller holds through its fault rather than cutting as if the
    estimate had read high."""
    controller, rates = _held_at_the_target_of(2000)
    rate = rates[-1][1]
    fault = {"burn_short": 20.0, "burn_long": 20.0}
    for t, busy in ((600, 0.9), (615, 0.9), (630, 1.0), (645, 1.0), (660, 1.0)):
        rec = controller.recommend(healthy(t, rate, utilisation=busy, **fault))
        assert rec.action == "hold", (t, rec.reason)
        assert "read high" not in rec.reason


def test_a_saturation_cut_that_bounds_the_estimate_anchors_its_ceiling_there() -> None:
    """Any saturation cut, not only a full reading's: 0.99 busy at 1,920/min (set from
    outside over the 1,840 the estimate of 2,000 allows) cuts to 1,840 and bounds the
    estimate at 1,859 (1,840 / 0.99). When the backend then takes 2,100, growth past 1,859
    lifts the ceiling (5% under 1,840) within minutes and a probe passes 1,840; anchored at
    the 2,000 the reading showed high, the ceiling held the rate for its ten-minute memory."""
    controller, rates = _held_at_the_target_of(2000)
    rates.append((600.0, 1920.0))
    cut = controller.recommend(healthy(600, 1920, utilisation=0.99))
    assert (cut.action, cut.rate) == ("decrease", 1840), cut.reason
    assert controller.capacity_estimate == pytest.approx(1840 / 0.99)
    rates.append((600.0, cut.rate))
    after = _run(controller, rates, 2100, 615, 900)
    assert max(a.rate for a in after) > 1840 * 1.01, [a.reason for a in after]


# -- a utilisation that under-reads the bottleneck ------------------------------------------


def _broke_at(
    utilisation: float, capacity: float = 2000, **changes: float
) -> tuple[ExitRateController, Recommendation]:
    """Held at 1,000/min (``max_rate``) on a measured ``capacity`` (utilisation 0.5 on the
    default 2,000), then a latency break at ``utilisation``: a capacity loss, the estimate
    having said there was room."""
    controller = _held_at(capacity, replace(CONFIG, max_rate=1000))
    rec = controller.recommend(
        healthy(300, 1000, latency_p95=1.5, utilisation=utilisation, **changes)
    )
    assert rec.action == "decrease"
    assert "the capacity fell under a rate it had room for" in rec.reason
    return controller, rec


def _after_cut(controller: ExitRateController, rate: float, utilisation: float) -> list[str]:
    """Actions of healthy readings at ``utilisation`` from the cut until well past its lag."""
    actions: list[str] = []
    for t in range(330, 900, 15):
        rec = controller.recommend(healthy(t, rate, utilisation=utilisation))
        actions.append(rec.action)
        rate = rec.rate
    return actions


def test_a_capacity_loss_at_a_low_utilisation_reads_the_utilisation_against_it() -> None:
    """Latency broke at a rate the estimate had room for while the utilisation read 0.6: the
    signal under-reads the bottleneck (the service's CPU, a database filling), so 0.6 counts
    as full from then on and 0.55 is near the target: no probe back into the overload."""
    controller, rec = _broke_at(0.6)
    assert rec.reason.endswith(
        "the capacity fell under a rate it had room for, at utilisation 0.60: the utilisation "
        "under-reads the bottleneck, 0.60 counts as full from now on, cut at least -30% while "
        "the users already admitted arrive: probes aim at 0.89 from now on: -30%"
    ), rec.reason
    assert "increase" not in _after_cut(controller, rec.rate, 0.55)


@pytest.mark.parametrize(("utilisation", "capacity"), [(0.85, 2000), (0.35, 4000)])
def test_a_loss_at_a_usual_or_an_idle_utilisation_does_not_recalibrate(
    utilisation: float, capacity: float
) -> None:
    """A break at 0.85 is a knee a signal of the bottleneck has; one at 0.35 (held healthy
    at 0.25 before it) is no knee of any utilisation: neither changes how it is read, and
    0.3 leaves room to probe."""
    controller, rec = _broke_at(utilisation, capacity)
    assert "under-reads" not in rec.reason
    assert "increase" in _after_cut(controller, rec.rate, 0.3)


@pytest.mark.parametrize(
    ("changes", "then", "increases"),
    [
        ({}, 0.55, True),  # the level rises to 0.7: 0.55 reads 0.79, room to probe
        ({"latency_p95": 1.2}, 0.55, True),  # whatever the reading's health
        ({}, 0.66, False),  # to 0.7, not back to as exported: 0.66 reads 0.94
        ({"utilisation": 0.99, "latency_p95": 3.0}, 0.66, True),  # an overload reading full:
        # the break was a reading across a capacity fall, read as exported again
    ],
)
def test_a_reading_past_the_recalibrated_level_raises_it(
    changes: dict[str, float], then: float, increases: bool
) -> None:
    """After the break at 0.6, a reading at 0.7 says the signal reads higher than 0.6 at
    full: the level rises to the reading (to 1.0 when an overload reads full)."""
    controller, rec = _broke_at(0.6)
    controller.recommend(healthy(315, rec.rate, **{"utilisation": 0.7, **changes}))
    assert ("increase" in _after_cut(controller, rec.rate, then)) is increases


def test_a_break_at_a_load_already_read_healthy_does_not_recalibrate() -> None:
    """Held healthy at utilisation 0.5 for five minutes, latency breaks at 0.5: the knee
    cannot sit at a load the service already took well (a fault's first reading, a reading
    from before a step the latency shows), so 0.5 is not taken as full."""
    controller, rec = _broke_at(0.5)
    assert "under-reads" not in rec.reason
    assert "increase" in _after_cut(controller, rec.rate, 0.55)


def test_the_level_is_set_once_a_later_loss_does_not_lower_it() -> None:
    """Recalibrated at 0.6, a later loss at a reading under 0.8 (0.45 raw) does not set the
    level lower again (each loss would ratchet it down and cut the target 3 points)."""
    controller, rec = _broke_at(0.6)
    rate = rec.rate
    for t in range(315, 900, 15):  # a reading at 0.42 raw is 0.7 of the level: room
        rate = controller.recommend(healthy(t, rate, utilisation=0.42)).rate
    again = controller.recommend(healthy(900, rate, latency_p95=1.5, utilisation=0.45))
    assert again.action == "decrease"
    assert "under-reads" not in again.reason


def test_a_loss_taken_back_as_a_fault_takes_its_recalibration_back() -> None:
    """Latency breaks at utilisation 0.6 (a loss, recalibrated), and the next reading shows
    errors without latency at 0.45: a software fault, whose first reading the break was.
    The loss is taken back and so is the level: after the fault 0.55 reads as exported."""
    controller, rec = _broke_at(0.6)
    assert "under-reads" in rec.reason
    held = controller.recommend(
        healthy(315, rec.rate, burn_short=20.0, burn_long=20.0, utilisation=0.45)
    )
    assert "software fault" in held.reason, held.reason
    answers = _through_a_fault(controller, held.rate, 0.55)
    assert not any(a.action == "decrease" for a in answers), [a.reason for a in answers]


def test_a_break_with_errors_is_no_under_read_a_fault_at_the_same_load_is_held() -> None:
    """A fault's first reading shows errors and a latency blip at utilisation 0.6: counted
    as a loss, but not taken as the signal's full (read against 0.6, the fault's next
    readings at 0.6 would look saturated, and the fault would be cut as an overload)."""
    controller, rec = _broke_at(0.6, burn_short=20.0, burn_long=20.0)
    assert "under-reads" not in rec.reason
    held = controller.recommend(
        healthy(315, rec.rate, burn_short=20.0, burn_long=20.0, utilisation=0.6)
    )
    assert "software fault" in held.reason, held.reason
    answers = _through_a_fault(controller, held.rate, 0.6)
    assert not any(a.action == "decrease" for a in answers), [a.reason for a in answers]


def _through_a_fault(
    controller: ExitRateController, rate: float, utilisation: float
) -> list[Recommendation]:
    """Readings of a fault failing 20x until 600 s, then clear, at ``utilisation``."""
    answers: list[Recommendation] = []
    for t in range(330, 1200, 15):
        clear = t >= 600
        answer = controller.recommend(
            healthy(
                t,
                rate,
                burn_short=0.0 if clear else 20.0,
                burn_long=0.5 if clear else 20.0,
                utilisation=utilisation,
            )
        )
        answers.append(answer)
        rate = answer.rate
    return answers


def _measured_after_the_break() -> tuple[ExitRateController, float, Recommendation]:
    """Recalibrated at 0.6, then ten minutes at the rate the cut left with the utilisation
    at 0.45 raw (0.75 of the level): the estimate is measured again."""
    controller, rec = _broke_at(0.6)
    rate, answer = rec.rate, rec
    for t in range(315, 915, 15):
        answer = controller.recommend(healthy(t, rate, utilisation=0.45))
        rate = answer.rate
    assert answer.capacity_estimate is not None
    return controller, rate, answer


def test_a_new_level_rescales_what_was_read_against_the_old_one() -> None:
    """Everything kept in the old level's units moves to the new one's: the utilisation
    samples (x 0.6/0.7), the measured estimate and the ceiling's reference estimate (x 0.7/0.6,
    so a change of units alone lifts no ceiling); a cut's bound, a rate, would be kept."""
    controller, _, before = _measured_after_the_break()
    samples = list(controller._samples)
    ceiling = controller._ceiling_capacity
    assert samples
    assert ceiling is not None
    assert before.capacity_estimate is not None
    controller._rescale(0.7)
    assert [at for at, _ in controller._samples] == [at for at, _ in samples]
    assert [u for _, u in controller._samples] == pytest.approx([u * 0.6 / 0.7 for _, u in samples])
    assert controller.capacity_estimate == pytest.approx(before.capacity_estimate * 0.7 / 0.6)
    assert controller._ceiling_capacity == pytest.approx(ceiling * 0.7 / 0.6)
