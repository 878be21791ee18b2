"""Scenario families: deterministic draws per seed, disjoint tuning and held-out seeds, the
events each family promises, and bad input that names the argument."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._families import (
    FAMILIES,
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    family,
    parse_seeds,
)


def test_a_seed_names_one_scenario() -> None:
    """The same family and seed give the same on-sale to every harness; seeds differ."""
    for fam in FAMILIES.values():
        assert fam.draw(10_001) == fam.draw(10_001)
        assert fam.draw(10_001) != fam.draw(10_002)


def test_held_out_seeds_were_never_tuning_seeds() -> None:
    """The benchmark reports seeds the controller was never tuned on."""
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    assert len(HELD_OUT_SEEDS) >= 20


@pytest.mark.parametrize("seed", range(10_001, 10_021))
def test_every_draw_is_within_the_documented_ranges(seed: int) -> None:
    """Queue 10k-2M, start 0.3-1x (hot-start 0.2-2x), browse median 20-120 s, a latency
    objective of at least 1 s and 4x the p95 at rest (tight-objective 1.2-2x), and each
    family's own event."""
    for name, fam in FAMILIES.items():
        s = fam.draw(seed)
        room, backend = s.waiting_room, s.backend
        assert 10_000 <= room.users <= 2_000_000
        share = room.initial_rate / s.capacity_rate(0)  # autoscale: of the tier it starts on
        low, high = (0.2, 2.0) if name == "hot-start" else (0.3, 1.0)
        assert low - 0.01 <= share <= high + 0.01, (name, share)
        assert 20 <= room.browse_time.median <= 120
        if name == "capacity-drop":
            [change] = backend.changes
            assert 0.4 <= change.workers / backend.workers <= 0.9 + 1e-9
        if name == "autoscale":
            [change] = backend.changes
            assert 60 <= change.at <= 300
            assert 1.5 <= change.workers / backend.workers <= 3.0 + 1e-9
        if name == "software-fault":
            [fault] = backend.faults
            assert 0.01 <= fault.error_share <= 0.5
            assert 180 <= fault.end - fault.start <= 900
        if name == "signal-outage":
            [(start, end)] = s.telemetry.outages
            assert 60 <= end - start <= 600
        at_rest = backend.service_time.quantile(0.95)
        if name == "tight-objective":
            # rounded up to 10 ms: at most that over 2x
            assert 1.2 * at_rest <= s.slo.latency_threshold <= 2.0 * at_rest + 0.01
        else:
            assert s.slo.latency_threshold >= max(1.0, 4 * at_rest)
        assert fam.drain_target == (
            1.25 if name in {"capacity-drop", "drift", "software-fault"} else 1.15
        )


def test_unknown_family_and_bad_seeds_name_the_argument() -> None:
    """Bad input says which argument and what was expected."""
    with pytest.raises(BadInputError, match="expected one of steady") as info:
        family("stedy")
    assert info.value.field == "--family"
    assert parse_seeds("1-3,9") == [1, 2, 3, 9]
    for text in ("", "a-3", "5-2"):
        with pytest.raises(BadInputError) as bad:
            parse_seeds(text)
        assert bad.value.field == "--seeds"


def test_simulate_family_bad_input_exits_two_without_a_traceback() -> None:
    """simulate with an unknown family, or with neither a file nor a family, is exit 2."""
    unknown = CliRunner().invoke(app, ["exit-rate", "simulate", "--family", "stedy"])
    assert unknown.exit_code == 2, unknown.output
    assert "unknown family 'stedy'" in unknown.output
    assert "Traceback" not in unknown.output
    nothing = CliRunner().invoke(app, ["exit-rate", "simulate"])
    assert nothing.exit_code == 2, nothing.output
    assert "--family" in nothing.output


def test_simulate_help_teaches_the_families() -> None:
    """--help names the families and shows a family example."""
    shown = CliRunner().invoke(app, ["exit-rate", "simulate", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "capacity-drop" in shown.output
    assert "--family software-fault --seed 3" in shown.output
