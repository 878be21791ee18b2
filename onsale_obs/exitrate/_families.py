"""Randomized scenario families: each a distribution over on-sales, one scenario drawn per seed.

A family fixes *what kind* of on-sale it is (a capacity drop, a software fault, an outage of
the signals ...) and draws everything else per seed: the queue (10k-2M users), the backend
(12-400 workers, 50-250 ms per request, 1-3 requests per user; redrawn until the physical
limit T* is 15-120 minutes), the browse time (median 20-120 s, log sigma 0.5-1.2: heavy
tails), the latency objective (1 s, or 4x the service's p95 at rest; 1.2-2x in
``tight-objective``), the operator's start
rate (0.3-1x the true capacity; 0.2-2x in ``hot-start``) and the event that makes the
family. The draw depends only on the family's name and the seed, so a seed names one
scenario for every harness.

``mixed-events`` (:data:`MIXED_FAMILIES`, simulated by ``_mixed.py``) draws the same base as
the whole on-sale and shares its queue out between 2-3 events on the one backend (weights
1-4 each), each with its own browse time and start rate (0.3-1x its demand share of the
capacity), and gives one of them a software fault drawn as ``software-fault`` draws it.

Seeds are split in two: :data:`TUNING_SEEDS` (1-1000) are the ones the controller's
defaults were chosen on; :data:`HELD_OUT_SEEDS` (from 10001) were only ever used to report.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.exitrate._mixed import MixedEvent, MixedScenario
from onsale_obs.exitrate._scenario import (
    Backend,
    CapacityChange,
    Fault,
    LogNormal,
    Scenario,
    SLOTarget,
    Telemetry,
    WaitingRoom,
    Wave,
)

_DEFAULTS: Final = ExitRateConfig()
#: Seeds the controller was tuned on ...
TUNING_SEEDS: Final = range(1, 1001)
#: ... and the held-out seeds the benchmark reports (never used while tuning).
HELD_OUT_SEEDS: Final = range(10_001, 20_001)


@dataclass(frozen=True, slots=True)
class Family:
    """A named distribution over scenarios; ``draw(seed)`` gives one."""

    name: str
    description: str
    #: Whether the family has a capacity loss or a software fault (drain target 1.25, not 1.15).
    disrupted: bool
    build: Callable[[random.Random, _Base], _Base]

    def draw(self, seed: int) -> Scenario:
        """The scenario of ``seed`` (the same for every caller)."""
        rng = random.Random(f"{self.name}:{seed}")
        base = _base(rng, hot=self.name == "hot-start")
        return self.build(rng, base).scenario(f"{self.name}-{seed}", seed, self.description)

    @property
    def drain_target(self) -> float:
        """The drain ratio the controller must reach on this family."""
        return 1.25 if self.disrupted else 1.15


@dataclass(frozen=True, slots=True)
class _Base:
    """The parameters every family draws, before its own event is added."""

    users: int
    limit: float
    capacity_rate: float
    start: float
    browse: LogNormal
    checkouts: float
    workers: float
    service: LogNormal
    threshold: float
    waves: tuple[Wave, ...] = ()
    changes: tuple[CapacityChange, ...] = ()
    faults: tuple[Fault, ...] = ()
    outages: tuple[tuple[float, float], ...] = ()

    def with_(self, **changes: object) -> _Base:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return _Base(**values)

    def scenario(self, name: str, seed: int, description: str) -> Scenario:
        horizon = max(3 * 3600.0, 6 * self.limit)
        return Scenario(
            name=name,
            seed=seed,
            description=description,
            horizon=math.ceil(horizon / 60) * 60,
            slo=SLOTarget(latency_threshold=self.threshold),
            waiting_room=WaitingRoom(
                queued_at_start=self.users - sum(w.users for w in self.waves),
                arrivals=self.waves,
                initial_rate=round(self.start, 1),
                browse_time=self.browse,
                checkouts_per_user=self.checkouts,
            ),
            backend=Backend(
                workers=self.workers,
                service_time=self.service,
                base_error_rate=0.00001,
                changes=self.changes,
                faults=self.faults,
            ),
            telemetry=Telemetry(outages=self.outages),
            # a new user's controller: the default lags, not this family's browse time
            controller={
                "admission_lag": _DEFAULTS.admission_lag,
                "admission_lag_spread": _DEFAULTS.admission_lag_spread,
                "learn_lag": True,
            },
            source=f"family {name}",
        )


def _base(rng: random.Random, *, hot: bool) -> _Base:
    # a queue of 10k-2M users and a backend of 12-400 workers taking 50-250 ms (median) per
    # checkout request, 1-3 requests per user; drawn again until the demand takes 15-120
    # minutes at that capacity (a shorter on-sale is over before any controller can learn;
    # a tiny demand on a big backend is not an on-sale problem)
    while True:
        users = round(math.exp(rng.uniform(math.log(10_000), math.log(2_000_000))))
        workers = math.exp(rng.uniform(math.log(12), math.log(400)))
        service = LogNormal(median=rng.uniform(0.05, 0.25), sigma=rng.uniform(0.3, 0.6))
        checkouts = rng.choice((1.0, 2.0, 3.0))
        capacity_rate = workers / service.mean * 60.0 / checkouts  # users/min
        limit = users / capacity_rate * 60.0
        if 15 * 60 <= limit <= 120 * 60:
            break
    # owners set the latency objective above what their service needs at rest
    threshold = max(1.0, math.ceil(service.quantile(0.95) * 4 * 10) / 10)
    browse = _browse(rng)
    start = capacity_rate * (rng.uniform(0.2, 2.0) if hot else rng.uniform(0.3, 1.0))
    return _Base(
        users=users,
        limit=limit,
        capacity_rate=capacity_rate,
        start=start,
        browse=browse,
        checkouts=checkouts,
        workers=round(workers, 2),
        service=service,
        threshold=threshold,
    )


def _browse(rng: random.Random) -> LogNormal:
    # median 20-120 s, log sigma 0.5-1.2 (heavy tails), 5 s to 30 minutes
    return LogNormal(median=rng.uniform(20, 120), sigma=rng.uniform(0.5, 1.2), min=5.0, max=1800.0)


def _steady(rng: random.Random, b: _Base) -> _Base:
    return b


def _drop(rng: random.Random, b: _Base) -> _Base:
    at = round(rng.uniform(0.15, 0.6) * b.limit)
    share = rng.uniform(0.1, 0.6)
    note = f"-{share:.0%} capacity"
    return b.with_(changes=(CapacityChange(at, round(b.workers * (1 - share), 2), note),))


def _autoscale(rng: random.Random, b: _Base) -> _Base:
    # the tier starts small and the autoscaler adds 1.5-3x after a 1-5 minute delay
    factor = rng.uniform(1.5, 3.0)
    small = b.workers / factor * 1.0
    at = round(rng.uniform(60, 300))
    # keep T* about what was drawn: the demand is met mostly by the scaled-up tier
    return b.with_(
        workers=round(small, 2),
        start=b.start / factor,
        changes=(CapacityChange(at, b.workers, f"autoscaled x{factor:.1f}"),),
    )


def _drift(rng: random.Random, b: _Base) -> _Base:
    changes = []
    t, level = 0.0, 1.0
    while t < 3 * b.limit:
        t += rng.uniform(120, 300)
        level = min(1.3, max(0.7, level * math.exp(rng.gauss(0, 0.12))))
        changes.append(CapacityChange(round(t), round(b.workers * level, 2), f"x{level:.2f}"))
    return b.with_(changes=tuple(changes))


def _spike(rng: random.Random, b: _Base) -> _Base:
    # a share of the demand arrives in a burst of 1-5 minutes somewhere in the first half
    share = rng.uniform(0.3, 0.6)
    start = round(rng.uniform(0.1, 0.5) * b.limit)
    end = start + round(rng.uniform(60, 300))
    return b.with_(waves=(Wave(start, end, round(b.users * share)),))


def _outage(rng: random.Random, b: _Base) -> _Base:
    start = round(rng.uniform(0.1, 0.6) * b.limit)
    return b.with_(outages=((start, start + round(rng.uniform(60, 600))),))


def objective_at(service: LogNormal, factor: float) -> float:
    """A latency objective ``factor`` times the service's p95 at rest, rounded up to 10 ms."""
    return math.ceil(service.quantile(0.95) * factor * 100) / 100


