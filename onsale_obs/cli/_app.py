"""The root ``onsale-obs`` command: its groups, and the one place errors become exit codes.

To add a command group, write ``onsale_obs/cli/_<group>.py`` with a ``typer.Typer`` and add it
to ``_GROUPS`` below.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from onsale_obs import __version__
from onsale_obs.cli._alertmanager import alertmanager_app
from onsale_obs.cli._dashboards import dashboards_app
from onsale_obs.cli._demo import demo
from onsale_obs.cli._exitrate import exitrate_app
from onsale_obs.cli._keys import keys_app
from onsale_obs.cli._live import serve
from onsale_obs.cli._mode import mode_app
from onsale_obs.cli._rules import rules_app
from onsale_obs.cli._slo import slo_app
from onsale_obs.exceptions import OnsaleObsError

#: (name, app) of every command group, in the order ``--help`` lists them.
_GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("mode", mode_app),
    ("keys", keys_app),
    ("slo", slo_app),
    ("rules", rules_app),
    ("alertmanager", alertmanager_app),
    ("dashboards", dashboards_app),
    ("exit-rate", exitrate_app),
)


class _ErrorsToExitCodes(TyperGroup):
    """Turns errors from any command into ``error: <message>`` on stderr and an exit code.

    ``OnsaleObsError`` carries its own code (2 bad input, 3 store unreachable); anything else
    is a bug, reported in one line with code 1 and never as a traceback. Typer's own usage
    errors and exits pass through untouched.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, EOFError, BrokenPipeError):
            raise
        except OnsaleObsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            typer.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(1) from None


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"onsale-obs {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """A fresh root app with every command group."""
    root = typer.Typer(
        name="onsale-obs",
        cls=_ErrorsToExitCodes,
        no_args_is_help=True,
        rich_markup_mode="markdown",
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @root.callback()
    def onsale_obs(
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=_show_version, is_eager=True, help="Print the version."
            ),
        ] = False,
    ) -> None:
        """Make services aware of ticket on-sales: signed modes, split SLOs, exit rates.

        Every command takes --help with an example. Exit codes: 0 ok, 1 an SLO is breached
        or an alert would fire, 2 bad input (the message names the option, file or field),
        3 the mode store or Prometheus cannot be reached.

        Start with the whole journey on the embedded default (about 40 seconds):

            onsale-obs demo

        Then, on your own services:

            onsale-obs keys generate --out keys

            onsale-obs mode set onsale --scope event:final-2026 --for 2h

            onsale-obs slo report --spec slo.yaml --logs access.log
        """

    for name, group in _GROUPS:
        root.add_typer(group, name=name)
    root.command("demo")(demo)
    root.command("serve")(serve)
    return root


app = build_app()


def main() -> None:
    """Console-script entry point (``onsale-obs``)."""
    app()
