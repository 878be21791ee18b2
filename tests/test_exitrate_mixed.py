"""Mixed events on one shared backend: the shared-backend guard's rule, the mixed-events
family's draws, and a simulated fault in one event that never cuts another's rate."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import _mixed as mixed
from onsale_obs.exitrate._baselines import FixedRate
from onsale_obs.exitrate._families import (
    FAMILIES,
    FAMILY_NAMES,
    HELD_OUT_SEEDS,
    MIXED_FAMILIES,
    TUNING_SEEDS,
    MixedFamily,
    family,
    find_family,
)
from onsale_obs.exitrate._guard import shared_guard
from onsale_obs.exitrate._mixed import MixedRun, MixedScenario, simulate_mixed
from onsale_obs.exitrate._mixed_run import innocent_rates, run_mixed
from onsale_obs.exitrate._report import physical_limit
from onsale_obs.exitrate._run import make_controller
from onsale_obs.exitrate._share import utilisation_by_demand
from onsale_obs.exitrate._signals import Action, Recommendation, Signals

THRESHOLD = 14.4
MIXED = MIXED_FAMILIES["mixed-events"]
#: A small tuning seed (21,847 users, three events, T* 17 minutes, 36% of the first event's
#: checkouts failing for 9 minutes) on which the innocent events' rates would be cut if
#: their controllers read the faulty event's burn.
SMALL_SEED = 45


def _recommendation(
    action: Action, own_burn: float | None = 0.0, **readings: float | None
) -> Recommendation:
    signals = Signals(time=600.0, current_rate=1_000.0, burn_short=own_burn, **readings)
    rate = {"increase": 1_200.0, "decrease": 800.0}.get(action, 1_000.0)
    return Recommendation(rate, "the event's own reason", action, 1_000.0, 600.0, signals)


def _guard(rec: Recommendation, shared: float | None) -> Recommendation:
    return shared_guard(
        rec,
        shared,
        threshold=THRESHOLD,
        service="checkout",
        window=60.0,
        saturation=0.95,
        latency_margin=0.8,
    )


def test_the_guard_holds_an_increase_while_another_event_burns() -> None:
    """Another event burning at or over the threshold holds this event's increase at the rate
    it had, and says why."""
    held = _guard(_recommendation("increase"), shared=THRESHOLD)
    assert held.action == "hold"
    assert held.rate == 1_000.0
    assert "another event on the shared checkout service burns 14.4x over 60s" in held.reason
    assert "the event's own reason" in held.reason


@pytest.mark.parametrize("shared", [None, 0.0, THRESHOLD - 0.01])
def test_the_guard_passes_an_increase_while_the_service_is_healthy(shared: float | None) -> None:
    """Below the threshold (or not known) the increase passes unchanged."""
    rec = _recommendation("increase")
    assert _guard(rec, shared) is rec


@pytest.mark.parametrize("action", ["decrease", "hold", "decay"])
def test_the_guard_never_touches_anything_but_an_increase(action: Action) -> None:
    """A decrease (or hold, or decay) always passes, however hard the service burns."""
    rec = _recommendation(action)
    assert _guard(rec, shared=1_000.0) is rec


def test_the_guard_lets_a_probe_through_when_the_backend_shows_room() -> None:
    """Another event's errors while the shared backend has room (utilisation under
    saturation, p95 under the latency hold band) are a software fault, not a lack of
    capacity: the probe passes."""
    rec = _recommendation("increase", utilisation=0.8, latency_p95=0.5, latency_threshold=1.0)
    assert _guard(rec, shared=1_000.0) is rec


@pytest.mark.parametrize(
    "readings",
    [
        {"utilisation": 0.95, "latency_p95": 0.5, "latency_threshold": 1.0},
        {"utilisation": 0.8, "latency_p95": 0.81, "latency_threshold": 1.0},
        {"utilisation": None, "latency_p95": 0.5, "latency_threshold": 1.0},
        {"utilisation": 0.8, "latency_p95": None, "latency_threshold": 1.0},
        {"utilisation": 0.8, "latency_p95": 0.5, "latency_threshold": None},
    ],
)
def test_the_guard_holds_when_the_backend_may_be_what_fails(
    readings: dict[str, float | None],
) -> None:
    """Saturated, in the latency hold band, or not known: the other event's errors may be
    the shared backend's overload, and the probe is held."""
    held = _guard(_recommendation("increase", **readings), shared=1_000.0)
    assert held.action == "hold"


def test_the_guard_judges_room_on_the_backends_own_utilisation() -> None:
    """The controller may read the utilisation split by demand (room for its share); the
    guard asks whether the backend itself has room: saturated, the probe is held."""
    rec = _recommendation("increase", utilisation=0.6, latency_p95=0.5, latency_threshold=1.0)
    held = shared_guard(
        rec,
        1_000.0,
        threshold=THRESHOLD,
        service="checkout",
        window=60.0,
        saturation=0.95,
        latency_margin=0.8,
        utilisation=0.97,
    )
    assert held.action == "hold"


