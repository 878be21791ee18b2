"""The surge detector on generated series: no I/O, a simulated clock."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from onsale_obs.detect import Action, DetectorConfig, DiurnalBaseline, SketchRates, SurgeDetector
from onsale_obs.exceptions import BadInputError
from onsale_obs.instrument._heavy_hitters import EventHeavyHitters
from onsale_obs.modes import ModeState
from onsale_obs.testing import FakeClock

DAY = 86400.0
START = 1_800_000_000.0 - (1_800_000_000.0 % DAY)  # midnight UTC
Rates = Callable[[float], dict[str, float]]


def diurnal(base: float, t: float, peak_hour: float = 19.0) -> float:
    hours = (t / 3600.0) % 24
    return base * (0.25 + 0.75 * (0.5 + 0.5 * math.cos((hours - peak_hour) / 24 * 2 * math.pi)))


class Run:
    """A detector fed readings every ``interval`` seconds; publishes into ``current``."""

    def __init__(self, config: DetectorConfig | None = None, interval: float = 2.0) -> None:
        self.detector = SurgeDetector(config or DetectorConfig())
        self.interval = interval
        self.now = START
        self.current: dict[str, ModeState] = {}
        self.actions: list[tuple[float, Action]] = []
        self._revision = 0

    def learn(self, days: float, rates: Rates, step: float = 60.0) -> None:
        """Warm the baselines up with one reading per ``step`` seconds."""
        end = self.now + days * DAY
        while self.now < end:
            self.now += step
            self.detector.step(self.now, rates(self.now), self.current)

    def run(self, seconds: float, rates: Rates) -> list[tuple[float, Action]]:
        found = []
        end = self.now + seconds
        while self.now < end:
            self.now += self.interval
            for action in self.detector.step(self.now, rates(self.now), self.current):
                found.append((self.now, action))
                if action.kind != "skip":
                    self.publish(action.scope, action, "auto")
        self.actions += found
        return found

    def publish(
        self,
        scope: str,
        action: Action | None,
        source: str,
        mode: str = "onsale",
        until: float | None = None,
    ) -> None:
        self._revision += 1
        if action is not None:
            mode = "normal" if action.kind == "normal" else "onsale"
            until = action.until
        state = ModeState(scope, mode, self._revision, self.now, until, source)  # type: ignore[arg-type]
        self.current[scope] = state
        if action is not None:
            self.detector.published(action.event, state)


def normal_traffic(t: float) -> dict[str, float]:
    rng = random.Random(int(t))
    return {
        "big": diurnal(3.0, t) * rng.uniform(0.8, 1.2),
        "small": diurnal(0.3, t) * rng.uniform(0.5, 1.5),
        "final-2026": diurnal(0.5, t) * rng.uniform(0.7, 1.3),
    }


def with_surge(rate: float, event: str = "final-2026") -> Rates:
    def rates(t: float) -> dict[str, float]:
        found = normal_traffic(t)
        found[event] += rate
        return found

    return rates


def kinds(found: list[tuple[float, Action]], kind: str) -> list[tuple[float, Action]]:
    return [(t, a) for t, a in found if a.kind == kind]


def test_a_surge_flips_only_its_event_within_the_window() -> None:
    """100 req/s on one event: on sale at the first reading that counts it (far above ``high``:
    no need to wait for a window), with a reason naming the rates."""
    run = Run()
    run.learn(2, normal_traffic)
    t0 = run.now
    found = run.run(60, with_surge(100.0))
    onsale = kinds(found, "onsale")
    assert [a.event for _, a in onsale] == ["final-2026"]
    t, action = onsale[0]
    assert t - t0 == pytest.approx(run.interval)
    assert "clearly above 15.0" in action.reason
    assert "final-2026" in action.reason
    assert "req/s" in action.reason
    assert "usual" in action.reason
    assert action.until is not None
    assert action.until > t


def test_normal_days_with_bot_bursts_below_the_floor_never_flip() -> None:
    """Two days of diurnal traffic with bursts under the floor: no action at all."""
    run = Run()
    run.learn(1, normal_traffic)

    def bursty(t: float) -> dict[str, float]:
        found = normal_traffic(t)
        if int(t) % 600 < 20:  # a 20 s burst every 10 minutes, below the 5 req/s floor
            found["small"] += 4.0
        return found

    assert run.run(2 * DAY, bursty) == []


def test_a_busy_event_twice_its_usual_at_its_peak_does_not_flip() -> None:
    """Above the floor but within factor x its own (diurnal) baseline: normal."""
    config = DetectorConfig(floor=1.0)
    run = Run(config)
    run.learn(3, normal_traffic)
    found = run.run(DAY, lambda t: {k: 2 * v for k, v in normal_traffic(t).items()})
    assert kinds(found, "onsale") == []


def test_the_surge_is_extended_while_it_lasts_then_ends_after_the_quiet_period() -> None:
    """until moves forward during the surge; normal comes quiet + one reading after it ends."""
    config = DetectorConfig(quiet=120.0)
    run = Run(config)
    run.learn(1, normal_traffic)
    run.run(600, with_surge(80.0))
    extends = kinds(run.actions, "extend")
    assert len(extends) >= 2
    assert extends[-1][1].until is not None
    assert extends[-1][1].until > run.now
    ended_at = run.now
    found = run.run(400, normal_traffic)
    normal = kinds(found, "normal")
    assert len(normal) == 1
    assert ended_at + 120.0 <= normal[0][0] <= ended_at + 120.0 + 2 * run.interval


@pytest.mark.parametrize("source", ["manual", "schedule"])
def test_a_manual_or_scheduled_state_is_never_overridden(source: str) -> None:
    """The scope is on sale by an operator or the schedule: the detector leaves it alone."""
    run = Run()
    run.learn(1, normal_traffic)
    run.publish("event:final-2026", None, source, until=run.now + 3600)
    found = run.run(60, with_surge(100.0))
    assert kinds(found, "onsale") == []
    assert [a.kind for _, a in found] == ["skip"]  # said once
    assert source in found[0][1].reason


def test_a_manual_normal_state_is_not_overridden_either() -> None:
    """An operator set the event normal (no expiry): a surge on it is not published."""
    run = Run()
    run.learn(1, normal_traffic)
    run.publish("event:final-2026", None, "manual", mode="normal")
    assert kinds(run.run(60, with_surge(100.0)), "onsale") == []


def test_an_operator_taking_over_during_an_auto_surge_ends_the_detectors_hold() -> None:
    """A manual state published over an auto one: the detector never touches the scope again."""
    run = Run(DetectorConfig(quiet=60.0))
    run.learn(1, normal_traffic)
    run.run(30, with_surge(100.0))
    run.publish("event:final-2026", None, "manual", mode="onsale")
    found = run.run(900, with_surge(100.0))
    found += run.run(900, normal_traffic)
    assert [a.kind for _, a in found] in ([], ["skip"])  # "manual state in force", said once


def test_caps_on_concurrent_auto_scopes_and_flips_per_hour() -> None:
    """--max-auto bounds events held at once; --max-flips bounds flips of one event an hour."""
    config = DetectorConfig(max_auto=2, max_flips_per_hour=2, quiet=30.0)
    run = Run(config)

    def three(t: float) -> dict[str, float]:
        return {"a": 50.0, "b": 60.0, "c": 70.0}

    found = run.run(30, three)
    assert sorted(a.event for _, a in kinds(found, "onsale")) == ["a", "b"]
    assert [a.event for _, a in kinds(found, "skip")] == ["c"]
    assert "cap 2" in kinds(found, "skip")[0][1].reason

    flapping = Run(config)
    onsale = 0
    for _ in range(4):  # on for 20 s, off for 60 s, four times within an hour
        onsale += len(kinds(flapping.run(20, lambda t: {"a": 50.0}), "onsale"))
        flapping.run(60, lambda t: {"a": 0.0})
    assert onsale == 2
    assert any("cap" in a.reason for _, a in kinds(flapping.actions, "skip"))


def test_invalid_event_ids_are_never_published() -> None:
    """An id that fails validation (from a label or a summary) is ignored."""
    run = Run()
    found = run.run(30, lambda t: {"bad id\n": 500.0, "../x": 500.0, "ok": 500.0})
    assert [a.event for _, a in kinds(found, "onsale")] == ["ok"]
    assert run.detector.invalid == {"bad id\n", "../x"}


def test_unreadable_rates_change_nothing() -> None:
    """An outage (None) during a surge: no flips; the surge is seen once rates come back."""
    run = Run()
    run.learn(1, normal_traffic)
    for _ in range(30):
        run.now += 2
        assert run.detector.step(run.now, None, run.current) == []
    assert kinds(run.run(20, with_surge(100.0)), "onsale") != []


def test_a_global_onsale_means_no_event_flips() -> None:
    """Everything is on sale already: the detector says so once and publishes nothing."""
    run = Run()
    run.publish("global", None, "manual")
    found = run.run(30, lambda t: {"a": 100.0})
    assert [a.kind for _, a in found] == ["skip"]


def test_dry_run_reports_what_it_would_do() -> None:
    """Dry-run: the same actions are returned (nothing is published by the runner)."""
    run = Run(DetectorConfig(dry_run=True))
    found = run.detector.step(START, {"a": 100.0}, {})
    found = run.detector.step(START + 10, {"a": 100.0}, {})
    assert [a.kind for a in found] == ["onsale"]
    assert run.detector.surging() == ["a"]


def test_baselines_follow_the_hour_of_day_and_slow_growth() -> None:
    """Each hour learns its own level; a steady 3%/day growth is followed, not flagged."""
    baseline = DiurnalBaseline()
    t = START
    for _ in range(7 * 24 * 60):
        t += 60
        growth = 1 + 0.03 * (t - START) / DAY
        baseline.learn("e", diurnal(10.0, t) * growth, t, 60)
    night = baseline.expected("e", START + 7 * DAY + 7 * 3600 + 1800)
    evening = baseline.expected("e", START + 7 * DAY + 19 * 3600 + 1800)
    assert night is not None
    assert evening is not None
    assert evening > 3 * night
    assert evening == pytest.approx(diurnal(10.0, START + 19.5 * 3600) * 1.21, rel=0.1)


def test_config_refuses_nonsense() -> None:
    """A factor under 1, a negative floor or a zero quiet period are bad input."""
    with pytest.raises(BadInputError, match="factor"):
        DetectorConfig(factor=0.5)
    with pytest.raises(BadInputError, match="floor"):
        DetectorConfig(floor=-1)
    with pytest.raises(BadInputError, match="quiet"):
        DetectorConfig(quiet=0)


def test_in_process_rates_come_from_the_summarys_exact_counts() -> None:
    """SketchRates: requests since the last read over the time since; summed over services."""
    clock = FakeClock(0.0)
    first = EventHeavyHitters(slots=4, top=2, clock=clock)
    second = EventHeavyHitters(slots=4, top=2, clock=clock)
    rates = SketchRates([first, second])
    first.add("final", 5)
    assert rates.read() == {}  # the first read has no interval yet
    clock.advance(2.0)
    first.add("final", 100)
    second.add("final", 20)
    second.add("new", 8)  # entered at t=2: counted over the 2 s since
    clock.advance(2.0)
    # final: 100 in the 4 s since the last read, plus 20 in the 2 s since it entered the second
    assert rates.read() == {"final": pytest.approx(25.0 + 10.0), "new": pytest.approx(4.0)}
    clock.advance(4.0)
    assert rates.read() == {"final": 0.0, "new": 0.0}


def test_a_breach_interrupted_by_missing_readings_starts_afresh() -> None:
    """An event that drops out of the readings (top K) mid-breach needs a whole window again,
    and the evidence that it is above ``high`` starts from 0 again."""
    run = Run(DetectorConfig(high_evidence=0, growth_evidence=0))
    run.run(4, lambda t: {"a": 100.0})
    run.run(20, lambda t: {})
    found = run.run(2, lambda t: {"a": 100.0})
    assert kinds(found, "onsale") == []
    assert kinds(run.run(10, lambda t: {"a": 100.0}), "onsale") != []

    # 17 req/s: each 2 s reading adds ~1.7 nats that it is above 15, three readings confirm
    only_evidence = DetectorConfig(window=60, high_window=60, rise_window=0, growth_evidence=0)
    run = Run(only_evidence)
    run.run(2, lambda t: {"a": 0.0})
    assert run.run(4, lambda t: {"a": 17.0}) == []
    run.run(20, lambda t: {})
    assert run.run(4, lambda t: {"a": 17.0}) == []  # would be the 4th reading without the reset
    assert kinds(run.run(2, lambda t: {"a": 17.0}), "onsale") != []


def test_an_auto_state_republished_with_an_exit_rate_stays_the_detectors() -> None:
    """serve's exit-rate loop copies the auto state (new revision, source auto): still held."""
    run = Run(DetectorConfig(quiet=60.0))
    run.run(10, lambda t: {"a": 100.0})
    run.publish("event:a", None, "auto", until=run.now + 120)  # the copy, by another writer
    found = run.run(200, lambda t: {"a": 100.0})
    assert kinds(found, "extend") != []
    found = run.run(70, lambda t: {"a": 0.0})
    assert [a.kind for _, a in found] == ["normal"]


