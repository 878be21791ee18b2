"""The detector's evidence on request counts: above a level (CUSUM), growing rather than a flat
burst (likelihood ratio); on generated readings, no I/O."""

from __future__ import annotations

import math

from onsale_obs.detect import DetectorConfig
from onsale_obs.detect._evidence import above_level, growth
from tests.test_detect_detector import DAY, START, Run, kinds, normal_traffic, quiet_event

GROWTH = DetectorConfig().growth_evidence


def readings(counts: list[float], seconds: float = 2.0) -> list[tuple[float, float, float]]:
    """2 s readings ending at 0: ``(time, seconds covered, rate)``."""
    n = len(counts)
    return [(-(n - 1 - i) * seconds, seconds, c / seconds) for i, c in enumerate(counts)]


def test_the_level_evidence_climbs_only_above_the_level_and_drains_below() -> None:
    """Above ``level`` every reading adds evidence (more the further above); under it the score
    drains to 0, never below (so a long quiet spell does not delay the next surge)."""
    score = 0.0
    for _ in range(3):
        score = above_level(score, 20.0, 2.0, 15.0)
    assert score > 3 * 2.0
    assert math.isclose(score, 3 * above_level(0.0, 20.0, 2.0, 15.0))
    assert above_level(0.0, 40.0, 2.0, 15.0) > above_level(0.0, 20.0, 2.0, 15.0)
    assert above_level(score, 12.0, 2.0, 15.0) < score  # under the level: drains
    assert above_level(1.0, 10.0, 20.0, 15.0) == 0.0


def test_exponential_growth_and_a_ramp_are_growth_a_flat_step_is_not() -> None:
    """Counts of a rate doubling every 10 s, of a ramp, and of a flat burst (same last level)."""
    exponential = [2 * 0.5 * 2 ** (t / 10) for t in range(0, 44, 2)][-15:]  # 0.5 -> 10 req/s
    ramp = [0.2] * 5 + [2 * 0.8 * k for k in range(1, 11)]  # 0 -> 8 req/s over 20 s
    flat = [0.2] * 10 + [16.0] * 5  # a burst of 8 req/s, 10 s old
    assert growth(readings(exponential), 0.0, 0.1) >= GROWTH
    assert growth(readings(ramp), 0.0, 0.1) >= GROWTH
    assert growth(readings(flat), 0.0, 0.1) < 1.0
    # the same at one reading a second (in-process): same curves, twice the readings
    per_second = [0.5 * 2 ** (t / 10) for t in range(14, 44)]
    assert growth(readings(per_second, seconds=1.0), 0.0, 0.1) >= GROWTH
    assert growth(readings([0.1] * 20 + [8.0] * 10, seconds=1.0), 0.0, 0.1) < 1.0


def test_a_burst_starting_within_a_reading_is_not_growth() -> None:
    """Bursts that flipped events in the benchmark: the first reading counts only part of the
    burst, the next one a bit more than its rate (Poisson). A flat step started mid-reading
    explains them; they are not growth."""
    for counts in ([0, 0, 1, 0, 0, 0, 6, 16, 27], [0, 0, 0, 0, 0, 0, 7, 17, 26], [1, 0, 1, 5, 24]):
        padded = [0.0] * (15 - len(counts)) + [float(c) for c in counts]
        assert growth(readings(padded), 0.0, 0.1, cap=12.0) < GROWTH


def test_a_step_too_high_for_a_burst_is_a_surge() -> None:
    """A flat 40 req/s is not growth, but no burst reaches it: above ``cap`` it is a surge;
    without a cap it is a flat step like any burst."""
    step = [0.2] * 13 + [80.0, 80.0]
    assert growth(readings(step), 0.0, 0.1, cap=12.0) >= GROWTH
    assert growth(readings(step), 0.0, 0.1) < 1.0


def test_exponential_growth_is_confirmed_by_the_growth_rule_sooner_than_by_the_others() -> None:
    """0.5 req/s doubling every 10 s: the growth rule flips it before the rising and sustained
    rules would (both alone on the same traffic), and the reason says so."""

    def first_flip(config: DetectorConfig) -> tuple[float, str]:
        run = Run(config)
        run.learn(1, normal_traffic)
        run.now = START + 2 * DAY
        found = kinds(
            run.run(120, quiet_event(lambda x: 0.5 * 2 ** ((x - 2 * DAY) / 10.0))), "onsale"
        )
        assert found
        return found[0][0] - (START + 2 * DAY), found[0][1].reason

    with_growth, reason = first_flip(DetectorConfig())
    without, _ = first_flip(DetectorConfig(growth_evidence=0))
    assert "growing over 30s" in reason
    assert with_growth < without
    assert with_growth <= 40  # 8 req/s at 40 s: a reading or two after the floor
