"""``plan next`` and ``plan backtest``: ranges from the spread, the safe end, honest errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.exceptions import BadInputError
from onsale_obs.plan import (
    ONE_ONSALE,
    Break,
    OnSaleProfile,
    Profile,
    ServiceProfile,
    backtest,
    plan_next,
)

DAY = 86_400.0
T = 1_750_000_000.0


def service(per_user: float, per_replica: float, *, broke: bool = True) -> ServiceProfile:
    return ServiceProfile(
        requests=per_user * 10_000,
        peak_rps=per_user * 500 / 60,
        sustained_rps=per_user * 400 / 60,
        replicas=4,
        requests_per_user=per_user,
        routes={"GET /x": per_user * 10_000},
        good_rps=per_replica * 4,
        good_rps_per_replica=per_replica,
        broke=Break("errors", T, per_replica * 4.2, per_replica * 1.05) if broke else None,
    )


def onsale(i: int, checkout_per_replica: float, *, peak: float = 500.0) -> OnSaleProfile:
    return OnSaleProfile(
        scope=f"event:e{i}",
        start=T + i * DAY,
        end=T + i * DAY + 3600,
        services={
            "checkout": service(1.5, checkout_per_replica),
            "frontend": service(3.0, 10.0, broke=False),
        },
        admitted_users=10_000,
        admitted_peak_per_minute=peak,
        admitted_source="given",
        max_good_exit_rate=400.0 + 10 * i,
    )


def profile(*onsales: OnSaleProfile) -> Profile:
    return Profile(onsales=tuple(onsales), learned_at=T + 30 * DAY, source="test")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")


def test_ranges_come_from_the_spread_and_the_safe_end_is_used() -> None:
    """Replicas are sized on the lowest capacity per replica seen; the range shows both ends."""
    plan = plan_next(profile(onsale(0, 2.0), onsale(1, 2.5)), demand=60_000, start=T, rate=1200)
    checkout = next(s for s in plan.services if s.name == "checkout")
    # users/min per replica: 2.0 * 60 / 1.5 = 80 (low), 2.5 * 60 / 1.5 = 100 (high)
    assert checkout.replicas == math.ceil(1200 / (80 * 0.92))
    assert checkout.capacity.low == pytest.approx(80 * checkout.replicas)
    assert checkout.capacity.high == pytest.approx(100 * checkout.replicas)
    assert plan.first_to_saturate == "checkout"
    assert plan.capacity_prior == pytest.approx(80 * checkout.replicas)
    assert plan.starting_rate == pytest.approx(min(1200, 0.92 * plan.capacity_prior))
    assert plan.drain_seconds.value == pytest.approx(60_000 / plan.starting_rate * 60)
    assert plan.drain_seconds.low is not None
    assert plan.drain_seconds.high is not None
    assert plan.drain_seconds.low <= plan.drain_seconds.value <= plan.drain_seconds.high


def test_default_rate_is_the_best_rate_held_with_the_slo_met() -> None:
    """Without --rate or --drain-within the vertical is sized for the best rate held."""
    plan = plan_next(profile(onsale(0, 2.0), onsale(1, 2.5)), demand=1000, start=T)
    assert plan.rate == 410.0


def test_drain_within_sizes_for_the_rate_that_drains_in_time() -> None:
    """--drain-within: the expected drain time is within the asked time."""
    plan = plan_next(
        profile(onsale(0, 2.0), onsale(1, 2.5)), demand=90_000, start=T, drain_within=3600
    )
    assert plan.drain_seconds.value <= 3600 * 1.0001


def test_one_onsale_gives_no_range() -> None:
    """One past on-sale: the numbers, and 'range not estimated', never an invented range."""
    plan = plan_next(profile(onsale(0, 2.0)), demand=10_000, start=T, rate=500)
    data = plan.to_json()
    assert data["capacity_users_per_minute"]["low"] is None
    assert data["capacity_users_per_minute"]["note"] == ONE_ONSALE
    assert ONE_ONSALE in data["notes"]


def test_lower_bound_is_said() -> None:
    """A service that never reached its limit is flagged: its capacity is a lower bound."""
    plan = plan_next(profile(onsale(0, 2.0), onsale(1, 2.5)), demand=1000, start=T, rate=400)
    frontend = next(s for s in plan.services if s.name == "frontend")
    assert frontend.limit_is_lower_bound
    assert any(n.startswith("frontend: no past on-sale reached its limit") for n in plan.notes)


def test_missing_numbers_are_named() -> None:
    """A service without fan-out (admissions not recorded) is bad input naming it."""
    o = onsale(0, 2.0)
    bare = replace(o.services["checkout"], requests_per_user=None)
    broken = replace(o, services={**o.services, "checkout": bare})
    with pytest.raises(BadInputError, match="'checkout' has no requests per admitted user"):
        plan_next(profile(broken), demand=10, start=T, rate=100)


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(profile(onsale(0, 2.0), onsale(1, 2.5), onsale(2, 2.2)).dumps())
    return path


def test_cli_next_table_and_json(profile_file: Path) -> None:
    """plan next prints the warm start flags and every service's replicas with ranges."""
    result = invoke("plan", "next", "--profile", profile_file, "--demand", "50000",
                    "--start", "2027-06-01T10:00:00Z")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--initial-rate" in result.output
    assert "--capacity-prior" in result.output
    assert "saturates first: checkout" in result.output
    result = invoke("plan", "next", "--profile", profile_file, "--demand", "50000",
                    "--start", "2027-06-01T10:00:00Z", "--like", "e1", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["like"] == ["e1"]
    assert data["capacity_users_per_minute"]["low"] is None
    assert data["start"] == "2027-06-01T10:00:00Z"


def test_cli_unknown_like_and_service_exit_2(profile_file: Path) -> None:
    """An unknown --like event or --service is exit 2, naming it and what exists."""
    base = ("plan", "next", "--profile", profile_file, "--demand", "5", "--start", "now")
    result = invoke(*base, "--like", "e9")
    assert result.exit_code == 2
    assert "'--like'" in result.output
    assert "'e9'" in result.output
    assert "'e0'" in result.output
    result = invoke(*base, "--service", "payments")
    assert result.exit_code == 2
    assert "'payments'" in result.output
    result = invoke(*base, "--rate", "100", "--drain-within", "1h")
    assert result.exit_code == 2
    result = invoke("plan", "next", "--profile", profile_file, "--demand", "-5", "--start", "now")
    assert result.exit_code == 2
    assert "--demand" in result.output


def test_backtest_uses_only_earlier_onsales() -> None:
    """Each prediction uses the on-sales before it: changing a later one changes nothing earlier."""
    a = profile(onsale(0, 2.0), onsale(1, 2.5), onsale(2, 2.2))
    b = profile(onsale(0, 2.0), onsale(1, 2.5), onsale(2, 9.9))
    rows_a, rows_b = backtest(a), backtest(b)
    first_a = [r for r in rows_a if r.event == "e1"]
    first_b = [r for r in rows_b if r.event == "e1"]
    assert first_a == first_b
    checkout = next(r for r in first_a if r.service == "checkout")
    assert checkout.sustainable_predicted == 2.0
    assert checkout.sustainable_actual == 2.5
    assert checkout.sustainable_error == pytest.approx(2.0 / 2.5 - 1)
    assert checkout.peak_rps_predicted == pytest.approx(1.5 * 500 / 60)
    later = next(r for r in rows_a if r.event == "e2" and r.service == "checkout")
    assert later.earlier == 2
    assert later.sustainable_predicted == 2.0


def test_cli_backtest_json_and_too_few(profile_file: Path, tmp_path: Path) -> None:
    """backtest JSON has rows and a per-service summary; one on-sale is exit 2."""
    result = invoke("plan", "backtest", "--profile", profile_file, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["event"] for r in data["rows"]} == {"e1", "e2"}
    assert data["summary"]["checkout"]["sustainable_mean_abs_error"] is not None
    assert data["summary"]["frontend"]["sustainable_mean_abs_error"] is None  # bounds only
    one = tmp_path / "one.json"
    one.write_text(profile(onsale(0, 2.0)).dumps())
    result = invoke("plan", "backtest", "--profile", one)
    assert result.exit_code == 2
    assert "at least 2" in result.output


def test_fixed_replicas_are_taken_as_they_are() -> None:
    """--replicas keeps a service's size: its capacity, and the warm start, follow it."""
    plan = plan_next(
        profile(onsale(0, 2.0), onsale(1, 2.5)),
        demand=10_000,
        start=T,
        rate=5000,
        replicas={"checkout": 3, "frontend": 20},
    )
    checkout = next(s for s in plan.services if s.name == "checkout")
    assert checkout.replicas == 3
    assert plan.capacity_prior == pytest.approx(80 * 3)  # 2 rps x 60 / 1.5 users, 3 replicas
    assert plan.starting_rate == pytest.approx(0.92 * 80 * 3)
    with pytest.raises(BadInputError, match="'search' is no service"):
        plan_next(profile(onsale(0, 2.0)), demand=10, start=T, rate=5, replicas={"search": 2})


def test_cli_replicas_must_be_whole(profile_file: Path) -> None:
    """--replicas checkout=2.5 is exit 2 naming the option."""
    result = invoke("plan", "next", "--profile", profile_file, "--demand", "5", "--start", "now",
                    "--replicas", "checkout=2.5")  # fmt: skip
    assert result.exit_code == 2
    assert "--replicas" in result.output


def test_limits_come_from_the_onsales_that_reached_them() -> None:
    """A quiet on-sale that never pushed a service does not drag its limit down."""
    quiet, busy = onsale(0, 2.0), onsale(1, 2.5)
    quiet = replace(quiet, services={**quiet.services, "frontend": service(3.0, 3.0, broke=False)})
    busy = replace(busy, services={**busy.services, "frontend": service(3.0, 8.0)})
    plan = plan_next(profile(quiet, busy), demand=1000, start=T, rate=400)
    frontend = next(s for s in plan.services if s.name == "frontend")
    assert frontend.rps_per_replica.value == 8.0
    assert not frontend.limit_is_lower_bound
    rows = backtest(profile(busy, quiet, onsale(2, 2.2)))
    last = next(r for r in rows if r.event == "e2" and r.service == "frontend")
    assert last.sustainable_predicted == 8.0
