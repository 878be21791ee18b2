"""``onsale-obs alertmanager``: the Alertmanager routing that pages for on-sales only."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from onsale_obs.cli._output import replaceable, warn, write_output
from onsale_obs.exceptions import BadInputError

if TYPE_CHECKING:
    from onsale_obs.generate._alertmanager_spec import ReceiversConfig
    from onsale_obs.slo import SLOSpec

alertmanager_app = typer.Typer(
    name="alertmanager",
    help="Alertmanager routing by mode and priority: on-sale burns page, normal time opens tickets.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

DEFAULT_OUT = "alert_rules"


def _shown(path: Path) -> str:
    """A path as the header comment names it: relative to here when inside."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def _is_file(path: Path) -> bool:
    """The old ``--out FILE`` form: an existing path that is not a folder, or a new one
    named like a YAML file (``alert_rules/alertmanager.yml``)."""
    try:
        return not stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        return path.suffix in (".yml", ".yaml")
    except OSError:
        return False


@alertmanager_app.command("render")
def render(
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            metavar="FILE",
            help="SLO spec (as for rules render): sizes how long the hold outlasts an on-sale "
            "P1 from its policies. Without it: the default policy (6m).",
            show_default=False,
        ),
    ] = None,
    receivers: Annotated[
        Path | None,
        typer.Option(
            "--receivers",
            metavar="FILE",
            help="Receivers YAML: pager, ticket, info and default receivers, business hours, "
            "timing (see examples/alertmanager/receivers.yaml). Without it: webhooks on "
            "localhost, Monday-Friday 09:00-17:00 UTC.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", hidden=True, help="Deprecated: --receivers."),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder to write into (created if missing); - prints the routing only.",
        ),
    ] = DEFAULT_OUT,
    merge_into: Annotated[
        Path | None,
        typer.Option(
            "--merge-into",
            metavar="FILE",
            help="Your Alertmanager configuration: write DIR/alertmanager.yml, FILE with the "
            "subtree merged in (our route first; a previous merge is replaced). Comments of "
            "FILE are not kept.",
            show_default=False,
        ),
    ] = None,
    whole_config: Annotated[
        bool,
        typer.Option(
            "--whole-config",
            help="Write a complete alertmanager.yml (our routes under a root whose receiver is "
            "default) instead of the subtree to merge into a shared configuration.",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if the files on disk differ (CI drift check)."
        ),
    ] = False,
) -> None:
    """Write the Alertmanager routing of the generated SLO alerts, and its hold rule.

    By default DIR/alertmanager-routes.yml: a **subtree to merge** into an Alertmanager
    configuration other teams share. Its one route (put it first in your `route.routes`)
    matches only alerts labelled `onsale_obs`, which only the generated alerts carry, then
    `mode` and `priority`: on-sale P1 pages at any hour (PagerDuty and/or Opsgenie when
    configured, plus the webhook fallback); P2 pages in business hours only; P3 and P4 open
    tickets, delivered in business hours; anything else of ours goes to the default
    receiver. Receivers and the time interval are named `onsale-obs-*`; the inhibit rules
    touch only our alerts. `--merge-into FILE` writes DIR/alertmanager.yml: your FILE with
    the subtree merged in (a previous merge replaced). `--whole-config` writes
    DIR/alertmanager.yml instead: the same routes under a root of their own.

    Both write DIR/alertmanager-hold.rules.yml, for Prometheus: an on-sale P1 silences the
    same SLO's lower-priority alerts, and its hold keeps them silent for a while after it
    resolves, so a P2 raised by the same burn does not page after the checkout healed or
    the on-sale ended.

    Files are checked before anything is written (`amtool check-config`, the subtree
    merged under a bare root; `promtool check rules`; when installed). Exit codes: 0
    written or up to date, 1 --check found drift, 2 bad input or a file a tool rejected.

    Examples:

        onsale-obs alertmanager render --spec examples/ticketing/slo.yaml --receivers examples/alertmanager/receivers.yaml --out alert_rules/

        onsale-obs alertmanager render --receivers receivers.yaml --out alert_rules/ --whole-config

        onsale-obs alertmanager render --receivers receivers.yaml --merge-into /etc/alertmanager/alertmanager.yml --out build/

        onsale-obs alertmanager render --out -

        onsale-obs alertmanager render --spec slo.yaml --receivers receivers.yaml --out alert_rules/ --check
    """
    from onsale_obs.generate._alertmanager import load_receivers

    if config is not None:
        if receivers is not None:
            raise typer.BadParameter(
                "give the receivers file once, with --receivers (--config is its old name).",
                param_hint="'--config'",
            )
        warn("--config is deprecated and will be removed; use --receivers.")
        receivers = config
    if merge_into is not None and whole_config:
        raise typer.BadParameter(
            "--merge-into writes your configuration with ours merged in; --whole-config writes "
            "one of our own. Give one of them.",
            param_hint="'--merge-into'",
        )
    if check and out == "-":
        raise typer.BadParameter(
            "--check compares with the files in a folder; give --out DIR, not -.",
            param_hint="'--out'",
        )
    source = _shown(receivers) if receivers is not None else None
    loaded = load_receivers(receivers)
    slo_spec = _load_spec(spec)
    spec_shown = _shown(spec) if spec is not None else None
    base = _load_base(merge_into)
    if out == "-":
        _to_stdout(loaded, source, spec_shown, whole_config, base)
        return
    target = Path(out)
    if _is_file(target):
        if base is not None:
            raise typer.BadParameter(
                "--merge-into writes DIR/alertmanager.yml; give --out a folder.",
                param_hint="'--out'",
            )
        _legacy_file(target, loaded, source, spec_shown, check=check)
        return
    _to_folder(
        target, loaded, slo_spec, source, spec_shown, whole=whole_config, check=check, base=base
    )


