"""``onsale-obs slo``: split error budgets, burn rates and per-on-sale breakdowns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from onsale_obs.cli._context import load_verifier, opened_backend
from onsale_obs.cli._options import (
    SIGNING_KEY_ENV,
    VERIFY_KEY_ENV,
    When,
    duration_seconds,
    mode_value,
    parse_time,
)
from onsale_obs.cli._output import print_json, stdout, warn
from onsale_obs.cli._slo_render import (
    all_onsales,
    burn_grid,
    onsales_grid,
    print_grids,
    summary_grid,
)
from onsale_obs.modes import BACKEND_ENV, ModeHistory
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import SLO, SLOSpec, load_spec
from onsale_obs.slo._data import Progress as ProgressFn
from onsale_obs.slo._report import Report
from onsale_obs.slo._run import open_source, run_report
from onsale_obs.types import Mode

SPEC_ENV = "ONSALE_OBS_SLO_SPEC"
PROMETHEUS_ENV = "ONSALE_OBS_PROMETHEUS"
ReportFormat = Literal["table", "json", "markdown"]

slo_app = typer.Typer(
    help="Split SLOs: error budgets, burn rates and alerts for on-sales and normal time.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

SpecOption = Annotated[
    Path,
    typer.Option(
        "--spec",
        envvar=SPEC_ENV,
        metavar="FILE",
        help="SLO spec YAML (see README, 'SLO spec').",
    ),
]
PrometheusOption = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        envvar=PROMETHEUS_ENV,
        metavar="URL",
        help="Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).",
        show_default=False,
    ),
]
LogsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--logs",
        metavar="FILE",
        help="Access-log file(s) the middleware wrote (JSON lines; .gz allowed). Repeat for more.",
        show_default=False,
    ),
]
WindowOption = Annotated[
    float | None,
    typer.Option(
        "--window",
        parser=duration_seconds,
        metavar="DURATION",
        help="Evaluate over this rolling window (7d, 30d) instead of each SLO's own.",
        show_default=False,
    ),
]
ModeFilterOption = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        parser=mode_value,
        metavar="MODE",
        help="Only this mode: normal or onsale.",
        show_default=False,
    ),
]
AtOption = Annotated[
    When | None,
    typer.Option(
        "--at",
        parser=parse_time,
        metavar="TIME",
        help="Evaluate as of this time (2026-12-01T12:00:00Z); default now.",
        show_default=False,
    ),
]
SLOFilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--slo", metavar="NAME", help="Only this SLO (repeat for more).", show_default=False
    ),
]
HistoryOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        envvar=BACKEND_ENV,
        metavar="URL",
        help="Mode store whose verified history gives the on-sale windows. Without it, the "
        "windows are found in the data (the mode label; onsale_mode in Prometheus).",
        show_default=False,
    ),
]
VerifyOption = Annotated[
    str | None,
    typer.Option(
        "--verify-key",
        envvar=VERIFY_KEY_ENV,
        metavar="PATH[,PATH...]",
        show_default=False,
        help="Public key(s) that verify the history (with --backend).",
    ),
]
SigningOption = Annotated[
    str | None,
    typer.Option(
        "--signing-key",
        envvar=SIGNING_KEY_ENV,
        metavar="PATH",
        show_default=False,
        help="Or the private key, whose public half verifies the history.",
    ),
]
ReportFormatOption = Annotated[
    ReportFormat,
    typer.Option(
        "--format", help="table for people, markdown for retrospectives, json for scripts."
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", metavar="SECONDS", min=0.1, help="Per Prometheus request.")
]


def _chosen(spec: SLOSpec, names: list[str] | None) -> tuple[SLO, ...]:
    if not names:
        return spec.slos
    known = {s.name for s in spec.slos}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(
            f"no SLO called {', '.join(map(repr, unknown))} in {spec.source}; "
            f"it has {', '.join(sorted(known))}.",
            param_hint="'--slo'",
        )
    return tuple(s for s in spec.slos if s.name in names)


def _history(
    backend: str | None, verify_key: str | None, signing_key: str | None
) -> list[OnSaleWindow] | None:
    if backend is None:
        return None
    verifier = load_verifier(verify_key, signing_key)
    with opened_backend(backend) as store:
        history = ModeHistory(store, verifier)
        windows = history.onsale_windows()
        if history.rejected:
            detail = ", ".join(f"{n} {r}" for r, n in sorted(history.rejected.items()))
            warn(f"skipped stored states that failed verification ({detail}).")
        return windows


@contextmanager
def _progress(enabled: bool, what: str) -> Iterator[ProgressFn | None]:
    """A progress bar on stderr while a long source is read (only on a terminal)."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = [
        TextColumn(what),
        BarColumn(),
        DownloadColumn()
        if what == "reading logs"
        else TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: float, total: float | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _report(
    spec_path: Path,
    prometheus: str | None,
    logs: list[Path] | None,
    at: When | None,
    window: float | None,
    slos: list[str] | None,
    backend: str | None,
    verify_key: str | None,
    signing_key: str | None,
    timeout: float,
    show_progress: bool,
) -> Report:
    if (prometheus is None) == (not logs):
        raise typer.BadParameter(
            "give exactly one source: --prometheus URL (or "
            f"{PROMETHEUS_ENV}) or --logs FILE (repeat for several files).",
            param_hint="'--prometheus' / '--logs'",
        )
    spec = load_spec(spec_path)
    chosen = _chosen(spec, slos)
    moment = (at or When()).resolve(time.time())
    windows = _history(backend, verify_key, signing_key)
    source = open_source(prometheus=prometheus, logs=logs or (), timeout=timeout)
    what = "reading logs" if logs else "querying Prometheus"
    with _progress(show_progress, what) as progress:
        return run_report(
            spec,
            source,
            moment,
            slos=chosen,
            window=window,
            onsale_windows=windows,
            progress=progress,
        )


