"""Run a scenario under our controller and the baselines, and judge ours against the targets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._baselines import AIMDRate, FixedRate, OracleRate
from onsale_obs.exitrate._controller import ExitRateController
from onsale_obs.exitrate._report import ControllerResult, evaluate, physical_limit
from onsale_obs.exitrate._scenario import Scenario
from onsale_obs.exitrate._signals import RateController
from onsale_obs.exitrate._sim import simulate

#: The quality bar: drain within 15% of the physical limit ...
TARGET_DRAIN_RATIO: Final = 1.15
#: ... while at least 99% of 1-minute windows meet the on-sale SLO.
TARGET_SLO_SHARE: Final = 0.99
#: Fixed baselines, as multiples of the initial capacity converted to users/min.
FIXED_MULTIPLES: Final = (0.5, 0.75, 1.0, 1.25)
#: The oracle admits this share of the true capacity.
ORACLE_UTILISATION: Final = 0.9
#: AIMD's additive step per reading, as a share of the initial rate.
AIMD_STEP: Final = 0.02

OURS: Final = "ours"
#: Controller groups the CLI accepts, in the order results are listed.
GROUPS: Final = ("ours", "aimd", "fixed", "oracle")


def controller_names(groups: Iterable[str]) -> list[str]:
    """``["ours", "fixed"]`` -> ``["ours", "fixed-0.5x", ..., "fixed-1.25x"]``."""
    wanted = [g.strip() for g in groups if g.strip()]
    unknown = [g for g in wanted if g not in GROUPS]
    if unknown:
        raise BadInputError(
            f"unknown controller {', '.join(map(repr, unknown))}; expected some of "
            f"{', '.join(GROUPS)}.",
            field="--controllers",
        )
    names: list[str] = []
    for group in GROUPS:
        if group not in wanted:
            continue
        if group == "fixed":
            names.extend(f"fixed-{m:g}x" for m in FIXED_MULTIPLES)
        else:
            names.append(group)
    return names


def make_controller(name: str, scenario: Scenario) -> RateController:
    """A fresh controller called ``name`` (see :func:`controller_names`) for ``scenario``."""
    config = scenario.controller_config()
    if name == OURS:
        return ExitRateController(config)
    if name == "aimd":
        return AIMDRate(
            step=AIMD_STEP * scenario.waiting_room.initial_rate,
            burn_threshold=config.burn_threshold,
            min_rate=config.min_rate,
            max_rate=config.max_rate,
        )
    if name == "oracle":
        return OracleRate(scenario.capacity_rate, ORACLE_UTILISATION)
    if name.startswith("fixed-") and name.endswith("x"):
        return FixedRate(float(name[6:-1]) * scenario.capacity_rate(0.0))
    raise BadInputError(f"unknown controller {name!r}.", field="controller")


@dataclass(frozen=True, slots=True)
class ScenarioReport:
    """Every controller's result on one scenario, and whether ours met the targets."""

    scenario: Scenario
    seed: int
    physical_limit: float
    results: tuple[ControllerResult, ...]
    #: The drain ratio ours must reach: 1.15, or 1.25 with a capacity loss or a fault.
    drain_target: float = TARGET_DRAIN_RATIO

    def result(self, name: str) -> ControllerResult | None:
        """The result of controller ``name``, if it ran."""
        return next((r for r in self.results if r.controller == name), None)

    @property
    def ours(self) -> ControllerResult | None:
        """Our controller's result, if it ran."""
        return self.result(OURS)

    def dominating(self, *, include_oracle: bool = False) -> list[str]:
        """Baselines better than ours on both drain ratio and SLO share (the oracle counts only
        when asked: it knows what no controller can)."""
        ours = self.ours
        if ours is None:
            return []
        return [
            r.controller
            for r in self.results
            if r.controller != OURS
            and (include_oracle or r.controller != "oracle")
            and r.dominates(ours)
        ]

    @property
    def misses(self) -> list[str]:
        """Why ours missed the target, in words (empty when it met it or did not run)."""
        ours = self.ours
        if ours is None:
            return []
        out = []
        if ours.drain_ratio > self.drain_target:
            out.append(f"drain ratio {ours.drain_ratio:.3f} > {self.drain_target}")
        bar = self.slo_bar
        if ours.slo_share < bar - 1e-9:
            out.append(f"SLO minutes {ours.slo_share:.1%} < {bar:.1%}")
        beaten = self.dominating()
        if beaten:
            out.append(f"dominated by {', '.join(beaten)}")
        return out

    @property
    def slo_bar(self) -> float:
        """The SLO share ours must keep: 99%, or the oracle's share where even the oracle
        (which knows the true capacity) keeps less."""
        oracle = self.result("oracle")
        return TARGET_SLO_SHARE if oracle is None else min(TARGET_SLO_SHARE, oracle.slo_share)

    @property
    def meets_target(self) -> bool | None:
        """Ours within the drain and SLO targets and dominated by no fixed rate or AIMD
        (``None`` when ours did not run)."""
        return None if self.ours is None else not self.misses

    def to_json(self, *, timeline: bool = True) -> dict[str, Any]:
        """The documented JSON of one scenario (see README_SECTION.md)."""
        s = self.scenario
        ours = self.ours
        return {
            "scenario": s.name,
            "file": s.source,
            "description": s.description,
            "seed": self.seed,
            "users": s.waiting_room.users,
            "initial_capacity_rate": round(s.capacity_rate(0.0), 2),
            "physical_limit_s": round(self.physical_limit, 3),
            "targets": {"drain_ratio": self.drain_target, "slo_share": round(self.slo_bar, 4)},
            "ours": None
            if ours is None
            else {
                "meets_target": self.meets_target,
                "misses": self.misses,
                "dominated_by": self.dominating(),
                "dominated_by_oracle": "oracle" in self.dominating(include_oracle=True),
            },
            "controllers": [r.to_json(timeline=timeline) for r in self.results],
        }


def run_scenario(
    scenario: Scenario,
    names: Sequence[str],
    *,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
    drain_target: float = TARGET_DRAIN_RATIO,
) -> ScenarioReport:
    """Simulate ``scenario`` under each named controller (same seed, same users)."""
    seed = scenario.seed if seed is None else seed
    limit = physical_limit(scenario)
    results = []
    for name in names:
        run = simulate(scenario, make_controller(name, scenario), name=name, seed=seed)
        results.append(evaluate(run, limit))
        if progress is not None:
            progress(name)
    return ScenarioReport(scenario, seed, limit, tuple(results), drain_target)
