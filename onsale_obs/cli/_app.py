"""The root ``onsale-obs`` command: its commands, loaded lazily; where errors become exit codes.

Start-up is kept short (``onsale-obs --help`` about 0.15 s, ``mode get`` and a command's
``--help`` about 0.2 s; ``benchmarks/cli_startup.py``) by importing nothing of a command until
it runs or its help is shown: the root lists every command from ``_COMMANDS`` (name, where it
lives, one line of help) and imports ``onsale_obs/cli/_<group>.py`` only when ``onsale-obs
<group> ...`` is invoked. A group can do the same for its own commands (``LazyGroup``, as
``mode`` does for watch, auto and schedule). A heavy library (pydantic, numpy, matplotlib,
jinja2, redis, cryptography, prometheus_client, OpenTelemetry, structlog) belongs inside the
function of the command that needs it, never at the top of a group's module, of this module or
of ``_options``, ``_output`` and ``_context``, which most commands import. ``onsale_obs.modes``
and ``onsale_obs.slo`` import their public names on first use, so importing one name loads
only its module. typer converts option values through pydantic; ``_coercion`` spares that
import for the values typer would not change (``_prepare``).

To add a command group (or a single command), write ``onsale_obs/cli/_<group>.py`` with a
``typer.Typer`` (or a function) and add one line to ``_COMMANDS``::

    Lazy("schema", "onsale_obs.cli._schema:schema_app", "One line of help, as --help lists it."),

The one line must be the first line of the group's own help (``tests/test_cli_startup.py``
checks that every listed command loads and that the two agree, and that the commands the
README times import none of the libraries above that they do not use).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import typer
from typer._click import Command
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from onsale_obs import __version__
from onsale_obs.cli._coercion import defer_conversion
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.redact import redact_text


@dataclass(frozen=True)
class Lazy:
    """A root command known by name and one line of help; its module is imported on first use."""

    name: str
    #: ``"package.module:attribute"``: a ``typer.Typer`` (a group) or a function (one command).
    target: str
    #: What ``onsale-obs --help`` shows beside the name (the group's own first line of help).
    summary: str

    def load(self, *, rich_markup_mode: Any, suggest_commands: bool) -> Command:
        """Import the module and build the click command, as ``add_typer``/``command`` would."""
        module_name, _, attribute = self.target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        if isinstance(target, typer.Typer):
            return typer.main.get_group_from_info(
                typer.models.TyperInfo(target, name=self.name),
                pretty_exceptions_short=True,
                suggest_commands=suggest_commands,
                rich_markup_mode=rich_markup_mode,
            )
        return typer.main.get_command_from_info(
            typer.models.CommandInfo(name=self.name, callback=target),
            pretty_exceptions_short=True,
            rich_markup_mode=rich_markup_mode,
        )


#: Every command of the root, in the order ``--help`` lists them. One line per command.
_COMMANDS: tuple[Lazy, ...] = (
    Lazy(
        "demo",
        "onsale_obs.cli._demo:demo",
        "Run the whole journey on the embedded default, compressed into under a minute.",
    ),
    Lazy(
        "serve",
        "onsale_obs.cli._live:serve",
        "Recommend the exit rate of every event on sale, every --interval, until Ctrl-C.",
    ),
    Lazy(
        "mode",
        "onsale_obs.cli._mode:mode_app",
        "Which scopes (global, event:ID) are on sale: read, change, follow, history, schedule.",
    ),
    Lazy(
        "keys",
        "onsale_obs.cli._keys:keys_app",
        "Signing keys for mode changes: publishers sign, every service verifies.",
    ),
    Lazy(
        "slo",
        "onsale_obs.cli._slo:slo_app",
        "Split SLOs: error budgets, burn rates and alerts for on-sales and normal time.",
    ),
    Lazy(
        "rules",
        "onsale_obs.cli._rules:rules_app",
        "Prometheus rules from an SLO spec: recording rules, burn-rate alerts per mode, and their "
        "promtool tests.",
    ),
    Lazy(
        "alertmanager",
        "onsale_obs.cli._alertmanager:alertmanager_app",
        "Alertmanager routing by mode and priority: on-sale burns page, normal time opens tickets.",
    ),
    Lazy(
        "dashboards",
        "onsale_obs.cli._dashboards:dashboards_app",
        "Grafana dashboards from an SLO spec: an overview and one per service, normal time and "
        "on-sales side by side.",
    ),
    Lazy(
        "exit-rate",
        "onsale_obs.cli._exitrate:exitrate_app",
        "Exit-rate recommendations for waiting rooms: how many users per minute to let through, "
        "and why.",
    ),
    Lazy(
        "schema",
        "onsale_obs.cli._schema:schema",
        "Print the JSON Schema of an input file kind, for editors: spec, receivers, schedule, "
        "scenario.",
    ),
    Lazy(
        "plan",
        "onsale_obs.cli._plan:plan_app",
        "Plan on-sales: learn from past ones, plan the next, scale the whole vertical from the "
        "queue.",
    ),
)


DEBUG_ENV = "ONSALE_OBS_DEBUG"


def _report_to() -> str:
    """Where to report a bug: the package's issue tracker if its metadata names one."""
    from importlib import metadata  # only on an internal error: it costs 30 ms to import

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


