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
from onsale_obs.generate._rules_files import (
    FORMATS,
    check_prometheus_rules,
    check_rule_files,
    label_value_problem,
    namespace_problem,
    prometheus_rule_files,
    rule_files,
)
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
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="rules|prometheusrule",
            help="rules: a Prometheus rule file and its promtool tests; prometheusrule: "
            "NAME.prometheusrule.yaml, one prometheus-operator PrometheusRule per SLO.",
        ),
    ] = "rules",
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            metavar="NS",
            help="metadata.namespace of each PrometheusRule (--format prometheusrule).",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="KEY=VALUE",
            help="A metadata label of each PrometheusRule, for the operator's ruleSelector "
            "(repeatable; --format prometheusrule).",
        ),
    ] = None,
) -> None:
    """Write NAME.rules.yml (load it into Prometheus) and NAME.rules.test.yml (promtool tests),
    or with --format prometheusrule NAME.prometheusrule.yaml for prometheus-operator.

    Per SLO: recording rules `slo:sli_error:ratio_rate<W>`, `slo:burn_rate:ratio_rate<W>`,
    `slo:sli_events:increase<W>`, `slo:sli_bad:increase<W>` for every window of each mode's
    policy, `slo:error_budget_remaining:ratio`, and one alert per mode and policy rule, with
    the labels Alertmanager routes on (mode, priority, severity, slo, service, event). The
    test file proves that an on-sale burst pages (P1), the same burst in normal time only
    opens a ticket, and one stray error fires nothing. When promtool is installed both files
    are checked before anything is written (with --format prometheusrule, the same rules as
    a plain rule file with its tests).

    Windows over an hour are sums of recorded hour, six-hour and day tiles, so no rule reads
    more than an hour of the raw counters (README, "Rule cost and rendering").

    Examples:

        onsale-obs rules render --spec examples/ticketing/slo.yaml --out alert_rules/

        onsale-obs rules render --spec slo.yaml --runbook-url 'https://wiki.example.com/slo/{slo}'

        onsale-obs rules render --spec examples/ticketing/slo.yaml --check   # in CI

        onsale-obs rules render --spec slo.yaml --format prometheusrule --namespace monitoring --label release=prometheus --out k8s/
    """
    if output_format not in FORMATS:
        raise typer.BadParameter(
            f"{output_format!r} is not a format; expected one of {', '.join(FORMATS)}.",
            param_hint="'--format'",
        )
    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        problem = label_value_problem(key, value) if sep else f"{item!r} has no '='"
        if problem:
            raise typer.BadParameter(
                f"{problem}; expected KEY=VALUE, for example release=prometheus.",
                param_hint="'--label'",
            )
        labels[key] = value
    if namespace is not None and (problem := namespace_problem(namespace)):
        raise typer.BadParameter(f"{problem}.", param_hint="'--namespace'")
    if output_format == "rules" and (namespace is not None or labels):
        raise typer.BadParameter(
            "--namespace and --label are metadata of PrometheusRule objects; add "
            "--format prometheusrule.",
            param_hint="'--namespace' / '--label'",
        )
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
    if output_format == "prometheusrule":
        files = prometheus_rule_files(
            loaded, out, name=name, runbook=runbook, namespace=namespace, labels=labels
        )
        checker = check_prometheus_rules(loaded, name=name, runbook=runbook)
    else:
        files = rule_files(loaded, out, name=name, runbook=runbook)
        checker = check_rule_files
    if check:
        stale = drifted(files)
        for path in stale:
            typer.echo(
                f"out of date: {path} (run onsale-obs rules render --spec {spec} --out {out}"
                + ("" if output_format == "rules" else f" --format {output_format}")
                + ")",
                err=True,
            )
        raise typer.Exit(1 if stale else 0)
    write_checked(files, checker)
    for path in files:
        typer.echo(f"wrote {path}")
