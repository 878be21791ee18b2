"""``onsale-obs alertmanager``: the Alertmanager routing that pages for on-sales only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from onsale_obs.cli._output import replaceable, warn, write_output
from onsale_obs.exceptions import BadInputError

alertmanager_app = typer.Typer(
    name="alertmanager",
    help="Alertmanager routing by mode and priority: on-sale burns page, normal time opens tickets.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

DEFAULT_OUT = "alert_rules/alertmanager.yml"


def _shown(path: Path) -> str:
    """The receivers file as the header comment names it: relative to here when inside."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


@alertmanager_app.command("render")
def render(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Receivers YAML: pager, ticket, info and default receivers, business hours, "
            "timing (see examples/alertmanager/receivers.yaml). Without it: webhooks on "
            "localhost, Monday-Friday 09:00-17:00 UTC.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "--out", metavar="FILE", help="Where to write alertmanager.yml; - for stdout."
        ),
    ] = DEFAULT_OUT,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if FILE differs from what would be written (for CI).",
        ),
    ] = False,
) -> None:
    """Write alertmanager.yml that routes the generated SLO alerts by mode and priority.

    On-sale P1 pages at any hour (PagerDuty and/or Opsgenie when configured, plus the webhook
    fallback); P2 pages in business hours only; P3 and P4 open tickets, delivered in business
    hours; anything else goes to the default receiver. An on-sale P1 silences the same SLO's
    lower-priority alerts. The file is written atomically and only after `amtool
    check-config` (when amtool is on PATH) accepted it. Exit codes: 0 written or up to
    date, 1 --check found drift, 2 bad input or a configuration amtool rejected.

    Examples:

        onsale-obs alertmanager render --config examples/alertmanager/receivers.yaml --out alert_rules/alertmanager.yml

        onsale-obs alertmanager render --out -

        onsale-obs alertmanager render --config receivers.yaml --check
    """
    from onsale_obs.generate._alertmanager import (
        check_text,
        load_receivers,
        render_alertmanager,
        write_alertmanager,
    )

    if check and out == "-":
        raise typer.BadParameter(
            "--check compares with a file; give --out FILE, not -.", param_hint="'--out'"
        )
    source = _shown(config) if config is not None else None
    text = render_alertmanager(load_receivers(config), source=source)
    if check:
        _check_drift(Path(out), text, source)
        return
    amtool = shutil.which("amtool")
    if out == "-":
        result = check_text(text, amtool=amtool, file=source)
        typer.echo(text, nl=False)
    elif not replaceable(Path(out)):
        # a device, FIFO, folder or symlink is written to (or refused), never replaced
        result = check_text(text, amtool=amtool, file=source)
        write_output(Path(out), text)
        typer.echo(f"wrote {out}" + (" (amtool check-config passed)" if result.checked else ""))
    else:
        result = write_alertmanager(text, Path(out), amtool=amtool, file=source)
        typer.echo(f"wrote {out}" + (" (amtool check-config passed)" if result.checked else ""))
    if not result.checked:
        warn(
            "amtool not found on PATH, so the configuration was not checked; "
            "install the Debian package prometheus-alertmanager to check it."
        )


def _check_drift(out: Path, text: str, source: str | None) -> None:
    command = "onsale-obs alertmanager render" + (f" --config {source}" if source else "")
    try:
        current = out.read_bytes()
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise BadInputError(f"cannot be read ({exc.strerror or exc}).", file=str(out)) from None
    if current == text.encode("utf-8"):
        typer.echo(f"{out} is up to date.")
        return
    what = "does not exist" if current is None else "differs from what would be generated"
    typer.echo(f"{out} {what}; run: {command} --out {out}", err=True)
    raise typer.Exit(1)
