"""A bounded summary of which events a service is busy with, normal time included.

The ``event`` label of the request metrics is empty in normal time (cardinality), so a surge on
an event that is not on sale yet would be invisible. ``EventHeavyHitters`` keeps a fixed number
of slots (the space-saving algorithm, Metwally, Agrawal and El Abbadi 2005) over a *recent*
view of the stream: each request weighs ``2 ** ((t - t0) / half_life)`` (forward decay, Cormode
et al. 2009), so ranking follows the last minutes, not the process's lifetime, without touching
every slot as time passes.

Guarantee (space-saving's error bound, on the decayed weights): with ``slots`` slots and a
total decayed weight ``W``, every event whose decayed weight exceeds ``W / slots`` is tracked,
and a tracked event's ``weight - error`` never exceeds its true weight.

What is exported, ``onsale_event_requests_top{service,event}``, is the exact number of
requests an event has had since it last entered the summary (a counter: it only grows while
the event is tracked, and starts again from 0 when it re-enters, which Prometheus reads as a
counter reset), for the ``top`` heaviest events only.

Cost: the middleware hands each request's event id to the request-metrics queue (one more
tuple item); the ids are counted once per batch of requests (``RequestMetrics.BATCH``), with a
C-level ``Counter`` over the batch and one weighted update per distinct event in it. A new
event that finds every slot taken scans the slots for the lightest (``slots`` comparisons, in
C). Memory: ``slots`` entries of (id, weight, error, count, entered), about 250 bytes each plus
the id: 64 slots take about 25 KB with 128-character ids.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

#: Default slots: an event with more than 1/64 of the service's recent requests is always kept.
DEFAULT_SLOTS: Final = 64
#: Default number of events exported (the heaviest ones).
DEFAULT_TOP: Final = 10
#: Half-life of a request's weight in the ranking (seconds).
DEFAULT_HALF_LIFE: Final = 60.0
#: Rescale every weight once the newest request weighs 2 ** this (well inside float range).
_RESCALE_AT: Final = 64.0


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """One slot of the summary, as read.

    ``requests`` is exact: the requests counted since ``entered`` (monotonic seconds), when the
    event last took a slot. ``weight`` is the decayed weight the ranking uses (in units of
    requests at the time it was read), ``error`` how much of it may belong to events it evicted.
    """

    event: str
    requests: int
    weight: float
    error: float
    entered: float


class _Slot:
    __slots__ = ("entered", "error", "requests", "weight")

    def __init__(self, weight: float, error: float, requests: int, entered: float) -> None:
        self.weight = weight
        self.error = error
        self.requests = requests
        self.entered = entered


class EventHeavyHitters:
    """Space-saving over decayed request counts of event ids, with a fixed number of slots.

    Thread-safe. ``add_batch`` is what the request metrics call once per batch of requests.
    """

    def __init__(
        self,
        *,
        slots: int = DEFAULT_SLOTS,
        top: int = DEFAULT_TOP,
        half_life: float = DEFAULT_HALF_LIFE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}.")
        if not 1 <= top <= slots:
            raise ValueError(f"top must be between 1 and slots ({slots}), got {top}.")
        if not (half_life > 0 and math.isfinite(half_life)):
            raise ValueError(f"half_life must be a positive number of seconds, got {half_life}.")
        self.slots = slots
        self.top = top
        self.half_life = half_life
        self.clock = clock
        self._slots: dict[str, _Slot] = {}
        self._t0 = clock()
        #: the decayed weight of everything counted, in the current scale
        self._total = 0.0
        self._lock = threading.Lock()

    def _scale(self, now: float) -> float:
        """What one request counted at ``now`` weighs (rescaling every slot when it grows big)."""
        exponent = (now - self._t0) / self.half_life
        if 0 <= exponent < _RESCALE_AT:
            scale: float = 2.0**exponent
            return scale
        # Time to rescale, or a jump of the clock (a suspended process, a clock set back): the
        # weights are moved to a scale where a request now weighs 1. After a long gap that
        # underflows to 0 (old traffic forgotten), never to an overflow in the request path.
        factor = 2.0**-exponent if exponent > 0 else 1.0
        for slot in self._slots.values():
            slot.weight *= factor
            slot.error *= factor
        self._total *= factor
        self._t0 = now
        return 1.0

    def add(self, event: str, count: int = 1) -> None:
        """Count ``count`` requests of ``event`` now."""
        self.add_batch({event: count})

    def add_events(self, events: Iterable[str | None]) -> None:
        """Count one request per item (None items, requests without an event, are skipped)."""
        batch = Counter(events)
        batch.pop(None, None)
        if batch:
            self.add_batch(batch)  # type: ignore[arg-type]

    def add_batch(self, counts: Mapping[str, int]) -> None:
        """Count ``counts[event]`` requests of each event, all now (one weighted update each)."""
        with self._lock:
            now = self.clock()
            scale = self._scale(now)
            slots = self._slots
            for event, count in counts.items():
                weight = count * scale
                self._total += weight
                slot = slots.get(event)
                if slot is not None:
                    slot.weight += weight
                    slot.requests += count
                elif len(slots) < self.slots:
                    slots[event] = _Slot(weight, 0.0, count, now)
                else:
                    # space-saving: the newcomer takes the lightest slot and inherits its weight
                    # as its possible error, so no weight is ever lost
                    lightest = min(slots, key=lambda e: slots[e].weight)
                    floor = slots.pop(lightest).weight
                    slots[event] = _Slot(floor + weight, floor, count, now)

    def tracked(self) -> list[TrackedEvent]:
        """Every slot, heaviest first, weights in requests as of now."""
        with self._lock:
            now = self.clock()
            # one request now weighs _scale(now): divide to express weights in requests
            scale = self._scale(now)
            found = [
                TrackedEvent(e, s.requests, s.weight / scale, s.error / scale, s.entered)
                for e, s in self._slots.items()
            ]
        found.sort(key=lambda t: (-t.weight, t.event))
        return found

    def heaviest(self) -> list[TrackedEvent]:
        """The ``top`` heaviest slots (what is exported)."""
        return self.tracked()[: self.top]

    def guarantee(self) -> float:
        """Every event whose decayed weight is above this is tracked (total weight / slots)."""
        with self._lock:
            return self._total / self._scale(self.clock()) / self.slots