def test_the_guard_leaves_the_burning_event_to_its_own_controller() -> None:
    """The event that burns itself is not held by the guard (its own controller knows)."""
    rec = _recommendation("increase", own_burn=THRESHOLD)
    assert _guard(rec, shared=1_000.0) is rec


def test_a_seed_names_one_mixed_on_sale() -> None:
    """The same seed gives the same on-sale to every harness; seeds differ; the held-out
    seeds are not tuning seeds."""
    assert MIXED.draw(10_001) == MIXED.draw(10_001)
    assert MIXED.draw(10_001) != MIXED.draw(10_002)
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)


@pytest.mark.parametrize("seed", [*range(1, 11), *range(10_001, 10_021)])
def test_every_mixed_draw_is_within_its_stated_ranges(seed: int) -> None:
    """2-3 events sharing one backend, 10k-2M users in all, T* of the whole 15-120 minutes,
    each event at least its minimum share, its own browse time (median 20-120 s) and a start
    0.3-1x its demand share of the capacity; exactly one event has a fault of 1-50% for 3-15
    minutes starting at 15-60% of T*."""
    s = MIXED.draw(seed)
    users = [e.waiting_room.users for e in s.events]
    assert len(users) in (2, 3)
    assert 10_000 <= sum(users) <= 2_000_000
    limit = physical_limit(s.whole())
    assert 15 * 60 <= limit <= 120 * 60 + 1
    shares = [s.demand_share(i) for i in range(len(users))]
    assert sum(shares) == pytest.approx(1.0)
    assert min(shares) >= 1 / (1 + 4 * (len(users) - 1)) - 1e-3
    capacity = s.whole().capacity_rate(0)
    for i, event in enumerate(s.events):
        room = event.waiting_room
        assert 20 <= room.browse_time.median <= 120
        assert 0.3 - 0.01 <= room.initial_rate / (shares[i] * capacity) <= 1.0 + 0.01
    assert not s.backend.faults
    faulty = [e for e in s.events if e.faults]
    assert len(faulty) == 1
    [fault] = faulty[0].faults
    assert 0.01 <= fault.error_share <= 0.5
    assert 180 <= fault.end - fault.start <= 900
    assert 0.15 * limit - 1 <= fault.start <= 0.6 * limit + 1
    assert MIXED.drain_target == 1.25


def test_mixed_events_is_named_everywhere_a_family_is_chosen() -> None:
    """find_family knows every family; family() (single-room harnesses) says why not."""
    assert FAMILY_NAMES[:-1] == tuple(FAMILIES)
    assert FAMILY_NAMES[-1] == "mixed-events"
    assert isinstance(find_family("mixed-events"), MixedFamily)
    assert find_family("steady") is FAMILIES["steady"]
    with pytest.raises(BadInputError, match="several waiting rooms") as info:
        family("mixed-events")
    assert info.value.field == "--family"
    with pytest.raises(BadInputError, match=r"expected one of .*mixed-events"):
        find_family("mixed")


def test_a_mixed_scenario_refuses_a_fault_of_the_shared_backend() -> None:
    """A fault given to the backend would hit every event: bad input, naming the field."""
    s = MIXED.draw(1)
    fault = next(e for e in s.events if e.faults).faults
    with pytest.raises(BadInputError) as info:
        replace(s, backend=replace(s.backend, faults=fault))
    assert info.value.field == "backend.faults"


def _run(scenario: MixedScenario) -> MixedRun:
    controllers = [
        make_controller("ours", scenario.event_view(i)) for i in range(len(scenario.events))
    ]
    return simulate_mixed(scenario, controllers, name="ours", seed=SMALL_SEED)


@pytest.fixture(scope="module")
def fault_run() -> MixedRun:
    return _run(MIXED.draw(SMALL_SEED))


