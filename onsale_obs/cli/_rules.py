"""``onsale-obs rules``: Prometheus recording and alerting rules from an SLO spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from onsale_obs.cli._options import folder_value
from onsale_obs.cli._output import warn
from onsale_obs.cli._slo import SpecOption
from onsale_obs.generate._files import drifted, write_checked
from onsale_obs.generate._rules import DEFAULT_RUNBOOK
from onsale_obs.generate._rules_files import check_rule_files, rule_files
from onsale_obs.slo import load_spec, off_bucket_thresholds

rules_app = typer.Typer(
    help="Prometheus rules from an SLO spec: recording rules, burn-rate alerts per mode, and their promtool tests.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@rules_app.command("render")
def render(
    spec: SpecOption = Path("slo.yaml"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to write into.")] = Path(
        "alert_rules"
    ),
    name: Annotated[
        str, typer.Option("--name", help="File name prefix: NAME.rules.yml, NAME.rules.test.yml.")
    ] = "onsale-slo",
    runbook: Annotated[
        str,
        typer.Option(
            "--runbook-url",
            metavar="TEMPLATE",
            help="Runbook link for SLOs without `runbook`; {slo} is replaced.",
        ),
    ] = DEFAULT_RUNBOOK,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if the files on disk differ (CI drift check)."
        ),
    ] = False,
) -> None:
    """Write NAME.rules.yml (load it into Prometheus) and NAME.rules.test.yml (promtool tests).

    Per SLO: recording rules `slo:sli_error:ratio_rate<W>`, `slo:burn_rate:ratio_rate<W>`,
    `slo:sli_events:increase<W>`, `slo:sli_bad:increase<W>` for every window of each mode's
    policy, `slo:error_budget_remaining:ratio`, and one alert per mode and policy rule, with
    the labels Alertmanager routes on (mode, priority, severity, slo, service, event). The
    test file proves that an on-sale burst pages (P1), the same burst in normal time only
    opens a ticket, and one stray error fires nothing. When promtool is installed both files
    are checked before anything is written.

    Examples:

        onsale-obs rules render --spec examples/ticketing/slo.yaml --out alert_rules/

        onsale-obs rules render --spec slo.yaml --runbook-url 'https://wiki.example.com/slo/{slo}'

        onsale-obs rules render --spec examples/ticketing/slo.yaml --check   # in CI
    """
    try:
        runbook.format(slo="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise typer.BadParameter(
            f"{runbook!r} is not a template with only {{slo}} in braces ({type(exc).__name__}: "
            f"{exc}); for example https://wiki.example.com/slo/{{slo}}.",
            param_hint="'--runbook-url'",
        ) from None
    folder_value(out, "the rules and their tests")
    loaded = load_spec(spec)
    for message in off_bucket_thresholds(loaded):
        warn(message)
    files = rule_files(loaded, out, name=name, runbook=runbook)
    if check:
        stale = drifted(files)
        for path in stale:
            typer.echo(
                f"out of date: {path} (run onsale-obs rules render --spec {spec} --out {out})",
                err=True,
            )
        raise typer.Exit(1 if stale else 0)
    write_checked(files, check_rule_files)
    for path in files:
        typer.echo(f"wrote {path}")