class _Base:
    """The configuration of ``--merge-into``: its data and its name as the header shows it."""

    def __init__(self, data: object, shown: str) -> None:
        self.data = data
        self.shown = shown


def _load_base(path: Path | None) -> _Base | None:
    if path is None:
        return None
    from onsale_obs.yamlfile import read_yaml

    data = read_yaml(path, expected="an Alertmanager configuration (alertmanager.yml)")
    return _Base(data, _shown(path))


def _routing_text(
    receivers: ReceiversConfig,
    base: _Base | None,
    *,
    source: str | None,
    spec: str | None,
    out: str,
    whole: bool,
) -> str:
    from onsale_obs.generate._alertmanager import render_alertmanager, render_merged

    if base is not None:
        return render_merged(
            base.data, receivers, file=base.shown, source=source, spec=spec, out=out
        )
    return render_alertmanager(receivers, source=source, spec=spec, out=out, whole=whole)


def _load_spec(spec: Path | None) -> SLOSpec | None:
    if spec is None:
        return None
    from onsale_obs.slo import load_spec

    return load_spec(spec)


def _to_stdout(
    receivers: ReceiversConfig,
    source: str | None,
    spec: str | None,
    whole: bool,
    base: _Base | None,
) -> None:
    whole = whole or base is not None
    text = _routing_text(receivers, base, source=source, spec=spec, out="DIR", whole=whole)
    _amtool_check(text, receivers, whole=whole, file=base.shown if base else source)
    typer.echo(text, nl=False)
    warn(
        "the hold rule (alertmanager-hold.rules.yml) is not printed; write it with --out DIR "
        "and load it into Prometheus, or an on-sale P2 can page after its P1 resolved."
    )


