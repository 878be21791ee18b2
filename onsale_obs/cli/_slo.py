"""``onsale-obs slo``: split error budgets, burn rates and per-on-sale breakdowns."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer
from rich.console import Console

from onsale_obs.cli._context import load_verifier, opened_backend
from onsale_obs.cli._options import (
    SIGNING_KEY_ENV,
    VERIFY_KEY_ENV,
    TimeoutOption,
    When,
    duration_seconds,
    http_url,
    mode_value,
    parse_time,
)
from onsale_obs.cli._output import print_json, stdout, warn, write_output
from onsale_obs.cli._slo_render import (
    all_onsales,
    budget_lines,
    burn_grid,
    onsales_grid,
    print_grids,
    summary_grid,
)
from onsale_obs.exceptions import BadInputError
from onsale_obs.modes import BACKEND_ENV
from onsale_obs.slo import load_spec
from onsale_obs.types import Mode

if TYPE_CHECKING:
    from onsale_obs.modes import OnSaleWindow
    from onsale_obs.slo import SLO, SLOSpec
    from onsale_obs.slo._data import Progress as ProgressFn
    from onsale_obs.slo._data import Source
    from onsale_obs.slo._html import AlertTimeline
    from onsale_obs.slo._report import Report
    from onsale_obs.slo._retro_html import Retro

# The engine, the sources, the mode history and the HTML report (jinja2) are imported by the
# functions that use them, so 'slo report --help' (and 'slo validate') load none of them.

SPEC_ENV = "ONSALE_OBS_SLO_SPEC"
PROMETHEUS_ENV = "ONSALE_OBS_PROMETHEUS"
OnSalesFormat = Literal["table", "json", "markdown", "html"]
ReportFormat = Literal["table", "json", "markdown", "html"]
#: budget burn-down steps drawn per mode in the HTML report
HTML_BINS = 30
#: alert-timeline moments evaluated at most (about): each Prometheus moment costs queries
HTML_MOMENTS_LOGS = 360
HTML_MOMENTS_PROMETHEUS = 120

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
        parser=http_url,
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
OnSalesFormatOption = Annotated[
    OnSalesFormat,
    typer.Option(
        "--format",
        help="table for people, markdown or html (a self-contained retrospective per "
        "on-sale, needs -o) for retrospectives, json for scripts.",
    ),
]
RecommendationsOption = Annotated[
    Path | None,
    typer.Option(
        "--recommendations",
        metavar="FILE",
        help="Exit-rate decisions to draw in the html retrospective (JSON as onsale-obs demo "
        "writes recommendations.json: time, rate, action, reason, signals.current_rate, "
        "signals.queue_length).",
        show_default=False,
    ),
]
TraceUrlOption = Annotated[
    str | None,
    typer.Option(
        "--trace-url",
        metavar="TEMPLATE",
        help="Link each trace id in the html retrospective, {trace_id} replaced, e.g. "
        "'https://grafana.example.com/explore?left=...{trace_id}...'.",
        show_default=False,
    ),
]
DashboardUrlOption = Annotated[
    str | None,
    typer.Option(
        "--dashboard-url",
        metavar="TEMPLATE",
        help="Link each on-sale of the html retrospective to a dashboard: {from} and {to} become "
        "its span in epoch ms, {scope} and {event} its scope and event id, e.g. "
        "'https://grafana.example.com/d/onsale-obs?from={from}&to={to}&var-event={event}'.",
        show_default=False,
    ),
]
ReportFormatOption = Annotated[
    ReportFormat,
    typer.Option(
        "--format",
        help="table for people, markdown or html (a self-contained file with charts, needs "
        "-o) for retrospectives, json for scripts.",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="FILE",
        help="Write the report to FILE instead of stdout (required for html; - is stdout).",
        show_default=False,
    ),
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
    from onsale_obs.modes import ModeHistory

    verifier = load_verifier(verify_key, signing_key)
    with opened_backend(backend, reading=True) as store:
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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

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


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What one report reads: the spec, the SLOs chosen, the moment, on-sales and the source."""

    spec: SLOSpec
    slos: tuple[SLO, ...]
    at: float
    windows: list[OnSaleWindow] | None
    source: Source
    what: str
    log_paths: tuple[Path, ...] = ()
    prometheus_url: str | None = None
    timeout: float = 10.0


def open_inputs(
    spec_path: Path,
    prometheus: str | None,
    logs: list[Path] | None,
    at: When | None,
    slos: list[str] | None,
    backend: str | None,
    verify_key: str | None,
    signing_key: str | None,
    timeout: float,
) -> ReportInputs:
    if (prometheus is None) == (not logs):
        raise typer.BadParameter(
            "give exactly one source: --prometheus URL (or "
            f"{PROMETHEUS_ENV}) or --logs FILE (repeat for several files).",
            param_hint="'--prometheus' / '--logs'",
        )
    from onsale_obs.slo import off_bucket_thresholds, open_source

    spec = load_spec(spec_path)
    chosen = _chosen(spec, slos)
    if prometheus is not None:
        for message in off_bucket_thresholds(spec):
            warn(message)
    moment = (at or When()).resolve(time.time())
    windows = _history(backend, verify_key, signing_key)
    source = open_source(prometheus=prometheus, logs=logs or (), timeout=timeout)
    what = "reading logs" if logs else "querying Prometheus"
    return ReportInputs(
        spec, chosen, moment, windows, source, what, tuple(logs or ()), prometheus, timeout
    )