def test_one_events_fault_never_cuts_another_events_rate(fault_run: MixedRun) -> None:
    """While one event's checkouts fail, each innocent event's controller reads its own
    burn (clean), and none of its cuts is on errors. The failed checkouts' retries load the
    shared backend (as they do live): once the service's burn shows, its latency or
    utilisation breaking holds the innocent events, and only before it shows can they cut."""
    s = fault_run.scenario
    assert s.faulty is not None
    fault = s.events[s.faulty].faults[0]
    showing = fault.end + 90  # the short window, a scrape and an evaluation after the heal
    faulty_burns = [
        r.burn_short or 0.0
        for r in fault_run.readings[s.faulty]
        if fault.start + 60 <= r.time < fault.end
    ]
    assert min(faulty_burns) >= THRESHOLD  # the fault shows in its own event's burn
    innocent = [i for i in range(len(s.events)) if i != s.faulty]
    for i in innocent:
        burns = [
            r.burn_short or 0.0
            for r in fault_run.readings[i]
            if fault.start + 60 <= r.time < fault.end
        ]
        assert max(burns) < THRESHOLD  # its own requests, not the faulty event's
        shared = [
            r.shared_burn or 0.0
            for r in fault_run.readings[i]
            if fault.start + 60 <= r.time < fault.end
        ]
        assert min(shared) >= THRESHOLD  # the whole service's burn beside it, as serve reads it
        ticks = fault_run.events[i].ticks
        before = [t.rate for t in ticks if t.t <= fault.start][-1]
        during = [t for t in ticks if fault.start <= t.t < showing and t.queue > 0]
        assert during
        cuts = [t for t in during if t.action == "decrease"]
        assert not [t.reason for t in cuts if "burn" in t.reason]
        assert all(t.reason.startswith(("latency", "utilisation")) for t in cuts)
        assert not [t.reason for t in cuts if "capacity fell" in t.reason]
        assert max(t.rate for t in during) >= before  # it is not held down either
        # while the service burns and this event does not, the backend's latency and
        # utilisation are the other event's retries: this event holds through them
        others = {
            r.time
            for r in fault_run.readings[i]
            if (r.shared_burn or 0.0) >= THRESHOLD and (r.burn_short or 0.0) < THRESHOLD
        }
        held = [t for t in ticks if t.t in others and "its retries load" in t.reason]
        assert held, "the retries never broke latency or filled the backend here"
        assert not [t.reason for t in ticks if t.t in others and t.action == "decrease"]


def test_the_innocent_rate_is_measured_against_the_run_without_the_fault(
    fault_run: MixedRun,
) -> None:
    """Without the fault the same users are met (same demand, all admitted); the innocent
    measure compares the two runs over the fault window and finds no cut on errors."""
    clean = _run(fault_run.scenario.without_faults())
    assert clean.scenario.faulty is None
    assert [e.admitted for e in clean.events] == [e.admitted for e in fault_run.events]
    measured = innocent_rates(fault_run, clean)
    assert len(measured) == len(fault_run.scenario.events) - 1
    faulty = fault_run.scenario.faulty
    assert faulty is not None
    for m in measured:
        assert m.window[0] == fault_run.scenario.events[faulty].faults[0].start
        assert not [c for c in m.cuts if "burn" in c]
        assert m.kept > 0


def test_the_service_is_the_sum_of_its_events(fault_run: MixedRun) -> None:
    """Every request and error of an event is one of the service's (the split is exact), and
    every queued user is admitted."""
    whole = fault_run.whole.series
    events = [e.series for e in fault_run.events]
    assert whole.requests[-1] == pytest.approx(sum(e.requests[-1] for e in events))
    assert whole.errors[-1] == pytest.approx(sum(e.errors[-1] for e in events))
    assert fault_run.whole.admitted == sum(e.waiting_room.users for e in fault_run.scenario.events)
    faulty = fault_run.scenario.faulty
    assert faulty is not None
    shares = [e.errors[-1] / e.requests[-1] for e in events]
    assert shares[faulty] > 10 * max(s for i, s in enumerate(shares) if i != faulty)