def _notes(report: Report) -> list[str]:
    notes = [f"warning: {w}" for w in report.warnings]
    if report.skipped:
        detail = ", ".join(f"{n:,} {r}" for r, n in sorted(report.skipped.items()))
        notes.append(f"skipped: {detail}")
    if not report.exact_onsale:
        notes.append("on-sale counts are estimates (increase() extrapolation)")
    return notes


def _exit(failing: bool) -> None:
    if failing:
        raise typer.Exit(1)


@slo_app.command("report")
def report(
    spec: SpecOption = Path("slo.yaml"),
    prometheus: PrometheusOption = None,
    logs: LogsOption = None,
    window: WindowOption = None,
    mode: ModeFilterOption = None,
    at: AtOption = None,
    slo: SLOFilterOption = None,
    backend: HistoryOption = None,
    verify_key: VerifyOption = None,
    signing_key: SigningOption = None,
    output: ReportFormatOption = "table",
    timeout: TimeoutOption = 10.0,
) -> None:
    """Error budgets, burn rates and alerts per SLO, normal time and on-sales side by side.

    Counts come from the access logs the middleware writes (--logs, the embedded default)
    or from Prometheus (--prometheus). On-sale windows come from the mode history
    (--backend) or, without it, from the data itself. Exit code 1 when an SLO is breached or
    an alert would fire, so scripts can gate on it; 2 for bad input; 3 when Prometheus or
    the mode store cannot be reached.

    Examples:

        onsale-obs slo report --spec slo.yaml --logs access.log

        onsale-obs slo report --spec slo.yaml --prometheus http://localhost:9090 --mode onsale

        onsale-obs slo report --spec slo.yaml --logs a.log --logs b.log.gz --at 2026-12-01T12:00:00Z --format json
    """
    result = _report(
        spec,
        prometheus,
        logs,
        at,
        window,
        slo,
        backend,
        verify_key,
        signing_key,
        timeout,
        output != "json",
    )
    modes: tuple[Mode, ...] = ("normal", "onsale") if mode is None else (mode,)
    if output == "json":
        data = result.to_json()
        for s in data["slos"]:
            s["modes"] = {m: v for m, v in s["modes"].items() if m in modes}
            if "onsale" not in modes:
                s["onsales"] = []
        print_json(data)
    else:
        grids = [summary_grid(result, modes), burn_grid(result, modes)]
        if "onsale" in modes:
            grids.append(onsales_grid(all_onsales(result)))
        print_grids(stdout(), grids, output == "markdown", _notes(result))
    _exit(any(s.modes[m].status in ("breached", "burning") for s in result.slos for m in modes))


@slo_app.command("onsales")
def onsales(
    spec: SpecOption = Path("slo.yaml"),
    prometheus: PrometheusOption = None,
    logs: LogsOption = None,
    window: WindowOption = None,
    at: AtOption = None,
    slo: SLOFilterOption = None,
    backend: HistoryOption = None,
    verify_key: VerifyOption = None,
    signing_key: SigningOption = None,
    output: ReportFormatOption = "table",
    timeout: TimeoutOption = 10.0,
) -> None:
    """How did each on-sale of the window go? One row per on-sale and SLO.

    Each on-sale shows its requests, bad requests, SLI, the share of the window's on-sale
    budget it spent, and its peak request rate. Exit code 1 when an on-sale missed its
    SLO's on-sale objective.

    Examples:

        onsale-obs slo onsales --spec slo.yaml --logs access.log

        onsale-obs slo onsales --spec slo.yaml --prometheus http://localhost:9090 --window 90d --format json
    """
    result = _report(
        spec,
        prometheus,
        logs,
        at,
        window,
        slo,
        backend,
        verify_key,
        signing_key,
        timeout,
        output != "json",
    )
    pairs = all_onsales(result)
    if output == "json":
        print_json(
            {
                "at": result.to_json()["at"],
                "source": result.origin,
                "onsales": [
                    {"slo": s.slo.name, "service": s.slo.service, **o.to_json()} for s, o in pairs
                ],
                "warnings": list(result.warnings),
            }
        )
    else:
        notes = _notes(result)
        if not pairs:
            notes.insert(0, "no on-sale in the window")
        print_grids(stdout(), [onsales_grid(pairs)], output == "markdown", notes)
    _exit(any(o.sli is not None and o.sli < s.modes["onsale"].objective for s, o in pairs))
