"""``plan learn`` on planted on-sales with a known fan-out and capacity, from both sources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.plan import GivenNumbers, Profile, PrometheusTimeline, learn, load_profile
from onsale_obs.plan.testing import DEFAULT_SERVICES, Planted, PlantedOnSale, plant
from onsale_obs.slo import SLOSpec, spec_from_data
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._prometheus import PrometheusSource
from onsale_obs.slo._run import open_source
from onsale_obs.testing import require_binary
from onsale_obs.testing_prometheus import PrometheusServer, backfill
from tests.slo_oracle import Record
from tests.slo_traffic import Traffic

HOUR = 3600.0
#: 2025-06-20T10:00:00Z; the on-sales are 6 hours apart (the events tests/slo_traffic.py
#: writes an onsale_mode gauge for)
T0 = 1_750_413_600.0
EVENTS = ("cup-final", "arena-tour", "summer-fest")
REPLICAS = (
    {"frontend": 4, "checkout": 3, "payments": 2},
    {"frontend": 5, "checkout": 4, "payments": 3},
    {"frontend": 6, "checkout": 6, "payments": 4},
)
ONSALES = tuple(
    PlantedOnSale(event, T0 + i * 6 * HOUR, 30, 100.0, 500.0 + 100 * i, REPLICAS[i])
    for i, event in enumerate(EVENTS)
)
AT = ONSALES[-1].end + 2 * HOUR
SPEC_DATA = {
    "slos": [
        {
            "name": f"{s.name}-availability",
            "service": s.name,
            "sli": {"type": "availability"},
            "objectives": {"normal": 99.9, "onsale": 99.9},
        }
        for s in DEFAULT_SERVICES
    ]
}
SERVICES = {s.name: s for s in DEFAULT_SERVICES}


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONSALE_OBS_BACKEND", "ONSALE_OBS_SLO_SPEC", "ONSALE_OBS_PROMETHEUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@dataclass
class World:
    planted: Planted
    spec: SLOSpec
    spec_path: Path
    log: Path
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("plan")
    planted = plant(ONSALES)
    log = folder / "access.jsonl"
    log.write_bytes(b"".join(orjson.dumps(r.line()) + b"\n" for r in planted.records))
    spec_path = folder / "slo.yaml"
    spec_path.write_text(json.dumps(SPEC_DATA))
    return World(planted, spec_from_data(SPEC_DATA), spec_path, log, folder)


def _gauges(planted: Planted) -> str:
    """The waiting room's admitted users/min (what serve exports) and the replicas gauge."""
    lines = ["# TYPE onsale_exit_rate_recommended gauge"]
    for o in planted.onsales:
        for minute, rate in sorted(planted.admissions(o.event).items()):
            lines.append(f'onsale_exit_rate_recommended{{event="{o.event}"}} {rate} {minute}')
        # serve drops the series when the on-sale ends, and Prometheus marks it stale at the
        # next scrape; a backfill cannot write staleness markers, so a 0 stands for it
        lines.append(f'onsale_exit_rate_recommended{{event="{o.event}"}} 0 {int(o.end)}')
    lines.append("# TYPE kube_deployment_status_replicas gauge")
    for name in SERVICES:
        for o in planted.onsales:
            first = int(o.start - 600)
            for t in range(first, int(o.end + 1200), 60):
                lines.append(
                    f'kube_deployment_status_replicas{{deployment="{name}",namespace="shop"}} '
                    f"{o.replicas[name]} {t}"
                )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(world: World) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    records = [
        Record(r.ts, r.service, r.route, r.method, r.status, r.duration_s, r.mode, r.event, True)
        for r in world.planted.records
    ]
    start = ONSALES[0].start - HOUR
    traffic = Traffic(AT, start, 60.0, records, tuple(o.window() for o in ONSALES), {})
    text = world.folder / "planted.om"
    traffic.write_openmetrics(text)
    body = text.read_text().removesuffix("# EOF\n")
    text.write_text(body + _gauges(world.planted) + "# EOF\n")
    backfill(text, world.folder / "tsdb", promtool=promtool)
    with PrometheusServer(binary=binary, tsdb_path=world.folder / "tsdb") as server:
        yield server


def _given_replicas() -> GivenNumbers:
    return GivenNumbers({f"{o.event}/{s}": n for o in ONSALES for s, n in o.replicas.items()})