def _amtool_check(text: str, receivers: ReceiversConfig, *, whole: bool, file: str | None) -> None:
    """``amtool check-config`` on the whole file, or on the subtree merged under a bare root."""
    from onsale_obs.generate._alertmanager import check_text, checkable, routing_subtree

    checked = text if whole else checkable(routing_subtree(receivers))
    if not check_text(checked, amtool=shutil.which("amtool"), file=file).checked:
        warn(
            "amtool not found on PATH, so the configuration was not checked; "
            "install the Debian package prometheus-alertmanager to check it."
        )


def _to_folder(
    folder: Path,
    receivers: ReceiversConfig,
    spec: SLOSpec | None,
    source: str | None,
    spec_shown: str | None,
    *,
    whole: bool,
    check: bool,
    base: _Base | None,
) -> None:
    from onsale_obs.cli._options import folder_value
    from onsale_obs.generate._alertmanager import (
        HOLD_FILE,
        ROUTES_FILE,
        WHOLE_FILE,
        render_command,
        render_hold_rules,
    )
    from onsale_obs.generate._files import drifted, run_tool, write_checked

    folder_value(folder, "the routing and its hold rule")
    shown = _shown(folder).rstrip("/") + "/"
    whole = whole or base is not None
    routing = folder / (WHOLE_FILE if whole else ROUTES_FILE)
    files = {
        routing: _routing_text(
            receivers, base, source=source, spec=spec_shown, out=shown, whole=whole
        ),
        folder / HOLD_FILE: render_hold_rules(spec, spec_source=spec_shown),
    }
    if check:
        command = render_command(source, spec=spec_shown, out=shown, whole=whole)
        if base is not None:
            command = command.replace(" --whole-config", "").replace(
                " --out", f" --merge-into {base.shown} --out"
            )
        stale = drifted(files)
        for path in stale:
            typer.echo(f"out of date: {path} (run {command})", err=True)
        if not stale:
            typer.echo(f"{', '.join(str(p) for p in files)}: up to date.")
        raise typer.Exit(1 if stale else 0)

    def tools(staged: Path) -> None:
        _amtool_check(files[routing], receivers, whole=whole, file=base.shown if base else source)
        run_tool(["promtool", "check", "rules", HOLD_FILE], "promtool check rules", cwd=staged)

    write_checked(files, tools)
    for path in files:
        typer.echo(f"wrote {path}")


def _legacy_file(
    out: Path,
    receivers: ReceiversConfig,
    source: str | None,
    spec: str | None,
    *,
    check: bool,
) -> None:
    """``--out FILE`` (before --out took a folder): the whole configuration, as it used to be."""
    from onsale_obs.generate._alertmanager import (
        check_text,
        render_alertmanager,
        write_alertmanager,
    )

    shown = _shown(out.parent).rstrip("/") + "/"
    warn(
        f"--out takes a folder now; {out} is a file, so the whole configuration is written "
        f"to it as before. This goes away in the next release: use --out {shown} "
        "--whole-config (or merge the default subtree into your configuration)."
    )
    text = render_alertmanager(receivers, source=source, spec=spec, out=shown, whole=True)
    if check:
        _check_drift(out, text)
        return
    amtool = shutil.which("amtool")
    if replaceable(out):
        result = write_alertmanager(text, out, amtool=amtool, file=source)
    else:  # a device, FIFO or symlink is written to, never replaced
        result = check_text(text, amtool=amtool, file=source)
        write_output(out, text)
    typer.echo(f"wrote {out}" + (" (amtool check-config passed)" if result.checked else ""))
    warn(
        "the hold rule (alertmanager-hold.rules.yml) was not written; render with --out DIR "
        "and load it into Prometheus, or an on-sale P2 can page after its P1 resolved."
    )


def _check_drift(out: Path, text: str) -> None:
    try:
        current = out.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot be read ({exc.strerror or exc}).", file=str(out)) from None
    if current == text.encode("utf-8"):
        typer.echo(f"{out} is up to date.")
        return
    typer.echo(f"out of date: {out} differs from what would be generated", err=True)
    raise typer.Exit(1)
