"""One queue signal for the whole vertical: desired replicas per service, exported by ``serve``.

Every tick of the exit-rate loop, for each event on sale: the rate to be ready for is the
current exit rate or, while users wait, the rate that would drain the queue within
``drain_target`` seconds (whichever is higher, at most ``max_rate``). Once the queue is empty
the exit rate is a ceiling no user fills (the room lets in who arrives): the replicas already
asked for are kept, not raised with it. Each service needs
``rate / (users per minute one replica takes x target utilisation)`` replicas, from the
profile (its fan-out and the requests per second one replica served with the SLO met). Every
service is sized from the same queue at the same moment, so the vertical scales together,
before the room lets the users in; the controller's capacity estimate then rises as
utilisation falls, and the exit rate follows.

While an event is on sale its desired replicas never go down (no flapping mid on-sale). When
the on-sale has ended and its queue is empty, they are held for ``cooldown`` seconds and
then withdrawn: the scalers' query falls back to ``or vector(0)`` and each service returns to
its own minimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale_obs.exceptions import BadInputError
from onsale_obs.plan._forecast import TARGET_UTILISATION, choose, service_spreads
from onsale_obs.plan._profile import Profile

DESIRED_METRIC = "onsale_vertical_desired_replicas"
QUEUE_METRIC = "onsale_queue_length"


@dataclass(frozen=True, slots=True)
class ServiceSizing:
    """What one replica of a service takes, as an exit rate (users/min)."""

    name: str
    users_per_replica: float
    min_replicas: int = 1
    max_replicas: int | None = None

    def replicas(self, rate: float, target: float) -> int:
        """Replicas to take ``rate`` users/min at ``target`` utilisation."""
        n = max(self.min_replicas, math.ceil(rate / (self.users_per_replica * target) - 1e-9))
        return n if self.max_replicas is None else min(n, self.max_replicas)


def sizings_from_profile(
    profile: Profile,
    services: Sequence[str] = (),
    like: Sequence[str] = (),
) -> tuple[ServiceSizing, ...]:
    """The low end of each service's users/min per replica over the on-sales used (the
    same numbers ``plan next`` sizes on). A service the profile cannot size is bad input."""
    used = choose(profile, like)
    names = list(services) or sorted({s for o in used for s in o.services})
    if not names:
        raise BadInputError("the profile has no service to size.", field="profile")
    out = []
    for name in names:
        _fan, _per, users, _lower = service_spreads(used, name)
        out.append(ServiceSizing(name, users.value))
    return tuple(out)


@dataclass(slots=True)
class _Event:
    queue: float | None = None
    rate: float = 0.0
    desired: dict[str, int] = field(default_factory=dict)
    on_sale: bool = True
    #: the last tick it was on sale, then the tick it was first seen ended
    busy_until: float = 0.0


@dataclass(eq=False)  # registered in a CollectorRegistry: hashed by identity
class VerticalScaler(Collector):
    """Desired replicas per (event, service) and the queue length per event, as gauges.

    Pure apart from its state: the time comes in with every :meth:`observe`.
    """

    sizings: tuple[ServiceSizing, ...]
    drain_target: float = 1800.0
    cooldown: float = 600.0
    max_rate: float = 100_000.0
    target: float = TARGET_UTILISATION
    events: dict[str, _Event] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not self.sizings:
            raise BadInputError("expected at least one service to size.", field="services")
        for name, value in (("drain_target", self.drain_target), ("cooldown", self.cooldown)):
            if not (value >= 0 and math.isfinite(value)):
                raise BadInputError("expected a finite duration, 0 or more.", field=name)

    def rate_to_serve(self, rate: float, queue: float | None) -> float:
        """The exit rate to be ready for: the current one, or what drains the queue in time."""
        need = rate
        if queue is not None and queue > 0 and self.drain_target > 0:
            need = max(need, queue / (self.drain_target / 60.0))
        return min(need, self.max_rate)

    def observe(self, now: float, onsale: Iterable[tuple[str, float, float | None]]) -> None:
        """One tick: ``(event, exit rate, queue length or None)`` for every event on sale now.

        Events missing from ``onsale`` have ended; they scale down after their cool-down.
        """
        seen = set()
        for event, rate, queue in onsale:
            seen.add(event)
            state = self.events.setdefault(event, _Event())
            state.on_sale = True
            state.rate = rate
            if queue is not None:
                state.queue = queue
            state.busy_until = now
            if state.desired and state.queue is not None and state.queue < 1:
                # nobody waits: the room only lets in who arrives, and its exit rate is a
                # ceiling no user fills; keep what was asked rather than follow it up
                continue
            serve = self.rate_to_serve(rate, state.queue)
            for s in self.sizings:
                n = s.replicas(serve, self.target)
                # never down while on sale; a missing queue reading keeps what was asked
                state.desired[s.name] = max(n, state.desired.get(s.name, 0))
        for event in list(self.events):
            state = self.events[event]
            if event in seen:
                continue
            if state.on_sale:  # ended since the last tick: the cool-down starts now
                state.on_sale = False
                state.queue = 0.0 if state.queue is not None else None
                state.busy_until = now
            if now - state.busy_until >= self.cooldown:
                del self.events[event]

    def desired(self) -> dict[tuple[str, str], int]:
        """(event, service) -> replicas, as exported now."""
        return {
            (event, service): n
            for event, state in self.events.items()
            for service, n in state.desired.items()
        }

    # ---- prometheus_client Collector ---------------------------------------------------

    def collect(self) -> Any:
        """The two gauges (read from the scrape thread: one dict copy per scrape)."""
        events = dict(self.events)
        desired = GaugeMetricFamily(
            DESIRED_METRIC,
            "Replicas each service of the on-sale's vertical should run now (from the queue, "
            "the exit rate and the on-sale profile).",
            labels=["event", "service"],
        )
        queue = GaugeMetricFamily(
            QUEUE_METRIC, "Users waiting in the on-sale's queue.", labels=["event"]
        )
        for event, state in sorted(events.items()):
            for service, n in sorted(dict(state.desired).items()):
                desired.add_metric([event, service], float(n))
            if state.queue is not None:
                queue.add_metric([event], state.queue)
        yield desired
        yield queue

    def describe(self) -> list[Metric]:
        return []


def observed(made: Iterable[tuple[str, Any]]) -> list[tuple[str, float, float | None]]:
    """``ExitRateLoop.tick()``'s (event, Recommendation) pairs as :meth:`observe` input."""
    return [(event, r.rate, r.signals.queue_length) for event, r in made]


def scaler_for(
    profile: Profile,
    *,
    drain_target: float,
    cooldown: float,
    max_rate: float,
    services: Sequence[str] = (),
    min_replicas: Mapping[str, int] | None = None,
) -> VerticalScaler:
    """A :class:`VerticalScaler` sized from ``profile``."""
    sizings = sizings_from_profile(profile, services)
    if min_replicas:
        sizings = tuple(
            ServiceSizing(s.name, s.users_per_replica, min_replicas.get(s.name, 1)) for s in sizings
        )
    return VerticalScaler(sizings, drain_target=drain_target, cooldown=cooldown, max_rate=max_rate)
