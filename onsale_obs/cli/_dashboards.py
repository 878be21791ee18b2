"""``onsale-obs dashboards``: Grafana dashboards from an SLO spec, and their CI drift check."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import typer

from onsale_obs.cli._options import folder_value
from onsale_obs.cli._slo import SpecOption
from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._dashboards import (
    PROVIDER_FILE,
    PROVIDER_PATH,
    SERVICE_FILE_PREFIX,
    provider_yaml,
    render_dashboards,
)
from onsale_obs.generate._files import drifted, write_checked
from onsale_obs.slo import load_spec

#: Lines of diff shown per out-of-date file: enough to see what changed, short in a CI log.
DIFF_LINES = 20

dashboards_app = typer.Typer(
    help="Grafana dashboards from an SLO spec: an overview and one per service, normal time and on-sales side by side.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _stale(out: Path, keep: set[Path]) -> list[Path]:
    """Service dashboards in ``out`` for services the spec no longer has."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.glob(f"{SERVICE_FILE_PREFIX}*.json") if p not in keep)


def _diff(path: Path, text: str) -> str:
    try:
        old = path.read_text().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return ""
    lines = list(
        difflib.unified_diff(old, text.splitlines(keepends=True), str(path), "rendered", n=1)
    )
    more = f"  ... {len(lines) - DIFF_LINES} more diff lines\n" if len(lines) > DIFF_LINES else ""
    return "".join(lines[:DIFF_LINES]) + more


@dashboards_app.command("render")
def render(
    spec: SpecOption = Path("slo.yaml"),
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder to write into (created if missing)."),
    ] = Path("dashboards"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if the files on disk differ (CI drift check)."
        ),
    ] = False,
    provider_path: Annotated[
        str,
        typer.Option(
            "--provider-path",
            metavar="PATH",
            help=f"Where Grafana reads the dashboards: the path in {PROVIDER_FILE}.",
        ),
    ] = PROVIDER_PATH,
) -> None:
    """Write onsale-overview.json and onsale-service-SERVICE.json (Grafana dashboard JSON),
    and onsale-obs.provider.yaml (Grafana's dashboard provisioning file) beside them.

    The overview has every SLO of the spec in a row: error budget remaining and current
    burn rate, normal time and on-sales side by side. Each service's dashboard has its
    request rate, error ratio and p50/p95/p99 latency per mode (normal left, on-sale right,
    with the mode's objective drawn in), budget burn-down and burn rates per SLO and mode,
    and the waiting room's recommended exit rate. On-sale windows (`onsale_mode == 1`) are
    annotations on every graph; `$datasource`, `$service` and `$event` are template
    variables. Queries read the metrics of the middleware and the recording rules of
    `onsale-obs rules render`, so load those rules into Prometheus too.

    To provision: copy onsale-obs.provider.yaml to /etc/grafana/provisioning/dashboards/
    and the JSON files to --provider-path (default /var/lib/grafana/dashboards/onsale-obs);
    Grafana loads them into the folder "On-sales", read-only in the UI.

    Output is deterministic (sorted keys, stable UIDs): commit it and run with --check in
    CI. Service dashboards of services no longer in the spec are removed (--check reports
    them). Exit code 1 when --check finds drift, 2 for bad input.

    Examples:

        onsale-obs dashboards render --spec examples/ticketing/slo.yaml --out dashboards/

        onsale-obs dashboards render --spec examples/ticketing/slo.yaml --check   # in CI
    """
    if out.exists() and not out.is_dir():
        raise BadInputError("is not a folder; expected a folder for the dashboards.", file=str(out))
    folder_value(out, "the dashboards")
    files = {out / name: text for name, text in render_dashboards(load_spec(spec)).items()}
    files[out / PROVIDER_FILE] = provider_yaml(provider_path)
    stale = _stale(out, set(files))
    if check:
        changed = drifted(files)
        for path in changed:
            typer.echo(
                f"out of date: {path} (run onsale-obs dashboards render --spec {spec} --out {out})",
                err=True,
            )
            typer.echo(_diff(path, files[path]), err=True, nl=False)
        for path in stale:
            typer.echo(f"stale: {path} is the dashboard of a service no longer in {spec}", err=True)
        raise typer.Exit(1 if changed or stale else 0)
    try:
        write_checked(files)
        for path in stale:
            path.unlink()
    except OSError as exc:
        raise BadInputError(
            f"cannot write the dashboards ({exc.strerror or exc}).", file=str(out)
        ) from None
    for path in files:
        typer.echo(f"wrote {path}")
    for path in stale:
        typer.echo(f"removed {path} (its service is no longer in the spec)")
