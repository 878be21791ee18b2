"""The on-sale simulation: deterministic per seed, physically sensible, measured as documented."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pytest

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import (
    FixedRate,
    OracleRate,
    Recommendation,
    Scenario,
    Signals,
    evaluate,
    make_controller,
    physical_limit,
    run_scenario,
    scenario_from_data,
    simulate,
)
from onsale_obs.exitrate._checkout import CheckoutBackend
from onsale_obs.exitrate._sim import arrivals_per_second

SMALL: dict[str, Any] = {
    "name": "small",
    "seed": 11,
    "horizon": "2h",
    "waiting_room": {
        "queued_at_start": 20000,
        "arrivals": [{"start": "2m", "end": "4m", "users": 5000}],
        "initial_rate": 800,
        "browse_time": {"median": "40s", "sigma": 0.6, "min": "5s", "max": "10m"},
        "checkouts_per_user": 2,
        "request_gap": "5s",
    },
    "backend": {
        "workers": 24,
        "service_time": {"median": "250ms", "sigma": 0.5},
        "base_error_rate": 0.00001,
        "changes": [{"at": "10m", "workers": 18}],
    },
}


@pytest.fixture
def small() -> Scenario:
    """A short on-sale (25,000 users, a capacity loss at 10 minutes)."""
    return scenario_from_data(SMALL)


def test_same_seed_same_json(small: Scenario) -> None:
    """Two runs with the same seed give byte-identical JSON, timelines included."""
    first = run_scenario(small, ["ours", "aimd"], seed=3).to_json()
    second = run_scenario(small, ["ours", "aimd"], seed=3).to_json()
    assert json.dumps(first) == json.dumps(second)
    other = run_scenario(small, ["ours", "aimd"], seed=4).to_json()
    assert json.dumps(first) != json.dumps(other)


def test_controllers_see_the_same_users(small: Scenario) -> None:
    """Under one seed every controller faces the same arrivals and admits everyone."""
    report = run_scenario(small, ["ours", "fixed-0.75x", "oracle"], seed=5)
    for result in report.results:
        assert result.admitted == small.waiting_room.users
        assert result.physical_limit == report.physical_limit


def test_arrivals_are_spread_evenly_and_exactly() -> None:
    """Waves add up to their users, spread over their span; the start queue is at t=0."""
    joined = arrivals_per_second(scenario_from_data(SMALL))
    assert sum(joined) == 25000
    assert joined[0] == 20000
    assert sum(joined[120:240]) == 5000
    assert max(joined[120:240]) - min(joined[120:240]) <= 1


def test_physical_limit_is_users_over_capacity() -> None:
    """With everyone queued at the start and a steady backend: users / capacity rate."""
    data = {**SMALL, "backend": {**SMALL["backend"], "changes": []}}
    data["waiting_room"] = {**SMALL["waiting_room"], "arrivals": []}
    s = scenario_from_data(data)
    assert physical_limit(s) == pytest.approx(20000 / s.capacity_rate(0) * 60, rel=1e-9)


def test_physical_limit_follows_capacity_changes(small: Scenario) -> None:
    """A capacity loss makes the physical limit longer than at the initial capacity."""
    steady = replace(small, backend=replace(small.backend, changes=()))
    assert physical_limit(small) > physical_limit(steady)


def test_comfortable_fixed_rate_meets_the_slo_everywhere(small: Scenario) -> None:
    """Half the post-loss capacity: no overload, every SLO minute good, drain ratio > 1."""
    rate = 0.5 * small.capacity_rate(3600)
    result = evaluate(simulate(small, FixedRate(rate), name="fixed"))
    assert result.slo_share == 1.0
    assert result.failed < 5
    assert result.peak_overshoot < 0
    assert result.drain_ratio > 1.5
    assert result.direction_changes == 0


def test_overload_fails_checkouts_and_minutes(small: Scenario) -> None:
    """1.5x the capacity: errors, bad minutes, overshoot about 50%."""
    result = evaluate(simulate(small, FixedRate(1.5 * small.capacity_rate(0)), name="hot"))
    assert result.failed > 1000
    assert result.slo_share < 0.5
    assert result.peak_overshoot > 0.4


def test_ours_backs_off_within_two_minutes_of_a_capacity_loss(small: Scenario) -> None:
    """Ours probes up from a low start, cuts soon after the loss at 10 minutes, and ends
    under the reduced capacity."""
    result = evaluate(simulate(small, make_controller("ours", small)))
    assert result.drain_time is not None
    assert result.timeline[0]["action"] == "hold"
    cuts = [t["t"] for t in result.timeline if t["action"] == "decrease"]
    assert cuts
    assert 600 < cuts[0] <= 720
    assert all(t["action"] != "decrease" for t in result.timeline if t["t"] < 600)
    last = result.timeline[-1]
    assert last["rate"] < last["capacity_rate"]


def test_oracle_follows_the_true_capacity(small: Scenario) -> None:
    """The oracle's rate is 90% of the capacity at each tick."""
    run = simulate(small, OracleRate(small.capacity_rate), name="oracle")
    for tick in run.ticks:
        assert tick.rate == pytest.approx(0.9 * tick.capacity_rate)


