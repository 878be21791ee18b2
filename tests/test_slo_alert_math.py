"""The alerting math as numbers: burn rates and firing against the definitions (tests/slo_oracle.py).

Every expectation comes from the oracle's exact fractions over the requests themselves, never
from the engine's plan: burn rate = (bad / events) / (1 - objective) per window, and a rule fires
when both of its windows burn at its factor or faster and the long window holds ``min_bad``
bad events. Burns sit a hair either side of 1x, 6x and 14.4x, outages are followed by clean
traffic, and errors are spread thin, so the long and the short window disagree.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._plan import plan
from onsale_obs.slo._policy import DEFAULT_POLICY
from onsale_obs.slo._report import ModeResult
from onsale_obs.slo._timeline import firings, timeline_request
from onsale_obs.types import Mode
from tests.slo_oracle import (
    WORKBOOK_POLICY,
    BurnAlert,
    Record,
    burn,
    fires,
    oracle,
    window_counts,
)
from tests.slo_scenarios import (
    BASE,
    ModeTraffic,
    Scenario,
    budget,
    scenarios,
    slo_spec,
    steady,
)

MODES: tuple[Mode, ...] = ("onsale", "normal")
RULES = [pytest.param(mode, rule, id=f"{mode}-{rule.name}") for mode in MODES for rule in WORKBOOK_POLICY[mode]]  # fmt: skip


def engine(records: list[Record], objective: str, at: float) -> dict[Mode, ModeResult]:
    """The engine's view of the SLO at ``at`` (counted by the record-by-record counter)."""
    spec = slo_spec(objective)
    report = evaluate(spec, oracle(records, plan(spec, at, onsale_windows=())), at)
    return report.slos[0].modes


def engine_fires(modes: dict[Mode, ModeResult], mode: Mode, rule: BurnAlert) -> bool:
    return next(r for r in modes[mode].rules if r.name == rule.name).firing


def tied(rule: BurnAlert, records: list[Record], mode: Mode, at: float, objective: str) -> bool:
    """A window burning at exactly the factor (the engine must fire then too)."""
    return any(
        burn(*window_counts(records, mode, at, w), objective) == rule.factor
        for w in (rule.long_s, rule.short_s)
    )


def test_the_default_policy_is_the_documented_table() -> None:
    """The oracle's rules (README's table) are the rules the engine and the rules use."""
    for mode in MODES:
        assert [
            (r.name, r.long, r.short, Fraction(repr(r.burn_rate)), r.min_bad_events, r.priority)
            for r in DEFAULT_POLICY[mode]
        ] == [
            (a.name, a.long_s, a.short_s, a.factor, a.min_bad, a.priority)
            for a in WORKBOOK_POLICY[mode]
        ]


# ---- Hypothesis: any traffic near the thresholds --------------------------------------------


