"""SLO spec files: defaults, overrides, and an error that names the place for every mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onsale_obs.exceptions import SpecError
from onsale_obs.slo import DEFAULT_POLICY, LatencySLI, load_spec, spec_from_data

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def slo(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "checkout-availability",
        "service": "checkout",
        "sli": {"type": "availability"},
        "objectives": {"normal": 99.9, "onsale": 99.99},
    }
    return {**base, **changes}


def test_defaults_objectives_as_fractions_and_the_policy_of_each_mode() -> None:
    [s] = spec_from_data({"slos": [slo()]}).slos
    assert s.objectives == {"normal": 0.999, "onsale": 0.9999}
    assert s.window == 30 * 86400
    assert not s.calendar_month
    assert s.policy == DEFAULT_POLICY
    assert [r.priority for r in s.policy["onsale"]] == ["P1", "P2"]
    assert {r.priority for r in s.policy["normal"]} == {"P3", "P4"}


def test_overrides_change_one_field_add_a_rule_and_remove_one() -> None:
    alerting = {
        "onsale": {"fast": {"priority": "P2", "min_bad_events": 2}},
        "normal": {
            "slow": None,
            "daily": {"long": "1d", "short": "2h", "burn_rate": 3, "priority": "P4"},
        },
    }
    [s] = spec_from_data({"slos": [slo(alerting=alerting)]}).slos
    fast = s.policy["onsale"][0]
    assert (fast.priority, fast.min_bad_events, fast.long, fast.burn_rate) == ("P2", 2, 300, 14.4)
    assert [r.name for r in s.policy["normal"]] == ["fast", "medium", "daily"]
    assert s.policy["normal"][-1].long == 86400


def test_latency_thresholds_per_mode_or_one_for_both() -> None:
    spec = spec_from_data(
        {
            "slos": [
                slo(
                    name="a",
                    sli={"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}},
                ),
                slo(name="b", sli={"type": "latency", "threshold": 0.5}),
            ]
        }
    )
    a, b = (s.sli for s in spec.slos)
    assert isinstance(a, LatencySLI)
    assert a.threshold == {"normal": 0.25, "onsale": 1.0}
    assert isinstance(b, LatencySLI)
    assert b.threshold == {"normal": 0.5, "onsale": 0.5}


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        ({"slos": []}, "slos", "at least 1"),
        (
            {"slos": [slo(objectives={"normal": 100, "onsale": 99})]},
            "slos.0.objectives.normal",
            "less than 100",
        ),
        (
            {"slos": [slo(objective=99)]},
            "slos.0.objective",
            "not a known key; expected one of name, service",
        ),
        (
            {"slos": [slo(sli={"type": "errors"})]},
            "slos.0.sli.type",
            "expected one of availability, latency, promql",
        ),
        (
            {"slos": [slo(sli={"type": "availability", "bad_codes": ["500"]})]},
            "slos.0.sli.bad_codes.0",
            "5xx",
        ),
        (
            {"slos": [slo(sli={"type": "latency", "threshold": "fast"})]},
            "slos.0.sli.threshold",
            "duration",
        ),
        ({"slos": [slo(window="thirty days")]}, "slos.0.window", "duration"),
        ({"slos": [slo(name="Checkout Availability")]}, "slos.0.name", "lower-case letters"),
        ({"slos": [slo(), slo()]}, "(top level)", "unique"),
        (
            {"slos": [slo(alerting={"onsale": {"fast": {"priority": "P0"}}})]},
            "slos.0.alerting.onsale.fast.priority",
            "P1",
        ),
        (
            {"slos": [slo(alerting={"onsale": {"fast": {"long": "1m", "short": "5m"}}})]},
            "slos.0.alerting.onsale.fast",
            "shorter",
        ),
        (
            {"slos": [slo(alerting={"onsale": {"new": {"long": "10m"}}})]},
            "slos.0.alerting.onsale.new",
            "short, burn_rate, priority",
        ),
        (
            {"slos": [slo(alerting={"normal": {"nope": None}})]},
            "slos.0.alerting.normal.nope",
            "no default rule",
        ),
        (
            {"slos": [slo(sli={"type": "promql", "good": "x"})]},
            "slos.0.sli.total",
            "required",
        ),
        (
            {"slos": [slo(sli={"type": "promql", "good": "x", "total": 'y{a="1"[5m]'})]},
            "slos.0.sli.total",
            "not a series selector",
        ),
    ],
)
def test_every_mistake_names_the_file_the_field_and_what_was_expected(
    data: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_data(data, file="slo.yaml")
    assert caught.value.file == "slo.yaml"
    assert caught.value.field == field or (
        field == "(top level)" and caught.value.field in (None, "(top level)")
    )
    assert expected in str(caught.value)
    assert str(caught.value).startswith("slo.yaml")


def test_files_that_are_missing_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [\n  - name: x\n    : y\n")
    with pytest.raises(SpecError, match=r"bad\.yaml.*not valid YAML at line"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping with a list 'slos'"):
        load_spec(bad)


def test_the_example_specs_load() -> None:
    specs = sorted(EXAMPLES.glob("**/slo*.yaml"))
    assert specs, "examples/ should ship SLO specs"
    for path in specs:
        spec = load_spec(path)
        assert spec.slos
