"""`onsale-obs slo validate` and `onsale-obs schema`: every problem at once, each at
file:line:column with the field and what was expected in the user's words; exit 2 or 0."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate (dev)
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.cli._schema import schema
from onsale_obs.exceptions import SpecError
from onsale_obs.filekinds import KINDS, check_file, detect_kind, json_schema
from onsale_obs.slo import LatencySLI, load_spec
from tests.file_edits import any_values, paths, replace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BROKEN = """\
slos:
  - name: Checkout Availability
    service: checkout
    sli: {type: availability, bad_codes: [500]}
    objectives: 3
  - name: checkout-latency
    service: checkout
    sli:
      type: latency
      threshold: {normal: 300ms, onsale: 1s}
    objectives: {normal: true, onsale: 100}
    alerting:
      onsale:
        fast: {long: 1m, short: 5m}
  - name: search
    service: search
    sli: {type: errors}
    objectives: {normal: 99}
    colour: blue
onsale_grace: soon
"""

#: (line, column, field, words that must be in the message) of every problem in BROKEN
EXPECTED = [
    (2, 11, "slos.0.name", "expected a name of lower-case letters"),
    (
        4,
        43,
        "slos.0.sli.bad_codes.0",
        "expected one of 1xx, 2xx, 3xx, 4xx or 5xx, got the number 500",
    ),
    (
        5,
        17,
        "slos.0.objectives",
        "expected a mapping with the keys normal, onsale, got the number 3",
    ),
    (10, 27, "slos.1.sli.threshold.normal", "300ms is not a bucket boundary"),
    (11, 26, "slos.1.objectives.normal", "expected a number, got true"),
    (11, 40, "slos.1.objectives.onsale", "expected a number less than 100, got the number 100"),
    (14, 15, "slos.1.alerting.onsale.fast", "the short window must be shorter"),
    (17, 17, "slos.2.sli.type", "'errors' is not a known type; expected one of availability"),
    (18, 17, "slos.2.objectives.onsale", "is required"),
    (19, 5, "slos.2.colour", "is not a known key; expected one of name, service"),
    (20, 15, "onsale_grace", "'soon' is not a duration"),
]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, ["slo", "validate", *(str(a) for a in args)])


def lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_every_problem_of_a_spec_at_once_with_line_column_and_field(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(BROKEN)
    result = invoke(path)
    assert result.exit_code == 2, result.output
    out = lines(result)
    assert len(out) == len(EXPECTED), "\n".join(out)
    for (line, column, field, words), text in zip(
        EXPECTED, sorted(out, key=_position), strict=True
    ):
        assert text.startswith(f"{path}:{line}:{column}: {field}: "), text
        assert words in text, text
    assert f"{path}: {len(EXPECTED)} problems" in result.stderr


def _position(text: str) -> tuple[int, int]:
    match = re.search(r":(\d+):(\d+): ", text)
    assert match, text
    return int(match[1]), int(match[2])


def test_no_message_leaks_pydantic_internals(tmp_path: Path) -> None:
    """No class names, no "Input should be", no "Value error", no union branch tags."""
    path = tmp_path / "slo.yaml"
    path.write_text(BROKEN)
    text = invoke(path).stdout
    for leak in ("Model", "Input should", "Value error", "dictionary", ".latency.", "function-"):
        assert leak not in text, text


def test_the_json_format_lists_the_same_problems(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(BROKEN)
    result = invoke(path, "--format", "json")
    assert result.exit_code == 2
    [entry] = json.loads(result.stdout)["files"]
    assert entry["kind"] == "spec"
    assert entry["valid"] is False
    got = sorted((p["line"], p["column"], p["field"]) for p in entry["problems"])
    assert got == [(line, column, field) for line, column, field, _ in EXPECTED]


def test_valid_files_of_every_kind_exit_0() -> None:
    files = [
        EXAMPLES / "ticketing" / "slo.yaml",
        EXAMPLES / "alertmanager" / "receivers.yaml",
        *sorted((EXAMPLES / "scenarios").glob("*.yaml")),
        *sorted((EXAMPLES / "specs").glob("*.yaml")),
    ]
    result = invoke(*files)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    for path in files:
        assert f"{path}: valid " in result.stderr


@pytest.mark.parametrize(
    ("kind", "text", "where", "words"),
    [
        ("schedule", "onsales:\n  - event: final\n    start: 2026-12-01T10:00:00Z\n"
         "    end: 2026-12-01T09:00:00Z\n", ":2:5: onsales.0: ", "'end' must be later"),
        ("schedule", "onsales:\n  - {event: final, start: soon, end: 2026-12-01T09:00:00Z}\n",
         ":2:27: onsales.0.start: ", "a time with a zone"),
        ("receivers", "pager:\n  pagerdutty: {routing_key_file: /k}\n",
         ":2:3: pager.pagerdutty: ", "not a known key; expected one of pagerduty, opsgenie"),
        ("receivers", "timing:\n  page: {group_wait: 1.5h}\n",
         ":2:22: timing.page.group_wait: ", "whole numbers"),
        ("scenario", "name: x\nseed: one\nwaiting_room: {}\nbackend: {workers: -1}\n",
         ":2:7: seed: ", "expected a whole number, got the text 'one'"),
    ],
)  # fmt: skip
def test_schedules_receivers_and_scenarios_are_checked_too(
    tmp_path: Path, kind: str, text: str, where: str, words: str
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    for args in ((path,), (path, "--kind", kind)):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"{path}{where}" in result.stdout, result.stdout
        assert words in result.stdout, result.stdout


def test_a_scenario_lists_all_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("name: x\nseed: one\nwaiting_room: {}\nbackend: {workers: -1, colour: 1}\n")
    out = lines(invoke(path, "--kind", "scenario"))
    fields = {line.split(": ")[1] for line in out}
    assert {"seed", "backend.workers", "backend.colour"} <= fields, out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("just: [a, list]\n", "cannot tell which kind of file this is"),
        ("slos: [\n  - name: x\n", "is not valid YAML at line"),
    ],
)
def test_unknown_or_broken_files_are_exit_2_never_a_traceback(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    result = invoke(path)
    assert result.exit_code == 2, result.output
    assert words in result.stdout
    assert "Traceback" not in result.output
    missing = invoke(tmp_path / "nope.yaml")
    assert missing.exit_code == 2
    assert "does not exist" in missing.stdout


# -- the bucket boundary: an error, unless the SLI declares the service's buckets ----------


def _latency_spec(tmp_path: Path, sli: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(
        "slos:\n  - name: lat\n    service: s\n"
        f"    sli: {sli}\n"
        "    objectives: {normal: 99.5, onsale: 99.9}\n"
    )
    return path


def test_a_threshold_off_the_buckets_is_an_error_for_every_command(tmp_path: Path) -> None:
    path = _latency_spec(tmp_path, "{type: latency, threshold: 300ms}")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert [p.field for p in caught.value.problems] == [
        "slos.0.sli.threshold",
        "slos.0.sli.threshold",
    ]  # both modes: 300ms is a boundary of neither
    assert "300ms is not a bucket boundary" in str(caught.value)
    result = CliRunner().invoke(
        app, ["dashboards", "render", "--spec", str(path), "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 2, result.output
    assert f"{path}:4:37, field 'slos.0.sli.threshold'" in result.stderr


def test_declared_buckets_allow_the_threshold_and_are_checked(tmp_path: Path) -> None:
    allowed = _latency_spec(
        tmp_path, "{type: latency, threshold: 300ms, buckets: [100ms, 300ms, 1s, 3s]}"
    )
    [slo] = load_spec(allowed).slos
    assert isinstance(slo.sli, LatencySLI)
    assert slo.sli.buckets == {"normal": (0.1, 0.3, 1.0, 3.0), "onsale": (0.1, 0.3, 1.0, 3.0)}
    assert invoke(allowed).exit_code == 0
    per_mode = _latency_spec(
        tmp_path,
        "{type: latency, threshold: {normal: 300ms, onsale: 2s}, "
        "buckets: {normal: [300ms], onsale: [1s, 3s]}}",
    )
    result = invoke(per_mode)
    assert result.exit_code == 2
    assert "slos.0.sli.threshold.onsale: 2s is not a bucket boundary of the declared" in (
        result.stdout
    )
    assert "threshold.normal" not in result.stdout


# -- schema -------------------------------------------------------------------------------


def schema_command() -> typer.Typer:
    """The command on its own (the root registers it as ``schema``)."""
    alone = typer.Typer()
    alone.command()(schema)
    return alone


@pytest.mark.parametrize("kind", KINDS)
def test_schema_prints_a_json_schema_the_examples_satisfy(kind: str) -> None:
    result = CliRunner().invoke(schema_command(), [kind])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema == json_schema(kind)  # type: ignore[arg-type]
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = {
        "spec": [EXAMPLES / "ticketing" / "slo.yaml", EXAMPLES / "plan" / "slo.yaml"],
        "receivers": [EXAMPLES / "alertmanager" / "receivers.yaml"],
        "scenario": sorted((EXAMPLES / "scenarios").glob("*.yaml")),
        "schedule": [],
    }[kind]
    for path in examples:
        jsonschema.validate(_json_ready(yaml.safe_load(path.read_text())), schema)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_the_spec_schema_rejects_what_validate_rejects() -> None:
    schema = json_schema("spec")
    slo: dict[str, Any] = {"name": "x", "service": "s", "sli": {"type": "availability"}}
    with pytest.raises(jsonschema.ValidationError, match="objectives"):
        jsonschema.validate({"slos": [slo]}, schema)
    bad = {"slos": [{**slo, "objectives": {"normal": 99, "onsale": 99}, "x": 1}]}
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        jsonschema.validate(bad, schema)


def test_schema_without_a_name_lists_the_kinds_and_a_bad_name_is_exit_2() -> None:
    listed = CliRunner().invoke(schema_command(), [])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(KINDS)
    bad = CliRunner().invoke(schema_command(), ["specs"])
    assert bad.exit_code == 2


def test_kinds_are_told_from_the_content() -> None:
    assert detect_kind({"slos": []}) == "spec"
    assert detect_kind({"apiVersion": "openslo/v1", "kind": "SLO"}) == "spec"
    assert detect_kind({"version": "prometheus/v1", "slos": []}) == "spec"
    assert detect_kind({"onsales": []}) == "schedule"
    assert detect_kind({"pager": {}}) == "receivers"
    assert detect_kind({"name": "x", "waiting_room": {}}) == "scenario"
    assert detect_kind({"nothing": 1}) is None
    assert check_file(EXAMPLES / "ticketing" / "slo.yaml").valid


_VALUES = any_values("5m", "250ms", "P1", "latency", "promql", "5xx", "2026-12-01T10:00:00Z")
_FILES = {
    "spec": EXAMPLES / "ticketing" / "slo.yaml",
    "receivers": EXAMPLES / "alertmanager" / "receivers.yaml",
    "scenario": EXAMPLES / "scenarios" / "capacity-loss.yaml",
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_anywhere_is_placed_problems_never_a_crash(data: st.DataObject) -> None:
    """Replace any part of an example file by anything YAML holds: validate lists problems in
    words (never pydantic's), each inside the file, or finds it valid; nothing else escapes."""
    kind = data.draw(st.sampled_from(sorted(_FILES)))
    original = yaml.safe_load(_FILES[kind].read_text())
    path = data.draw(st.sampled_from(paths(original)))
    changed = replace(original, path, data.draw(_VALUES))
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "f.yaml"
        file.write_text(yaml.safe_dump(changed))
        checked = check_file(file, kind)  # type: ignore[arg-type]
        lines = len(file.read_text().splitlines())
    for p in checked.problems:
        assert p.file == str(file)
        assert p.detail
        assert "Input should" not in p.detail
        assert p.line is None or 1 <= p.line <= max(lines, 1)
