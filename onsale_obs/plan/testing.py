"""Planted on-sales with a known fan-out and capacity per service, to check what ``plan`` learns.

Each on-sale admits users at a rate that ramps linearly (users/min); every admitted user makes
a fixed number of requests per route (the fan-out) within the minute; a service with ``n``
replicas serves ``n x capacity`` requests per second and fails the rest of a minute's requests
with 503 (so its SLO breaks in the first minute the ramp crosses its capacity). Counts per
minute are rounded, not drawn, so the truth is exact; timestamps are spread with a seeded jitter.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from onsale_obs.modes import OnSaleWindow

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class PlantedRoute:
    """One route and how many requests each admitted user makes to it."""

    method: str
    route: str
    per_user: float


@dataclass(frozen=True, slots=True)
class PlantedService:
    """A service of the vertical: its routes and what one replica serves (requests/s)."""

    name: str
    routes: tuple[PlantedRoute, ...]
    capacity_per_replica: float

    @property
    def per_user(self) -> float:
        """Requests per admitted user over every route (the service's fan-out)."""
        return sum(r.per_user for r in self.routes)


@dataclass(frozen=True, slots=True)
class PlantedOnSale:
    """One on-sale: the event, its start, length, ramp (users/min) and replicas per service."""

    event: str
    start: float
    minutes: int
    rate_from: float
    rate_to: float
    replicas: dict[str, int]
    #: every route's requests per user times this (a release that changed the pages)
    fanout_scale: float = 1.0

    def rate(self, i: int) -> float:
        """Admitted users/min in minute ``i``."""
        if self.minutes <= 1:
            return self.rate_to
        return self.rate_from + (self.rate_to - self.rate_from) * i / (self.minutes - 1)

    @property
    def end(self) -> float:
        """When the on-sale's window ends."""
        return self.start + self.minutes * MINUTE

    @property
    def admitted(self) -> float:
        """Every user admitted."""
        return sum(self.rate(i) for i in range(self.minutes))

    def window(self) -> OnSaleWindow:
        """The on-sale window as the mode history would record it."""
        return OnSaleWindow(f"event:{self.event}", self.start, self.end, "manual", "planted")

    def break_rate(self, service: PlantedService) -> float | None:
        """The first admitted rate (users/min) at which ``service`` is over capacity."""
        cap = self.replicas[service.name] * service.capacity_per_replica * MINUTE
        for i in range(self.minutes):
            if round(self.rate(i) * service.per_user * self.fanout_scale) > cap:
                return self.rate(i)
        return None


@dataclass(slots=True)
class PlantedRecord:
    """One finished request, as the access log writes it."""

    ts: float
    service: str
    route: str
    method: str
    status: int
    duration_s: float
    mode: str = "onsale"
    event: str | None = None
    event_onsale: bool = True

    def line(self) -> dict[str, object]:
        """The access-log JSON object."""
        return {
            "ts": self.ts,
            "service": self.service,
            "route": self.route,
            "method": self.method,
            "status": self.status,
            "duration_s": self.duration_s,
            "mode": self.mode,
            "event": self.event,
            "event_onsale": self.event_onsale,
            "trace_id": None,
        }


@dataclass(slots=True)
class Planted:
    """The planted records and the truth behind them."""

    services: tuple[PlantedService, ...]
    onsales: tuple[PlantedOnSale, ...]
    records: list[PlantedRecord] = field(default_factory=list)

    def admissions(self, event: str) -> dict[int, float]:
        """Admitted users/min per minute (epoch second it starts) of ``event``'s on-sale."""
        return self.admissions_of(next(o for o in self.onsales if o.event == event))

    @staticmethod
    def admissions_of(o: PlantedOnSale) -> dict[int, float]:
        """Admitted users/min per minute of one on-sale."""
        return {int(o.start + i * MINUTE): o.rate(i) for i in range(o.minutes)}


#: a front end, checkout and payments; capacities in requests/s per replica
DEFAULT_SERVICES: tuple[PlantedService, ...] = (
    PlantedService(
        "frontend",
        (
            PlantedRoute("GET", "/events/{event_id}", 2.0),
            PlantedRoute("GET", "/events/{event_id}/seats", 1.0),
        ),
        capacity_per_replica=8.0,
    ),
    PlantedService(
        "checkout",
        (
            PlantedRoute("POST", "/events/{event_id}/checkout", 1.0),
            PlantedRoute("GET", "/orders/{order_id}", 0.5),
        ),
        capacity_per_replica=2.0,
    ),
    PlantedService("payments", (PlantedRoute("POST", "/payments", 1.0),), 3.0),
)


def plant(
    onsales: Sequence[PlantedOnSale],
    services: Sequence[PlantedService] = DEFAULT_SERVICES,
    *,
    seed: int = 20,
    noise: bool = False,
) -> Planted:
    """Generate every request of ``onsales`` (sorted by time); ``noise`` draws each minute's
    count around its mean (normal approximation of Poisson) instead of rounding it."""
    rng = random.Random(seed)
    records: list[PlantedRecord] = []
    for o in onsales:
        records.extend(_onsale(o, services, rng, noise))
    records.sort(key=lambda r: r.ts)
    return Planted(tuple(services), tuple(onsales), records)


def _onsale(
    o: PlantedOnSale, services: Sequence[PlantedService], rng: random.Random, noise: bool
) -> Iterator[PlantedRecord]:
    for i in range(o.minutes):
        m = o.start + i * MINUTE
        rate = o.rate(i)
        for s in services:
            cap = o.replicas[s.name] * s.capacity_per_replica * MINUTE
            means = [(r, rate * r.per_user * o.fanout_scale) for r in s.routes]
            counts = [
                (r, max(0, round(rng.gauss(mu, math.sqrt(mu)) if noise else mu))) for r, mu in means
            ]
            total = sum(n for _, n in counts)
            failing = max(0, total - math.floor(cap))
            # the requests over capacity fail, spread evenly over the routes and the minute
            fail_every = total / failing if failing else math.inf
            k = 0
            for r, n in counts:
                for j in range(n):
                    ts = m + (j + rng.uniform(0.05, 0.95)) * MINUTE / n
                    failed = failing > 0 and math.floor((k + 1) / fail_every) > math.floor(
                        k / fail_every
                    )
                    k += 1
                    yield PlantedRecord(
                        ts=round(ts, 3),
                        service=s.name,
                        route=r.route,
                        method=r.method,
                        status=503 if failed else 200,
                        duration_s=round(rng.uniform(0.02, 0.2), 4),
                        event=o.event,
                    )
