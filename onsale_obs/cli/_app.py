"""The root ``onsale-obs`` command: its groups, and the one place errors become exit codes.

To add a command group, write ``onsale_obs/cli/_<group>.py`` with a ``typer.Typer`` and add it
to ``_GROUPS`` below.
"""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from onsale_obs import __version__
from onsale_obs.cli._alertmanager import alertmanager_app
from onsale_obs.cli._dashboards import dashboards_app
from onsale_obs.cli._demo import demo
from onsale_obs.cli._exitrate import exitrate_app
from onsale_obs.cli._keys import keys_app
from onsale_obs.cli._live import serve
from onsale_obs.cli._mode import mode_app
from onsale_obs.cli._plan import plan_app
from onsale_obs.cli._rules import rules_app
from onsale_obs.cli._slo import slo_app
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.redact import redact_text

#: (name, app) of every command group, in the order ``--help`` lists them.
_GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("mode", mode_app),
    ("keys", keys_app),
    ("slo", slo_app),
    ("rules", rules_app),
    ("alertmanager", alertmanager_app),
    ("dashboards", dashboards_app),
    ("exit-rate", exitrate_app),
    ("plan", plan_app),
)


DEBUG_ENV = "ONSALE_OBS_DEBUG"


def _report_to() -> str:
    """Where to report a bug: the package's issue tracker if its metadata names one."""
    try:
        for entry in metadata.metadata("onsale-obs").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() in ("issues", "bug tracker", "tracker"):
                return str(url).strip()
    except metadata.PackageNotFoundError:
        pass
    return "the onsale-obs maintainers (README, section 'Reporting bugs')"


def error_line(message: str) -> None:
    """The one error style of the CLI: ``error: <message>`` on stderr."""
    # a message may quote a URL given on the command line: never print its password
    typer.echo(f"error: {redact_text(message.replace('Value error, ', ''))}", err=True)


def _finite(param: Any) -> None:
    """Make ``param`` refuse ``inf`` and ``nan`` (typer's float parsing takes them)."""
    convert = param.process_value

    def process_value(ctx: Any, value: Any) -> Any:
        result = convert(ctx, value)
        for number in result if isinstance(result, list | tuple) else (result,):
            if isinstance(number, float) and not math.isfinite(number):
                raise typer.BadParameter(
                    f"{number} is not a finite number; expected a number such as 0.5 or 300.",
                    ctx=ctx,
                    param=param,
                )
        return result

    param.process_value = process_value


def _finite_numbers(command: Any) -> None:
    """Every option and argument of every command takes finite numbers only."""
    for param in command.params:
        _finite(param)
    for sub in getattr(command, "commands", {}).values():
        _finite_numbers(sub)


class _ErrorsToExitCodes(TyperGroup):
    """Turns errors from any command into ``error: <message>`` on stderr and an exit code.

    ``OnsaleObsError`` carries its own code (2 bad input, 3 store unreachable); usage errors
    (click's, typer's) are exit 2 in the same one-line style; anything else is a bug, reported
    in one line with code 1, where to report it, and the traceback only with ``--debug``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _finite_numbers(self)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as exc:
            message = exc.format_message()
            context = getattr(exc, "ctx", None)
            if isinstance(exc, UsageError) and context is not None:
                message += f" (try '{context.command_path} -h')"
            error_line(message)
            sys.exit(exc.exit_code)
        except typer.Abort:
            error_line("aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, EOFError, BrokenPipeError):
            raise
        except OnsaleObsError as exc:
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            error_line(f"internal error: {type(exc).__name__}: {exc}")
            if ctx.params.get("debug"):
                sys.stderr.write(redact_text(traceback.format_exc()))
            else:
                typer.echo(
                    "This is a bug in onsale-obs, not in your input. Please report it to "
                    f"{_report_to()} with the command you ran; run it again with --debug "
                    "(or ONSALE_OBS_DEBUG=1) for the traceback.",
                    err=True,
                )
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
        debug: Annotated[
            bool,
            typer.Option(
                "--debug",
                envvar=DEBUG_ENV,
                help="On an internal error, print the traceback (for a bug report).",
            ),
        ] = False,
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