@pytest.fixture(scope="module")
def from_logs(world: World) -> Profile:
    admitted = GivenNumbers({o.event: o.admitted for o in ONSALES})
    return learn(
        world.spec, open_source(logs=[world.log]), AT, window=2 * 86_400.0,
        admitted=admitted, replicas=_given_replicas(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def from_prometheus(prometheus: PrometheusServer, world: World) -> Iterator[Profile]:
    with PrometheusClient(prometheus.url) as client:

        def points(q: str, a: float, b: float, step: float) -> list[tuple[float, float]]:
            return [p for s in client.query_range(q, a, b, step) for p in s.points]

        yield learn(
            world.spec, PrometheusSource(client), AT, window=2 * 86_400.0,
            admitted=PrometheusTimeline(points, 'sum(onsale_exit_rate_recommended{event="$event"})', "$event"),
            replicas=PrometheusTimeline(points, 'sum(kube_deployment_status_replicas{deployment="$service"})', "$service"),
        )  # fmt: skip


def _check_truth(profile: Profile, fan_tolerance: float) -> None:
    assert [o.event for o in profile.onsales] == list(EVENTS)
    for planted, learnt in zip(ONSALES, profile.onsales, strict=True):
        assert learnt.admitted_users == pytest.approx(planted.admitted, rel=fan_tolerance)
        breaks = {}
        for name, truth in SERVICES.items():
            s = learnt.services[name]
            assert s.requests_per_user == pytest.approx(truth.per_user, rel=fan_tolerance)
            for r in truth.routes:
                share = s.routes[f"{r.method} {r.route}"] / learnt.admitted_users  # type: ignore[operator]
                assert share == pytest.approx(r.per_user, rel=fan_tolerance)
            assert s.replicas == planted.replicas[name]
            broke_at = planted.break_rate(truth)
            assert s.limit_reached == (broke_at is not None), (learnt.event, name)
            if broke_at is not None:
                # the highest good minute sits within one ramp step of the planted limit;
                # a minute breaks at 14.4x the 0.1% budget, so up to 1.44% of a minute's
                # requests may fail over capacity with the SLO still met
                assert s.good_rps_per_replica is not None
                assert 0.9 * truth.capacity_per_replica <= s.good_rps_per_replica
                assert s.good_rps_per_replica <= truth.capacity_per_replica / (1 - 0.0144)
                assert s.broke is not None
                assert s.broke.kind == "errors"
                assert s.broke.rps_per_replica is not None
                assert s.broke.rps_per_replica > truth.capacity_per_replica
                breaks[name] = broke_at
        first = min(breaks, key=lambda n: breaks[n]) if breaks else None
        assert learnt.first_break == first
        if first is not None:
            assert learnt.max_good_exit_rate is not None
            assert 0.9 * breaks[first] <= learnt.max_good_exit_rate <= breaks[first] / (1 - 0.0144)


def test_learns_planted_fanout_and_capacity_from_logs(from_logs: Profile) -> None:
    """Access logs: fan-out per service and route, limits per replica and the first break."""
    _check_truth(from_logs, fan_tolerance=1e-9)


def test_learns_planted_fanout_and_capacity_from_prometheus(from_prometheus: Profile) -> None:
    """Prometheus: the same truth from the middleware's metrics and two recorded gauges."""
    _check_truth(from_prometheus, fan_tolerance=0.005)


def test_both_sources_agree(from_logs: Profile, from_prometheus: Profile) -> None:
    """The two sources learn the same on-sales, rates and limits."""
    for a, b in zip(from_logs.onsales, from_prometheus.onsales, strict=True):
        assert a.event == b.event
        for name in SERVICES:
            sa, sb = a.services[name], b.services[name]
            assert sa.peak_rps == pytest.approx(sb.peak_rps, rel=0.01)
            assert sa.good_rps_per_replica == pytest.approx(sb.good_rps_per_replica, rel=0.02)


def test_profile_file_round_trips(from_logs: Profile, tmp_path: Path) -> None:
    """The written profile reads back to the same numbers (what plan next uses)."""
    path = tmp_path / "profile.json"
    path.write_text(from_logs.dumps())
    again = load_profile(path)
    assert again.dumps() == from_logs.dumps()


def test_without_admitted_users_nothing_is_invented(world: World) -> None:
    """No admissions recorded: fan-out and exit rates are null, with a note saying why."""
    profile = learn(world.spec, open_source(logs=[world.log]), AT, window=2 * 86_400.0)
    for o in profile.onsales:
        assert o.admitted_users is None
        assert o.max_good_exit_rate is None
        assert all(s.requests_per_user is None for s in o.services.values())
        assert all(s.good_rps_per_replica is None for s in o.services.values())
        assert any("admitted users not recorded" in n for n in o.notes)
        assert all(s.good_rps is not None for s in o.services.values())


def test_cli_learn_from_prometheus_defaults(
    prometheus: PrometheusServer, world: World, tmp_path: Path
) -> None:
    """plan learn --prometheus reads serve's exit-rate gauge and the replicas gauge by default."""
    out = tmp_path / "profile.json"
    result = invoke(
        "plan", "learn", "--spec", world.spec_path, "--prometheus", prometheus.url,
        "--at", "2025-06-21T00:00:00Z", "--window", "2d", "--out", out, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["version"] == 1
    checkout = data["onsales"][0]["services"]["checkout"]
    assert checkout["replicas"] == 3
    assert checkout["requests_per_user"] == pytest.approx(1.5, rel=0.005)
    assert data["onsales"][0]["admitted"]["source"].startswith("prometheus: ")


def test_cli_learn_names_unknown_event_and_service(world: World, tmp_path: Path) -> None:
    """A typo in --admitted or --replicas is exit 2 naming the option, never ignored."""
    base = ("plan", "learn", "--spec", world.spec_path, "--logs", world.log,
            "--at", "2025-06-21T00:00:00Z", "--window", "2d")  # fmt: skip
    result = invoke(*base, "--admitted", "cup-finale=1000")
    assert result.exit_code == 2
    assert "'--admitted'" in result.output
    assert "cup-finale" in result.output
    result = invoke(*base, "--replicas", "chekout=3")
    assert result.exit_code == 2
    assert "'--replicas'" in result.output
    assert "chekout" in result.output
    result = invoke(*base, "--replicas", "checkout=three")
    assert result.exit_code == 2
    assert "SERVICE=N" in result.output


def test_profile_errors_name_the_file_and_field(tmp_path: Path) -> None:
    """A broken profile is exit 2 naming the file and the field."""
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"version": 2}))
    result = invoke("plan", "next", "--profile", path, "--demand", "10", "--start", "now")
    assert result.exit_code == 2
    assert "p.json" in result.output
    assert "version" in result.output
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "learned_at": "x",
                "source": "",
                "judgement": "",
                "onsales": [],
                "warnings": [],
            }
        )
    )
    result = invoke("plan", "next", "--profile", path, "--demand", "10", "--start", "now")
    assert result.exit_code == 2
    assert "learned_at" in result.output


