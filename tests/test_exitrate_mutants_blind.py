"""The controller without its signals, at a saturated reading's edge, and what a
recommendation carries: survivors of the complete mutation run (docs/mutation.md) in
``_blind``, ``_saturation`` and ``recommend``, each pinned by a test."""

from __future__ import annotations

import pytest

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import ExitRateController, Recommendation
from tests.test_exitrate_controller import CONFIG, healthy

BLIND = "short burn rate, long burn rate unknown"


def _blind_until(until: int, rate: float = 1000.0) -> dict[int, Recommendation]:
    """Readings every 15 s without the burn rates, each answer applied."""
    controller = ExitRateController(CONFIG)
    answers = {}
    for t in range(0, until + 1, 15):
        answers[t] = controller.recommend(healthy(t, rate, burn_short=None, burn_long=None))
        rate = answers[t].rate
    return answers


def test_without_signals_the_rate_holds_until_outage_after_then_decays_10_percent_a_minute() -> (
    None
):
    """Missing burn rates: held (never raised) for outage_after (10 minutes), then from that
    moment on a walk down toward the safe rate, 10% a minute, each step saying so."""
    answers = _blind_until(615)
    assert answers[585].action == "hold"
    assert answers[585].reason == f"{BLIND}: never increase on missing signals"
    assert answers[600].action == "decay"
    assert answers[600].rate == pytest.approx(1000 * 0.9**0.25)
    assert answers[600].reason == (f"{BLIND} for 10m (> 10m): toward the safe rate 500/min: -3%")
    assert answers[615].rate == pytest.approx(1000 * 0.9**0.5)
    assert answers[615].reason.startswith(f"{BLIND} for 10m15s (> 10m)")


def test_the_decay_stops_at_the_safe_rate_and_says_so() -> None:
    """Once at the safe rate (500/min) it holds there."""
    answers = _blind_until(795, rate=520.0)
    assert (answers[795].action, answers[795].rate) == ("hold", 500)
    assert answers[795].reason == f"{BLIND} for 13m15s; at or below the safe rate"


def test_a_reading_at_exactly_saturation_is_saturated() -> None:
    """95% busy, no estimate yet: saturated (at, not only over), back to the target share."""
    rec = ExitRateController(CONFIG).recommend(healthy(0, 1000, utilisation=0.95))
    assert rec.action == "decrease"
    assert rec.rate == pytest.approx(950)
    assert rec.reason == "utilisation 0.95 >= 0.95: -5%"


def test_a_recommendation_carries_the_time_it_was_made_at() -> None:
    rec = ExitRateController(CONFIG).recommend(healthy(7, 1000))
    assert rec.time == 7


def test_a_boolean_time_is_bad_input() -> None:
    """``True`` is an int to Python, not a time: refused, naming the field."""
    with pytest.raises(BadInputError) as info:
        ExitRateController(CONFIG).recommend(healthy(0, 1000, time=True))
    assert info.value.field == "time"


def test_a_reading_at_exactly_the_least_measurable_load_measures_the_capacity() -> None:
    """5% busy (``_MIN_UTILISATION``, inclusive) at 100/min is enough to estimate the
    capacity (about 2,000/min), and the rate climbs from there."""
    controller = ExitRateController(CONFIG)
    rate, rec = 100.0, None
    for t in range(0, 300, 15):
        rec = controller.recommend(healthy(t, rate, utilisation=0.05))
        rate = rec.rate
    assert rec is not None
    assert rec.capacity_estimate is not None
    assert rate > 100


def test_a_backend_that_grew_lifts_the_ceiling_a_cut_left() -> None:
    """A latency cut at 1,000/min leaves a ceiling at 950/min; the level readings after it
    measure 1,000/min. When the backend doubles, the estimate passes 10% above that and the
    ceiling goes: the rate climbs past 950 well before the ceiling would be forgotten (10
    minutes)."""
    controller = ExitRateController(CONFIG)
    rate = controller.recommend(healthy(0, 1000, latency_p95=1.5)).rate
    rates = {}
    for t in range(15, 600, 15):
        capacity = 1000 if t < 300 else 2000
        rate = controller.recommend(healthy(t, rate, utilisation=rate / capacity)).rate
        rates[t] = rate
    assert max(r for t, r in rates.items() if t < 300) <= 950
    assert max(rates.values()) > 1200