def _light_conversion(command: Any) -> None:
    """Convert ``command``'s option values without pydantic where typer would not change them.

    Its ``--help`` option exists only once a context asks for it, so the stand-ins of
    ``_coercion`` go in just before the command parses its arguments.
    """
    parse = command.parse_args

    def parse_args(ctx: Any, args: list[str]) -> list[str]:
        defer_conversion(command.get_params(ctx))
        return parse(ctx, args)  # type: ignore[no-any-return]

    command.parse_args = parse_args


def _prepare(command: Any) -> None:
    """Every option and argument of every command takes finite numbers only, and is converted
    without loading pydantic where it can be (``_light_conversion``)."""
    for param in command.params:
        _finite(param)
    _light_conversion(command)
    for sub in getattr(command, "commands", {}).values():
        _prepare(sub)


class _ErrorsToExitCodes(TyperGroup):
    """Turns errors from any command into ``error: <message>`` on stderr and an exit code.

    ``OnsaleObsError`` carries its own code (2 bad input, 3 store unreachable); usage errors
    (click's, typer's) are exit 2 in the same one-line style; anything else is a bug, reported
    in one line with code 1, where to report it, and the traceback only with ``--debug``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _prepare(self)

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
        except NoArgsIsHelpError as exc:
            # the help is the answer (rich has printed it already); no empty "error:" line
            if exc.format_message():
                exc.show()
            sys.exit(exc.exit_code)
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
                import traceback

                sys.stderr.write(redact_text(traceback.format_exc()))
            else:
                typer.echo(
                    "This is a bug in onsale-obs, not in your input. Please report it to "
                    f"{_report_to()} with the command you ran; run it again with --debug "
                    "(or ONSALE_OBS_DEBUG=1) for the traceback.",
                    err=True,
                )
            raise typer.Exit(1) from None


class LazyGroup(TyperGroup):
    """A group that lists some commands by name and one line of help, and imports each on use.

    While the group's own help is drawn, a lazy command is a stand-in with its name and one line
    of help; resolving it to run it (or to show its own help) imports its module once. A
    subclass names its lazy commands in ``lazy_commands``; commands the group defines itself
    come first in its help (the root, whose commands are all lazy, lists the lazy ones first)
    and take precedence over a lazy command of the same name.
    """

    lazy_commands: ClassVar[tuple[Lazy, ...]] = ()
    lazy_first: ClassVar[bool] = False

    _LISTING = "onsale_obs.listing"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = {entry.name: entry for entry in self.lazy_commands}

    def list_commands(self, ctx: Any) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in self.lazy]
        return [*self.lazy, *eager] if self.lazy_first else [*eager, *self.lazy]

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        entry = self.lazy.get(cmd_name)
        if command is not None or entry is None:
            return command
        if ctx.meta.get(self._LISTING):
            return TyperCommand(entry.name, help=entry.summary)
        command = entry.load(
            rich_markup_mode=self.rich_markup_mode, suggest_commands=self.suggest_commands
        )
        _prepare(command)
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        ctx.meta[self._LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta[self._LISTING] = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # typer suggests from the commands loaded so far; suggest from all of them
            if args and "Did you mean" not in exc.message:
                import difflib

                close = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if close:
                    suggestions = ", ".join(repr(name) for name in close)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


class _LazyCommands(LazyGroup, _ErrorsToExitCodes):
    """The root group: lists ``_COMMANDS`` without importing them, loads one when it is used.

    Commands added eagerly (``add_typer``, as some tests do) take precedence over lazy ones.
    """

    lazy_commands = _COMMANDS
    lazy_first = True


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"onsale-obs {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """A fresh root app; its commands (``_COMMANDS``) are imported when first used."""
    root = typer.Typer(
        name="onsale-obs",
        cls=_LazyCommands,
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

    return root


app = build_app()


def main() -> None:
    """Console-script entry point (``onsale-obs``)."""
    app()
