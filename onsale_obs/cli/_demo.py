"""``onsale-obs demo``: the whole journey on the embedded default, in under a minute."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from onsale_obs.cli._output import command_name, fmt_time, stdout
from onsale_obs.cli._slo_render import Grid, all_onsales, onsales_grid, print_grids, summary_grid
from onsale_obs.demo._plan import DemoPlan
from onsale_obs.demo._run import Alert, DemoResult, run_demo


def _clock(result: DemoResult, at: float) -> str:
    """``on-sale +08:00`` style offsets, easier to follow than timestamps."""
    offset = at - (result.start + result.plan.onsale_start)
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


def recommendations_grid(result: DemoResult) -> Grid:
    """The waiting room's exit rate, minute by minute of the on-sale, and why."""
    grid = Grid(
        "exit-rate recommendations during the on-sale (users let in per minute)",
        ["time", "rate", "action", "reason"],
    )
    for r in result.recommendations:
        grid.add(
            [_clock(result, r.time), f"{r.rate:,.0f}", r.action, r.reason],
            "bold red" if r.action == "decrease" else None,
        )
    return grid


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
    hour of normal traffic, then a scheduled on-sale: a queue of users let in by the
    waiting room at the rate the exit-rate controller recommends each minute, and a
    checkout failure eight minutes in. Then it prints the SLO report with normal time and
    the on-sale side by side, the on-sale's breakdown, the alerts that fired with their
    priority and where they would be routed, and the recommendations. Everything is
    written to --out, so `onsale-obs slo report` can be run on it again.

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
        f"Simulated {minutes} minutes: {plan.normal_minutes} of normal traffic, then the on-sale "
        f"of {plan.event} ({plan.onsale_minutes} min) with checkout failing "
        f"{plan.failure_rate:.0%} of the time from +{plan.failure_from:02d}:00 to "
        f"+{plan.failure_to:02d}:00. {sent:,} users went through gateway, checkout and "
        f"inventory; {failed:,} got an error.\n"
    )
    grids = [
        summary_grid(result.report, ("normal", "onsale")),
        onsales_grid(all_onsales(result.report)),
        alerts_grid(result),
        recommendations_grid(result),
    ]
    print_grids(console, grids, markdown=False, notes=[])
    logs = " ".join(f"--logs {shlex.quote(str(p))}" for p in result.logs)
    console.print(
        f"\nData and reports are in {out}/ (report.html, report.json, alerts.json, recommendations.json, logs/, "
        f"modes.db, keys/). Report again with:\n"
    )
    # one line whatever the width, so it can be pasted as it is
    console.print(
        f"  {command_name()} slo report --spec {shlex.quote(str(result.spec_path))} {logs} "
        f"--backend {shlex.quote(result.backend_url)} "
        f"--verify-key {shlex.quote(str(result.verify_key))} --at {fmt_time(result.at)}\n",
        soft_wrap=True,
    )
