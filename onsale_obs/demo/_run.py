"""Running the demo: services up, the story driven through them, the results read back."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onsale_obs.demo._clock import SimClock
from onsale_obs.demo._drive import Driver
from onsale_obs.demo._plan import MINUTE, DemoPlan
from onsale_obs.demo._services import SERVICES, examples
from onsale_obs.demo._services import start as start_services
from onsale_obs.demo._signals import read_signals
from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import ExitRateConfig, ExitRateController, Recommendation
from onsale_obs.generate._alertmanager import receivers_from_data, render_alertmanager
from onsale_obs.generate._routing import Destination, routes_for
from onsale_obs.modes import (
    Broadcaster,
    ModeHistory,
    ModeSubscriber,
    Schedule,
    ScheduledWindow,
    Signer,
    Verifier,
    generate_key_pair,
    open_backend,
)
from onsale_obs.modes._model import OnSaleWindow, event_scope
from onsale_obs.plan import (
    GivenNumbers,
    NextPlan,
    Profile,
    VerticalScaler,
    learn,
    load_profile,
    plan_next,
)
from onsale_obs.plan._vertical import scaler_for
from onsale_obs.slo import AlertTimeline, Report, SLOSpec, load_spec, render_html, run_report
from onsale_obs.slo._html import timeline_moments
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._retro import from_logs, read_decisions, spans_of
from onsale_obs.slo._retro_html import build_retros, render_sections
from onsale_obs.slo._spec import severity_of
from onsale_obs.slo._timeline import Firing, alert_timeline

SPEC = Path(__file__).resolve().parents[2] / "examples" / "ticketing" / "slo.yaml"
ProgressFn = Callable[[float, float, str], None]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of the timeline: a rule that fired from ``start`` to ``end`` (last moment)."""

    slo: str
    service: str
    mode: str
    rule: str
    priority: str
    start: float
    end: float
    peak_burn: float
    routes: tuple[Destination, ...]


@dataclass(frozen=True, slots=True)
class VerticalTick:
    """What ``onsale_vertical_desired_replicas`` said at one tick of the main on-sale or after."""

    time: float
    queue: float | None
    rate: float | None
    #: service -> desired replicas; empty once withdrawn (each service back to its minimum)
    desired: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """``{"time", "queue", "rate", "desired"}``."""
        return {"time": self.time, "queue": self.queue, "rate": self.rate, "desired": self.desired}


@dataclass
class Planning:
    """The main on-sale's plan: learnt from the past on-sale, fed to its controller."""

    profile: Profile
    next: NextPlan
    #: the controller's warm start: its first rate, and its capacity prior (None: not given)
    starting_rate: float
    capacity_prior: float | None
    #: why the capacity prior was or was not given to the controller
    prior_note: str
    #: the past on-sale's admitted users, as ``plan learn --admitted`` takes them
    admitted: dict[str, float]
    replicas: dict[str, float]
    learned_at: float


@dataclass
class DemoResult:
    """What the demo produced (also written to ``folder``)."""

    folder: Path
    spec_path: Path
    backend_url: str
    verify_key: Path
    logs: list[Path]
    start: float
    at: float
    plan: DemoPlan
    report: Report
    alerts: list[Alert]
    recommendations: list[Recommendation]
    statuses: Counter[int] = field(default_factory=Counter)
    #: None when planning failed (the main on-sale then started cold: see ``planning_error``)
    planning: Planning | None = None
    planning_error: str | None = None
    vertical: list[VerticalTick] = field(default_factory=list)


# written into every folder the demo makes: only such a folder is cleaned for a new run
MARKER = ".onsale-obs-demo"


def _fresh(folder: Path, force: bool) -> None:
    """Make ``folder`` ready for a run, refusing to clean a folder the demo did not make."""
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "not a folder")
        ours = (folder / MARKER).is_file()
        if folder.is_dir() and not ours and not force and any(folder.iterdir()):
            raise BadInputError(
                "is not empty and was not made by the demo; expected a new or empty folder "
                "(or pass --force to let the demo replace files of its names there: logs/, keys/, "
                "modes.db, slo.yaml, reports, onsale-profile.json, plan.json).",
                file=str(folder),
            )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text(
            "made by onsale-obs demo: its next run may replace this folder's data\n"
        )
        for name in ("logs", "keys"):
            shutil.rmtree(folder / name, ignore_errors=True)
        for name in ("modes.db", "modes.db-wal", "modes.db-shm"):
            (folder / name).unlink(missing_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"cannot be used for the demo's data ({exc.strerror or exc}); expected a folder.",
            file=str(folder),
        ) from None


