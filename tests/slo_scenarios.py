"""Burn scenarios: traffic written as (good, bad) counts per tick, for the alerting tests.

One scenario becomes requests (:class:`~tests.slo_oracle.Record`, for the engine and the
oracle) and per-minute counter samples (for ``promtool test rules``). Tick ``i`` of a mode
holds the requests that finished in ``(BASE + i * tick, BASE + (i + 1) * tick]``, spread evenly
inside it with the bad ones interleaved, so that a window ending on a tick boundary sees
whole ticks, and a window ending inside one sees a proportional share of its requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate
from typing import Final

from hypothesis import strategies as st

from onsale_obs.slo import SLOSpec, spec_from_data
from tests.slo_oracle import Record

BASE: Final = 1_800_000_000.0  # a whole minute, UTC
SERVICE: Final = "checkout"
ROUTE: Final = "/buy"
METHOD: Final = "POST"
#: the factors of the Workbook's rules, and a hair either side of them
FACTORS: Final = (Fraction(1), Fraction(6), Fraction("14.4"))
OBJECTIVES: Final = ("99", "99.5", "98", "99.9")
HAIRS: Final = (Fraction(-5, 100), Fraction(-2, 100), Fraction(2, 100), Fraction(5, 100))


@dataclass(frozen=True)
class ModeTraffic:
    """One mode's requests: ``ticks[i] = (good, bad)`` over ticks of ``tick`` seconds."""

    tick: int
    ticks: tuple[tuple[int, int], ...]

    @property
    def seconds(self) -> int:
        """How long the traffic lasts from BASE."""
        return self.tick * len(self.ticks)


@dataclass(frozen=True)
class Scenario:
    """Traffic of one SLO in each mode (either may be absent), with one objective for both."""

    objective: str  # percent, as written in a spec: "99.5"
    modes: dict[str, ModeTraffic] = field(default_factory=dict)

    @property
    def seconds(self) -> int:
        """How long the whole scenario lasts from BASE."""
        return max((t.seconds for t in self.modes.values()), default=0)

    def records(self) -> list[Record]:
        """Every request, oldest first."""
        out = [r for mode, t in self.modes.items() for r in _mode_records(mode, t)]
        return sorted(out, key=lambda r: r.ts)

    def cumulative(self, mode: str, minutes: int) -> tuple[list[int], list[int]]:
        """(good, bad) counter values at minute marks 0..``minutes`` (what a scrape sees):
        a request counts from the first mark at or after it finished."""
        good, bad = [0] * (minutes + 1), [0] * (minutes + 1)
        for r in self.records():
            mark = math.ceil((r.ts - BASE) / 60)
            if r.mode == mode and mark <= minutes:
                (bad if 500 <= r.status <= 599 else good)[mark] += 1
        return list(accumulate(good)), list(accumulate(bad))


def slo_spec(objective: str) -> SLOSpec:
    """One availability SLO with the default (README) policy and ``objective`` in both modes."""
    return spec_from_data(
        {
            "slos": [
                {
                    "name": "buy",
                    "service": SERVICE,
                    "sli": {"type": "availability", "routes": [ROUTE], "methods": [METHOD]},
                    "objectives": {"normal": float(objective), "onsale": float(objective)},
                }
            ]
        }
    )


def _mode_records(mode: str, traffic: ModeTraffic) -> Iterator[Record]:
    onsale = mode == "onsale"
    for i, (good, bad) in enumerate(traffic.ticks):
        n = good + bad
        start = BASE + i * traffic.tick
        for k in range(n):
            failed = (k + 1) * bad // n > k * bad // n  # bad ones spread evenly
            # a 404 now and then: a client error, never an availability failure
            status = 503 if failed else (404 if k % 7 == 3 else 201)
            yield Record(
                start + traffic.tick * (k + 1) / (n + 1),
                SERVICE,
                ROUTE,
                METHOD,
                status,
                0.05,
                mode,
                "final" if onsale else None,
                onsale,
            )


def steady(tick: int, count: int, per_tick: tuple[int, int]) -> ModeTraffic:
    """``count`` ticks, each with the same ``(good, bad)``."""
    return ModeTraffic(tick, (per_tick,) * count)


def phase_ticks(count: int, rate: int, ratio: Fraction) -> list[tuple[int, int]]:
    """``count`` ticks of ``rate`` requests, ``ratio`` of them failing, rounded cumulatively
    so the phase as a whole fails at ``ratio`` (to within one request)."""
    ratio = min(max(ratio, Fraction(0)), Fraction(1))
    out = []
    for i in range(count):
        bad = round((i + 1) * rate * ratio) - round(i * rate * ratio)
        out.append((rate - bad, bad))
    return out


def budget(objective: str) -> Fraction:
    """The error budget of an objective in percent: ``"99.5"`` -> 1/200."""
    return 1 - Fraction(objective) / 100


@st.composite
def phases(
    draw: st.DrawFn, objective: str, *, tick: int, max_phases: int, max_ticks: int, max_rate: int
) -> ModeTraffic:
    """A few phases of steady traffic, each clean, silent, an outage (maybe followed by clean
    traffic), or burning a hair either side of a factor."""
    ticks: list[tuple[int, int]] = []
    for _ in range(draw(st.integers(1, max_phases))):
        kind = draw(
            st.sampled_from(["near", "near", "near", "recovery", "clean", "outage", "silence"])
        )
        count = draw(st.integers(1, max_ticks))
        rate = draw(st.integers(1, max_rate))
        if kind == "silence":
            ratio, rate = Fraction(0), 0
        elif kind == "clean":
            ratio = Fraction(0)
        elif kind == "outage":
            ratio = Fraction(1)
        elif kind == "recovery":  # a short outage, then clean traffic: alerts must reset
            ticks += phase_ticks(draw(st.integers(1, 3)), rate, Fraction(1))
            ratio = Fraction(0)
        else:
            factor, hair = draw(st.sampled_from(FACTORS)), draw(st.sampled_from(HAIRS))
            ratio = factor * (1 + hair) * budget(objective)
        ticks += phase_ticks(count, rate, ratio) if rate else [(0, 0)] * count
    return ModeTraffic(tick, tuple(ticks))


@st.composite
def scenarios(draw: st.DrawFn, objective: str | None = None) -> Scenario:
    """On-sale traffic by the minute (up to ~80 minutes) and normal traffic by five minutes
    (up to ~7 hours): long enough for every window but the normal slow rule's 3 days."""
    if objective is None:
        objective = draw(st.sampled_from(OBJECTIVES))
    which = draw(st.sampled_from([("onsale",), ("normal",), ("onsale", "normal")]))
    modes: dict[str, ModeTraffic] = {}
    if "onsale" in which:
        modes["onsale"] = draw(phases(objective, tick=60, max_phases=4, max_ticks=20, max_rate=60))
    if "normal" in which:
        modes["normal"] = draw(phases(objective, tick=300, max_phases=4, max_ticks=24, max_rate=40))
    return Scenario(objective, modes)


def minute_marks(scenario: Scenario) -> Sequence[int]:
    """Minutes from BASE at which the scenario has data behind it (1 .. its last minute)."""
    return range(1, scenario.seconds // 60 + 1)
