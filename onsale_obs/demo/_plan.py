"""The demo's story, in simulated time: an hour of normal traffic, then an on-sale."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """Times are offsets in seconds from the start of the simulation."""

    event: str = "final-2026"
    other_events: tuple[str, ...] = ("jazz-night", "derby")
    normal_minutes: int = 60
    #: an earlier on-sale in the same hour (cold start at ``initial_rate``, no failure): the
    #: past on-sale ``plan learn`` learns from; the main on-sale starts from ``plan next``
    past_event: str = "semi-final-2026"
    past_from: int = 15
    past_minutes: int = 10
    past_queued: int = 1_500
    past_arrivals_per_minute: int = 20
    onsale_minutes: int = 25
    quiet_minutes: int = 5
    normal_per_minute: int = 12
    #: users waiting when the on-sale opens, and joining per minute after
    queued: int = 3_000
    arrivals_per_minute: int = 40
    #: the waiting room's exit rate when the on-sale opens (users per minute)
    initial_rate: float = 120.0
    #: the checkout failure: from/to minutes into the on-sale, share of checkouts failing
    failure_from: int = 8
    failure_to: int = 13
    failure_rate: float = 0.5
    #: simulated seconds per step: coarse in normal time, fine during the on-sale
    normal_step: float = 60.0
    step: float = 10.0
    seats: int = 100_000
    #: the vertical (onsale_vertical_desired_replicas): sized to drain the queue within
    #: this many seconds, held this long after the on-sale ends and its queue empties
    vertical_drain: float = 300.0
    vertical_cooldown: float = 120.0

    @property
    def past_start(self) -> float:
        return self.past_from * MINUTE

    @property
    def past_end(self) -> float:
        return self.past_start + self.past_minutes * MINUTE

    @property
    def onsale_start(self) -> float:
        return self.normal_minutes * MINUTE

    @property
    def onsale_end(self) -> float:
        return self.onsale_start + self.onsale_minutes * MINUTE

    @property
    def end(self) -> float:
        return self.onsale_end + self.quiet_minutes * MINUTE

    def step_at(self, offset: float) -> float:
        """Simulated seconds of the step starting at ``offset``: fine during the on-sales."""
        for start, end in ((self.past_start, self.past_end), (self.onsale_start, self.end)):
            if start - self.normal_step <= offset < end:
                return self.step
        return self.normal_step

    def failing(self, offset: float) -> bool:
        """True while checkout fails on purpose."""
        return (
            self.onsale_start + self.failure_from * MINUTE
            <= offset
            < self.onsale_start + self.failure_to * MINUTE
        )

    @classmethod
    def quick(cls) -> DemoPlan:
        """A smaller run for tests: the same story with a tenth of the users."""
        return cls(
            normal_minutes=20,
            past_from=4,
            past_minutes=6,
            past_queued=500,
            past_arrivals_per_minute=5,
            onsale_minutes=15,
            quiet_minutes=3,
            normal_per_minute=6,
            queued=600,
            arrivals_per_minute=10,
            initial_rate=60.0,
            failure_from=4,
            failure_to=7,
            vertical_drain=180.0,
            vertical_cooldown=60.0,
        )
