"""The controller at the edges the complete mutation run (docs/mutation.md) left open: what
a cut leaves behind (ceilings, bounds), the first reading of a controller, the words of a
ramp during a software fault, readings that must not measure the capacity, and the exact
boundaries of the shares and intervals, each pinned by a test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from onsale_obs.exitrate import ExitRateController
from tests.test_exitrate_controller import CONFIG, healthy, settle

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
