"""``AccessLog``: the JSON-lines file the SLO engine reads, buffered but never lost."""

from __future__ import annotations

from pathlib import Path

import orjson

from onsale_obs.instrument import AccessLog
from onsale_obs.instrument._context import RequestMode
from onsale_obs.testing import FakeClock

RM = RequestMode("onsale", "final", "final", None, "/events/{event_id}/checkout", "POST")


def lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_lines_wait_for_the_interval_then_go_out_together(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "logs" / "access.log"
    log = AccessLog(path, service="checkout", flush_interval=1.0, clock=clock)
    log.write(RM, 200, 0.01)
    clock.advance(0.5)
    log.write(RM, 503, 0.02)
    assert path.read_bytes() == b""  # buffered: no write per request
    clock.advance(0.5)
    log.write(RM, 200, 0.03)
    assert [x["status"] for x in lines(path)] == [200, 503, 200]
    log.close()


def test_a_full_buffer_is_written_before_the_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "access.log"
    log = AccessLog(path, service="checkout", flush_interval=3600.0, clock=clock)
    for _ in range(511):
        log.write(RM, 200, 0.01)
    assert path.read_bytes() == b""
    log.write(RM, 200, 0.01)
    assert len(lines(path)) == 512
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