def _wait_for_modes(subscribers: dict[str, ModeSubscriber], schedule: Schedule, now: float) -> None:
    """Until every service's subscriber sees each scheduled event in its mode (a few ms)."""
    deadline = time.monotonic() + 5.0
    expected = {
        w.scope.removeprefix("event:"): "onsale" if w.contains(now) else "normal"
        for w in schedule.windows
    }
    while time.monotonic() < deadline:
        if all(
            s.mode_for(event) == mode
            for s in subscribers.values()
            for event, mode in expected.items()
        ):
            return
        time.sleep(0.002)


@dataclass
class _Sale:
    """One on-sale of the story: its waiting room and the controller that sets its rate."""

    event: str
    start: float
    end: float
    queued: int
    arrivals: int
    controller: ExitRateController
    rate: float
    queue: float = 0.0
    carry: float = 0.0
    admitted: int = 0
    #: what the waiting room saw, per step of the on-sale
    latencies: list[list[float]] = field(default_factory=list)

    def on(self, offset: float) -> bool:
        return self.start <= offset < self.end

    def admit(self, offset: float, step: float) -> int:
        """Users let in during the step starting at ``offset``."""
        if offset == self.start:
            self.queue += self.queued
        self.queue += self.arrivals * step / MINUTE
        self.carry += self.rate * step / MINUTE
        n = int(min(self.queue, self.carry))
        self.carry -= n
        self.queue -= n
        self.admitted += n
        return n


def _controller(plan: DemoPlan, capacity_prior: float | None = None) -> ExitRateController:
    return ExitRateController(
        ExitRateConfig(
            min_rate=max(10.0, plan.initial_rate / 10), admission_lag=10.0, signal_lag=10.0,
            capacity_prior=capacity_prior,
        )
    )  # fmt: skip


def _planning(
    spec: SLOSpec,
    logs: list[Path],
    at: float,
    windows: list[OnSaleWindow],
    plan: DemoPlan,
    past: _Sale,
    start: float,
    folder: Path,
) -> Planning:
    """``plan learn`` on the past on-sale, then ``plan next`` for the main one (the library
    calls behind the CLI commands the demo prints)."""
    admitted = {plan.past_event: float(past.admitted)}
    replicas = dict.fromkeys(SERVICES, 1.0)  # one in-process instance of each
    learnt = learn(
        spec,
        LogSource(logs),
        at,
        onsale_windows=windows,
        admitted=GivenNumbers(admitted, "admitted"),
        replicas=GivenNumbers(replicas, "given"),
    )
    # planned from the profile as written (and as 'plan next --profile' reads it)
    path = folder / "onsale-profile.json"
    path.write_text(learnt.dumps(), encoding="utf-8")
    profile = load_profile(path)
    demand = plan.queued + plan.arrivals_per_minute * plan.onsale_minutes
    nxt = plan_next(
        profile, demand=demand, start=start + plan.onsale_start, like=(plan.past_event,)
    )
    if nxt.prior_is_lower_bound:
        prior, note = (
            None,
            (
                f"no capacity prior: the past on-sale never pushed {nxt.first_to_saturate} to its "
                f"limit, so {nxt.capacity_prior:,.0f} users/min is a lower bound (as a prior it "
                "would stop the ramp there)"
            ),
        )
    else:
        prior = nxt.capacity_prior
        note = f"capacity prior {prior:,.0f} users/min (where {nxt.first_to_saturate} broke)"
    return Planning(profile, nxt, nxt.starting_rate, prior, note, admitted, replicas, at)


def _alerts(timeline: list[Firing], spec: SLOSpec, step: float, routing: str) -> list[Alert]:
    """Consecutive firing moments of one rule folded into one alert, with its routes."""
    out: list[Alert] = []
    open_: dict[tuple[str, str, str], list[Firing]] = {}
    for f in sorted(timeline, key=lambda f: f.at):
        key = (f.slo, f.mode, f.rule)
        run = open_.get(key)
        if run is not None and f.at - run[-1].at <= step + 1e-6:
            run.append(f)
            continue
        if run is not None:
            out.append(_alert(run, spec, routing))
        open_[key] = [f]
    out += [_alert(run, spec, routing) for run in open_.values()]
    return sorted(out, key=lambda a: (a.start, a.priority))


