"""``onsale-obs exit-rate simulate`` as an operator runs it: tables, JSON, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from onsale_obs.cli._app import _ErrorsToExitCodes
from onsale_obs.cli._exitrate import exitrate_app

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
STEADY = SCENARIOS / "steady.yaml"


def _app() -> typer.Typer:
    """A root like ``onsale-obs`` with the exit-rate group (errors become exit codes)."""
    root = typer.Typer(cls=_ErrorsToExitCodes, pretty_exceptions_enable=False)

    @root.callback()
    def main() -> None:
        """Test root."""

    root.add_typer(exitrate_app, name="exit-rate")
    return root


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(_app(), ["exit-rate", "simulate", *map(str, args)])


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_table_for_a_scenario_ours_passes() -> None:
    """A table per scenario with the verdict; exit 0 when ours meets the target."""
    result = invoke("--scenario", STEADY, "--controllers", "ours,aimd")
    assert result.exit_code == 0, result.output
    assert "steady: 240,000 users, physical limit 53.1 min, seed 1" in result.output
    assert "drain ratio" in result.output
    assert "aimd" in result.output
    assert "ours: meets the target" in result.output


def test_json_summary_and_exit_one_when_ours_misses(tmp_path: Path) -> None:
    """JSON on stdout (no timelines); exit 1 when ours misses the target somewhere."""
    hot = tmp_path / "hot.yaml"
    text = STEADY.read_text().replace("name: steady", "name: hot")
    hot.write_text(text.replace("initial_rate: 2500", "initial_rate: 9000"))
    result = invoke("--scenario", hot, "--controllers", "ours", "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["meets_target"] is False
    (scenario,) = data["scenarios"]
    assert scenario["scenario"] == "hot"
    assert scenario["ours"]["misses"]
    (ours,) = scenario["controllers"]
    assert "timeline" not in ours
    assert ours["slo_share"] < 0.99


def test_out_writes_json_and_plots(tmp_path: Path) -> None:
    """--out writes SCENARIO.json with timelines, and SCENARIO.png with --plot."""
    out = tmp_path / "sim"
    result = invoke(
        "--scenario", STEADY, "--controllers", "ours,oracle", "--out", out, "--plot", "--seed", "9"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "steady.json").read_text())
    assert data["seed"] == 9
    assert [c["controller"] for c in data["controllers"]] == ["ours", "oracle"]
    assert data["controllers"][0]["timeline"]
    assert (out / "steady.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out / 'steady.png'}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--controllers", "ours,magic"), "unknown controller 'magic'"),
        (("--controllers", ","), "name at least one controller"),
        (("--plot",), "give --out DIR"),
    ],
)
def test_bad_arguments_exit_two(args: tuple[str, ...], message: str) -> None:
    """Unknown controllers and --plot without --out are usage errors (exit 2)."""
    result = invoke("--scenario", STEADY, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_bad_scenario_names_file_and_field(tmp_path: Path) -> None:
    """A bad scenario: exit 2 with the file and the field, never a traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(STEADY.read_text().replace("workers: 64", "workers: lots"))
    result = invoke("--scenario", bad)
    assert result.exit_code == 2
    assert f"error: {bad}, field 'backend.workers'" in result.output
    assert "Traceback" not in result.output
    missing = invoke("--scenario", tmp_path / "nope.yaml")
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