def test_simulate_runs_the_mixed_family_with_one_line_per_innocent_event() -> None:
    """exit-rate simulate --family mixed-events: the whole service's table as JSON, with
    every event and the innocent events' measures."""
    result = CliRunner().invoke(
        app,
        [
            "exit-rate", "simulate", "--family", "mixed-events", "--seed", str(SMALL_SEED),
            "--controllers", "ours", "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    [scenario] = json.loads(result.output)["scenarios"]
    assert scenario["scenario"] == f"mixed-events-{SMALL_SEED}"
    assert scenario["users"] == sum(e["users"] for e in scenario["events"])
    assert [e["event"] for e in scenario["events"]] == ["event-1", "event-2", "event-3"]
    assert {i["event"] for i in scenario["innocent"]} == {"event-2", "event-3"}
    assert all(not any("burn" in c for c in i["cuts"]) for i in scenario["innocent"])


def test_run_mixed_reports_the_whole_and_every_event() -> None:
    """Each controller runs once per event; the report judges the whole service against T*
    of all the demand and keeps every event's own result."""
    s = MIXED.draw(SMALL_SEED)
    report = run_mixed(s, ["fixed-0.9x"])
    assert report.physical_limit == pytest.approx(physical_limit(s.whole()))
    assert [r.controller for r in report.results] == ["fixed-0.9x"]
    assert set(report.events) == {e.name for e in s.events}
    assert report.innocent == ()  # a fixed rate reads no signal: nothing to compare


@pytest.mark.parametrize(
    ("own_requests", "own_queue", "expected"),
    [
        (50.0, 500.0, 0.8),  # half the load, half the waiting: as read
        (75.0, 250.0, 0.8 * 0.75 / 0.25),  # more of the load than of the queue: busier
        (25.0, 750.0, 0.8 * 0.25 / 0.75),  # less: room
    ],
)
def test_each_event_reads_the_shared_utilisation_split_by_demand(
    own_requests: float, own_queue: float, expected: float
) -> None:
    """The shared backend's utilisation, scaled by this event's share of the requests over
    its share of the users waiting."""
    got = utilisation_by_demand(0.8, own_requests, 100.0, own_queue, 1_000.0)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "args",
    [
        (None, 50.0, 100.0, 500.0, 1_000.0),
        (0.8, None, 100.0, 500.0, 1_000.0),
        (0.8, 50.0, None, 500.0, 1_000.0),
        (0.8, 50.0, 100.0, None, 1_000.0),
        (0.8, 50.0, 100.0, 0.0, 1_000.0),  # no one waiting here: not demand-limited
        (0.8, 50.0, 0.0, 500.0, 1_000.0),
        (0.8, 50.0, 100.0, 500.0, 0.0),
    ],
)
def test_without_both_shares_the_utilisation_is_read_as_it_is(
    args: tuple[float | None, float | None, float | None, float | None, float],
) -> None:
    """A share not known (or no one waiting): the shared utilisation, unchanged."""
    assert utilisation_by_demand(*args) == args[0]


def _drain_spread(run: MixedRun) -> float:
    """Seconds between the first and the last event's room emptying."""
    times = [r.drain_time for r in run.events]
    assert all(t is not None for t in times)
    return max(t for t in times if t is not None) - min(t for t in times if t is not None)


def test_events_that_started_apart_drain_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each controller reads the capacity split by demand, so the events' rooms empty close
    together; read whole, each keeps the split of its start rate and the one that started
    lowest is left draining alone."""
    scenario = MIXED.draw(SMALL_SEED)
    split = _run(scenario)

    monkeypatch.setattr("onsale_obs.exitrate._mixed.utilisation_by_demand", lambda u, *_: u)
    whole = _run(scenario)
    assert whole.whole.drain_time is not None
    assert split.whole.drain_time is not None
    assert _drain_spread(split) < 0.5 * _drain_spread(whole)
    assert split.whole.drain_time < whole.whole.drain_time


def _guard_utilisations(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The utilisation each call of the shared-backend guard is shown, as it is made."""
    seen: list[float | None] = []

    def spy(rec: Recommendation, shared: float | None, **kw: object) -> Recommendation:
        seen.append(kw["utilisation"])  # type: ignore[arg-type]
        return shared_guard(rec, shared, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mixed, "shared_guard", spy)
    return seen


def test_the_guard_has_no_utilisation_where_the_deployment_exports_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``telemetry.utilisation: false``: the guard is shown no utilisation either (as
    ``serve`` without ``--utilisation-query``), so it never finds room on a reading the
    controllers could not see; with the signal it reads the shared workers' busy share."""
    seen = _guard_utilisations(monkeypatch)
    drawn = MIXED.draw(SMALL_SEED)
    for exported in (False, True):
        s = replace(drawn, telemetry=replace(drawn.telemetry, utilisation=exported))
        controllers = [make_controller("ours", s.event_view(i)) for i in range(len(s.events))]
        seen.clear()
        simulate_mixed(s, controllers, name="ours", seed=1, guard=True)
        assert seen
        if exported:
            assert any(u is not None for u in seen)
        else:
            assert all(u is None for u in seen)


def test_the_guard_reads_an_under_reading_utilisation_as_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``telemetry.utilisation_scale: 0.7``: the guard is shown what the deployment exports,
    0.7 of the shared workers' busy share, as ``serve`` reads it from Prometheus."""
    seen = _guard_utilisations(monkeypatch)
    drawn = MIXED.draw(SMALL_SEED)
    runs: dict[float, list[float | None]] = {}
    for scale in (1.0, 0.7):
        s = replace(drawn, telemetry=replace(drawn.telemetry, utilisation_scale=scale))
        # the same fixed rates both times, so the backend is as busy in both runs
        controllers = [FixedRate(1000.0) for _ in s.events]
        seen.clear()
        simulate_mixed(s, controllers, name="fixed", seed=1, guard=True)
        runs[scale] = list(seen)
    pairs = [(f, u) for f, u in zip(runs[1.0], runs[0.7], strict=True) if f and u]
    assert pairs
    assert all(u == pytest.approx(0.7 * f) for f, u in pairs)