def _alert(run: list[Firing], spec: SLOSpec, routing: str) -> Alert:
    first = run[0]
    service = spec.get(first.slo).service
    labels = {
        "onsale_obs": "slo",  # as the generated alert rules label every SLO alert
        "mode": first.mode, "priority": first.priority, "severity": severity_of(first.priority),
        "slo": first.slo, "service": service,
    }  # fmt: skip
    return Alert(
        first.slo, service, first.mode, first.rule, first.priority, first.at, run[-1].at,
        max(f.long_burn for f in run), tuple(routes_for(routing, labels)),
    )  # fmt: skip


def run_demo(
    folder: Path,
    *,
    plan: DemoPlan | None = None,
    now: float | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> DemoResult:
    """Run the whole demo, writing its data into ``folder``; returns what it found.

    ``folder`` must be new, empty or made by an earlier run (``force``: any folder).
    """
    plan = plan or DemoPlan()
    examples()  # before anything is written: the demo needs a source checkout
    _fresh(folder, force)
    keys = generate_key_pair(folder / "keys")
    spec_path = folder / "slo.yaml"
    shutil.copyfile(SPEC, spec_path)
    spec = load_spec(spec_path)
    availability, latency = spec.get("checkout-availability"), spec.get("checkout-latency")
    backend_url = f"sqlite:///{folder / 'modes.db'}"
    start = (int(now if now is not None else time.time()) // 60) * 60 - plan.end
    clock = SimClock(start)
    schedule = Schedule(
        [
            ScheduledWindow(
                event_scope(plan.past_event), start + plan.past_start, start + plan.past_end,
                "semi-final sale",
            ),
            ScheduledWindow(
                event_scope(plan.event), start + plan.onsale_start, start + plan.onsale_end,
                "general sale",
            ),
        ]
    )  # fmt: skip
    schedule.save(folder / "onsale-schedule.yaml")
    # the past on-sale starts cold, from a guessed rate; the main one from the plan
    past = _Sale(
        plan.past_event, plan.past_start, plan.past_end, plan.past_queued,
        plan.past_arrivals_per_minute, _controller(plan), plan.initial_rate,
    )  # fmt: skip
    main: _Sale | None = None
    planning: Planning | None = None
    planning_error: str | None = None
    vertical: VerticalScaler | None = None
    ticks: list[VerticalTick] = []
    recommendations: list[Recommendation] = []
    with ExitStack() as stack:
        store = open_backend(backend_url)
        stack.callback(store.close)
        broadcaster = Broadcaster(store, Signer.from_file(keys.signing_key), clock=clock)
        services = start_services(
            stack, backend_url=backend_url, verify_key=keys.verify_key, folder=folder, clock=clock,
            seats=plan.seats,
        )  # fmt: skip
        driver = Driver(services.gateway_url, services.checkout_url)
        stack.callback(driver.close)
        verifier = Verifier.from_files([keys.verify_key])
        failing, normal_carry = False, 0.0
        events = [plan.event, plan.past_event, *plan.other_events]
        offset = 0.0
        while offset < plan.end:
            clock.set(start + offset)
            if broadcaster.apply_schedule(schedule):
                _wait_for_modes(services.subscribers, schedule, clock())
            if main is None and offset >= plan.onsale_start - MINUTE:
                # a minute before the on-sale opens: learn from the past one, plan this one
                for log in services.access_logs.values():
                    log.flush()
                try:
                    planning = _planning(
                        spec, services.log_paths, start + offset,
                        ModeHistory(store, verifier).onsale_windows(), plan, past, start, folder,
                    )  # fmt: skip
                except BadInputError as exc:  # never expected; the demo then starts cold
                    planning_error = str(exc)
                if planning is not None:
                    main = _Sale(
                        plan.event, plan.onsale_start, plan.onsale_end, plan.queued,
                        plan.arrivals_per_minute, _controller(plan, planning.capacity_prior),
                        planning.starting_rate,
                    )  # fmt: skip
                    vertical = scaler_for(
                        planning.profile, drain_target=plan.vertical_drain,
                        cooldown=plan.vertical_cooldown,
                        max_rate=main.controller.config.max_rate,
                    )  # fmt: skip
                else:
                    main = _Sale(
                        plan.event, plan.onsale_start, plan.onsale_end, plan.queued,
                        plan.arrivals_per_minute, _controller(plan), plan.initial_rate,
                    )  # fmt: skip
            step = plan.step_at(offset)
            # users arrive through the step, not at its first instant: requests are logged
            # mid-step, so none falls on the very instant an on-sale begins (spans are
            # half-open, (start, end]: the on-sale rows then add up to the mode's total)
            clock.set(start + offset + step / 2)
            if plan.failing(offset) != failing:
                failing = not failing
                driver.fail_checkout(plan.failure_rate if failing else 0.0)
            sales = [s for s in (past, main) if s is not None and s.on(offset)]
            normal_carry += plan.normal_per_minute * step / MINUTE
            browse = [events[(i + int(offset)) % len(events)] for i in range(int(normal_carry))]
            normal_carry -= int(normal_carry)
            for sale in sales:
                browse = [e for e in browse if e != sale.event]
                browse += [sale.event] * sale.admit(offset, step)
            seen = len(driver.durations)
            driver.send(browse)
            for sale in sales:
                sale.latencies.append(driver.durations[seen:])
            offset += step
            for sale in sales:
                if (offset - sale.start) % MINUTE != 0:
                    continue
                for log in services.access_logs.values():
                    log.flush()
                windows = ModeHistory(store, verifier).onsale_windows()
                reading = read_signals(
                    spec, availability, latency, services.log_paths, start + offset,
                    current_rate=sale.rate, queue=sale.queue, arrivals=sale.arrivals,
                    windows=windows,
                    latencies=[
                        d for chunk in sale.latencies[-int(MINUTE / plan.step) :] for d in chunk
                    ],
                )  # fmt: skip
                recommendation = sale.controller.recommend(reading)
                recommendations.append(recommendation)
                sale.rate = recommendation.rate
                if sale is main and vertical is not None:
                    vertical.observe(start + offset, [(sale.event, sale.rate, sale.queue)])
                    ticks.append(_tick(vertical, start + offset, plan.event))
            after = offset - plan.onsale_end
            if vertical is not None and after > 0 and after % MINUTE == 0:
                vertical.observe(start + offset, [])  # ended: the cool-down, then withdrawn
                ticks.append(_tick(vertical, start + offset, plan.event))
            if progress is not None:
                what = "on-sale" if any(s is main for s in sales) else (
                    "past on-sale" if sales else "normal traffic"
                )  # fmt: skip
                progress(offset, plan.end, what)
        for log in services.access_logs.values():
            log.flush()
        windows = ModeHistory(store, verifier).onsale_windows()
    at = start + plan.end
    source = LogSource(services.log_paths)
    report = run_report(spec, source, at, onsale_windows=windows, bins=30)
    times, step = timeline_moments(report, spec.grace)
    timeline = alert_timeline(spec, source, times, onsale_windows=windows)
    routing = render_alertmanager(receivers_from_data({}))
    result = DemoResult(
        folder, spec_path, backend_url, keys.verify_key, services.log_paths, start, at, plan,
        report, _alerts(timeline, spec, step, routing), recommendations, driver.statuses,
        planning, planning_error, ticks,
    )  # fmt: skip
    _write(result, timeline, windows)
    # the report page carries a retrospective of each on-sale (the same pipeline as
    # 'slo report --format html --recommendations recommendations.json')
    spans = spans_of(report, spec.grace)
    minutes = from_logs(services.log_paths, spec.slos, spans, spec.grace)
    retros = build_retros(
        report,
        minutes,
        firings=timeline,
        times=times,
        decisions=read_decisions(folder / "recommendations.json"),
        vertical={event_scope(plan.event): [(t.time, t.desired) for t in ticks]},
    )
    page = render_html(
        report,
        AlertTimeline(tuple(times), tuple(timeline), step, spec.grace),
        retrospective=render_sections(retros, report),
    )
    (folder / "report.html").write_text(page, encoding="utf-8")
    return result


def _tick(vertical: VerticalScaler, now: float, event: str) -> VerticalTick:
    state = vertical.events.get(event)
    desired = {s: n for (e, s), n in vertical.desired().items() if e == event}
    if state is None:
        return VerticalTick(now, None, None, desired)
    queue = None if state.queue is None or math.isnan(state.queue) else state.queue
    return VerticalTick(now, queue, state.rate, desired)


def _write(result: DemoResult, timeline: list[Firing], windows: list[OnSaleWindow]) -> None:
    """report.json, alerts.json and recommendations.json beside the data."""
    folder = result.folder
    (folder / "report.json").write_text(json.dumps(result.report.to_json(), indent=2))
    (folder / "alerts.json").write_text(
        json.dumps(
            {
                "timeline": [f.to_json() for f in timeline],
                "windows": [w.to_json() for w in windows],
            },
            indent=2,
        )
    )
    (folder / "recommendations.json").write_text(
        json.dumps([r.to_json() for r in result.recommendations], indent=2)
    )
    p = result.planning
    if p is not None:
        (folder / "plan.json").write_text(json.dumps(p.next.to_json(), indent=2))
    (folder / "vertical.json").write_text(
        json.dumps([t.to_json() for t in result.vertical], indent=2)
    )
