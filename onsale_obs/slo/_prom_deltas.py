"""Raw on-sale samples as resets-aware increments, summed for any range (the exact counts).

- a series' increase between two consecutive samples is ``v1 - v0``, or ``v1`` when the value
  dropped (the process restarted and counted from 0);
- the baseline of ``(a, b]`` is the last sample at or before ``a``; a series without one was
  created inside, so its first value counts in full;
- an increment belongs to the time of its later sample, like the scrape that saw it.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress
from operator import sub


@dataclass(slots=True)
class Deltas:
    """One raw series: its increments by time, summed for any ``(c, d]``."""

    labels: Mapping[str, str]
    times: Sequence[float]
    increments: Sequence[float]
    cumulative: Sequence[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cumulative = array("d", accumulate(self.increments))

    def between(self, start: float, end: float) -> float:
        """The increase over ``(start, end]``."""
        lo, hi = bisect_right(self.times, start), bisect_right(self.times, end)
        if hi <= lo:
            return 0.0
        return self.cumulative[hi - 1] - (self.cumulative[lo - 1] if lo else 0.0)

    def in_range(self, start: float, end: float) -> Iterable[tuple[float, float]]:
        """``(time, increment)`` of every increment in ``(start, end]``."""
        lo, hi = bisect_right(self.times, start), bisect_right(self.times, end)
        return zip(self.times[lo:hi], self.increments[lo:hi], strict=True)


@dataclass(slots=True)
class Growing:
    """One counter's resets-aware increments after ``start``, fed its samples in time order.

    Samples at or before the last one seen are skipped (consecutive fetches overlap at their
    edges), and so are NaN samples (never written by a counter). Increments are kept in
    arrays of doubles: millions of them fit in tens of MB.
    """

    labels: Mapping[str, str]
    start: float
    previous: float | None = None
    last: float = -math.inf
    times: array[float] = field(default_factory=lambda: array("d"))
    increments: array[float] = field(default_factory=lambda: array("d"))

    def extend(self, points: Sequence[tuple[float, float]]) -> None:
        """Feed samples in time order."""
        flat = array("d", chain.from_iterable(points))
        self.extend_arrays(flat[0::2], flat[1::2])

    def extend_arrays(self, times: array[float], values: array[float]) -> None:
        """Feed samples in time order, as parallel arrays: millions go by in a report, so the
        work is done by ``map``, ``compress`` and ``filter`` (in C), not sample by sample."""
        lo = bisect_right(times, self.last)
        if lo:
            times, values = times[lo:], values[lo:]
        if not values:
            return
        total = sum(values)
        if total != total:  # a NaN (or inf - inf): sample by sample, skipping NaNs
            self._extend_one_by_one(zip(times, values, strict=True))
            return
        start, previous = self.start, self.previous
        if previous is None:
            first = values[0] if times[0] > start else 0.0  # no baseline: created inside, from 0
        else:
            first = values[0] - previous if values[0] >= previous else values[0]
        increments = array("d", [first])
        increments.extend(map(sub, values[1:], values[:-1]))
        if len(increments) > 1 and min(increments[1:]) < 0:  # a reset: a drop counts the new value
            increments[1:] = array(
                "d", [d if d >= 0 else v for d, v in zip(increments[1:], values[1:], strict=True)]
            )
        after = bisect_right(times, start)
        self.times.extend(compress(times[after:], increments[after:]))
        self.increments.extend(filter(None, increments[after:]))
        self.previous, self.last = values[-1], times[-1]

    def _extend_one_by_one(self, points: Iterable[tuple[float, float]]) -> None:
        start, previous, last = self.start, self.previous, self.last
        times, increments = self.times, self.increments
        for t, v in points:
            if t <= last or math.isnan(v):
                continue
            last = t
            if previous is None:
                increment = v if t > start else 0.0
            else:
                increment = v - previous if v >= previous else v
            previous = v
            if t > start and increment:
                times.append(t)
                increments.append(increment)
        self.previous, self.last = previous, last

    def deltas(self) -> Deltas:
        return Deltas(self.labels, self.times, self.increments)


@dataclass(slots=True)
class SeriesSet:
    """The raw series of one query, and those of each event (a window reads its own only)."""

    series: list[Deltas] = field(default_factory=list)
    by_event: dict[str, list[Deltas]] = field(default_factory=dict)

    def add(self, deltas: Deltas) -> None:
        self.series.append(deltas)
        event = deltas.labels.get("event")
        if event is not None:
            self.by_event.setdefault(event, []).append(deltas)

    def of(self, event: str | None) -> list[Deltas]:
        """Every series, or (``event`` given) those labelled with that event."""
        return self.series if event is None else self.by_event.get(event, [])


@dataclass(slots=True)
class Raw:
    """The on-sale series of one merged on-sale range ``(start, end]``, as deltas."""

    start: float
    end: float
    requests: SeriesSet = field(default_factory=SeriesSet)
    buckets: SeriesSet = field(default_factory=SeriesSet)
    #: by (SLO name, "good" | "total")
    custom: dict[tuple[str, str], SeriesSet] = field(default_factory=dict)


#: one query's series being fed, by their sorted labels
Growth = dict[tuple[tuple[str, str], ...], Growing]


def counted(deltas: Iterable[Deltas], start: float, end: float) -> Iterator[tuple[Deltas, float]]:
    """The series that grew in ``(start, end]``, with how much."""
    for d in deltas:
        n = d.between(start, end)
        if n:
            yield d, n


def raw_deltas(
    points: Iterable[tuple[float, float]], start: float
) -> tuple[list[float], list[float]]:
    """Resets-aware increments of one counter's samples (in time order) for ``(start, ...]``.

    Returns parallel lists ``(times, increments)``; increments at or before ``start`` only
    serve as the baseline and are left out. NaN samples (never written by a counter) are
    skipped.
    """
    growing = Growing({}, start)
    growing.extend(sorted(points))
    return list(growing.times), list(growing.increments)


def add_minutes(minutes: dict[int, float], d: Deltas, start: float, end: float) -> None:
    """Add ``d``'s increments in ``(start, end]`` to ``minutes`` (by the minute they fell in)."""
    for t, increment in d.in_range(start, end):
        minute = int(t // 60) * 60
        minutes[minute] = minutes.get(minute, 0.0) + increment
