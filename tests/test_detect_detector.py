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
    """100 req/s on one event: on sale after the window, with a reason naming the rates."""
    run = Run()
    run.learn(2, normal_traffic)
    t0 = run.now
    found = run.run(60, with_surge(100.0))
    onsale = kinds(found, "onsale")
    assert [a.event for _, a in onsale] == ["final-2026"]
    t, action = onsale[0]
    window = run.detector.config.window
    assert window <= t - t0 <= window + 2 * run.interval
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
    """An event that drops out of the readings (top K) mid-breach needs a whole window again."""
    run = Run()
    run.run(4, lambda t: {"a": 100.0})
    run.run(20, lambda t: {})
    found = run.run(2, lambda t: {"a": 100.0})
    assert kinds(found, "onsale") == []
    assert kinds(run.run(10, lambda t: {"a": 100.0}), "onsale") != []


def test_an_auto_state_republished_with_an_exit_rate_stays_the_detectors() -> None:
    """serve's exit-rate loop copies the auto state (new revision, source auto): still held."""
    run = Run(DetectorConfig(quiet=60.0))
    run.run(10, lambda t: {"a": 100.0})
    run.publish("event:a", None, "auto", until=run.now + 120)  # the copy, by another writer
    found = run.run(200, lambda t: {"a": 100.0})
    assert kinds(found, "extend") != []
    found = run.run(70, lambda t: {"a": 0.0})
    assert [a.kind for _, a in found] == ["normal"]