def _evaluate(
    read: ReportInputs, window: float | None, show_progress: bool, bins: int = 0
) -> Report:
    from onsale_obs.slo._retro_clip import run_clipped_report

    with _progress(show_progress, read.what) as progress:
        return run_clipped_report(
            read.spec,
            read.source,
            read.at,
            slos=read.slos,
            window=window,
            onsale_windows=read.windows,
            progress=progress,
            bins=bins,
        )


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
    read = open_inputs(
        spec_path, prometheus, logs, at, slos, backend, verify_key, signing_key, timeout
    )
    return _evaluate(read, window, show_progress)


def _alert_timeline(read: ReportInputs, report: Report, show_progress: bool) -> AlertTimeline:
    """The alert rules evaluated every minute of each on-sale (and now), on the same source.

    The on-sale windows are the report's (from the history, or the ones it found in the
    data), so the source does not look for them again; Prometheus needs them, since its
    on-sale counts are the raw samples inside the windows.
    """
    from onsale_obs.slo._html import AlertTimeline, timeline_moments
    from onsale_obs.slo._timeline import alert_timeline

    prometheus = read.what == "querying Prometheus"
    cap = HTML_MOMENTS_PROMETHEUS if prometheus else HTML_MOMENTS_LOGS
    times, step = timeline_moments(report, read.spec.grace, cap=cap)
    windows = read.windows
    if windows is None:
        windows = list(dict.fromkeys(o.window for s in report.slos for o in s.onsales))
    with _progress(show_progress, read.what) as progress:
        firings = alert_timeline(
            read.spec, read.source, times, slos=read.slos, onsale_windows=windows, progress=progress
        )
    return AlertTimeline(times, tuple(firings), step, read.spec.grace)


