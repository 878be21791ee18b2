"""``AccessLog``: the JSON-lines file the SLO engine reads, buffered but never lost."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from onsale_obs.instrument import AccessLog
from onsale_obs.instrument._context import RequestMode
from onsale_obs.testing import FakeClock

RM = RequestMode("onsale", "final", "final", None, "/events/{event_id}/checkout", "POST")


def lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def wait_for_lines(path: Path, count: int, deadline_s: float = 30.0) -> list[dict[str, object]]:
    """Poll until ``count`` lines are on disk (the background writer runs on real time)."""
    deadline = time.monotonic() + deadline_s
    while len(path.read_bytes().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return lines(path)


def test_requests_only_buffer_and_the_background_writer_writes_them(tmp_path: Path) -> None:
    """No write per request: lines go out together, without waiting for another request."""
    path = tmp_path / "logs" / "access.log"
    log = AccessLog(path, service="checkout", flush_interval=3600.0, clock=FakeClock())
    log.write(RM, 200, 0.01)
    log.write(RM, 503, 0.02)
    assert path.read_bytes() == b""  # buffered: the hour-long interval has not passed
    log.close()
    assert [x["status"] for x in lines(path)] == [200, 503]


def test_a_full_batch_is_written_before_the_interval(tmp_path: Path) -> None:
    """512 waiting lines wake the writer early, hours before its interval is up."""
    path = tmp_path / "access.log"
    log = AccessLog(path, service="checkout", flush_interval=3600.0, clock=FakeClock())
    for _ in range(512):
        log.write(RM, 200, 0.01)
    assert len(wait_for_lines(path, 512)) == 512
    log.close()


def test_close_writes_what_is_left_and_a_restart_appends(tmp_path: Path) -> None:
    """A service that stops loses no line; the next process adds to the same file."""
    clock = FakeClock()
    path = tmp_path / "access.log"
    first = AccessLog(path, service="checkout", flush_interval=3600.0, clock=clock)
    first.write(RM, 200, 0.01)
    first.close()
    second = AccessLog(path, service="checkout", flush_interval=3600.0, clock=clock)
    second.write(RM, 500, 0.5)
    second.close()
    written = lines(path)
    assert [x["status"] for x in written] == [200, 500]
    assert written[0] == {
        "ts": clock(),
        "service": "checkout",
        "route": "/events/{event_id}/checkout",
        "method": "POST",
        "status": 200,
        "duration_s": 0.01,
        "mode": "onsale",
        "event": "final",
        "event_onsale": True,
        "trace_id": None,
    }
