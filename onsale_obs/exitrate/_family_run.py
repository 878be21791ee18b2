"""Run scenario families under our controller and the baselines, and sum them up per family.

Per seed every controller meets the same users (:func:`run_seed`); per family the results
are summed up as mean and worst (:func:`summarise`) and judged against the targets:

- drain ratio <= 1.15 (1.25 on a family with a capacity loss or a software fault), mean and
  worst over the seeds;
- good SLO minutes >= 99% on average where the oracle reaches 99%, else at least the
  oracle's share;
- no fixed rate and not AIMD better on both mean drain ratio and mean SLO share;
- after a healed software fault, back to 90% of the pre-fault rate within 3 minutes of the
  short burn window clearing;
- mixed events: an innocent event keeps 90% of its no-fault rate at every tick while another
  event's fault shows (``_mixed_run.py``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from onsale_obs.exitrate._families import Family, MixedFamily, find_family
from onsale_obs.exitrate._mixed import MixedScenario
from onsale_obs.exitrate._mixed_run import INNOCENT_SHARE, run_mixed
from onsale_obs.exitrate._run import OURS, ScenarioReport, run_scenario
from onsale_obs.exitrate._scenario import Scenario

_Drawn = TypeVar("_Drawn", Scenario, MixedScenario)

#: Fixed baselines as shares of the true capacity at the start; the best one is reported.
FIXED_SHARES: Final = (0.6, 0.7, 0.8, 0.9, 1.0)
#: The controllers every seed runs: ours, AIMD, the oracle and the fixed rates.
CONTROLLERS: Final = (OURS, "aimd", "oracle", *(f"fixed-{s:g}x" for s in FIXED_SHARES))
#: Back to this share of the pre-fault rate ...
RECOVERY_SHARE: Final = 0.9
#: ... within this many seconds of the burn clearing.
RECOVERY_TARGET_S: Final = 180.0
TARGET_SLO: Final = 0.99


@dataclass(frozen=True, slots=True)
class SeedResult:
    """Drain ratio and SLO share of each controller on one seed of a family."""

    family: str
    seed: int
    physical_limit: float
    drain: dict[str, float]
    slo: dict[str, float]
    #: Seconds from the burn clearing to 90% of the pre-fault rate (software faults only).
    recovery_s: float | None = None
    #: Mixed events, ours: the innocent events' admitted users while the fault showed over
    #: the same without the fault (the lowest over the innocent events) ...
    innocent_kept: float | None = None
    #: ... and the lowest ratio of their rates with and without it at one tick ...
    innocent_worst: float | None = None
    #: ... and the rules (first word of the reason) of any decrease of theirs in the window.
    innocent_cuts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain numbers; an undrained run's ratio is ``null``."""
        return {
            "family": self.family,
            "seed": self.seed,
            "physical_limit_s": round(self.physical_limit, 1),
            "drain_ratio": {
                k: None if math.isinf(v) else round(v, 4) for k, v in self.drain.items()
            },
            "slo_share": {k: round(v, 4) for k, v in self.slo.items()},
            "recovery_s": self.recovery_s,
            "innocent_kept": _rounded(self.innocent_kept),
            "innocent_worst": _rounded(self.innocent_worst),
            "innocent_cuts": list(self.innocent_cuts),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def run_seed(
    family_name: str,
    seed: int,
    controllers: Sequence[str] = CONTROLLERS,
    cadence: float | None = None,
) -> SeedResult:
    """Every controller on the scenario ``family_name`` draws for ``seed`` (picklable).
    ``cadence``: seconds between the controller's ticks and between Prometheus' scrapes and
    rule evaluations (the families' own: 15 s)."""
    fam = find_family(family_name)
    if isinstance(fam, MixedFamily):
        mixed = run_mixed(_at(fam.draw(seed), cadence), list(controllers), seed=seed)
        innocent = mixed.innocent_of(OURS)
        return SeedResult(
            family=family_name,
            seed=seed,
            physical_limit=mixed.physical_limit,
            drain={r.controller: r.drain_ratio for r in mixed.results},
            slo={r.controller: r.slo_share for r in mixed.results},
            innocent_kept=min((i.kept for i in innocent), default=None),
            innocent_worst=min((i.worst for i in innocent), default=None),
            innocent_cuts=tuple(
                dict.fromkeys(reason.split()[0] for i in innocent for reason in i.cuts)
            ),
        )
    report = run_scenario(_at(fam.draw(seed), cadence), list(controllers), seed=seed)
    return SeedResult(
        family=family_name,
        seed=seed,
        physical_limit=report.physical_limit,
        drain={r.controller: r.drain_ratio for r in report.results},
        slo={r.controller: r.slo_share for r in report.results},
        recovery_s=recovery_after_fault(report),
    )


def _at(scenario: _Drawn, cadence: float | None) -> _Drawn:
    """``scenario`` ticking, scraped and evaluated every ``cadence`` seconds (None: as drawn)."""
    if cadence is None:
        return scenario
    telemetry = replace(scenario.telemetry, scrape_interval=cadence, eval_interval=cadence)
    return replace(scenario, tick=cadence, telemetry=telemetry)


def recovery_after_fault(report: ScenarioReport) -> float | None:
    """Seconds from the short burn window clearing after a healed fault until ours is back
    at 90% of its rate when the fault began (0 if it never fell; ``inf`` if it never came
    back while users waited). ``None`` without a fault, or when the queue was empty by then.

    The burn clears one short window after the heal, seen one scrape and one evaluation
    later: that is when a controller can know.
    """
    ours = report.ours
    faults = report.scenario.backend.faults
    if ours is None or not faults:
        return None
    fault = faults[0]
    tel = report.scenario.telemetry
    ticks = ours.timeline
    before = [t for t in ticks if t["t"] <= fault.start]
    if not before:
        return None
    pre = before[-1]["rate"]
    clear = fault.end + tel.short_window + tel.scrape_interval + tel.eval_interval
    after = [t for t in ticks if t["t"] >= clear]
    if not after or after[0]["queue"] <= 0:
        return None
    for t in after:
        if t["rate"] >= RECOVERY_SHARE * pre:
            return float(t["t"] - clear)
        if t["queue"] <= 0:
            return None  # drained before it needed the rate back
    return math.inf


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean and worst of one measure over a family's seeds."""

    mean: float
    worst: float


@dataclass(frozen=True, slots=True)
class FamilySummary:
    """One family: every controller's mean and worst, the best fixed rate, the verdict."""

    family: Family | MixedFamily
    seeds: tuple[int, ...]
    drain: dict[str, Stat]
    slo: dict[str, Stat]
    best_fixed: str
    recovery: Stat | None
    misses: tuple[str, ...] = field(default=())
    #: Mixed events: the innocent events' kept share (mean over the seeds) and the lowest
    #: tick ratio (worst: the lowest over the seeds).
    innocent: Stat | None = None
    #: Seeds on which ours decreased an innocent event's rate in the window, and the rules.
    innocent_cut_seeds: int = 0
    innocent_cut_rules: tuple[str, ...] = ()

    @property
    def met(self) -> bool:
        """Whether ours met every target on this family."""
        return not self.misses

    def to_json(self) -> dict[str, Any]:
        """Means and worsts per controller, the best fixed rate and what was missed."""

        def stat(s: Stat) -> dict[str, float | None]:
            return {
                "mean": None if math.isinf(s.mean) else round(s.mean, 4),
                "worst": None if math.isinf(s.worst) else round(s.worst, 4),
            }

        return {
            "family": self.family.name,
            "description": self.family.description,
            "seeds": [self.seeds[0], self.seeds[-1]] if self.seeds else [],
            "count": len(self.seeds),
            "drain_target": self.family.drain_target,
            "drain_ratio": {k: stat(v) for k, v in self.drain.items()},
            "slo_share": {k: stat(v) for k, v in self.slo.items()},
            "best_fixed": self.best_fixed,
            "recovery_s": None if self.recovery is None else stat(self.recovery),
            "innocent": None if self.innocent is None else stat(self.innocent),
            "innocent_cut_seeds": self.innocent_cut_seeds,
            "innocent_cut_rules": list(self.innocent_cut_rules),
            "met": self.met,
            "misses": list(self.misses),
        }


def summarise(fam: Family | MixedFamily, results: Sequence[SeedResult]) -> FamilySummary:
    """Mean and worst per controller over ``results`` (one family), and the verdict."""
    names = list(results[0].drain)
    drain = {
        n: Stat(statistics.fmean(r.drain[n] for r in results), max(r.drain[n] for r in results))
        for n in names
    }
    slo = {
        n: Stat(statistics.fmean(r.slo[n] for r in results), min(r.slo[n] for r in results))
        for n in names
    }
    fixed = [n for n in names if n.startswith("fixed-")]
    # the best fixed rate: the fastest among those that keep the SLO as well as the oracle
    # would ask of ours, else the one that keeps the most minutes
    bar = min(TARGET_SLO, slo["oracle"].mean) if "oracle" in slo else TARGET_SLO
    keeping = [n for n in fixed if slo[n].mean >= bar]
    if keeping:
        best = min(keeping, key=lambda n: drain[n].mean)
    else:
        best = max(fixed, key=lambda n: (slo[n].mean, -drain[n].mean), default="")
    times = [r.recovery_s for r in results if r.recovery_s is not None]
    recovery = Stat(statistics.fmean(times), max(times)) if times else None
    kept = [r.innocent_kept for r in results if r.innocent_kept is not None]
    lowest = [r.innocent_worst for r in results if r.innocent_worst is not None]
    innocent = Stat(statistics.fmean(kept), min(lowest)) if kept and lowest else None
    misses: list[str] = []
    if OURS in drain:
        if drain[OURS].mean > fam.drain_target:
            misses.append(f"mean drain {drain[OURS].mean:.3f} > {fam.drain_target}")
        if drain[OURS].worst > fam.drain_target:
            misses.append(f"worst drain {drain[OURS].worst:.3f} > {fam.drain_target}")
        if slo[OURS].mean < bar - 1e-9:
            misses.append(f"SLO minutes {slo[OURS].mean:.1%} < {bar:.1%}")
        for n in names:
            if n in (OURS, "oracle"):
                continue
            if drain[n].mean < drain[OURS].mean and slo[n].mean > slo[OURS].mean:
                misses.append(f"{n} better on both")
        if recovery is not None and recovery.worst > RECOVERY_TARGET_S:
            misses.append(f"recovery after a fault up to {recovery.worst:.0f}s > 180s")
        if innocent is not None and innocent.worst < INNOCENT_SHARE - 1e-9:
            misses.append(f"an innocent event cut to {innocent.worst:.1%} of its no-fault rate")
    return FamilySummary(
        fam,
        tuple(r.seed for r in results),
        drain,
        slo,
        best,
        recovery,
        tuple(misses),
        innocent,
        sum(1 for r in results if r.innocent_cuts),
        tuple(dict.fromkeys(rule for r in results for rule in r.innocent_cuts)),
    )