def _retrospectives(
    read: ReportInputs,
    report: Report,
    timeline: AlertTimeline,
    recommendations: Path | None,
    trace_url: str | None,
    dashboard_url: str | None = None,
) -> list[Retro]:
    """Per-minute figures of every on-sale from the same source, drawn for the html page."""
    from onsale_obs.slo._retro import from_logs, from_prometheus, read_decisions, spans_of
    from onsale_obs.slo._retro_html import build_retros

    spans = spans_of(report, read.spec.grace)
    try:
        decisions = [] if recommendations is None else read_decisions(recommendations)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise typer.BadParameter(
            f"cannot read {recommendations}: {exc}; expected a JSON list of decisions with "
            "time, rate, action and reason (as onsale-obs demo writes recommendations.json).",
            param_hint="'--recommendations'",
        ) from None
    if not spans:
        return []
    if read.prometheus_url is not None:
        from onsale_obs.slo._prom_client import PrometheusClient

        with PrometheusClient(read.prometheus_url, timeout=read.timeout) as client:
            minutes = from_prometheus(client, read.slos, spans, read.spec.grace)
    else:
        minutes = from_logs(read.log_paths, read.slos, spans, read.spec.grace)
    return build_retros(
        report,
        minutes,
        firings=timeline.firings,
        times=timeline.times,
        decisions=decisions,
        trace_url=trace_url,
        dashboard_url=dashboard_url,
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


def _output_file(output: Path | None, fmt: ReportFormat) -> Path | None:
    """Where ``-o`` asks the report to go (None: stdout), checked before any reading."""
    hint = "'-o' / '--output'"
    if output is None:
        if fmt == "html":
            raise typer.BadParameter(
                "--format html writes a file: give -o FILE (for example -o slo-report.html), "
                "or -o - for stdout.",
                param_hint=hint,
            )
        return None
    if str(output) == "-":
        return None
    if output.is_dir():
        raise typer.BadParameter(
            f"{output} is a folder; expected a file name such as {output / 'slo-report.html'}.",
            param_hint=hint,
        )
    if not output.parent.is_dir():
        raise typer.BadParameter(
            f"cannot write {output}: the folder {output.parent} does not exist.",
            param_hint=hint,
        )
    return output


def _write(path: Path, text: str) -> None:
    """Write the report to ``path``: atomically over a regular file, straight to a device."""
    try:
        write_output(path, text)
    except BadInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="'-o' / '--output'") from None
    if str(path) != "-":
        typer.echo(f"wrote {path}", err=True)


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
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    timeout: TimeoutOption = 10.0,
    recommendations: RecommendationsOption = None,
    trace_url: TraceUrlOption = None,
    dashboard_url: DashboardUrlOption = None,
) -> None:
    """Error budgets, burn rates and alerts per SLO, normal time and on-sales side by side.

    Counts come from the access logs the middleware writes (--logs, the embedded default)
    or from Prometheus (--prometheus). On-sale windows come from the mode history
    (--backend) or, without it, from the data itself. Exit code 1 when an SLO is breached or
    an alert would fire, so scripts can gate on it; 2 for bad input; 3 when Prometheus or
    the mode store cannot be reached.

    --format html -o FILE writes one self-contained page for a retrospective: both modes
    side by side, budget burn-down charts, every on-sale, and an alert timeline (the rules
    evaluated every minute of each on-sale, less often over long ones). It loads nothing
    from the network.

    Examples:

        onsale-obs slo report --spec slo.yaml --logs access.log

        onsale-obs slo report --spec slo.yaml --prometheus http://localhost:9090 --mode onsale

        onsale-obs slo report --spec slo.yaml --logs a.log --logs b.log.gz --at 2026-12-01T12:00:00Z --format json

        onsale-obs slo report --spec slo.yaml --logs access.log --format html -o slo-report.html
    """
    target = _output_file(output, fmt)
    read = open_inputs(spec, prometheus, logs, at, slo, backend, verify_key, signing_key, timeout)
    result = _evaluate(read, window, fmt != "json", HTML_BINS if fmt == "html" else 0)
    modes: tuple[Mode, ...] = ("normal", "onsale") if mode is None else (mode,)
    text: str | None
    if fmt == "html":
        timeline = _alert_timeline(read, result, True)
        retros = (
            _retrospectives(read, result, timeline, recommendations, trace_url, dashboard_url)
            if "onsale" in modes
            else []
        )
        from onsale_obs.slo._html import render_html
        from onsale_obs.slo._retro_html import render_sections

        text = render_html(
            result, timeline, modes=modes, retrospective=render_sections(retros, result)
        )
    elif fmt == "json":
        data = result.to_json()
        for s in data["slos"]:
            s["modes"] = {m: v for m, v in s["modes"].items() if m in modes}
            if "onsale" not in modes:
                s["onsales"] = []
        # orjson: Python's encoder falls back to pure Python with indent, 11 s of a report
        # with 200,000 on-sale windows against 0.6 s (README, "SLO report at scale")
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        grids = [summary_grid(result, modes), burn_grid(result, modes)]
        if "onsale" in modes:
            grids.append(onsales_grid(all_onsales(result)))
        buffer = io.StringIO()
        console = (
            stdout()
            if target is None
            else Console(file=buffer, width=200, highlight=False, markup=False)
        )
        spent = [line for m in modes for line in budget_lines(result, m)]
        print_grids(console, grids, fmt == "markdown", spent + _notes(result))
        text = None if target is None else buffer.getvalue()
    if target is not None and text is not None:
        _write(target, text)
    elif text is not None:
        typer.echo(text, nl=False)
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
    output: OnSalesFormatOption = "table",
    timeout: TimeoutOption = 10.0,
    out_file: OutputOption = None,
    recommendations: RecommendationsOption = None,
    trace_url: TraceUrlOption = None,
    dashboard_url: DashboardUrlOption = None,
) -> None:
    """How did each on-sale of the window go? One row per on-sale and SLO.

    Each on-sale shows its requests, bad requests, SLI, the share of the window's on-sale
    budget it spent, and its peak request rate. An on-sale that began before the window is
    clipped to it (flagged, with the whole on-sale's figures beside), so the rows add up to
    the on-sale mode's total. Exit code 1 when an on-sale missed its SLO's on-sale
    objective.

    --format html -o FILE writes a retrospective per on-sale: per-minute requests, errors
    and p95 latency per service, the error budget in requests, when the alerts detected,
    paged and resolved, the waiting room's exit rate (--recommendations) and trace links
    (--trace-url). One self-contained file, nothing loaded from the network.

    Examples:

        onsale-obs slo onsales --spec slo.yaml --logs access.log

        onsale-obs slo onsales --spec slo.yaml --prometheus http://localhost:9090 --window 90d --format json

        onsale-obs slo onsales --spec slo.yaml --logs access.log --format html -o retro.html --recommendations recommendations.json
    """
    target = _output_file(out_file, "html" if output == "html" else "table")
    read = open_inputs(spec, prometheus, logs, at, slo, backend, verify_key, signing_key, timeout)
    result = _evaluate(read, window, output != "json")
    pairs = all_onsales(result)
    if output == "html":
        timeline = _alert_timeline(read, result, True)
        retros = _retrospectives(read, result, timeline, recommendations, trace_url, dashboard_url)
        from onsale_obs.slo._retro_html import render_retro_page

        page = render_retro_page(retros, result)
        if target is None:
            typer.echo(page, nl=False)
        else:
            _write(target, page)
    elif output == "json":
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


def _register_validate() -> None:
    # its own module: the command reads no SLO data, only files
    from onsale_obs.cli._slo_validate import validate

    slo_app.command("validate")(validate)


_register_validate()
