"""``onsale-obs mode auto``: refuses to start on bad input (exit 2, naming what to fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.modes import generate_key_pair


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["mode", "auto", *map(str, args)], env=env)


def flat(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONSALE_OBS_AUTO_SIGNING_KEY", "ONSALE_OBS_SIGNING_KEY", "ONSALE_OBS_VERIFY_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_without_the_detectors_key_it_refuses_to_start_naming_the_variable() -> None:
    """No --signing-key: exit 2 naming ONSALE_OBS_AUTO_SIGNING_KEY (not the operators' key)."""
    result = invoke("--prometheus", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert "ONSALE_OBS_AUTO_SIGNING_KEY" in flat(result)
    assert "--signing-key" in flat(result)


def test_the_operators_key_variable_is_not_used_by_the_detector(tmp_path: Path) -> None:
    """ONSALE_OBS_SIGNING_KEY set, the detector's own unset: still refused."""
    keys = generate_key_pair(tmp_path)
    result = invoke(
        "--prometheus", "http://127.0.0.1:9", env={"ONSALE_OBS_SIGNING_KEY": str(keys.signing_key)}
    )
    assert result.exit_code == 2, result.output
    assert "ONSALE_OBS_AUTO_SIGNING_KEY" in flat(result)


@pytest.mark.parametrize(
    ("args", "named", "expected"),
    [
        ((), "--prometheus", "a URL is required"),
        (("--prometheus", "ftp://x"), "--prometheus", "http"),
        (("--factor", "0.5"), "--factor", "1"),
        (("--floor", "-1"), "--floor", "0"),
        (("--window", "0"), "--window", "above zero"),
        (("--quiet", "soon"), "--quiet", "duration"),
        (("--max-auto", "0"), "--max-auto", "1"),
        (("--interval", "-2s"), "--interval", "not a duration"),
        (("--lag", "5m"), "--lag", "less than --quiet"),
        (("--high", "-1"), "--high", "0"),
        (("--rise-factor", "0.5"), "--rise-factor", "1"),
        (("--high-evidence", "-1"), "--high-evidence", "0"),
        (("--growth-evidence", "-0.5"), "--growth-evidence", "0"),
        (("--growth-window", "0"), "--growth-window", "above zero"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    tmp_path: Path, args: tuple[str, ...], named: str, expected: str
) -> None:
    """Each bad option: exit 2, the option named, what was expected said."""
    keys = generate_key_pair(tmp_path)
    base = (
        ()
        if (args and args[0] == "--prometheus") or not args
        else ("--prometheus", "http://127.0.0.1:9")
    )
    result = invoke("--signing-key", keys.signing_key, *base, *args)
    assert result.exit_code == 2, result.output
    assert named in flat(result)
    assert expected in flat(result)


def test_help_has_examples() -> None:
    """--help shows how to run it."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert "onsale-obs mode auto --prometheus" in flat(result)
    assert "--dry-run" in flat(result)


def test_an_unreachable_prometheus_means_no_flips_said_once(tmp_path: Path) -> None:
    """Nothing answers at --prometheus: one warning on stderr, nothing published, exit 0."""
    keys = generate_key_pair(tmp_path)
    db = tmp_path / "modes.db"
    result = CliRunner().invoke(
        app,
        ["mode", "auto", "--signing-key", str(keys.signing_key), "--prometheus",
         "http://127.0.0.1:9", "--backend", f"sqlite:///{db}", "--interval", "0.05",
         "--timeout", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("request rates unavailable") == 1
    assert "no flips" in result.output
