"""Bad input at 3 a.m.: mutated specs and arguments are exit 2 naming the file or option, never a bug."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from onsale_obs.cli import app

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
BASE: dict[str, Any] = yaml.safe_load(SPEC.read_text())
AT = "2027-01-15T08:00:00Z"

LEAVES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["soon", "99999999999d", "0s", "-5m", "1e999", "month", "P1", "5m", "2xx"]),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
    st.dictionaries(st.sampled_from(["normal", "onsale", "x"]), st.integers(), max_size=2),
)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the parsed spec a value can be replaced."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


PATHS = [("onsale_grace",), *paths(BASE)]  # the grace is optional: the example leaves it out


def replaced(path: tuple[Any, ...], value: Any) -> Any:
    spec = copy.deepcopy(BASE)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_handled(result: Result, names: str, refused: bool = False) -> None:
    """Exit 0/1 for input that happens to be valid; else exit 2 naming ``names``; never a bug.

    ``refused``: the input is invalid wherever it is, so exit 2 is required.
    """
    output = " ".join(result.output.split())
    if refused:
        assert result.exit_code == 2, output
    assert "internal error" not in output, output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code in (0, 1, 2), output
    if result.exit_code == 2:
        assert names in output, output


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "access.log"
    line = {"ts": 1_800_000_000.0 - 3600, "service": "checkout", "route": "/events/{event_id}/checkout",
            "method": "POST", "status": 200, "duration_s": 0.05, "mode": "normal", "event": "final",
            "event_onsale": False, "trace_id": None}  # fmt: skip
    path.write_bytes(orjson.dumps(line) + b"\n")
    return path


def invalid_anywhere(value: Any) -> bool:
    """A boolean is no number, duration or text; inf and nan are no number or duration."""
    return isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.sampled_from(PATHS), value=LEAVES)
def test_a_mutated_spec_is_reported_in_the_file_never_as_a_bug(
    log: Path, where: tuple[Any, ...], value: Any
) -> None:
    """Any one value of the spec replaced: report and render answer exit 2 naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "slo.yaml"
        spec.write_text(yaml.safe_dump(replaced(where, value)))
        report = invoke(
            "slo", "report", "--spec", spec, "--logs", log, "--at", AT, "--format", "json"
        )
        assert_handled(report, str(spec), invalid_anywhere(value))
        rendered = invoke("dashboards", "render", "--spec", spec, "--out", Path(tmp) / "out")
        assert_handled(rendered, str(spec), invalid_anywhere(value))


OPTIONS = {
    "--window": ("slo", "report"),
    "--at": ("slo", "report"),
    "--timeout": ("slo", "report"),
    "--mode": ("slo", "report"),
    "--format": ("slo", "report"),
    "--slo": ("slo", "report"),
}
VALUES = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "-1", "0", "99999999999d", "soon", "true", "",
                     "http://[::1", "2027-13-45T00:00:00Z", "9999-12-31T23:59:59Z", "1h30m"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(option=st.sampled_from(sorted(OPTIONS)), value=VALUES)
def test_a_mutated_argument_is_exit_2_naming_the_option(log: Path, option: str, value: str) -> None:
    """Any value for a report option: valid, or exit 2 naming that option; never a bug."""
    command = OPTIONS[option]
    result = invoke(*command, "--spec", SPEC, "--logs", log, "--at", AT, option, value)
    if option == "--at":  # --at given twice: the last one counts
        result = invoke(*command, "--spec", SPEC, "--logs", log, option, value)
    assert_handled(result, option)


@settings(max_examples=100, deadline=None)
@given(url=st.one_of(st.text(max_size=20), st.sampled_from(["http://[::1", "http://:99999", "ftp://x",
                                                            "http://", "http://h:port/"])))  # fmt: skip
def test_a_bad_prometheus_url_is_exit_2_naming_the_option(url: str) -> None:
    """--prometheus that is no http(s) URL with a host: exit 2 naming --prometheus."""
    result = invoke("slo", "report", "--spec", SPEC, "--prometheus", url, "--timeout", "0.2")
    output = " ".join(result.output.split())
    assert "internal error" not in output
    assert result.exit_code in (2, 3), output  # 3: a well-formed URL nobody answers
    if result.exit_code == 2:
        assert "--prometheus" in output
