"""Several on-sale events at once on one shared checkout backend, simulated second by second.

Each event has its own waiting room (queue, arrivals, browse times, start rate) and its own
controller, fed its own event's signals as the live loop (``_live.py``) reads them: the burn
rates from its own requests' errors only, latency p95 of its own requests (on a shared
backend that reflects everyone's load), its own queue; the utilisation is the shared
workers' (what the service shows). The backend is one :class:`CheckoutBackend`: its
capacity, backlog, shedding and latency are common to every event, and each second's
outcome is shared out in proportion to each event's requests. A software fault belongs to
one event (its checkouts fail, no latency added, like the single-room model's fault). With
``guard``, each increase passes the shared-backend guard (``_guard.py``) the live loop uses,
fed the burn of every event's requests together.

The users are the single-room model's (``_sim.py``): FIFO per room, a token bucket at the
controller's rate, a log-normal browse, ``checkouts_per_user`` requests ``request_gap``
apart, retries of failed ones. Each event draws its browse times from its own seeded
stream, so every controller meets the same users.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._checkout import CheckoutBackend, SecondOutcome
from onsale_obs.exitrate._guard import shared_guard
from onsale_obs.exitrate._scenario import (
    Backend,
    Fault,
    Scenario,
    SLOTarget,
    Telemetry,
    WaitingRoom,
)
from onsale_obs.exitrate._series import Series
from onsale_obs.exitrate._share import utilisation_by_demand
from onsale_obs.exitrate._signals import Action, RateController, Signals
from onsale_obs.exitrate._sim import Run, Tick, arrivals_per_second, reading

#: Retries smaller than this (in expected requests) are dropped, so a run can end.
_NEGLIGIBLE = 1e-6


@dataclass(frozen=True, slots=True)
class MixedEvent:
    """One on-sale event: its waiting room, and the software faults of its own checkouts."""

    name: str
    waiting_room: WaitingRoom
    faults: tuple[Fault, ...] = ()

    def fault_at(self, t: float) -> float:
        """Share of this event's checkouts a fault fails at ``t`` (0 when none is active)."""
        return max((f.error_share for f in self.faults if f.start <= t < f.end), default=0.0)


@dataclass(frozen=True, slots=True)
class MixedScenario:
    """Events sharing one checkout backend (``backend.faults`` stays empty: faults are the
    events'), one SLO, one Prometheus."""

    name: str
    seed: int
    events: tuple[MixedEvent, ...]
    backend: Backend
    slo: SLOTarget = field(default_factory=SLOTarget)
    telemetry: Telemetry = field(default_factory=Telemetry)
    horizon: float = 3 * 3600.0
    tick: float = 15.0
    description: str = ""
    controller: dict[str, float | bool | None] = field(default_factory=dict)
    source: str = "<scenario>"
    #: The shared service's name (the guard's reason names it).
    service: str = "checkout"

    def __post_init__(self) -> None:
        if len(self.events) < 2:
            raise BadInputError(
                f"expected at least 2 events on the shared backend, got {len(self.events)}.",
                file=self.source,
                field="events",
            )
        if len({e.name for e in self.events}) != len(self.events):
            raise BadInputError("expected distinct event names.", file=self.source, field="events")
        per_user = {e.waiting_room.checkouts_per_user for e in self.events}
        if len(per_user) != 1:
            raise BadInputError(
                "expected the same checkouts_per_user for every event (one checkout flow on "
                f"the shared service), got {sorted(per_user)}.",
                file=self.source,
                field="events",
            )
        if self.backend.faults:
            raise BadInputError(
                "a fault of the shared backend hits every event; give it to one event's "
                "faults instead.",
                file=self.source,
                field="backend.faults",
            )

    @property
    def faulty(self) -> int | None:
        """The index of the first event with a fault (``None``: no fault)."""
        return next((i for i, e in enumerate(self.events) if e.faults), None)

    def demand_share(self, index: int) -> float:
        """Event ``index``'s share of the checkout demand (its users over all users: every
        event has the same checkouts per user)."""
        total = sum(e.waiting_room.users for e in self.events)
        return self.events[index].waiting_room.users / total if total else 0.0

    def event_view(self, index: int) -> Scenario:
        """Event ``index`` as a single-room scenario on its demand share of the backend: what
        a baseline that knows a capacity (the oracle, the fixed rates) is given, and the
        config our controller gets. Never simulated on its own."""
        event = self.events[index]
        share = self.demand_share(index)
        backend = replace(
            self.backend,
            workers=self.backend.workers * share,
            changes=tuple(replace(c, workers=c.workers * share) for c in self.backend.changes),
            faults=event.faults,
        )
        return self._scenario(f"{self.name}/{event.name}", event.waiting_room, backend)

    def whole(self) -> Scenario:
        """Every event's users in one room on the whole backend: the physical limit T* of
        the on-sale and the view the report is made of (the browse time is the largest
        event's, which only times capacity changes in T*)."""
        rooms = [e.waiting_room for e in self.events]
        largest = max(rooms, key=lambda r: r.users)
        room = replace(
            largest,
            queued_at_start=sum(r.queued_at_start for r in rooms),
            arrivals=tuple(w for r in rooms for w in r.arrivals),
            initial_rate=sum(r.initial_rate for r in rooms),
        )
        return self._scenario(self.name, room, self.backend)

    def without_faults(self) -> MixedScenario:
        """The same on-sale with every fault removed (the reference run)."""
        return replace(self, events=tuple(replace(e, faults=()) for e in self.events))

    def _scenario(self, name: str, room: WaitingRoom, backend: Backend) -> Scenario:
        return Scenario(
            name=name,
            seed=self.seed,
            waiting_room=room,
            backend=backend,
            slo=self.slo,
            telemetry=self.telemetry,
            horizon=self.horizon,
            tick=self.tick,
            description=self.description,
            controller=self.controller,
            source=self.source,
        )


