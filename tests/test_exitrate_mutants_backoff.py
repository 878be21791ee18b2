"""The controller's cuts at their edges and in their exact words: survivors of the complete
mutation run (docs/mutation.md) in ``_backoff``, each pinned by a test."""

from __future__ import annotations

import pytest

from onsale_obs.exitrate import ExitRateController, Recommendation
from tests.test_exitrate_controller import CONFIG, healthy


def test_a_cut_never_goes_past_max_decrease_and_says_what_is_sustained() -> None:
    """Checkouts failing twice over (retries): the share counts as 0.90 at most, the reason
    says what the backend sustains, and the cut stops at max_decrease (-70%)."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20_000, burn_long=20_000, latency_p95=5.0)
    )
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(300)
    assert rec.reason == (
        "burn 20,000x/20,000x over 1m/5m >= 14.4x (0.90 failing: the backend sustains "
        "~100/min), latency p95 5s > 1s: -70%"
    )


def test_latency_exactly_at_its_threshold_does_not_cut() -> None:
    """p95 at (not over) the threshold is within the SLO: no latency cut."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, latency_p95=1.0))
    assert rec.action == "hold", rec.reason


def test_a_latency_cut_leaves_the_rate_it_broke_at_as_a_bound() -> None:
    """Latency over its threshold alone: -10%, and the capacity is at most the rate behind
    the reading."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, latency_p95=1.5))
    assert (rec.action, rec.rate, rec.capacity_estimate) == ("decrease", 900, 1000)


def test_a_saturated_reading_bounds_the_capacity_by_the_rate_over_the_utilisation() -> None:
    """98% busy at 1,000/min and no estimate yet: the capacity is at most 1,000/0.98, and the
    rate goes to the target share of it."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, utilisation=0.98))
    assert rec.action == "decrease"
    assert rec.reason == "utilisation 0.98 >= 0.95: -6%"
    assert rec.capacity_estimate == pytest.approx(1000 / 0.98)
    assert rec.rate == pytest.approx(1000 * 0.92 / 0.98)


def _cut_after_two_minutes(start: float) -> tuple[ExitRateController, Recommendation]:
    """Two healthy minutes at ``start``, then an overload (burn and latency): -40%."""
    controller = ExitRateController(CONFIG)
    for t in range(0, 120, 15):
        controller.recommend(healthy(t, start))
    rec = controller.recommend(healthy(120, start, burn_short=20, burn_long=20, latency_p95=1.5))
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(0.6 * start)
    return controller, rec


def test_a_second_cut_within_the_interval_needs_the_rate_well_above_what_is_sustained() -> None:
    """15 s after a cut to 600/min, 38% failing of the 1,000/min behind the reading says the
    backend sustains ~620, whose target share (570) is within 10% of 600: no second cut yet."""
    controller, cut = _cut_after_two_minutes(1000)
    rec = controller.recommend(
        healthy(135, cut.rate, burn_short=3800, burn_long=3800, latency_p95=1.5)
    )
    assert (rec.action, rec.rate) == ("hold", 600), rec.reason
    assert rec.reason.endswith("; cut 15s ago, next cut allowed after 2m")


def test_a_second_cut_on_measured_shedding_stops_at_max_decrease() -> None:
    """90% failing: the backend sustains a tenth of the load; the second cut goes there but
    no further than max_decrease of the current rate, and says why it came early."""
    controller, cut = _cut_after_two_minutes(1000)
    rec = controller.recommend(
        healthy(135, cut.rate, burn_short=9000, burn_long=9000, latency_p95=1.5)
    )
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(180)
    assert rec.reason.endswith(
        "(readings reflect 1,000/min); still above what the backend sustains, cut again: -70%"
    )


def test_a_second_cut_on_measured_shedding_stops_at_the_minimum_rate() -> None:
    """The same from 500/min: max_decrease would allow 90/min, the minimum is 100."""
    controller, cut = _cut_after_two_minutes(500)
    rec = controller.recommend(
        healthy(135, cut.rate, burn_short=9000, burn_long=9000, latency_p95=1.5)
    )
    assert (rec.action, rec.rate) == ("decrease", 100)


def test_a_later_cut_lowers_the_bound_to_the_rate_behind_it() -> None:
    """A latency cut leaves 1,000 as the bound; the next one, reflecting 900/min, lowers it."""
    controller = ExitRateController(CONFIG)
    first = controller.recommend(healthy(0, 1000, latency_p95=1.5))
    assert first.capacity_estimate == 1000
    rate = first.rate
    for t in range(15, 135, 15):  # the cut shows; p95 recovers
        rate = controller.recommend(healthy(t, rate, latency_p95=0.9)).rate
    rec = controller.recommend(healthy(135, rate, latency_p95=1.5))
    assert rec.action == "decrease", rec.reason
    assert rec.capacity_estimate == pytest.approx(900)