@settings(max_examples=60)
@given(scenarios(), st.data())
def test_burn_rates_are_the_error_ratio_over_the_budget(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Every window's burn rate, and the long window's bad events, as the definitions say."""
    records = scenario.records()
    minute = data.draw(st.integers(1, scenario.seconds // 60), label="minute")
    at = BASE + 60 * minute
    modes = engine(records, scenario.objective, at)
    for mode in MODES:
        for w, value in modes[mode].burn_rates.items():
            expected = burn(*window_counts(records, mode, at, w), scenario.objective)
            if expected is None:
                assert value is None
            else:
                assert value == pytest.approx(float(expected), rel=1e-12, abs=0)
                if 0 < expected < 20:
                    event("a mid-range burn")
        for r in modes[mode].rules:
            assert r.long_bad == window_counts(records, mode, at, r.long)[1]


def _kind(rule: BurnAlert, records: list[Record], mode: Mode, at: float, objective: str) -> str:
    """What a case exercises (Hypothesis' statistics show how often each comes up)."""
    long_total, long_bad = window_counts(records, mode, at, rule.long_s)
    short_total, short_bad = window_counts(records, mode, at, rule.short_s)
    long_burn, short_burn = burn(long_total, long_bad, objective), burn(short_total, short_bad, objective)  # fmt: skip
    if long_burn is None or short_burn is None:
        return "no data in a window"
    if long_burn >= rule.factor > short_burn:
        return "long window burning, short one not (reset)"
    if short_burn >= rule.factor > long_burn:
        return "short window burning, long one not"
    if long_burn >= rule.factor and long_bad < rule.min_bad:
        return "burning, under the guard"
    if long_burn >= rule.factor and short_bad < rule.min_bad:
        return "fires with fewer than min_bad in the short window"
    if long_burn >= rule.factor:
        return "fires"
    if abs(long_burn / rule.factor - 1) < Fraction(1, 10):
        return "long window within 10% under the factor"
    return "quiet"


@settings(max_examples=60)
@given(scenarios(), st.data())
def test_rules_fire_exactly_when_the_definitions_say(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Each rule of each mode fires, or not, as the oracle decides (exact ties included)."""
    records = scenario.records()
    minutes = data.draw(st.sets(st.integers(1, scenario.seconds // 60), min_size=1, max_size=3))
    for minute in minutes:
        at = BASE + 60 * minute
        modes = engine(records, scenario.objective, at)
        for mode in MODES:
            for rule in WORKBOOK_POLICY[mode]:
                if tied(rule, records, mode, at, scenario.objective):
                    event("a window burning at exactly the factor")
                expected = fires(rule, records, mode, at, scenario.objective)
                assert engine_fires(modes, mode, rule) == expected, (mode, rule.name, minute)
                event(_kind(rule, records, mode, at, scenario.objective))


@settings(max_examples=25)
@given(scenarios())
def test_the_timeline_fires_exactly_when_the_definitions_say(scenario: Scenario) -> None:
    """``slo timeline`` (every rule at many moments from one read) agrees with the oracle."""
    records = scenario.records()
    spec = slo_spec(scenario.objective)
    step = 300 if scenario.seconds > 3600 else 60
    times = [BASE + t for t in range(step, scenario.seconds + 1, step)][:24]
    fired = firings(spec, oracle(records, timeline_request(spec, times, onsale_windows=())), times)
    got = {(f.at, f.mode, f.rule) for f in fired}
    for at in times:
        for mode in MODES:
            for rule in WORKBOOK_POLICY[mode]:
                expected = fires(rule, records, mode, at, scenario.objective)
                assert ((at, mode, rule.name) in got) == expected, (at - BASE, mode, rule.name)


# ---- the cases that the mutants of issue 25 got through ----------------------------------------

#: (requests, bad) per tick: with a 99% objective, a burn a hair above and below each factor
NEAR: dict[Fraction, tuple[tuple[int, int], tuple[int, int]]] = {
    Fraction("14.4"): ((34, 5), (35, 5)),  # 14.71x (+2.1%), 14.29x (-0.8%)
    Fraction(6): ((49, 3), (51, 3)),  # 6.12x (+2.0%), 5.88x (-2.0%)
    Fraction(1): ((98, 1), (102, 1)),  # 1.02x (+2.0%), 0.98x (-2.0%)
}


def _one_mode(mode: Mode, traffic: ModeTraffic) -> Scenario:
    return Scenario("99", {mode: traffic})


@pytest.mark.parametrize(("mode", "rule"), RULES)
@pytest.mark.parametrize("above", [True, False], ids=["hair-above", "hair-below"])
def test_a_steady_burn_a_hair_above_the_factor_fires_and_a_hair_below_does_not(
    mode: Mode, rule: BurnAlert, above: bool
) -> None:
    """Kills a burn rate scaled by 0.9 (or 0.5): 1.02x its factor must fire, with that number."""
    requests, bad = NEAR[rule.factor][0 if above else 1]
    tick = rule.short_s
    # an outage just before the long window: a window reaching too far back would see it
    ticks = ((0, requests),) * 2 + ((requests - bad, bad),) * (rule.long_s // tick)
    scenario = _one_mode(mode, ModeTraffic(tick, ticks))
    records, at = scenario.records(), BASE + scenario.seconds
    expected_burn = Fraction(bad, requests) / budget("99")
    assert (expected_burn > rule.factor) == above  # the premise, from the definitions
    assert abs(expected_burn / rule.factor - 1) < Fraction(3, 100)
    modes = engine(records, "99", at)
    result = next(r for r in modes[mode].rules if r.name == rule.name)
    assert result.long_burn == pytest.approx(float(expected_burn), rel=1e-12)
    assert result.short_burn == pytest.approx(float(expected_burn), rel=1e-12)
    assert result.long_bad == bad * (rule.long_s // tick) >= rule.min_bad
    assert result.firing == above == fires(rule, records, mode, at, "99")


def _after_outage(mode: Mode, rule: BurnAlert) -> tuple[Scenario, int]:
    """Clean traffic for a long window, an outage of one or two short windows, clean traffic
    again: the scenario and the tick the outage ends on. The outage is long enough to keep the
    long window burning past the factor once the short window is clean."""
    tick, requests = rule.short_s, 50
    ticks_in_long = rule.long_s // tick
    outage = math.ceil(rule.factor * budget("99") * ticks_in_long * Fraction(11, 10))
    ticks = ((requests, 0),) * ticks_in_long + ((0, requests),) * outage + ((requests, 0),) * 3
    return _one_mode(mode, ModeTraffic(tick, ticks)), ticks_in_long + outage


@pytest.mark.parametrize(("mode", "rule"), RULES)
def test_an_alert_resets_once_its_short_window_is_clean(mode: Mode, rule: BurnAlert) -> None:
    """Kills the alert firing without its short window: the long window still burns after the
    outage, but once the short window holds only good requests the rule must stop."""
    scenario, end = _after_outage(mode, rule)
    records, tick = scenario.records(), rule.short_s
    during, clean = BASE + end * tick, BASE + (end + 1) * tick
    long_after = burn(*window_counts(records, mode, clean, rule.long_s), "99")
    short_after = burn(*window_counts(records, mode, clean, rule.short_s), "99")
    assert long_after is not None
    assert long_after >= rule.factor
    assert short_after == 0
    assert fires(rule, records, mode, during, "99")
    assert not fires(rule, records, mode, clean, "99")
    assert engine_fires(engine(records, "99", during), mode, rule)
    after = engine(records, "99", clean)
    assert not engine_fires(after, mode, rule)
    result = next(r for r in after[mode].rules if r.name == rule.name)
    assert result.long_burn == pytest.approx(float(long_after), rel=1e-12)
    assert result.short_burn == 0
    # the timeline, minute by minute from the outage's last tick until two ticks later
    spec = slo_spec("99")
    times = [during + 60 * k for k in range(0, 2 * tick // 60 + 1, max(1, tick // 60 // 6))]
    fired = firings(spec, oracle(records, timeline_request(spec, times, onsale_windows=())), times)
    got = sorted(f.at for f in fired if f.mode == mode and f.rule == rule.name)
    assert got == [t for t in times if fires(rule, records, mode, t, "99")]
    assert during in got
    assert clean not in got


@pytest.mark.parametrize(("mode", "rule"), RULES)
def test_errors_spread_thin_fire_once_the_long_window_holds_min_bad_events(
    mode: Mode, rule: BurnAlert
) -> None:
    """Kills the guard counted on the short window: one failure per short window burns both
    windows past the factor; the long window holds ``min_bad`` of them, no short window does."""
    tick = rule.short_s
    requests = math.floor(1 / (rule.factor * budget("99") * Fraction(11, 10)))
    ticks_in_long = rule.long_s // tick
    scenario = _one_mode(mode, steady(tick, ticks_in_long + 1, (requests - 1, 1)))
    records, at = scenario.records(), BASE + scenario.seconds
    assert window_counts(records, mode, at, rule.short_s)[1] == 1 < rule.min_bad
    assert window_counts(records, mode, at, rule.long_s)[1] == ticks_in_long >= rule.min_bad
    assert fires(rule, records, mode, at, "99")
    result = next(r for r in engine(records, "99", at)[mode].rules if r.name == rule.name)
    assert result.firing
    assert (result.long_bad, result.min_bad_events) == (ticks_in_long, rule.min_bad)
    assert result.to_json()["min_bad_events"] == rule.min_bad


@pytest.mark.parametrize(("mode", "rule"), RULES)
@pytest.mark.parametrize("bad", ["min_bad - 1", "min_bad"])
def test_a_burst_pages_only_with_min_bad_events_in_the_long_window(
    mode: Mode, rule: BurnAlert, bad: str
) -> None:
    """A handful of failures in a quiet spell burns every window far past the factor; the
    rule waits for ``min_bad`` of them (the stray error that must not page at 3 a.m.)."""
    failures = rule.min_bad - (bad == "min_bad - 1")
    tick = rule.short_s
    # one good request per tick, then the failures, all in the last tick
    ticks = ((1, 0),) * (rule.long_s // tick) + ((0, failures),)
    scenario = _one_mode(mode, ModeTraffic(tick, ticks))
    records, at = scenario.records(), BASE + scenario.seconds
    for w in (rule.long_s, rule.short_s):
        burning = burn(*window_counts(records, mode, at, w), "99")
        assert burning is not None
        assert burning > 2 * rule.factor
    assert fires(rule, records, mode, at, "99") == (failures == rule.min_bad)
    assert engine_fires(engine(records, "99", at), mode, rule) == (failures == rule.min_bad)


@pytest.mark.parametrize(("mode", "rule"), RULES)
def test_a_burn_of_exactly_the_factor_fires_when_the_budget_is_exact_in_binary(
    mode: Mode, rule: BurnAlert
) -> None:
    """At 93.75% the budget is 1/16, exact in floats: a burn of exactly the factor is computed
    exactly, and a rule fires "at its threshold or faster" (>=, not >), in both windows."""
    objective = "93.75"
    per_tick = {Fraction("14.4"): (10, 9), Fraction(6): (8, 3), Fraction(1): (16, 1)}
    requests, bad = per_tick[rule.factor]
    tick = rule.short_s
    scenario = Scenario(objective, {mode: steady(tick, rule.long_s // tick, (requests - bad, bad))})
    records, at = scenario.records(), BASE + scenario.seconds
    for w in (rule.long_s, rule.short_s):
        assert burn(*window_counts(records, mode, at, w), objective) == rule.factor
    result = next(r for r in engine(records, objective, at)[mode].rules if r.name == rule.name)
    assert (result.long_burn, result.short_burn) == (float(rule.factor), float(rule.factor))
    assert result.firing
    assert fires(rule, records, mode, at, objective)


def test_a_burn_of_exactly_the_factor_fires() -> None:
    """3 failures in 50 requests at 99% is exactly 6x: the on-sale slow rule (>= 6x) fires,
    although 1 - 0.99 is 0.010000000000000009 in binary floats (the engine's budget is the
    decimal the spec wrote, as in the generated Prometheus rule)."""
    rule = next(r for r in WORKBOOK_POLICY["onsale"] if r.name == "slow")
    scenario = _one_mode("onsale", steady(60, 30, (47, 3)))
    records, at = scenario.records(), BASE + scenario.seconds
    assert burn(*window_counts(records, "onsale", at, rule.long_s), "99") == rule.factor
    assert fires(rule, records, "onsale", at, "99")
    modes = engine(records, "99", at)
    assert engine_fires(modes, "onsale", rule)
    assert modes["onsale"].burn_rates[rule.long_s] == float(rule.factor)