@dataclass(frozen=True, slots=True)
class MixedRun:
    """The raw outcome of one mixed on-sale under one kind of controller (one per event)."""

    scenario: MixedScenario
    controller: str
    seed: int
    #: The service as a whole: every event's requests, the summed rate and queue.
    whole: Run
    #: Each event's own run: its requests, its controller's ticks, its drain.
    events: tuple[Run, ...]
    #: Users admitted before each second, per event (cumulative).
    admitted: tuple[tuple[int, ...], ...]
    #: The readings each event's controller was given, per tick.
    readings: tuple[tuple[Signals, ...], ...]


def simulate_mixed(
    scenario: MixedScenario,
    controllers: Sequence[RateController],
    *,
    name: str = "ours",
    seed: int | None = None,
    guard: bool = True,
) -> MixedRun:
    """Run ``scenario`` with ``controllers[i]`` setting event ``i``'s rate; with ``guard``,
    the shared-backend guard holds an event's increase while the service burns."""
    if len(controllers) != len(scenario.events):
        raise BadInputError(
            f"expected one controller per event ({len(scenario.events)}), got {len(controllers)}.",
            field="controllers",
        )
    seed = scenario.seed if seed is None else seed
    return _Mixed(scenario, controllers, name, seed, guard).run()


class _Room:
    """One event's waiting room and its users' checkout requests (as ``_sim`` runs them)."""

    def __init__(self, scenario: MixedScenario, index: int, seed: int, buckets: tuple[float, ...]):
        self.event = scenario.events[index]
        room = self.event.waiting_room
        self.view = scenario.event_view(index)
        self.joined = arrivals_per_second(self.view)
        slack = (
            int(
                room.browse_time.max + room.retry_delay + room.checkouts_per_user * room.request_gap
            )
            + 2
        )
        self.calendar = [0.0] * (len(self.joined) + slack)
        self.series = Series(buckets)
        self.rate = room.initial_rate
        self.queue = 0
        self.fifo: deque[list[int]] = deque()
        self.ticks: list[Tick] = []
        self.readings: list[Signals] = []
        self.admitted_before = [0]
        self.tokens = 0.0
        self.admitted = 0
        self.last_admit: int | None = None
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.last_join = max((t for t, n in enumerate(self.joined) if n), default=0)
        self.last_load = 0
        browse = room.browse_time
        self._mu, self._sigma = math.log(browse.median), browse.sigma
        self._lo, self._hi = browse.min, browse.max
        whole, part = divmod(room.checkouts_per_user, 1.0)
        gap = round(room.request_gap)
        self._steps = [(j * gap, 1.0) for j in range(int(whole))]
        if part > 1e-9:
            self._steps.append((int(whole) * gap, part))
        self._gauss = random.Random(f"{seed}:browse:{index}").gauss

    def join(self, t: int) -> int:
        arriving = self.joined[t] if t < len(self.joined) else 0
        if arriving:
            self.queue += arriving
            self.fifo.append([t, arriving])
        return arriving

    def admit(self, t: int) -> None:
        """Let users through at the rate (a token bucket) and book their checkouts."""
        per_second = self.rate / 60.0
        self.tokens = min(self.tokens + per_second, per_second + 1.0)
        if self.queue > 0 and self.tokens >= 1.0:
            k = min(int(self.tokens), self.queue)
            self.tokens -= k
            self.queue -= k
            self.admitted += k
            self.last_admit = t
            left = k
            while left:
                head = self.fifo[0]
                take = min(left, head[1])
                wait = t - head[0]
                self.wait_sum += wait * take
                self.wait_max = max(self.wait_max, wait)
                head[1] -= take
                left -= take
                if head[1] == 0:
                    self.fifo.popleft()
            calendar, gauss, mu, sigma = self.calendar, self._gauss, self._mu, self._sigma
            lo, hi = self._lo, self._hi
            last_step = self._steps[-1][0]
            for _ in range(k):
                b = math.exp(gauss(mu, sigma))
                at = t + int(lo if b < lo else hi if b > hi else b)
                for offset, weight in self._steps:
                    calendar[at + offset] += weight
                self.last_load = max(self.last_load, at + last_step)
        self.admitted_before.append(self.admitted)

    def retry(self, t: int, errors: float) -> None:
        room = self.event.waiting_room
        if room.retry_probability and errors * room.retry_probability > _NEGLIGIBLE:
            at = min(t + round(room.retry_delay), len(self.calendar) - 1)
            self.calendar[at] += errors * room.retry_probability
            self.last_load = max(self.last_load, at)

    def done(self, t: int) -> bool:
        return t > self.last_join and self.queue == 0 and t > self.last_load

    def run(self, controller: str, seed: int, t_end: int) -> Run:
        drained = self.queue == 0 and t_end > self.last_join
        return Run(
            scenario=self.view,
            controller=controller,
            seed=seed,
            series=self.series,
            ticks=tuple(self.ticks),
            drain_time=float(self.last_admit + 1)
            if drained and self.last_admit is not None
            else None,
            admitted=self.admitted,
            mean_wait=self.wait_sum / self.admitted if self.admitted else 0.0,
            max_wait=self.wait_max,
        )


