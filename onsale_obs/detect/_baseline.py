"""What normal looks like for each event and for the whole service, per hour of the day."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

#: The key under which the service's total (every event together) is learnt.
SERVICE: Final = "*"
#: Readings an hour needs before its average is trusted over the event's all-day average.
MIN_READINGS: Final = 30


@dataclass(slots=True)
class _Average:
    """An exponentially weighted moving average in time (time constant ``tau`` seconds)."""

    value: float = 0.0
    readings: int = 0

    def update(self, rate: float, dt: float, tau: float) -> None:
        if self.readings == 0:
            self.value = rate
        else:
            alpha = 1.0 - math.exp(-dt / tau)
            self.value += alpha * (rate - self.value)
        self.readings += 1


@dataclass
class DiurnalBaseline:
    """Per event (and for the service, key ``SERVICE``): an EWMA of its rate per UTC hour of day.

    Each hour's average moves with a time constant of ``tau`` seconds *of that hour*, so with
    the default (30 min) it mostly reflects the last two or three days' same hour: a diurnal
    shape is followed, and so is slow organic growth. Readings far above the current average
    are clipped to ``clip`` times it, so a bot burst moves a baseline little. Memory: 24 floats
    per event seen (``max_events`` of them; the least recently seen are forgotten beyond).
    """

    tau: float = 1800.0
    clip: float = 3.0
    max_events: int = 10_000
    _hours: dict[str, list[_Average]] = field(default_factory=dict)
    _day: dict[str, _Average] = field(default_factory=dict)

    def learn(self, key: str, rate: float, now: float, dt: float) -> None:
        """Fold one reading (requests per second over the last ``dt`` seconds) into ``key``."""
        if not (math.isfinite(rate) and rate >= 0 and dt > 0):
            return
        hours = self._hours.get(key)
        if hours is None:
            if len(self._hours) >= self.max_events:
                forgotten = next(iter(self._hours))
                del self._hours[forgotten]
                self._day.pop(forgotten, None)
            hours = self._hours[key] = [_Average() for _ in range(24)]
            self._day[key] = _Average()
        else:  # most recently seen last: the oldest is forgotten first
            self._hours[key] = self._hours.pop(key)
            self._day[key] = self._day.pop(key)
        hour = hours[_hour(now)]
        day = self._day[key]
        if day.readings:
            rate = min(rate, self.clip * max(day.value, hour.value if hour.readings else 0.0))
        hour.update(rate, dt, self.tau)
        day.update(rate, dt, self.tau * 24)

    def expected(self, key: str, now: float) -> float | None:
        """The rate ``key`` usually has at this hour (None: nothing learnt yet)."""
        hours = self._hours.get(key)
        if hours is None:
            return None
        hour = hours[_hour(now)]
        day = self._day[key]
        if hour.readings >= MIN_READINGS:
            return hour.value
        if day.readings >= MIN_READINGS:
            return day.value
        return None


def _hour(now: float) -> int:
    return int(now // 3600) % 24