def _tight(rng: random.Random, b: _Base) -> _Base:
    # an owner who set the latency objective close to what the service needs at rest: its
    # p95 sits at 50-83% of the threshold before any load (the hold band starts at 80%)
    return b.with_(threshold=objective_at(b.service, rng.uniform(1.2, 2.0)))


def _fault(rng: random.Random, b: _Base) -> _Base:
    start = round(rng.uniform(0.15, 0.6) * b.limit)
    end = start + round(rng.uniform(180, 900))
    share = math.exp(rng.uniform(math.log(0.01), math.log(0.5)))
    return b.with_(faults=(Fault(start, end, round(share, 4), "a bad deploy, healed"),))


FAMILIES: Final[dict[str, Family]] = {
    f.name: f
    for f in (
        Family("steady", "constant capacity, a cautious start", False, _steady),
        Family("hot-start", "constant capacity, start 0.2-2x the capacity", False, _steady),
        Family("capacity-drop", "capacity steps down 10-60% mid-sale", True, _drop),
        Family("autoscale", "capacity steps up 1.5-3x after 1-5 minutes", False, _autoscale),
        Family("drift", "capacity wanders as a random walk within +-30%", True, _drift),
        Family("arrival-spike", "30-60% of the demand arrives in 1-5 minutes", False, _spike),
        Family("signal-outage", "Prometheus unreachable for 1-10 minutes", False, _outage),
        Family(
            "software-fault", "1-50% of checkouts fail for 3-15 minutes, then heal", True, _fault
        ),
        Family(
            "tight-objective", "latency objective 1.2-2x the service's p95 at rest", False, _tight
        ),
    )
}