def test_a_latency_break_is_told_apart(tmp_path: Path) -> None:
    """Requests slower than the latency SLO's threshold break it as 'latency', at that minute."""
    from onsale_obs.plan.testing import PlantedRecord

    start = T0
    records = []
    for minute in range(10):
        slow = minute >= 6  # from minute 6 on, every fifth request misses the 1 s threshold
        n = 100 + 10 * minute
        for j in range(n):
            seconds = 2.0 if slow and j % 5 == 0 else 0.1
            ts = start + minute * 60 + (j + 0.5) * 60 / n
            records.append(
                PlantedRecord(ts, "checkout", "/checkout", "POST", 200, seconds, event="cup-final")
            )
    log = tmp_path / "access.jsonl"
    log.write_bytes(b"".join(orjson.dumps(r.line()) + b"\n" for r in records))
    spec = spec_from_data(
        {
            "slos": [
                {
                    "name": "checkout-latency",
                    "service": "checkout",
                    "sli": {"type": "latency", "threshold": "1s"},
                    "objectives": {"normal": 99, "onsale": 99},
                }
            ]
        }
    )
    profile = learn(
        spec, open_source(logs=[log]), start + 3600, window=86_400.0,
        admitted=GivenNumbers({"cup-final": 1000}), replicas=GivenNumbers({"checkout": 2}),
    )  # fmt: skip
    checkout = profile.onsales[0].services["checkout"]
    assert checkout.broke is not None
    assert checkout.broke.kind == "latency"
    assert checkout.broke.at == start + 6 * 60
    assert checkout.broke.rps == pytest.approx(160 / 60)
    assert checkout.good_rps == pytest.approx(150 / 60)
    assert checkout.good_rps_per_replica == pytest.approx(150 / 60 / 2)
    assert profile.onsales[0].first_break == "checkout"
