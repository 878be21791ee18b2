"""``onsale-obs exit-rate``: exit-rate recommendations for waiting rooms.

``simulate`` lives here; ``recommend`` (one live tick against Prometheus) lives in ``_live``
beside ``serve`` and is registered on this ``exitrate_app`` at the end of the module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from onsale_obs.cli._output import print_json, stdout
from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._families import FAMILY_NAMES
from onsale_obs.exitrate._families import find_family as _family
from onsale_obs.exitrate._mixed import MixedScenario
from onsale_obs.exitrate._mixed_run import run_mixed
from onsale_obs.exitrate._run import (
    GROUPS,
    OURS,
    TARGET_DRAIN_RATIO,
    TARGET_SLO_SHARE,
    ScenarioReport,
    controller_names,
    run_scenario,
)
from onsale_obs.exitrate._scenario import Scenario, load_scenario
from onsale_obs.exitrate._table import HEADERS, innocent_lines, row, title, verdict
from onsale_obs.generate._files import write_atomic

SimulateFormat = Literal["table", "json"]

exitrate_app = typer.Typer(
    help="Exit-rate recommendations for waiting rooms: how many users per minute to let "
    "through, and why.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@exitrate_app.command("simulate")
def simulate(
    scenario: Annotated[
        list[Path] | None,
        typer.Option(
            "--scenario",
            metavar="FILE",
            help="Scenario YAML (see examples/scenarios/). Repeat for more.",
            show_default=False,
        ),
    ] = None,
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            metavar="NAME",
            help=f"A randomized scenario family, drawn for --seed (default 1): "
            f"{', '.join(FAMILY_NAMES)}. Repeat for more.",
            show_default=False,
        ),
    ] = None,
    controllers: Annotated[
        str,
        typer.Option(
            "--controllers",
            metavar="LIST",
            help=f"Comma-separated, from {', '.join(GROUPS)} (fixed = 0.5x, 0.75x, 1x and "
            "1.25x of the initial capacity).",
        ),
    ] = ",".join(GROUPS),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write SCENARIO.json (with every controller's timeline) per scenario here, "
            "and SCENARIO.png with --plot.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        SimulateFormat,
        typer.Option("--format", help="table for people, json (summary) for scripts."),
    ] = "table",
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Use this seed for every scenario instead of its own."),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option("--plot", help="Also draw rate, capacity and errors (needs --out)."),
    ] = False,
) -> None:
    """Simulate on-sales under our controller and the baselines, measured in the same run.

    Give scenario files (--scenario) or randomized families (--family, one on-sale drawn
    per --seed: capacity drops, autoscaling, drift, arrival spikes, signal outages,
    software faults, cautious and hot starts, a tight latency objective, events sharing a
    backend). Every on-sale is run under each controller
    with the same seed (the same users, arrivals and browse times): ours, AIMD, fixed rates
    and an oracle that knows the true capacity. The table shows the drain time against the
    physical limit, the share of 1-minute windows meeting the on-sale SLO, failed
    checkouts, peak overshoot and rate oscillation. Exit code 1 when our controller misses
    the target anywhere (drain ratio <= 1.15, or 1.25 with a capacity loss or a fault; SLO
    minutes >= 99%, or the oracle's share where it keeps less; not dominated by a fixed
    rate or AIMD); 2 for bad input. For many seeds at once, see
    benchmarks/exit_rate_families.py.

    Examples:

        onsale-obs exit-rate simulate --scenario examples/scenarios/steady.yaml

        onsale-obs exit-rate simulate --family capacity-drop --seed 10007 --controllers ours,oracle

        onsale-obs exit-rate simulate --family software-fault --seed 3 --out sim/ --plot

        onsale-obs exit-rate simulate --scenario examples/scenarios/steady.yaml --scenario examples/scenarios/arrival-spike.yaml --out sim/ --plot --format json
    """
    try:
        names = controller_names(controllers.split(","))
    except BadInputError as exc:
        raise typer.BadParameter(exc.detail, param_hint="'--controllers'") from None
    if not names:
        raise typer.BadParameter("name at least one controller.", param_hint="'--controllers'")
    if plot and out is None:
        raise typer.BadParameter("--plot writes PNG files: give --out DIR.", param_hint="'--plot'")
    if not scenario and not family:
        raise typer.BadParameter(
            "give a scenario file (--scenario FILE) or a family (--family NAME, e.g. "
            f"--family capacity-drop --seed 3; families: {', '.join(FAMILY_NAMES)}).",
            param_hint="'--scenario' / '--family'",
        )
    try:
        drawn = [
            (f.draw(1 if seed is None else seed), f.drain_target)
            for f in map(_family, family or [])
        ]
    except BadInputError as exc:
        raise typer.BadParameter(exc.detail, param_hint="'--family'") from None
    scenarios: list[tuple[Scenario | MixedScenario, float]] = [
        (load_scenario(path), TARGET_DRAIN_RATIO) for path in scenario or []
    ]
    scenarios += drawn
    if out is not None:
        _make_dir(out)
    reports = _run_all(scenarios, names, seed, show_progress=output == "table")
    written = _write(reports, out, plot) if out is not None else []
    if output == "json":
        print_json(_summary(reports))
    else:
        _print_tables(reports, written)
    if any(r.meets_target is False for r in reports):
        raise typer.Exit(1)


def _run_all(
    scenarios: list[tuple[Scenario | MixedScenario, float]],
    names: list[str],
    seed: int | None,
    *,
    show_progress: bool,
) -> list[ScenarioReport]:
    reports: list[ScenarioReport] = []
    with _progress(show_progress, len(scenarios) * len(names)) as advance:
        for s, target in scenarios:

            def done(controller: str, scenario: str = s.name) -> None:
                advance(scenario, controller)

            if isinstance(s, MixedScenario):  # one controller per event, one shared backend
                reports.append(run_mixed(s, names, seed=seed, progress=done, drain_target=target))
            else:
                reports.append(
                    run_scenario(s, names, seed=seed, progress=done, drain_target=target)
                )
    return reports


def _nothing(scenario: str, controller: str) -> None:
    """No progress bar (not a terminal, or JSON output)."""


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str, str], None]]:
    """A progress bar on stderr (only on a terminal): one step per simulated run."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield _nothing
        return
    columns = [
        TextColumn("simulating {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=total)

        def advance(scenario: str, controller: str) -> None:
            bar.update(task, advance=1, description=f"{scenario} ({controller} done)")

        yield advance


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"cannot be created as an output folder ({exc.strerror}).", file=str(path)
        ) from None


def _write(reports: list[ScenarioReport], out: Path, plot: bool) -> list[Path]:
    written = []
    for report in reports:
        path = out / f"{report.scenario.name}.json"
        write_atomic(path, json.dumps(report.to_json(timeline=True), indent=2) + "\n")
        written.append(path)
        if plot:
            from onsale_obs.exitrate._plot import plot_report

            written.append(plot_report(report, out / f"{report.scenario.name}.png"))
    return written


def _summary(reports: list[ScenarioReport]) -> dict[str, Any]:
    """The stdout JSON: every scenario without timelines, and the overall verdict."""
    ran = [r.meets_target for r in reports if r.meets_target is not None]
    return {
        "targets": {"drain_ratio": TARGET_DRAIN_RATIO, "slo_share": TARGET_SLO_SHARE},
        "meets_target": None if not ran else all(ran),
        "scenarios": [r.to_json(timeline=False) for r in reports],
    }


def _print_tables(reports: list[ScenarioReport], written: list[Path]) -> None:
    console = stdout()
    for report in reports:
        table = Table(title=title(report), title_justify="left")
        for header in HEADERS:
            table.add_column(header, justify="left" if header == "controller" else "right")
        for result in report.results:
            table.add_row(*row(result), style="bold" if result.controller == OURS else None)
        console.print(table)
        style = "green" if report.meets_target else "bold red"
        if report.meets_target is None:
            style = "dim"
        console.print(Text(verdict(report), style=style))
        for line in innocent_lines(report):
            console.print(line)
        console.print()
    for path in written:
        console.print(f"wrote {path}")


def _register_live() -> None:
    """``exit-rate recommend`` lives with ``serve`` (both read Prometheus)."""
    from onsale_obs.cli._live import recommend

    exitrate_app.command("recommend")(recommend)


_register_live()