class _Mixed:
    def __init__(
        self,
        scenario: MixedScenario,
        controllers: Sequence[RateController],
        name: str,
        seed: int,
        guard: bool,
    ) -> None:
        self.s = scenario
        self.controllers = list(controllers)
        self.name = name
        self.seed = seed
        self.guard = guard
        self.backend = CheckoutBackend(
            scenario.backend, scenario.slo.latency_threshold, random.Random(f"{seed}:backend")
        )
        self.rooms = [
            _Room(scenario, i, seed, self.backend.buckets) for i in range(len(scenario.events))
        ]
        self.whole = Series(self.backend.buckets)
        self.ticks: list[Tick] = []
        self.view = scenario.whole()
        # the guard compares with our controller's alert threshold, as the live loop does
        config = self.view.controller_config()
        self.burn_threshold = config.burn_threshold
        self.saturation = config.saturation
        self.latency_margin = config.latency_margin

    def run(self) -> MixedRun:
        s = self.s
        rooms = self.rooms
        tick = max(1, round(s.tick))
        horizon = math.ceil(s.horizon)
        t = 0
        while t < horizon:
            joined = sum(room.join(t) for room in rooms)
            if t % tick == 0:
                self._tick(t)
            for room in rooms:
                room.admit(t)
            loads = [room.calendar[t] for room in rooms]
            outcome = self.backend.serve(t, sum(loads))
            shares = self._share_out(t, outcome, loads)
            whole = _sum(outcome, shares)
            queue = 0
            for room, share in zip(rooms, shares, strict=True):
                room.retry(t, share.errors)
                room.series.record(share, room.queue, room.joined[t] if t < len(room.joined) else 0)
                queue += room.queue
            self.whole.record(whole, queue, joined)
            t += 1
            if all(room.done(t) for room in rooms) and self.backend.backlog < _NEGLIGIBLE:
                break
        events = tuple(room.run(self.name, self.seed, t) for room in rooms)
        drains = [e.drain_time for e in events]
        admitted = sum(e.admitted for e in events)
        whole_run = Run(
            scenario=self.view,
            controller=self.name,
            seed=self.seed,
            series=self.whole,
            ticks=tuple(self.ticks),
            drain_time=None if None in drains else max(d for d in drains if d is not None),
            admitted=admitted,
            mean_wait=sum(e.mean_wait * e.admitted for e in events) / admitted if admitted else 0.0,
            max_wait=max(e.max_wait for e in events),
        )
        return MixedRun(
            scenario=s,
            controller=self.name,
            seed=self.seed,
            whole=whole_run,
            events=events,
            admitted=tuple(tuple(room.admitted_before) for room in rooms),
            readings=tuple(tuple(room.readings) for room in rooms),
        )

    def _share_out(self, t: int, outcome: SecondOutcome, loads: list[float]) -> list[SecondOutcome]:
        """Each event's part of the second: shedding, stray errors and latency in proportion
        to its requests (the backend is one), then its own fault on what it got served."""
        total = outcome.requests
        shares = []
        for room, load in zip(self.rooms, loads, strict=True):
            w = load / total if total > 0 else 0.0
            ok = outcome.ok * w
            failing = room.event.fault_at(t)
            kept = 1.0 - failing
            shares.append(
                SecondOutcome(
                    requests=load,
                    errors=outcome.errors * w + ok * failing,
                    ok=ok * kept,
                    buckets=[b * w * kept for b in outcome.buckets],
                    fast=outcome.fast * w * kept,
                    busy=outcome.busy,
                    capacity=outcome.capacity,
                )
            )
        return shares

    def _tick(self, t: int) -> None:
        shared = self._shared_burn(t)
        rates = []
        actions: list[Action] = []
        reasons = []
        before = sum(room.rate for room in self.rooms)
        split = self.guard  # ours as `serve` runs it: utilisation split by demand
        for room, controller in zip(self.rooms, self.controllers, strict=True):
            # every controller reads the service's burn too, as `serve` gives it
            signals = replace(self._signals(t, room, split=split), shared_burn=shared)
            rec = controller.recommend(signals)
            if self.guard:
                rec = shared_guard(
                    rec,
                    shared,
                    threshold=self.burn_threshold,
                    service=self.s.service,
                    window=self.s.telemetry.short_window,
                    saturation=self.saturation,
                    latency_margin=self.latency_margin,
                    utilisation=self._shared_utilisation(t),
                )
            room.rate = rec.rate
            room.readings.append(signals)
            room.ticks.append(
                Tick(t, rec.rate, room.view.capacity_rate(t), room.queue, rec.action, rec.reason)
            )
            rates.append(rec.rate)
            actions.append(rec.action)
            reasons.append(f"{room.event.name}: {rec.reason}")
        after = sum(rates)
        action: Action = "increase" if after > before else "decrease" if after < before else "hold"
        if action == "hold" and "decay" in actions:
            action = "decay"
        self.ticks.append(
            Tick(
                t,
                after,
                self.view.capacity_rate(t),
                sum(room.queue for room in self.rooms),
                action,
                "; ".join(reasons),
            )
        )

    def _shared_burn(self, t: int) -> float | None:
        """The short burn of every event's requests together (``GLOBAL`` in the live loop)."""
        s = self.s
        tel = s.telemetry
        if tel.in_outage(t):
            return None
        return self.whole.burn_rate(int(tel.data_time(t)), tel.short_window, s.slo.objective)

    def _shared_utilisation(self, t: int) -> float | None:
        """The shared workers' busy share as the guard reads it at ``t`` (none during an
        outage, or where the deployment exports none: ``serve`` without
        ``--utilisation-query``)."""
        tel = self.s.telemetry
        if tel.in_outage(t):
            return None
        return tel.exported(self.whole.utilisation(int(tel.data_time(t)), tel.latency_window))

    def _signals(self, t: int, room: _Room, *, split: bool = False) -> Signals:
        """Its own burn, p95 and queue; the shared workers' busy share, split by demand as
        `serve` splits it when ``split``."""
        window = self.s.telemetry.latency_window

        def shared(d: int) -> float | None:
            if split:
                return self._attributed_utilisation(d, room)
            return self.whole.utilisation(d, window)

        return reading(t, room.rate, room.series, self.s.slo, self.s.telemetry, shared)

    def _attributed_utilisation(self, d: int, room: _Room) -> float | None:
        """The shared utilisation as this event's controller reads it: by demand share."""
        window = self.s.telemetry.latency_window
        return utilisation_by_demand(
            self.whole.utilisation(d, window),
            Series.increase(room.series.requests, d, window),
            Series.increase(self.whole.requests, d, window),
            room.series.queue_at(d) or 0.0,
            sum(max(0.0, r.series.queue_at(d) or 0.0) for r in self.rooms),
        )


def _sum(outcome: SecondOutcome, shares: list[SecondOutcome]) -> SecondOutcome:
    """The service's second: every event's part added up (faults included)."""
    return SecondOutcome(
        requests=outcome.requests,
        errors=sum(p.errors for p in shares),
        ok=sum(p.ok for p in shares),
        buckets=[sum(col) for col in zip(*(p.buckets for p in shares), strict=True)],
        fast=sum(p.fast for p in shares),
        busy=outcome.busy,
        capacity=outcome.capacity,
    )
