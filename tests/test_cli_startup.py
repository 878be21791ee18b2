"""The root command lists every command without importing it, and loads each one when used.

A command loads only what it uses: ``mode get``, ``mode get --help`` and ``slo report --help``
import none of the libraries the other commands need (README, "CLI start-up").
"""

from __future__ import annotations

import enum
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import typer
from typer._click import Context
from typer._coercion import build_runtime_param
from typer.testing import CliRunner

from onsale_obs import modes, slo
from onsale_obs.cli import app
from onsale_obs.cli._app import _COMMANDS, Lazy
from onsale_obs.cli._coercion import DeferredConversion
from onsale_obs.cli._mode import _ModeCommands

#: What ``onsale-obs --help`` must not pay for: the commands' own modules and their libraries.
HEAVY = (
    "onsale_obs.cli._mode",
    "onsale_obs.cli._slo",
    "onsale_obs.cli._exitrate",
    "onsale_obs.cli._demo",
    "onsale_obs.cli._live",
    "onsale_obs.exitrate",
    "onsale_obs.exitrate._sim",
    "onsale_obs.slo",
    "onsale_obs.slo._engine",
    "onsale_obs.modes",
    "onsale_obs.generate",
    "pydantic",
    "jinja2",
    "numpy",
    "matplotlib",
    "redis",
    "cryptography",
    "prometheus_client",
    "opentelemetry",
    "httpx",
    "structlog",
)

#: Every command group of the design brief (``DESIGN.md``, CLI).
DESIGN_COMMANDS = (
    "mode",
    "keys",
    "slo",
    "rules",
    "alertmanager",
    "dashboards",
    "exit-rate",
    "serve",
    "demo",
    "plan",
)


def run_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``onsale-obs ARGS`` in a fresh interpreter; its result and the modules it imported."""
    code = (
        "import json, sys\n"
        "from onsale_obs.cli import main\n"
        f"sys.argv = ['onsale-obs', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    errors, _, modules = done.stderr.rpartition("\nMODULES ")
    done.stderr = errors
    return done, set(json.loads(modules))


def imported(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_help_lists_every_command_without_importing_them() -> None:
    """``onsale-obs --help`` names every command with its line of help, and imports none."""
    done, modules = run_cli("--help")
    assert done.returncode == 0, done.stderr
    for name in DESIGN_COMMANDS:
        assert f" {name} " in done.stdout, name
    for entry in _COMMANDS:
        assert f" {entry.name} " in done.stdout, entry.name
        assert entry.summary[:40] in done.stdout, entry.name
    assert [m for m in HEAVY if imported(modules, m)] == []


def test_version_and_no_arguments_import_no_command() -> None:
    """``--version`` and a bare ``onsale-obs`` (its help, exit 2) import no command either."""
    version, modules = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("onsale-obs ")
    assert [m for m in HEAVY if imported(modules, m)] == []
    bare, modules = run_cli()
    assert bare.returncode == 2
    assert " mode " in bare.stdout
    assert "error" not in bare.stderr
    assert [m for m in HEAVY if imported(modules, m)] == []


def test_a_command_loads_only_its_own_group() -> None:
    """``keys generate --help`` loads the keys group, not the SLO engine or the simulator."""
    done, modules = run_cli("keys", "generate", "--help")
    assert done.returncode == 0, done.stderr
    assert "onsale-obs keys generate" in done.stdout
    assert "onsale_obs.cli._keys" in modules
    for name in ("onsale_obs.cli._slo", "onsale_obs.slo._engine", "onsale_obs.exitrate", "jinja2"):
        assert not imported(modules, name), name


def first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


LAZY = (*_COMMANDS, *_ModeCommands.lazy_commands)


@pytest.mark.parametrize("entry", LAZY, ids=[e.name for e in LAZY])
def test_every_listed_command_loads_and_its_line_is_its_own(entry: Lazy) -> None:
    """Each entry (the root's, and mode's loaded on use) imports, builds a command of that
    name, and lists the command's own help."""
    command = entry.load(rich_markup_mode="markdown", suggest_commands=True)
    assert command.name == entry.name
    assert first_paragraph(command.help or "") == entry.summary


def test_unknown_command_is_exit_2_and_suggests_from_every_command() -> None:
    """A typo names the closest command, although none is loaded yet."""
    result = CliRunner().invoke(app, ["mdoe", "get"])
    assert result.exit_code == 2
    assert "No such command 'mdoe'" in result.output
    assert "Did you mean 'mode'?" in result.output