def test_a_drain_beyond_the_horizon_is_reported_as_not_drained() -> None:
    """A rate far too low for the horizon: no drain time, an infinite ratio, null in JSON."""
    s = scenario_from_data({**SMALL, "horizon": "10m"})
    result = evaluate(simulate(s, FixedRate(100), name="slow"))
    assert result.drain_time is None
    assert result.to_json(timeline=False)["drain_ratio"] is None


def test_latency_grows_with_utilisation_and_overload_errors() -> None:
    """The backend's share of fast requests falls as load rises; overload sheds requests."""
    s = scenario_from_data(SMALL)
    shares = []
    for load in (0.5, 0.9, 0.97):
        backend = CheckoutBackend(s.backend, 1.0, random.Random(1))
        capacity = s.backend.capacity_at(0)
        outcome = None
        for t in range(120):
            outcome = backend.serve(t, load * capacity)
        assert outcome is not None
        shares.append(outcome.fast / outcome.ok)
        assert outcome.errors <= 1
    assert shares[0] > shares[1] > shares[2]
    hot = CheckoutBackend(s.backend, 1.0, random.Random(1))
    errors = sum(hot.serve(t, 1.3 * s.backend.capacity_at(0)).errors for t in range(120))
    assert errors > 0.2 * 1.3 * s.backend.capacity_at(0) * 60


def test_minutes_and_timeline_json(small: Scenario) -> None:
    """The documented JSON keys of a controller result."""
    data = evaluate(simulate(small, make_controller("ours", small))).to_json()
    assert {
        "controller",
        "drain_time_s",
        "physical_limit_s",
        "drain_ratio",
        "slo_minutes",
        "slo_good_minutes",
        "slo_share",
        "checkout_requests",
        "failed_checkouts",
        "peak_overshoot",
        "direction_changes",
        "rate_variation",
        "admitted_users",
        "mean_wait_s",
        "max_wait_s",
        "timeline",
        "minutes",
    } == set(data)
    assert set(data["timeline"][0]) == {"t", "rate", "capacity_rate", "queue", "action", "reason"}
    assert set(data["minutes"][0]) == {
        "start",
        "requests",
        "errors",
        "fast_share",
        "capacity",
        "good",
    }


def test_a_deployment_without_utilisation_runs_on_burn_latency_and_queue() -> None:
    """``telemetry.utilisation: false`` (the signal is optional in the contract): ours never
    sees a utilisation, steps blind (its reasons say so) and still drains; the same on-sale
    with the signal reads it."""
    blind = scenario_from_data({**SMALL, "telemetry": {"utilisation": False}})
    assert blind.telemetry.utilisation is False
    run = run_scenario(blind, ["ours"], seed=3).ours
    assert run is not None
    reasons = [t["reason"] for t in run.timeline]
    assert any("no utilisation signal" in r for r in reasons)
    assert not any("utilisation 0." in r for r in reasons)
    assert run.drain_ratio < 2
    seen = run_scenario(scenario_from_data(SMALL), ["ours"], seed=3).ours
    assert seen is not None
    assert not any("no utilisation signal" in t["reason"] for t in seen.timeline)


class _Recorder:
    """A fixed rate that keeps the utilisation of every reading it is given."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.seen: list[float | None] = []

    def recommend(self, signals: Signals) -> Recommendation:
        self.seen.append(signals.utilisation)
        return Recommendation(self.rate, "fixed", "hold", self.rate, signals.time, signals)


def test_an_under_reading_utilisation_shows_its_share_of_the_backends_busy_share() -> None:
    """``telemetry.utilisation_scale: 0.7`` (the exported utilisation measures something that
    is not what fills): the same users at the same rate read 0.7 of the busy share."""
    under = scenario_from_data({**SMALL, "telemetry": {"utilisation_scale": 0.7}})
    assert under.telemetry.utilisation_scale == 0.7
    rate = 0.8 * under.capacity_rate(0)
    full, scaled = _Recorder(rate), _Recorder(rate)
    simulate(scenario_from_data(SMALL), full, seed=3)
    simulate(under, scaled, seed=3)
    pairs = [(f, s) for f, s in zip(full.seen, scaled.seen, strict=True) if f and s]
    assert len(pairs) > 10
    assert all(s == pytest.approx(0.7 * f) for f, s in pairs)
    assert max(f for f, _ in pairs) > 0.5


@pytest.mark.parametrize("scale", [0, 1.5, "most"])
def test_an_utilisation_scale_outside_zero_to_one_is_refused(scale: object) -> None:
    with pytest.raises(BadInputError, match="utilisation_scale"):
        scenario_from_data({**SMALL, "telemetry": {"utilisation_scale": scale}})
