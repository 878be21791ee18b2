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