def test_errors_of_a_lazily_loaded_group_keep_their_exit_codes(tmp_path: object) -> None:
    """Bad input in a group loaded on demand is still one ``error:`` line and exit 2."""
    result = CliRunner().invoke(app, ["slo", "report", "--spec", "/nonexistent/slo.yaml"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_an_eagerly_added_group_wins_over_the_lazy_one() -> None:
    """A root that adds a group itself (as some tests do) runs that group, listed once."""
    from onsale_obs.cli._app import build_app

    root = build_app()
    extra = typer.Typer(help="Replacement keys group.")

    @extra.command("generate")
    def generate() -> None:
        """Say which one ran."""
        typer.echo("replacement")

    root.add_typer(extra, name="keys")
    result = CliRunner().invoke(root, ["keys", "generate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "replacement"
    listing = CliRunner().invoke(root, ["--help"], env={"COLUMNS": "200"})
    rows = [line for line in listing.output.splitlines() if line.startswith("│ keys ")]
    assert len(rows) == 1
    assert "Replacement keys group." in rows[0]


#: Libraries no command below needs: the surge detector's, the subscriber's, the HTML report's,
#: redis, the schedule runner's logging, and pydantic (typer's option conversion).
NOT_FOR_READING = (
    "pydantic",
    "jinja2",
    "redis",
    "prometheus_client",
    "opentelemetry",
    "httpx",
    "structlog",
    "asyncio",
    "numpy",
    "onsale_obs.detect",
    "onsale_obs.exitrate",
    "onsale_obs.instrument",
    "onsale_obs.cli._auto",
    "onsale_obs.cli._watch",
    "onsale_obs.cli._schedule",
    "onsale_obs.modes._subscriber",
    "onsale_obs.modes._broadcaster",
    "onsale_obs.modes._redis",
    "onsale_obs.slo._html",
    "onsale_obs.slo._engine",
)


def test_mode_get_help_loads_neither_the_other_mode_commands_nor_their_libraries() -> None:
    """``mode get --help`` shows the help, without ``mode auto``'s detector or pydantic."""
    done, modules = run_cli("mode", "get", "--help")
    assert done.returncode == 0, done.stderr
    assert "onsale-obs mode get" in done.stdout
    assert "--verify-key" in done.stdout
    assert [m for m in NOT_FOR_READING if imported(modules, m)] == []
    assert not imported(modules, "cryptography")  # nothing is verified to show the help


def test_mode_help_lists_the_commands_loaded_on_use_in_their_place() -> None:
    """``mode --help`` lists watch, auto and schedule after the others, without loading them."""
    done, modules = run_cli("mode", "--help")
    assert done.returncode == 0, done.stderr
    names = ["get", "set", "clear", "history", "heartbeat", "repair", "watch", "auto", "schedule"]
    rows = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ")]
    assert [row for row in rows if row in names] == names
    for entry in _ModeCommands.lazy_commands:
        assert entry.summary[:40] in done.stdout, entry.name
    assert [m for m in NOT_FOR_READING if imported(modules, m)] == []


def test_mode_get_verifies_the_store_without_the_publishers_libraries(tmp_path: Path) -> None:
    """``mode get`` reads and verifies a sqlite store (same answer) and loads only that."""
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "generate", "--out", str(tmp_path)]).exit_code == 0
    db = f"sqlite:///{tmp_path / 'modes.db'}"
    published = runner.invoke(
        app,
        ["mode", "set", "onsale", "--scope", "event:final", "--for", "2h", "--backend", db,
         "--signing-key", str(tmp_path / "onsale-signing.pem")],
    )  # fmt: skip
    assert published.exit_code == 0, published.output
    verify = str(tmp_path / "onsale-verify.pem")
    done, modules = run_cli(
        "mode", "get", "--backend", db, "--verify-key", verify, "--event", "final",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [(s["scope"], s["mode"]) for s in answer["scopes"]] == [("event:final", "onsale")]
    assert answer["event"] == {"event": "final", "mode": "onsale", "because": "event:final"}
    assert "onsale_obs.modes._signing" in modules  # it did verify
    assert [m for m in NOT_FOR_READING if imported(modules, m)] == []
    # a key that signed nothing here: the store does not verify, exit 3 and one error line
    other = tmp_path / "other"
    assert runner.invoke(app, ["keys", "generate", "--out", str(other)]).exit_code == 0
    done, _ = run_cli(
        "mode", "get", "--backend", db, "--verify-key", str(other / "onsale-verify.pem")
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ")
    assert "does not verify" in done.stderr
    assert done.stdout == ""


def test_slo_report_help_loads_neither_the_engine_nor_the_html_report() -> None:
    """``slo report --help`` loads no jinja2, engine, mode history (cryptography) or pydantic."""
    done, modules = run_cli("slo", "report", "--help")
    assert done.returncode == 0, done.stderr
    assert "onsale-obs slo report" in done.stdout
    assert "--format" in done.stdout
    assert [m for m in NOT_FOR_READING if imported(modules, m)] == []
    assert not imported(modules, "cryptography")
    assert not imported(modules, "onsale_obs.slo._retro_html")


@pytest.mark.parametrize("package", [modes, slo], ids=["modes", "slo"])
def test_every_public_name_is_still_there(package: Any) -> None:
    """Each name of ``__all__`` imports (``from package import name``) and is its module's."""
    for name in package.__all__:
        value = getattr(package, name)
        module, attribute = _where(package, name)
        assert value is getattr(importlib.import_module(module), attribute), name
        assert name in dir(package)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018
    from onsale_obs.modes import ModeSubscriber, Verifier
    from onsale_obs.slo import count_events, render_html

    assert ModeSubscriber.__module__ == "onsale_obs.modes._subscriber"
    assert Verifier.__module__ == "onsale_obs.modes._signing"
    assert count_events.__name__ == "count"
    assert render_html.__module__ == "onsale_obs.slo._html"


def _where(package: Any, name: str) -> tuple[str, str]:
    where = package._EXPORTS[name]
    return (f"{package.__name__}.{where}", name) if isinstance(where, str) else where


def test_importing_the_packages_loads_none_of_their_modules() -> None:
    """``import onsale_obs.modes, onsale_obs.slo`` alone loads no backend, key or engine code."""
    code = (
        "import json, sys\n"
        "import onsale_obs.modes, onsale_obs.slo\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules = set(json.loads(done.stdout))
    loaded = [m for m in modules if m.startswith(("onsale_obs.modes.", "onsale_obs.slo."))]
    assert loaded == []
    assert [
        m for m in ("cryptography", "prometheus_client", "jinja2") if imported(modules, m)
    ] == []


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _upper(text: str | float) -> str:
    if text == "bad":
        raise typer.BadParameter("bad is bad")
    if text == "worse":
        raise ValueError("worse is worse")
    return str(text).upper()


def _conversions() -> typer.Typer:
    """One option of each kind typer converts, for the stand-in to be compared with typer."""
    small = typer.Typer()

    @small.command()
    def every(
        text: Annotated[str, typer.Option()] = "x",
        maybe: Annotated[str | None, typer.Option()] = None,
        fmt: Annotated[Literal["table", "json"], typer.Option()] = "table",
        loose: Annotated[Literal["table", "json"], typer.Option(case_sensitive=False)] = "table",
        colour: Annotated[Colour, typer.Option()] = Colour.RED,
        parsed: Annotated[str | None, typer.Option(parser=_upper)] = None,
        number: Annotated[float, typer.Option(min=0.0)] = 1.0,
        count: Annotated[int, typer.Option()] = 1,
        path: Annotated[Path | None, typer.Option()] = None,
        many: Annotated[list[str] | None, typer.Option()] = None,
        flag: Annotated[bool, typer.Option()] = False,
    ) -> None:
        """Convert."""

    return small


VALUES: tuple[Any, ...] = (
    None, "x", "json", "JSON", "table", "yaml", "red", "RED", "blue", "bad", "worse", "",
    "1.5", "-1", "nan", "3", 2.0, 7, "a/b", ("a", "b"), ["a"], "true", True, False, b"x",
    Colour.BLUE,
)  # fmt: skip


def _outcome(convert: Any, value: Any, param: Any, ctx: Context) -> tuple[Any, ...]:
    try:
        result = convert(value, param=param, ctx=ctx)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("value", type(result).__name__, result)


def test_values_are_converted_as_typer_converts_them() -> None:
    """For every kind of option and value, the stand-in gives typer's result or typer's error."""
    command = typer.main.get_command(_conversions())
    ctx = Context(command)
    params = command.get_params(ctx)
    names = {"text", "maybe", "fmt", "loose", "colour", "parsed", "number", "count", "path"}
    assert names | {"many", "flag", "help"} <= {p.name for p in params}
    for param in params:
        for value in VALUES:
            typer_own = build_runtime_param(param.type_descriptor).coerce  # type: ignore[attr-defined]
            stand_in = DeferredConversion(param.type_descriptor).coerce  # type: ignore[attr-defined]
            expected = _outcome(typer_own, value, param, ctx)
            assert _outcome(stand_in, value, param, ctx) == expected, (param.name, value)


def test_a_typer_without_the_private_conversion_code_still_runs_every_command() -> None:
    """``_coercion`` calls typer 0.29's private conversion code; a typer without it (an
    upgrade that moved it) must leave the CLI working, with typer converting every value."""
    code = (
        "import sys\n"
        "import typer._coercion\n"
        "del typer._coercion.build_runtime_param  # as if an upgrade moved it\n"
        "from onsale_obs.cli import main\n"
        "sys.argv = ['onsale-obs', 'exit-rate', 'simulate', '--family', 'nosuch']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "nosuch" in done.stderr