def quiet_event(extra: Callable[[float], float]) -> Rates:
    """Normal traffic, plus ``extra(seconds since START)`` req/s on final-2026 (no noise added)."""

    def rates(t: float) -> dict[str, float]:
        found = normal_traffic(t)
        found["final-2026"] += extra(t - START)
        return found

    return rates


def test_a_steep_surge_is_confirmed_after_the_high_window_not_the_whole_window() -> None:
    """Above ``high`` (15 req/s) the steep rule confirms after ``high_window``; 12 req/s (above
    the floor, under ``high``) waits for the whole ``window``."""
    config = DetectorConfig(high_evidence=0, growth_evidence=0)  # the steep rule alone
    assert config.high_window < config.window
    steep = Run(config)
    steep.learn(1, normal_traffic)
    t0 = steep.now
    onsale = kinds(steep.run(30, with_surge(100.0)), "onsale")
    assert onsale
    assert onsale[0][0] - t0 == pytest.approx(steep.interval + config.high_window)
    assert "above 15.0 for 4s" in onsale[0][1].reason

    level = Run(DetectorConfig())  # 12 req/s, flat: no rule but the sustained one sees it
    level.learn(1, normal_traffic)
    t0 = level.now
    onsale = kinds(level.run(30, with_surge(12.0)), "onsale")
    assert onsale
    assert onsale[0][0] - t0 == pytest.approx(level.interval + config.window)
    assert f"for {config.window:g}s" in onsale[0][1].reason


