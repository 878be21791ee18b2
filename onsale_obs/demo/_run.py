"""Running the demo: services up, the story driven through them, the results read back."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from onsale_obs.demo._clock import SimClock
from onsale_obs.demo._drive import Driver
from onsale_obs.demo._plan import MINUTE, DemoPlan
from onsale_obs.demo._services import examples
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
from onsale_obs.slo import AlertTimeline, Report, SLOSpec, load_spec, render_html, run_report
from onsale_obs.slo._logs import LogSource
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
                "modes.db, slo.yaml, reports).",
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


def _wait_for_mode(subscribers: dict[str, ModeSubscriber], event: str, onsale: bool) -> None:
    """Until every service's subscriber sees the event in the expected mode (a few ms)."""
    deadline = time.monotonic() + 5.0
    expected = "onsale" if onsale else "normal"
    while time.monotonic() < deadline:
        if all(s.mode_for(event) == expected for s in subscribers.values()):
            return
        time.sleep(0.002)


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
    scope = event_scope(plan.event)
    schedule = Schedule(
        [ScheduledWindow(scope, start + plan.onsale_start, start + plan.onsale_end, "general sale")]
    )
    schedule.save(folder / "onsale-schedule.yaml")
    controller = ExitRateController(
        ExitRateConfig(
            min_rate=max(10.0, plan.initial_rate / 10), admission_lag=10.0, signal_lag=10.0
        )
    )
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
        rate, queue, carry, failing, normal_carry = plan.initial_rate, 0.0, 0.0, False, 0.0
        latencies: list[list[float]] = []  # per step of the on-sale
        events = [plan.event, *plan.other_events]
        offset = 0.0
        while offset < plan.end:
            clock.set(start + offset)
            if broadcaster.apply_schedule(schedule):
                _wait_for_mode(
                    services.subscribers, plan.event, schedule.windows[0].contains(clock())
                )
            if plan.failing(offset) != failing:
                failing = not failing
                driver.fail_checkout(plan.failure_rate if failing else 0.0)
            onsale = plan.onsale_start <= offset < plan.onsale_end
            step = plan.step_at(offset)
            normal_carry += plan.normal_per_minute * step / MINUTE
            browse = [events[(i + int(offset)) % len(events)] for i in range(int(normal_carry))]
            normal_carry -= int(normal_carry)
            if onsale:
                browse = [e for e in browse if e != plan.event]
                if offset == plan.onsale_start:
                    queue += plan.queued
                queue += plan.arrivals_per_minute * step / MINUTE
                carry += rate * step / MINUTE
                admitted = int(min(queue, carry))
                carry -= admitted
                queue -= admitted
                browse += [plan.event] * admitted
            seen = len(driver.durations)
            driver.send(browse)
            if onsale:
                latencies.append(driver.durations[seen:])
            offset += step
            if onsale and (offset - plan.onsale_start) % MINUTE == 0:
                for log in services.access_logs.values():
                    log.flush()
                windows = ModeHistory(store, verifier).onsale_windows()
                reading = read_signals(
                    spec, availability, latency, services.log_paths, start + offset,
                    current_rate=rate, queue=queue, arrivals=plan.arrivals_per_minute,
                    windows=windows,
                    latencies=[d for chunk in latencies[-int(MINUTE / plan.step) :] for d in chunk],
                )  # fmt: skip
                recommendation = controller.recommend(reading)
                recommendations.append(recommendation)
                rate = recommendation.rate
            if progress is not None:
                progress(offset, plan.end, "on-sale" if onsale else "normal traffic")
        for log in services.access_logs.values():
            log.flush()
        windows = ModeHistory(store, verifier).onsale_windows()
    at = start + plan.end
    report = run_report(spec, LogSource(services.log_paths), at, onsale_windows=windows, bins=30)
    times = [
        start + plan.onsale_start + m * MINUTE
        for m in range(plan.onsale_minutes + plan.quiet_minutes + 1)
    ]
    timeline = alert_timeline(spec, LogSource(services.log_paths), times, onsale_windows=windows)
    routing = render_alertmanager(receivers_from_data({}))
    result = DemoResult(
        folder, spec_path, backend_url, keys.verify_key, services.log_paths, start, at, plan,
        report, _alerts(timeline, spec, MINUTE, routing), recommendations, driver.statuses,
    )  # fmt: skip
    _write(result, timeline, windows)
    page = render_html(report, AlertTimeline(tuple(times), tuple(timeline), MINUTE, spec.grace))
    (folder / "report.html").write_text(page)
    return result


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
