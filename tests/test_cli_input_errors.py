"""Input errors are exit 2 naming file, field and expectation, in one style; bugs say where to go."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def spec_with(tmp_path: Path, old: str, new: str, grace: str | None = None) -> Path:
    text = SPEC.read_text()
    assert old in text
    path = tmp_path / "slo.yaml"
    path.write_text((f"onsale_grace: {grace}\n" if grace else "") + text.replace(old, new))
    return path


@pytest.mark.parametrize(
    "command", [("slo", "report"), ("rules", "render"), ("dashboards", "render")]
)
def test_yaml_nested_thousands_deep_is_bad_input_naming_the_file(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    """5,000 levels of nesting: exit 2 naming the file, not a RecursionError."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("slos: " + "[" * 5000 + "]" * 5000 + "\n")
    extra = ["--logs", str(deep)] if command[0] == "slo" else ["--out", str(tmp_path / "out")]
    result = invoke(*command, "--spec", deep, *extra)
    assert result.exit_code == 2, result.output
    assert str(deep) in flat(result)
    assert "nests too deeply" in flat(result)


@pytest.mark.parametrize(
    ("grace", "expected"),
    [("soon", "is not a duration"), ("99999999999d", "longer than 100 years"), ("true", "not bool"),
     (".nan", "not a duration above zero"), ("0", "not a duration above zero")],
)  # fmt: skip
def test_a_bad_onsale_grace_is_bad_input_naming_the_field(
    tmp_path: Path, grace: str, expected: str
) -> None:
    """onsale_grace: soon / 99999999999d / true / .nan / 0 is exit 2 naming file and field."""
    spec = spec_with(tmp_path, "slos:", "slos:", grace=grace)
    result = invoke("rules", "render", "--spec", spec, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert re.search(rf"{re.escape(str(spec))}:\d+:\d+, field 'onsale_grace'", flat(result))
    assert expected in flat(result)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("objectives: {normal: 99.9, onsale: 99.99}", "objectives: {normal: true, onsale: 99.99}",
         "slos.0.objectives.normal"),
        ("threshold: {normal: 250ms, onsale: 1s}", "threshold: true", "slos.1.sli.threshold"),
        ("threshold: {normal: 250ms, onsale: 1s}", "threshold: .inf", "slos.1.sli.threshold"),
    ],
)  # fmt: skip
def test_booleans_and_non_finite_numbers_are_no_numbers_in_a_spec(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    """`normal: true` was read as 1 %, `threshold: true` as 1 s: now exit 2 naming the field."""
    spec = spec_with(tmp_path, old, new)
    result = invoke("rules", "render", "--spec", spec, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"field '{field}'" in flat(result)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["slo", "report", "--spec", str(SPEC), "--prometheus", "http://[::1"], "--prometheus"),
        (
            ["exit-rate", "recommend", "--spec", str(SPEC), "--current-rate", "inf"],
            "--current-rate",
        ),
        (
            ["exit-rate", "recommend", "--spec", str(SPEC), "--current-rate", "nan"],
            "--current-rate",
        ),
        (["serve", "--port", "99999"], "--port"),
        (["slo", "report", "--format", "bogus"], "--format"),
    ],
)
def test_bad_options_are_one_error_line_naming_the_option(args: list[str], option: str) -> None:
    """Usage errors: exit 2, `error: ...` naming the option, in the same style as file errors."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    output = flat(result)
    assert output.startswith("error: "), output
    assert option in output
    assert "╭" not in result.output  # no rich box: one style across the CLI
    assert "Value error" not in output


def test_an_internal_error_says_where_to_report_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real bug: exit 1, 'internal error', where to report it; --debug prints the traceback."""

    def broken(path: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr("onsale_obs.cli._slo.load_spec", broken)
    args = ["slo", "report", "--spec", str(SPEC), "--logs", str(SPEC)]
    plain = invoke(*args)
    assert plain.exit_code == 1
    assert "internal error: RuntimeError: planted bug" in flat(plain)
    assert "report it" in flat(plain)
    assert "--debug" in flat(plain)
    assert "Traceback" not in plain.output
    debug = invoke("--debug", *args)
    assert debug.exit_code == 1
    assert "Traceback" in debug.output
