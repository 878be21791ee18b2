"""Run a mixed-events on-sale under our controller and the baselines (one per event), and
measure whether the faulty event's failure cut an innocent event's rate.

Every kind of controller runs once per event on the same users (ours behind the
shared-backend guard, as live). The service as a whole is judged as a single room is: drain
ratio against T* of all the demand, good one-minute SLO windows of all its requests. For
the innocent events the adaptive controllers (ours, AIMD) also run the same seed with the
fault removed: the innocent event's admitted users while the fault shows (from its start
until the short burn window has cleared after the heal, while the innocent event still has
users waiting in both runs) over the same without the fault is its kept share; the lowest
ratio of the two runs' rates at one tick is how far it was cut at worst.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from onsale_obs.exitrate._mixed import MixedRun, MixedScenario, simulate_mixed
from onsale_obs.exitrate._report import ControllerResult, evaluate, physical_limit
from onsale_obs.exitrate._run import OURS, ScenarioReport, make_controller

#: An innocent event must keep this share of its no-fault rate at every tick of the fault.
INNOCENT_SHARE: Final = 0.9
#: Controllers whose innocent-event rate is compared with a run without the fault (the
#: others do not read the signals: their rate cannot depend on the fault).
ADAPTIVE: Final = (OURS, "aimd")


@dataclass(frozen=True, slots=True)
class InnocentRate:
    """How one innocent event fared under one controller while another event's fault showed."""

    event: str
    controller: str
    #: Seconds [start, end) compared: the fault showing, the innocent event's queue not empty.
    window: tuple[float, float]
    #: Admitted users in the window with the fault / without it.
    kept: float
    #: The lowest ratio of the rates with and without the fault at one tick of the window.
    worst: float
    #: Reasons of the innocent event's decreases in the window with the fault (distinct).
    cuts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain numbers and the reasons of any cut."""
        return {
            "event": self.event,
            "controller": self.controller,
            "window_s": [self.window[0], self.window[1]],
            "kept": round(self.kept, 4),
            "worst": round(self.worst, 4),
            "cuts": list(self.cuts),
        }


@dataclass(frozen=True, slots=True)
class MixedReport(ScenarioReport):
    """A :class:`ScenarioReport` of the service as a whole, with each event's results and the
    innocent events' rates against the run without the fault."""

    mixed: MixedScenario | None = None
    #: Per event name: every controller's result on that event alone.
    events: dict[str, tuple[ControllerResult, ...]] = field(default_factory=dict)
    innocent: tuple[InnocentRate, ...] = ()

    def innocent_of(self, controller: str) -> list[InnocentRate]:
        """The innocent events' measures under ``controller``."""
        return [i for i in self.innocent if i.controller == controller]

    @property
    def misses(self) -> list[str]:
        """The single-room misses, and an innocent event cut under ``INNOCENT_SHARE`` by ours."""
        out: list[str] = ScenarioReport.misses.fget(self)  # type: ignore[attr-defined]
        for i in self.innocent_of(OURS):
            if i.worst < INNOCENT_SHARE - 1e-9:
                out.append(f"innocent {i.event} cut to {i.worst:.1%} of its no-fault rate")
        return out

    def to_json(self, *, timeline: bool = True) -> dict[str, Any]:
        """The single-room JSON of the whole service, with ``events`` and ``innocent``."""
        data = ScenarioReport.to_json(self, timeline=timeline)
        mixed = self.mixed
        if mixed is not None:
            data["events"] = [
                {
                    "event": e.name,
                    "users": e.waiting_room.users,
                    "demand_share": round(mixed.demand_share(i), 4),
                    "faults": [
                        {"start": f.start, "end": f.end, "error_share": f.error_share}
                        for f in e.faults
                    ],
                    "controllers": [
                        r.to_json(timeline=timeline) for r in self.events.get(e.name, ())
                    ],
                }
                for i, e in enumerate(mixed.events)
            ]
        data["innocent"] = [i.to_json() for i in self.innocent]
        return data


def run_mixed(
    scenario: MixedScenario,
    names: Sequence[str],
    *,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
    drain_target: float = 1.25,
) -> MixedReport:
    """Simulate ``scenario`` under each named controller (one instance per event, same users),
    and the adaptive ones again without the fault."""
    seed = scenario.seed if seed is None else seed
    whole = scenario.whole()
    limit = physical_limit(whole)
    views = [scenario.event_view(i) for i in range(len(scenario.events))]
    limits = [physical_limit(v) for v in views]
    clean = scenario.without_faults() if scenario.faulty is not None else None
    results = []
    per_event: dict[str, list[ControllerResult]] = {e.name: [] for e in scenario.events}
    innocent: list[InnocentRate] = []
    for name in names:
        run = _simulate(scenario, name, seed)
        results.append(evaluate(run.whole, limit))
        for event, event_run, event_limit in zip(scenario.events, run.events, limits, strict=True):
            per_event[event.name].append(evaluate(event_run, event_limit))
        if clean is not None and name in ADAPTIVE:
            innocent.extend(innocent_rates(run, _simulate(clean, name, seed)))
        if progress is not None:
            progress(name)
    return MixedReport(
        whole,
        seed,
        limit,
        tuple(results),
        drain_target,
        mixed=scenario,
        events={k: tuple(v) for k, v in per_event.items()},
        innocent=tuple(innocent),
    )


def _simulate(scenario: MixedScenario, name: str, seed: int) -> MixedRun:
    controllers = [
        make_controller(name, scenario.event_view(i)) for i in range(len(scenario.events))
    ]
    # ours runs behind the live loop's guard; the baselines are what operators run today
    return simulate_mixed(scenario, controllers, name=name, seed=seed, guard=name == OURS)


def innocent_rates(faulty: MixedRun, clean: MixedRun) -> list[InnocentRate]:
    """Each innocent event's kept share and worst cut (see the module docstring); an event
    whose queue was empty before the fault showed is left out."""
    s = faulty.scenario
    index = s.faulty
    if index is None:
        return []
    fault = s.events[index].faults[0]
    tel = s.telemetry
    start = fault.start
    clear = fault.end + tel.short_window + tel.scrape_interval + tel.eval_interval
    out = []
    for i, event in enumerate(s.events):
        if i == index:
            continue
        drains = [r.events[i].drain_time for r in (faulty, clean)]
        end = min([clear, *(d for d in drains if d is not None)])
        if end - start < s.tick:
            continue
        a, b = int(start), int(end)
        with_fault = _admitted(faulty.admitted[i], a, b)
        without = _admitted(clean.admitted[i], a, b)
        if without <= 0:
            continue
        ticks = [t for t in faulty.events[i].ticks if start <= t.t < end]
        reference = {t.t: t.rate for t in clean.events[i].ticks}
        ratios = [t.rate / reference[t.t] for t in ticks if reference.get(t.t, 0) > 0]
        cuts = tuple(dict.fromkeys(t.reason for t in ticks if t.action == "decrease"))
        out.append(
            InnocentRate(
                event=event.name,
                controller=faulty.controller,
                window=(float(start), float(end)),
                kept=with_fault / without,
                worst=min(ratios, default=1.0),
                cuts=cuts,
            )
        )
    return out


def _admitted(cumulative: Sequence[int], start: int, end: int) -> int:
    """Users admitted in seconds ``[start, end)`` (clipped to the run)."""
    last = len(cumulative) - 1
    return cumulative[min(end, last)] - cumulative[min(start, last)]
