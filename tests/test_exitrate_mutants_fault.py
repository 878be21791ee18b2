"""The controller's software-fault path at its edges and in its exact words: the survivors of
the complete mutation run (docs/mutation.md) in ``_fault``, each pinned by a test."""

from __future__ import annotations

from dataclasses import replace

from onsale_obs.exitrate import ExitRateController
from tests.test_exitrate_controller import CONFIG, healthy


def test_latency_exactly_at_its_threshold_is_still_a_software_fault() -> None:
    """Errors with p95 at (not over) the threshold: within it, so a fault, and the rate holds."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=1.0)
    )
    assert rec.action == "hold"
    assert "a software fault, not a lack of capacity" in rec.reason


def test_a_capacity_prior_alone_never_makes_errors_an_overload() -> None:
    """A rate at the capacity prior (a guess from a past on-sale) with errors, p95 fine and
    the backend half busy: the prior does not say saturated, so it is a fault, held."""
    controller = ExitRateController(replace(CONFIG, capacity_prior=1000))
    rec = controller.recommend(healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=0.5))
    assert rec.action == "hold", rec.reason
    assert "a software fault" in rec.reason


def test_the_fault_hold_says_how_busy_the_backend_is() -> None:
    """The hold's reason names the burn, p95 and utilisation it judged on, word for word."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=0.5)
    )
    assert rec.reason == (
        "burn 20x, p95 500ms within the threshold, utilisation 0.50: a software fault, "
        "not a lack of capacity: hold until it clears"
    )


def test_an_outage_at_the_minimum_rate_holds_there() -> None:
    """Checkout down (90% failing) while already at the minimum: a hold, not a decrease."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 100, burn_short=9000, burn_long=9000, latency_p95=0.5)
    )
    assert (rec.action, rec.rate) == ("hold", 100)


def test_an_outage_never_reports_more_than_everything_failing() -> None:
    """A burn past 100% of checkouts failing (retries counted twice) is said as 1.00."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20_000, burn_long=20_000, latency_p95=0.5)
    )
    assert rec.action == "decrease"
    assert rec.reason.startswith("burn 20,000x (1.00 failing) with p95 within the threshold")


def _paused() -> ExitRateController:
    """A healthy rate of 1,000/min, then checkout down: paused at the minimum (100/min)."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000))
    rec = controller.recommend(healthy(15, 1000, burn_short=9000, burn_long=9000))
    assert (rec.action, rec.rate) == ("decrease", 100)
    return controller


def test_a_burn_back_at_the_probe_limit_ends_the_fault() -> None:
    """The burn back at exactly the probe limit (3x) is clear: back to the rate before the
    fault at once, and the reason says by how much."""
    rec = _paused().recommend(healthy(30, 100, burn_short=3.0, burn_long=3.0))
    assert (rec.action, rec.rate) == ("increase", 1000)
    assert rec.reason.endswith(": back to the rate before it, 1,000/min: +900%"), rec.reason


def test_a_fault_that_clears_with_no_one_waiting_restores_nothing() -> None:
    """The burn clears but the queue is empty: nothing to restore the rate for."""
    rec = _paused().recommend(healthy(30, 100, burn_short=0.0, burn_long=0.0, queue_length=0))
    assert rec.action != "increase", rec.reason
    assert rec.rate == 100


def test_errors_on_a_backend_at_exactly_saturation_are_an_overload() -> None:
    """Errors with p95 fine but 95% busy: saturated (at, not only over), so not a software
    fault: the burn cuts."""
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=0.5, utilisation=0.95)
    )
    assert rec.action == "decrease", rec.reason


def test_errors_at_a_rate_near_the_measured_capacity_are_an_overload() -> None:
    """The capacity measured at about 1,000/min; the room pushed to 99% of it from outside;
    errors with p95 fine and no utilisation reading: at 99% of the measured capacity the
    backend counts as saturated, so the burn cuts instead of holding as for a fault."""
    controller = ExitRateController(CONFIG)
    rate = 500.0
    for t in range(0, 300, 15):
        rate = controller.recommend(healthy(t, rate, utilisation=rate / 1000)).rate
    capacity = controller.recommend(healthy(300, rate, utilisation=rate / 1000)).capacity_estimate
    assert capacity is not None
    rec = controller.recommend(
        healthy(
            315, 0.99 * capacity, burn_short=20, burn_long=20, latency_p95=0.5, utilisation=None
        )
    )
    assert rec.action == "decrease", rec.reason


def test_the_fault_hold_without_a_utilisation_signal_says_what_it_has() -> None:
    rec = ExitRateController(CONFIG).recommend(
        healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=0.5, utilisation=None)
    )
    assert rec.reason == (
        "burn 20x, p95 500ms within the threshold: a software fault, not a lack of "
        "capacity: hold until it clears"
    )


def test_an_outage_says_it_comes_back_to_the_rate_before_the_fault() -> None:
    """A fault held at 1,000/min, the room set to 800 from outside, then checkout down: the
    pause says it returns to 1,000/min, the rate before the fault."""
    controller = ExitRateController(CONFIG)
    controller.recommend(healthy(0, 1000, burn_short=20, burn_long=20, latency_p95=0.5))
    rec = controller.recommend(healthy(15, 800, burn_short=9000, burn_long=9000))
    assert rec.action == "decrease"
    assert rec.reason.endswith("pause at 100/min, back to 1,000/min when it clears"), rec.reason


def test_the_restore_says_how_long_the_fault_lasted() -> None:
    rec = _paused().recommend(healthy(30, 100, burn_short=0.0, burn_long=0.0))
    assert rec.reason == (
        "burn 0x cleared after a software fault of 15s: back to the rate before it, "
        "1,000/min: +900%"
    )


def test_a_fault_that_clears_with_one_user_waiting_restores_the_rate() -> None:
    rec = _paused().recommend(healthy(30, 100, burn_short=0.0, burn_long=0.0, queue_length=1))
    assert (rec.action, rec.rate) == ("increase", 1000)
