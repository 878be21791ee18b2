"""Scenario files: the shipped ones load; bad ones fail naming the file and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import load_scenario, scenario_from_data

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"

MINIMAL: dict[str, Any] = {
    "name": "tiny",
    "seed": 7,
    "horizon": "1h",
    "waiting_room": {
        "queued_at_start": 1000,
        "initial_rate": 500,
        "browse_time": {"median": "30s", "sigma": 0.5},
    },
    "backend": {"workers": 8, "service_time": {"median": "200ms", "sigma": 0.4}},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(MINIMAL)
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    """Every file in examples/scenarios/ is valid and named after its file."""
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.source == str(path)
    assert scenario.waiting_room.users > 0


def test_minimal_scenario_has_the_documented_defaults() -> None:
    """Omitted sections take their defaults: 99.99% objective, 1s threshold, 15s ticks."""
    s = scenario_from_data(MINIMAL)
    assert s.slo.objective == pytest.approx(0.9999)
    assert s.slo.latency_threshold == 1.0
    assert s.slo.minute_availability == pytest.approx(0.999)
    assert s.tick == 15.0
    assert s.telemetry.data_time(100.0) == 70.0
    assert s.backend.capacity_at(0) == pytest.approx(8 / s.backend.service_time.mean)
    assert s.capacity_rate(0) == pytest.approx(s.backend.capacity_at(0) * 60)


def test_controller_parameters_come_from_what_the_operator_knows() -> None:
    """Our controller's lags come from the scenario's browse time and telemetry."""
    data = _with("waiting_room.checkouts_per_user", 3)
    data["controller"] = {"target_utilisation": 0.9}
    config = scenario_from_data(data).controller_config()
    assert config.admission_lag == pytest.approx(30 + 2 * 5 / 2)  # median + request spread
    assert config.admission_lag_spread == 0.5
    assert config.signal_lag == 15 + 15 + 30
    assert config.target_utilisation == 0.9


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("waiting_room", ..., "waiting_room", "is required"),
        ("backend.workers", -1, "backend.workers", "greater than 0"),
        (
            "backend.service_time.median",
            "5 minutes",
            "backend.service_time.median",
            "not a duration",
        ),
        ("horizon", "soon", "horizon", "not a duration"),
        ("tick", "20m", "tick", "at most 10m"),
        ("seed", "x", "seed", "whole number"),
        ("name", "Has Spaces", "name", "pattern"),
        ("backend.colour", "blue", "backend.colour", "not a known key; expected one of workers"),
        ("waiting_room.queued_at_start", 0, "waiting_room.queued_at_start", "nobody queues"),
        ("slo.objective", 100, "slo.objective", "less than 100"),
        ("telemetry.short_window", "10m", "telemetry.short_window", "shorter than the long"),
        ("controller", {"speed": 2}, "controller.speed", "unknown controller parameter"),
        ("controller", {"target_utilisation": 2}, "controller.target_utilisation", "(0, 1]"),
    ],
)
def test_errors_name_the_file_and_the_field(
    path: str, value: Any, field: str, message: str
) -> None:
    """Each invalid field fails with BadInputError naming the file and the field."""
    with pytest.raises(BadInputError) as info:
        scenario_from_data(_with(path, value), file="bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.field == field
    assert message in str(info.value)


def test_wave_order_is_checked() -> None:
    """A wave that ends before it starts is rejected at its index."""
    data = _with("waiting_room.arrivals", [{"start": "10m", "end": "5m", "users": 10}])
    with pytest.raises(BadInputError, match="end must be after start") as info:
        scenario_from_data(data, file="bad.yaml")
    assert info.value.field == "waiting_room.arrivals.0"


def test_unreadable_files_are_bad_input(tmp_path: Path) -> None:
    """Missing files, broken YAML and non-mappings are reported with the file name."""
    with pytest.raises(BadInputError, match="does not exist") as info:
        load_scenario(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(BadInputError, match="not valid YAML at line"):
        load_scenario(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(BadInputError, match="expected a mapping"):
        load_scenario(listing)
