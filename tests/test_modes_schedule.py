"""The on-sale schedule: YAML validation, automatic flips and manual overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from onsale_obs.exceptions import BadInputError, ScheduleError
from onsale_obs.modes import Broadcaster, Schedule, ScheduledWindow
from onsale_obs.testing import FakeClock

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def window(
    scope: str = "event:final", start: float = T0 + 60, end: float = T0 + 3600
) -> ScheduledWindow:
    return ScheduledWindow(scope, start, end, "general sale")


def test_yaml_round_trip(tmp_path: Path) -> None:
    """A schedule saved to YAML loads back identical."""
    schedule = Schedule([window(), window("global", T0 + 7200, T0 + 9000)])
    path = tmp_path / "schedule.yaml"
    schedule.save(path)
    assert Schedule.load(path).windows == schedule.windows


def test_yaml_file_format(tmp_path: Path) -> None:
    """The documented file format loads, with zone-aware times."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "onsales:\n"
        "  - event: final-2026\n"
        "    start: 2026-12-01T10:00:00Z\n"
        "    end: 2026-12-01T12:00:00+01:00\n"
        "    reason: Cup final\n"
    )
    (w,) = Schedule.load(path).windows
    assert w.scope == "event:final-2026"
    assert w.end - w.start == 3600
    assert w.reason == "Cup final"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("onsales:\n  - event: x\n    start: 2026-12-01T10:00:00Z\n", r"field 'onsales\.0\.end'"),
        (
            "onsales:\n  - event: x\n    start: 2026-12-01T10:00:00Z\n    end: 2026-12-01T09:00:00Z\n",
            "'end' must be later than 'start'",
        ),
        (
            "onsales:\n  - event: x\n    start: 2026-12-01T10:00:00\n    end: 2026-12-01T11:00:00Z\n",
            "time zone",
        ),
        (
            "onsales:\n  - event: 'bad id!'\n    start: 2026-12-01T10:00:00Z\n    end: 2026-12-01T11:00:00Z\n",
            "event id 'bad id!' is invalid",
        ),
        ("onsales:\n  - event: x\n    start: [\n", "is not valid YAML at line"),
        ("onsale:\n  - event: x\n", "field 'onsale'"),
    ],
)
def test_bad_yaml_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake in a schedule file is a ScheduleError naming the file and what was expected."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=expected) as info:
        Schedule.load(path)
    assert str(path) in str(info.value)


def test_schedule_flips_mode_at_start_and_expires_at_end(
    broadcaster: Broadcaster, clock: FakeClock
) -> None:
    """At the window's start the scope goes on sale until the expected end; nothing before."""
    clock.now = T0
    schedule = Schedule([window()])
    assert broadcaster.apply_schedule(schedule) == []
    clock.now = T0 + 60
    (change,) = broadcaster.apply_schedule(schedule)
    assert (change.mode, change.source, change.until) == ("onsale", "schedule", T0 + 3600)
    assert broadcaster.apply_schedule(schedule) == []  # idempotent
    clock.now = T0 + 3600
    assert not broadcaster.current()["event:final"].is_onsale_at(clock())
    assert broadcaster.apply_schedule(schedule) == []


def test_manual_override_wins_over_schedule(broadcaster: Broadcaster, clock: FakeClock) -> None:
    """A manual normal during a scheduled window stays until cleared; clear hands back to the schedule."""
    schedule = Schedule([window()])
    clock.now = T0 + 60
    broadcaster.apply_schedule(schedule)
    clock.now = T0 + 120
    broadcaster.set("event:final", "normal", reason="payment provider down")
    clock.now = T0 + 180
    assert broadcaster.apply_schedule(schedule) == []
    assert broadcaster.current()["event:final"].mode == "normal"
    cleared = broadcaster.clear("event:final", schedule=schedule)
    assert (cleared.mode, cleared.source, cleared.until) == ("onsale", "schedule", T0 + 3600)


def test_manual_override_with_until_returns_to_schedule(
    broadcaster: Broadcaster, clock: FakeClock
) -> None:
    """A manual override with an end lets the schedule take over again afterwards."""
    schedule = Schedule([window()])
    clock.now = T0
    broadcaster.set("event:final", "normal", until=T0 + 300, reason="hold")
    clock.now = T0 + 100
    assert broadcaster.apply_schedule(schedule) == []
    clock.now = T0 + 300
    (change,) = broadcaster.apply_schedule(schedule)
    assert change.mode == "onsale"


def test_removed_window_ends_the_onsale(broadcaster: Broadcaster, clock: FakeClock) -> None:
    """Removing a running window from the schedule ends its on-sale at the next pass."""
    schedule = Schedule([window()])
    clock.now = T0 + 60
    broadcaster.apply_schedule(schedule)
    (change,) = broadcaster.apply_schedule(schedule.without("event:final"))
    assert change.mode == "normal"


def test_clear_without_schedule_is_normal(broadcaster: Broadcaster) -> None:
    """Clearing a scope with no scheduled window sets it normal."""
    broadcaster.set("global", "onsale")
    assert broadcaster.clear("global").mode == "normal"


def test_publisher_rejects_bad_input(broadcaster: Broadcaster, clock: FakeClock) -> None:
    """Unknown modes, bad scopes, oversized reasons and past ``until`` are refused before publishing."""
    with pytest.raises(BadInputError, match="mode 'panic' is unknown"):
        broadcaster.set("global", "panic")
    with pytest.raises(BadInputError, match="scope 'events:x' is invalid"):
        broadcaster.set("events:x", "onsale")
    with pytest.raises(BadInputError, match="at most 500"):
        broadcaster.set("global", "onsale", reason="x" * 501)
    with pytest.raises(BadInputError, match="until must be in the future"):
        broadcaster.set("global", "onsale", until=clock() - 1)
    assert broadcaster.current() == {}


def test_scheduled_is_onsale_per_event() -> None:
    """A global window puts every request on sale; an event window only its own event."""
    schedule = Schedule([window(), window("global", T0 + 5000, T0 + 6000)])
    assert schedule.is_onsale("final", T0 + 100)
    assert not schedule.is_onsale("other", T0 + 100)
    assert not schedule.is_onsale(None, T0 + 100)
    assert schedule.is_onsale(None, T0 + 5500)
