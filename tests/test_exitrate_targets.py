"""The quality bar on every shipped scenario: drain within 15% of the physical limit, the SLO
met in 99% of minutes (or as many as the oracle keeps), and no fixed rate or AIMD better on
both. The randomized families, with held-out seeds, run in benchmarks/exit_rate_families.py.

On ``capacity-loss`` users admitted in the minutes before the backend loses 30% of its
capacity are already browsing and check out into it, so every controller without foresight
overloads for a few minutes: the oracle, which learns of the loss the second it happens,
keeps 95.3% of minutes, and that is the bar there. Ours used to lose two minutes more (an
expected failure here); since it cuts again on measured shedding it keeps the oracle's share.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from onsale_obs.exitrate import (
    TARGET_DRAIN_RATIO,
    TARGET_SLO_SHARE,
    ScenarioReport,
    evaluate,
    load_scenario,
    make_controller,
    physical_limit,
    simulate,
)
from onsale_obs.exitrate._run import FIXED_MULTIPLES

SCENARIOS = sorted(
    (Path(__file__).resolve().parent.parent / "examples" / "scenarios").glob("*.yaml")
)
#: Scenarios where even the oracle misses 99% of minutes: its share is the bar (docstring).
INCIDENT_BOUND = {"capacity-loss"}


def test_every_kind_of_scenario_is_shipped() -> None:
    """Steady, an autoscale step, a capacity loss, an arrival spike, heavy browse variance."""
    names = {p.stem for p in SCENARIOS}
    assert {"steady", "autoscale-step", "capacity-loss", "arrival-spike", "heavy-browse"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_ours_meets_the_target(path: Path) -> None:
    """Drain ratio <= 1.15, SLO minutes >= 99% (incident-bound: no worse than the oracle),
    and not dominated by any fixed rate or AIMD simulated on the same seed."""
    scenario = load_scenario(path)
    limit = physical_limit(scenario)

    ours = evaluate(simulate(scenario, make_controller("ours", scenario)), limit)
    rivals = [evaluate(simulate(scenario, make_controller("aimd", scenario), name="aimd"), limit)]
    for multiple in FIXED_MULTIPLES:
        rate = multiple * scenario.capacity_rate(0)
        # a fixed rate cannot admit everyone faster than users / rate: skip the ones that
        # cannot match ours on drain whatever their SLO share (they cannot dominate it)
        if scenario.waiting_room.users / rate * 60 / limit <= ours.drain_ratio:
            name = f"fixed-{multiple:g}x"
            rivals.append(
                evaluate(simulate(scenario, make_controller(name, scenario), name=name), limit)
            )
    oracle = evaluate(simulate(scenario, make_controller("oracle", scenario), name="oracle"))
    report = ScenarioReport(scenario, scenario.seed, limit, (ours, *rivals, oracle))
    assert ours.drain_ratio <= TARGET_DRAIN_RATIO
    assert report.dominating() == []
    if scenario.name in INCIDENT_BOUND:
        assert oracle.slo_share < TARGET_SLO_SHARE  # the loss costs minutes even with foresight
    assert ours.slo_share >= min(TARGET_SLO_SHARE, oracle.slo_share)
    assert report.meets_target
