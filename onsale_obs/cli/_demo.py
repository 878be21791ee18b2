"""``onsale-obs demo``: the whole journey on the embedded default, in under a minute."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from onsale_obs.cli._output import command_name, fmt_duration, fmt_time, stdout
from onsale_obs.cli._slo_render import (
    Grid,
    all_onsales,
    budget_lines,
    onsales_grid,
    print_grids,
    summary_grid,
)
from onsale_obs.demo._plan import DemoPlan
from onsale_obs.demo._run import Alert, DemoResult, Planning, VerticalTick, run_demo


def _clock(result: DemoResult, at: float, origin: float | None = None) -> str:
    """``on-sale +08:00`` style offsets (from the main on-sale's start, or ``origin``)."""
    offset = at - (result.start + result.plan.onsale_start if origin is None else origin)
    sign = "+" if offset >= 0 else "-"
    minutes, seconds = divmod(abs(int(offset)), 60)
    return f"{fmt_time(at)[11:16]} (on-sale {sign}{minutes:02d}:{seconds:02d})"


def _inhibited(alert: Alert, alerts: list[Alert]) -> bool:
    """An on-sale P1 of the same SLO silences this one in the generated routing."""
    return alert.priority != "P1" and any(
        a.slo == alert.slo and a.mode == "onsale" and a.priority == "P1"
        and a.start <= alert.end and alert.start <= a.end
        for a in alerts
    )  # fmt: skip


def alerts_grid(result: DemoResult) -> Grid:
    """Every alert that fired during the run and where Alertmanager would send it."""
    grid = Grid(
        "alerts that fired (the generated rules' policy, evaluated every simulated minute)",
        ["SLO", "mode", "rule", "priority", "from", "to", "peak burn", "routed to"],
    )
    for a in result.alerts:
        route = ", ".join(d.describe() for d in a.routes)
        if _inhibited(a, result.alerts):
            route += "; silenced while the on-sale P1 fires"
        grid.add(
            [a.slo, a.mode, a.rule, a.priority, _clock(result, a.start), _clock(result, a.end),
             f"{a.peak_burn:,.0f}x", route],
            "bold red" if a.priority == "P1" else None,
        )  # fmt: skip
    return grid


def recommendations_grid(result: DemoResult, past: bool = False) -> Grid:
    """The waiting room's exit rate, minute by minute of one on-sale, and why."""
    plan = result.plan
    if past:
        first, last = result.start + plan.past_start, result.start + plan.past_end
        how = f"cold start at a guessed {plan.initial_rate:,.0f}/min"
        title = f"exit-rate recommendations, past on-sale of {plan.past_event} ({how})"
    else:
        first, last = result.start + plan.onsale_start, result.start + plan.onsale_end
        p = result.planning
        how = (
            f"cold start at {plan.initial_rate:,.0f}/min"
            if p is None
            else f"warm start at {p.starting_rate:,.0f}/min from plan next"
        )
        title = f"exit-rate recommendations during the on-sale of {plan.event} ({how})"
    grid = Grid(f"{title}, users let in per minute", ["time", "rate", "action", "reason"])
    for r in result.recommendations:
        if not first < r.time <= last:
            continue
        grid.add(
            [_clock(result, r.time, first), f"{r.rate:,.0f}", r.action, r.reason],
            "bold red" if r.action == "decrease" else None,
        )
    return grid


def profile_grid(planning: Planning) -> Grid:
    """What ``plan learn`` learnt from the past on-sale, per service of the vertical."""
    [onsale] = planning.profile.onsales
    grid = Grid(
        f"plan learn: the past on-sale of {onsale.event} ({onsale.admitted_users or 0:,.0f} "
        f"users admitted, best exit rate with the SLO met "
        f"{onsale.max_good_exit_rate or 0:,.0f}/min; per-replica rps: the most one replica "
        "served with its SLOs met)",
        ["service", "per-user requests", "peak rps", "per-replica rps", "broke"],
    )
    for name, s in sorted(onsale.services.items()):
        grid.add(
            [
                name,
                "-" if s.requests_per_user is None else f"{s.requests_per_user:,.2f}",
                f"{s.peak_rps:,.2f}",
                "-" if s.good_rps_per_replica is None else f"{s.good_rps_per_replica:,.2f}",
                "never (a lower bound)" if s.broke is None else f"{s.broke.kind}",
            ]
        )
    return grid


def vertical_grid(result: DemoResult) -> Grid:
    """``onsale_vertical_desired_replicas`` through the on-sale: the rows where it changed."""
    services = sorted({s for t in result.vertical for s in t.desired})
    grid = Grid(
        f'onsale_vertical_desired_replicas{{event="{result.plan.event}"}}: the whole vertical '
        "scaled from one queue signal (rows where it changed)",
        ["time", "queue", "exit rate", *services],
    )
    previous: dict[str, int] | None = None
    for t in result.vertical:
        if t.desired == previous:
            continue
        previous = t.desired
        grid.add(_vertical_row(result, t, services))
    return grid


def _vertical_row(result: DemoResult, t: VerticalTick, services: list[str]) -> list[str]:
    if not t.desired:
        return [_clock(result, t.time), "-", "-", *("withdrawn" for _ in services)]
    queue = "-" if t.queue is None else f"{t.queue:,.0f}"
    rate = "-" if t.rate is None else f"{t.rate:,.0f}"
    return [_clock(result, t.time), queue, rate, *(str(t.desired.get(s, "-")) for s in services)]


def _plan_lines(result: DemoResult) -> list[str]:
    """``plan next``'s warm start and vertical for the main on-sale, in words."""
    p = result.planning
    if p is None:
        return [
            f"No plan for the on-sale ({result.planning_error}): it started cold at "
            f"{result.plan.initial_rate:,.0f}/min."
        ]
    n = p.next
    lower = [s.name for s in n.services if s.limit_is_lower_bound]
    replicas = ", ".join(f"{s.name} {s.replicas}" for s in n.services)
    cooldown = fmt_duration(result.plan.vertical_cooldown)
    return [
        f"plan next for {result.plan.event} ({n.demand:,.0f} users): start the waiting room at "
        f"{p.starting_rate:,.0f}/min (the past on-sale started cold at "
        f"{result.plan.initial_rate:,.0f}/min); {p.prior_note}.",
        f"  replicas before the start: {replicas}; expected drain "
        f"{fmt_duration(n.drain_seconds.value)}; saturates first: {n.first_to_saturate}.",
        *(
            f"  {note}."
            for note in dict.fromkeys(n.notes)
            if not any(note.startswith(f"{s.name}: ") for s in n.services)
        ),
        *(
            [f"  Never pushed to their limit (capacities are lower bounds): {', '.join(lower)}."]
            if lower
            else []
        ),
        f"  The desired replicas below follow the queue and the exit rate (sized to drain the "
        f"queue within {fmt_duration(result.plan.vertical_drain)}), never fall while the "
        f"event is on sale, and are withdrawn {cooldown} after it ends.",
    ]


def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the demo's data and reports: new, empty, or made by an earlier demo.",
        ),
    ] = Path("onsale-obs-demo"),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Use --out even if the demo did not make it (files of the demo's names are replaced).",
        ),
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="A smaller run of the same story (about 15 s).")
    ] = False,
) -> None:
    """Run the whole journey on the embedded default, compressed into under a minute.

    The example services (gateway, checkout, inventory) run in this process through the
    real middleware, on a sqlite mode store and access logs. A simulated clock drives an
    hour of normal traffic with an earlier on-sale (started cold, from a guessed exit rate),
    then a scheduled on-sale: a queue of users let in by the waiting room at the rate the
    exit-rate controller recommends each minute, and a checkout failure eight minutes in.
    A minute before it opens, `plan learn` learns the earlier on-sale and `plan next` gives
    its warm start; the vertical's desired replicas follow its queue. Then it prints the SLO
    report with normal time and the on-sales side by side (budgets in requests), the
    on-sales, the alerts that fired with their priority and where they would be routed, the
    plan, the recommendations and the vertical. Everything is written to --out (report.html
    with a retrospective of each on-sale), so `onsale-obs slo report` and `onsale-obs plan`
    can be run on it again.

    Examples:

        onsale-obs demo

        onsale-obs demo --out /tmp/demo --quick
    """
    plan = DemoPlan.quick() if quick else DemoPlan()
    err = Console(stderr=True)
    columns = [
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("starting services", total=plan.end)

        def progress(done: float, total: float, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        result = run_demo(out, plan=plan, progress=progress, force=force)
    console = stdout()
    minutes = plan.normal_minutes + plan.onsale_minutes + plan.quiet_minutes
    sent = sum(result.statuses.values())
    failed = sum(n for code, n in result.statuses.items() if code >= 500)
    console.print(
        f"Simulated {minutes} minutes: {plan.normal_minutes} of normal traffic with a past "
        f"on-sale of {plan.past_event} ({plan.past_minutes} min), then the on-sale "
        f"of {plan.event} ({plan.onsale_minutes} min) with checkout failing "
        f"{plan.failure_rate:.0%} of the time from +{plan.failure_from:02d}:00 to "
        f"+{plan.failure_to:02d}:00. {sent:,} users went through gateway, checkout and "
        f"inventory; {failed:,} got an error.\n"
    )
    grids = [
        summary_grid(result.report, ("normal", "onsale")),
        onsales_grid(all_onsales(result.report)),
        alerts_grid(result),
    ]
    print_grids(console, grids, markdown=False, notes=[])
    for line in budget_lines(result.report, "onsale"):
        console.print(line)
    console.print()
    if result.planning is not None:
        print_grids(console, [profile_grid(result.planning)], markdown=False, notes=[])
    for line in _plan_lines(result):
        console.print(line)
    console.print()
    print_grids(
        console,
        [recommendations_grid(result, past=True), recommendations_grid(result)],
        markdown=False,
        notes=[],
    )
    if result.vertical:
        print_grids(console, [vertical_grid(result)], markdown=False, notes=[])
    logs = " ".join(f"--logs {shlex.quote(str(p))}" for p in result.logs)
    history = (
        f"--backend {shlex.quote(result.backend_url)} "
        f"--verify-key {shlex.quote(str(result.verify_key))}"
    )
    console.print(
        f"\nData and reports are in {out}/ (report.html with a retrospective of each on-sale, "
        "report.json, alerts.json, recommendations.json, onsale-profile.json, plan.json, "
        "vertical.json, logs/, modes.db, keys/). Report again with:\n"
    )
    # one line whatever the width, so it can be pasted as it is
    spec = shlex.quote(str(result.spec_path))
    console.print(
        f"  {command_name()} slo report --spec {spec} {logs} {history} "
        f"--at {fmt_time(result.at)}\n",
        soft_wrap=True,
    )
    p = result.planning
    if p is not None:
        admitted = " ".join(f"--admitted {e}={n:.0f}" for e, n in p.admitted.items())
        replicas = " ".join(f"--replicas {name}={n:.0f}" for name, n in p.replicas.items())
        profile = shlex.quote(str(out / "onsale-profile.json"))
        console.print("Plan again with:\n")
        console.print(
            f"  {command_name()} plan learn --spec {spec} {logs} {history} "
            f"--at {fmt_time(p.learned_at)} {admitted} {replicas} --out {profile}\n",
            soft_wrap=True,
        )
        console.print(
            f"  {command_name()} plan next --profile {profile} --demand {p.next.demand:.0f} "
            f"--start {fmt_time(p.next.start)} --like {shlex.quote(plan.past_event)}\n",
            soft_wrap=True,
        )
