"""A settable clock shared by the services, the mode store and the traffic driver."""

from __future__ import annotations

import threading


class SimClock:
    """Simulated epoch seconds: moves only when the driver says so."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` (never backwards)."""
        with self._lock:
            self._now = max(self._now, now)