@dataclass(frozen=True, slots=True)
class MixedFamily:
    """A named distribution over on-sales of several events on one shared backend."""

    name: str
    description: str
    #: Whether the family has a capacity loss or a software fault (drain target 1.25).
    disrupted: bool = True

    def draw(self, seed: int) -> MixedScenario:
        """The on-sale of ``seed`` (the same for every caller)."""
        rng = random.Random(f"{self.name}:{seed}")
        return _mixed_events(rng, _base(rng, hot=False), f"{self.name}-{seed}", seed, self)

    @property
    def drain_target(self) -> float:
        """The drain ratio the controller must reach on this family (the whole service)."""
        return 1.25 if self.disrupted else 1.15


#: How many events share the backend in ``mixed-events`` ...
MIXED_EVENT_COUNTS: Final = (2, 3)
#: ... and the range of the weights their share of the queue is drawn from (a share of at
#: least 1/(1 + 4 (n - 1)): 20% of two events, 11% of three).
MIXED_WEIGHTS: Final = (1.0, 4.0)


def _mixed_events(
    rng: random.Random, b: _Base, name: str, seed: int, fam: MixedFamily
) -> MixedScenario:
    # the base draw is the whole on-sale (all the demand on one backend, T* 15-120 minutes);
    # it is shared out between 2-3 events, each with its own browse time and start rate
    count = rng.choice(MIXED_EVENT_COUNTS)
    weights = [rng.uniform(*MIXED_WEIGHTS) for _ in range(count)]
    users = [round(b.users * w / sum(weights)) for w in weights[:-1]]
    users.append(b.users - sum(users))
    browses = [b.browse, *(_browse(rng) for _ in range(count - 1))]
    starts = [b.capacity_rate * u / b.users * rng.uniform(0.3, 1.0) for u in users]
    faulty = rng.randrange(count)
    # one event's checkouts fail (its own code path: a bad deploy of its seat map, say)
    fault = replace(_fault(rng, b).faults[0], note="a bad deploy of one event, healed")
    whole = b.scenario(name, seed, fam.description)
    room = whole.waiting_room
    events = tuple(
        MixedEvent(
            name=f"event-{i + 1}",
            waiting_room=replace(
                room, queued_at_start=u, initial_rate=round(start, 1), browse_time=browse
            ),
            faults=(fault,) if i == faulty else (),
        )
        for i, (u, browse, start) in enumerate(zip(users, browses, starts, strict=True))
    )
    return MixedScenario(
        name=name,
        seed=seed,
        events=events,
        backend=whole.backend,
        slo=whole.slo,
        telemetry=whole.telemetry,
        horizon=whole.horizon,
        tick=whole.tick,
        description=fam.description,
        controller=whole.controller,
        source=whole.source,
    )


#: Families of several events on one backend (``_mixed.py`` simulates them).
MIXED_FAMILIES: Final[dict[str, MixedFamily]] = {
    f.name: f
    for f in (
        MixedFamily(
            "mixed-events",
            "2-3 events share one backend; 1-50% of one event's checkouts fail for 3-15 "
            "minutes, then heal",
        ),
    )
}
#: Every family's name, the single-room ones first.
FAMILY_NAMES: Final = (*FAMILIES, *MIXED_FAMILIES)


def family(name: str) -> Family:
    """The single-room family called ``name``; bad input names the choices."""
    try:
        return FAMILIES[name]
    except KeyError:
        if name in MIXED_FAMILIES:
            raise BadInputError(
                f"family {name!r} has several waiting rooms and this harness runs one; "
                f"expected one of {', '.join(FAMILIES)}.",
                field="--family",
            ) from None
        raise BadInputError(
            f"unknown family {name!r}; expected one of {', '.join(FAMILIES)}.", field="--family"
        ) from None


def find_family(name: str) -> Family | MixedFamily:
    """Any family called ``name``, single-room or mixed; bad input names the choices."""
    found = FAMILIES.get(name) or MIXED_FAMILIES.get(name)
    if found is None:
        raise BadInputError(
            f"unknown family {name!r}; expected one of {', '.join(FAMILY_NAMES)}.",
            field="--family",
        )
    return found


def parse_seeds(text: str, *, field: str = "--seeds") -> list[int]:
    """``"1-5,9"`` -> ``[1, 2, 3, 4, 5, 9]``; bad input names the argument."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise BadInputError(
                f"expected seeds like 1-20,31 (whole numbers and ranges), got {part!r}.",
                field=field,
            ) from None
        if first < 0 or last < first:
            raise BadInputError(
                f"expected a range low-high with 0 <= low <= high, got {part!r}.", field=field
            )
        if last - first > 100_000:
            raise BadInputError(f"range {part!r} is too long (at most 100,000).", field=field)
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise BadInputError("expected at least one seed, e.g. 1-20.", field=field)
    return seeds
