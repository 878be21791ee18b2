"""One JSON line per request: the SLO engine's embedded data source.

Schema (version 1), one object per line::

    {"ts": 1800000000.123, "service": "checkout", "route": "/events/{event_id}/checkout",
     "method": "POST", "status": 503, "duration_s": 0.0123, "mode": "onsale",
     "event": "final-2026", "event_onsale": true, "trace_id": "4bf9..."}

``ts`` is when the request finished (epoch seconds); ``event`` is the request's event id (null
if none); ``event_onsale`` is true when that event itself was on sale (``mode`` can also be
``onsale`` through a global on-sale); ``trace_id`` is null without tracing. Lines are buffered and flushed every ``flush_interval`` seconds and on close.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO

import orjson

from onsale_obs.instrument._context import RequestMode
from onsale_obs.types import Clock


class AccessLog:
    """Appends access-log lines to a file (or a binary stream), thread-safe and buffered."""

    def __init__(
        self,
        target: str | Path | IO[bytes],
        *,
        service: str,
        flush_interval: float = 1.0,
        clock: Clock = time.time,
    ) -> None:
        if isinstance(target, str | Path):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream: IO[bytes] = path.open("ab")
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.service = service
        self.flush_interval = flush_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._last_flush = clock()

    def write(
        self, rm: RequestMode, status: int, seconds: float, trace_id: int | None = None
    ) -> None:
        """Append one request (``trace_id``: the integer id of its trace, if traced)."""
        ts = self._clock()
        line = orjson.dumps(
            {
                "ts": ts,
                "service": self.service,
                "route": rm.route,
                "method": rm.method,
                "status": status,
                "duration_s": seconds,
                "mode": rm.mode,
                "event": rm.event,
                "event_onsale": rm.onsale_event is not None,
                "trace_id": None if not trace_id else format(trace_id, "032x"),
            }
        )
        with self._lock:
            self._buffer.append(line)
            if ts - self._last_flush >= self.flush_interval or len(self._buffer) >= 512:
                self._flush_locked(ts)

    def _flush_locked(self, ts: float) -> None:
        if self._buffer:
            self._stream.write(b"\n".join(self._buffer) + b"\n")
            self._buffer.clear()
            self._stream.flush()
        self._last_flush = ts

    def flush(self) -> None:
        """Write out buffered lines."""
        with self._lock:
            self._flush_locked(self._clock())

    def close(self) -> None:
        """Flush, and close the file if this object opened it."""
        self.flush()
        if self._owned:
            self._stream.close()