def test_exponential_growth_is_confirmed_by_the_rising_rule_before_the_window_would() -> None:
    """0.5 req/s doubling every 10 s: flipped while the sustained rule still waits, and the
    reason names the rise (thirds of the rising window)."""
    run = Run(DetectorConfig(window=6.0, growth_evidence=0))  # the rising rule of old
    run.learn(1, normal_traffic)
    run.now = START + 2 * DAY  # the growth starts from here
    growth = quiet_event(lambda x: 0.5 * 2 ** ((x - 2 * DAY) / 10.0))
    found = run.run(120, growth)
    onsale = kinds(found, "onsale")
    assert onsale
    t, action = onsale[0]
    # when the rate first stayed above the threshold (6 req/s floor, usual ~0.4): from then on
    # the sustained rule alone would need the whole window
    above = next(
        s
        for s in (run.now - 120 + 2 * k for k in range(1, 61))
        if growth(s)["final-2026"] > run.detector.threshold("final-2026", s)[0]
    )
    assert t < above + run.detector.config.window
    assert "rising" in action.reason
    assert t - (START + 2 * DAY) <= 44  # ~36 s to reach the floor, then a reading or two


def test_a_linear_ramp_to_a_high_level_is_confirmed_within_a_few_readings_of_the_floor() -> None:
    """0 -> 300 req/s over 60 s: confirmed at most three readings after it passes the floor."""
    run = Run()
    run.learn(1, normal_traffic)
    t0 = run.now
    found = run.run(60, quiet_event(lambda x: 300.0 * (x - (t0 - START)) / 60.0))
    onsale = kinds(found, "onsale")
    assert onsale
    floor_at = t0 + 60.0 * run.detector.config.floor / 300.0  # 1.2 s in
    assert onsale[0][0] - floor_at <= 3 * run.interval + 1


