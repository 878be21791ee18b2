"""The root command lists every command without importing it, and loads each one when used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.cli._app import _COMMANDS, Lazy

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


@pytest.mark.parametrize("entry", _COMMANDS, ids=[e.name for e in _COMMANDS])
def test_every_listed_command_loads_and_its_line_is_its_own(entry: Lazy) -> None:
    """Each entry imports, builds a command of that name, and lists the command's own help."""
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