def test_flat_bot_bursts_are_not_rising() -> None:
    """A burst jumps to its level and stays flat: the rising rule never fires on it, even when
    the burst is above the floor (then only the sustained rule, after a whole window, could)."""
    config = DetectorConfig(window=60.0, high=0)  # only the rising rule can confirm
    run = Run(config)
    run.learn(1, normal_traffic)
    for size in (3.0, 9.0, 14.0):
        onset = run.now - START + 7  # inside a reading

        def burst(x: float, onset: float = onset, size: float = size) -> float:
            return size if x >= onset else 0.0

        assert run.run(50, quiet_event(burst)) == []  # 43 s of burst
        run.run(120, normal_traffic)


def test_a_thirty_second_burst_below_the_floor_never_flips() -> None:
    """A 30 s bot burst at 5 req/s (under the 6 req/s floor), flat or in two steps: no action."""
    for steps in ((5.0,), (2.5, 5.0)):
        run = Run()
        run.learn(1, normal_traffic)
        t0 = run.now - START

        def burst(x: float, t0: float = t0, steps: tuple[float, ...] = steps) -> float:
            if not 0 <= x - t0 < 30:
                return 0.0
            return steps[min(len(steps) - 1, int((x - t0) // (30 / len(steps))))]

        assert run.run(60, quiet_event(burst)) == []


def test_a_short_burst_above_the_floor_under_the_high_level_does_not_flip() -> None:
    """9 req/s for 5 s (a typical bot burst): shorter than the window, under ``high``, flat."""
    run = Run()
    run.learn(1, normal_traffic)
    t0 = run.now - START
    found = run.run(60, quiet_event(lambda x: 9.0 if 0 < x - t0 <= 5 else 0.0))
    assert found == []


def test_rising_needs_the_whole_span_and_growth_across_thirds() -> None:
    """``rising`` on readings: None until they cover ``rise_window``; a doubling ramp passes,
    the same levels in a flat order do not."""
    detector = SurgeDetector(DetectorConfig())
    t = START
    detector.step(t, {"a": 3.0}, {})  # the first reading covers no interval yet
    for rate in (3.0, 3.0, 3.0, 5.0, 5.0, 5.0, 8.0, 8.0):
        t += 2
        detector.step(t, {"a": rate}, {})
        assert detector.rising("a", t, 6.0, None) is None  # not 18 s of readings yet
    t += 2
    detector.step(t, {"a": 8.0}, {})
    assert detector.rising("a", t, 6.0, None) == pytest.approx((3.0, 5.0, 8.0))
    assert detector.rising("a", t, 8.5, None) is None  # the last third under the threshold
    assert detector.rising("a", t, 6.0, 2.0) is None  # the first third under twice the usual

    flat = SurgeDetector(DetectorConfig(window=60.0, high=0))
    t = START
    for rate in (0.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0):
        t += 2
        assert flat.step(t, {"a": rate}, {}) == []
        assert flat.rising("a", t, 6.0, None) is None


def test_the_quiet_period_counts_from_the_readings_oldest_data_with_lag() -> None:
    """Via Prometheus a reading shows data up to two scrapes old (``lag``): the surge ends
    ``quiet - lag`` after the last reading above the threshold, not ``quiet``."""
    config = DetectorConfig(quiet=120.0, lag=30.0)
    run = Run(config)
    run.learn(1, normal_traffic)
    run.run(60, with_surge(80.0))
    ended_at = run.now
    normal = kinds(run.run(300, normal_traffic), "normal")
    assert len(normal) == 1
    assert ended_at + 90.0 <= normal[0][0] <= ended_at + 90.0 + 2 * run.interval


def test_config_refuses_a_lag_not_under_the_quiet_period() -> None:
    with pytest.raises(BadInputError, match="lag"):
        DetectorConfig(quiet=60.0, lag=60.0)
    with pytest.raises(BadInputError, match="high"):
        DetectorConfig(high=-1.0)
    with pytest.raises(BadInputError, match="rise_window"):
        DetectorConfig(rise_window=math.nan)
