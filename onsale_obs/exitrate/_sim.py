"""Simulate one on-sale under one exit-rate controller, second by second, deterministically.

Event-driven on a one-second calendar: every user is an individual who joins the FIFO
waiting room, is admitted at the controller's rate (a token bucket), browses for their own
log-normal time and then sends ``checkouts_per_user`` checkout requests ``request_gap``
apart, each landing in the calendar slot of the second it is made; a failed request is
retried after a delay with a probability. Each second the checkout backend (``_checkout``)
serves what landed; each tick the controller reads signals computed from the counters as
Prometheus would show them (the last rule evaluation, over the last scrape, over a rate
window) and sets the rate.

Randomness comes from two seeded streams (arrivals are spread deterministically): the i-th
user admitted always draws the same browse time whatever the controller, so controllers are
compared on the same users, and the backend's stray errors have their own stream.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from onsale_obs.exitrate._checkout import CheckoutBackend
from onsale_obs.exitrate._scenario import Scenario, SLOTarget, Telemetry
from onsale_obs.exitrate._series import Series
from onsale_obs.exitrate._signals import Action, RateController, Signals

#: Retries smaller than this (in expected requests) are dropped, so a run can end.
_NEGLIGIBLE = 1e-6


@dataclass(frozen=True, slots=True)
class Tick:
    """One controller decision in a run."""

    t: float
    rate: float
    capacity_rate: float
    queue: float
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class Run:
    """The raw outcome of one simulated on-sale (metrics are computed in ``_report``)."""

    scenario: Scenario
    controller: str
    seed: int
    series: Series
    ticks: tuple[Tick, ...]
    #: When the last waiting user was admitted, if everyone was before the horizon.
    drain_time: float | None
    admitted: int
    mean_wait: float
    max_wait: float


def arrivals_per_second(scenario: Scenario) -> list[int]:
    """Users joining in each second of the horizon (waves spread evenly, totals exact)."""
    room = scenario.waiting_room
    joined = [0] * math.ceil(scenario.horizon)
    joined[0] += room.queued_at_start
    for wave in room.arrivals:
        start, end = int(wave.start), max(int(wave.start) + 1, math.ceil(wave.end))
        span = end - start
        for i in range(span):
            joined[start + i] += round(wave.users * (i + 1) / span) - round(wave.users * i / span)
    return joined


def simulate(
    scenario: Scenario, controller: RateController, *, name: str = "ours", seed: int | None = None
) -> Run:
    """Run ``scenario`` under ``controller``; ``seed`` overrides the scenario's seed."""
    seed = scenario.seed if seed is None else seed
    return _Simulation(scenario, controller, name, seed).run()


class _Simulation:
    def __init__(self, scenario: Scenario, controller: RateController, name: str, seed: int):
        self.s = scenario
        self.controller = controller
        self.name = name
        self.seed = seed
        self.browse_rng = random.Random(f"{seed}:browse")
        self.backend = CheckoutBackend(
            scenario.backend, scenario.slo.latency_threshold, random.Random(f"{seed}:backend")
        )
        self.series = Series(self.backend.buckets)
        self.joined = arrivals_per_second(scenario)
        room = scenario.waiting_room
        slack = (
            int(
                room.browse_time.max + room.retry_delay + room.checkouts_per_user * room.request_gap
            )
            + 2
        )
        self.calendar = [0.0] * (len(self.joined) + slack)
        self.rate = room.initial_rate
        self.queue = 0
        self.fifo: deque[list[int]] = deque()
        self.ticks: list[Tick] = []

    def run(self) -> Run:
        s = self.s
        room = s.waiting_room
        browse = room.browse_time
        mu, sigma = math.log(browse.median), browse.sigma
        lo, hi = browse.min, browse.max
        # a user's checkout requests (hold seats, create the order, pay) come one after
        # the other, request_gap apart; a fractional count weights the last one
        whole, part = divmod(room.checkouts_per_user, 1.0)
        gap = round(room.request_gap)
        steps = [(j * gap, 1.0) for j in range(int(whole))]
        if part > 1e-9:
            steps.append((int(whole) * gap, part))
        last_step = steps[-1][0]
        retry_p, retry_delay = room.retry_probability, round(room.retry_delay)
        tick = max(1, round(s.tick))
        calendar, joined = self.calendar, self.joined
        horizon = len(joined)
        last_join = max((t for t, n in enumerate(joined) if n), default=0)
        last_load = 0
        last_admit: int | None = None
        tokens = 0.0
        admitted = 0
        wait_sum = 0.0
        wait_max = 0.0
        gauss, exp = self.browse_rng.gauss, math.exp  # exp(gauss) is lognormvariate, faster
        t = 0
        while t < horizon:
            arriving = joined[t]
            if arriving:
                self.queue += arriving
                self.fifo.append([t, arriving])
            if t % tick == 0:
                self._tick(t)
            per_second = self.rate / 60.0
            tokens = min(tokens + per_second, per_second + 1.0)
            if self.queue > 0 and tokens >= 1.0:
                k = min(int(tokens), self.queue)
                tokens -= k
                self.queue -= k
                admitted += k
                last_admit = t
                left = k
                while left:
                    head = self.fifo[0]
                    take = min(left, head[1])
                    wait = t - head[0]
                    wait_sum += wait * take
                    wait_max = max(wait_max, wait)
                    head[1] -= take
                    left -= take
                    if head[1] == 0:
                        self.fifo.popleft()
                for _ in range(k):
                    b = exp(gauss(mu, sigma))
                    at = t + int(lo if b < lo else hi if b > hi else b)
                    for offset, weight in steps:
                        calendar[at + offset] += weight
                    if at + last_step > last_load:
                        last_load = at + last_step
            outcome = self.backend.serve(t, calendar[t])
            if retry_p and outcome.errors * retry_p > _NEGLIGIBLE:
                at = min(t + retry_delay, len(calendar) - 1)
                calendar[at] += outcome.errors * retry_p
                last_load = max(last_load, at)
            self.series.record(outcome, self.queue, arriving)
            t += 1
            if (
                t > last_join
                and self.queue == 0
                and t > last_load
                and self.backend.backlog < _NEGLIGIBLE
            ):
                break
        drained = self.queue == 0 and t > last_join
        return Run(
            scenario=s,
            controller=self.name,
            seed=self.seed,
            series=self.series,
            ticks=tuple(self.ticks),
            drain_time=float(last_admit + 1) if drained and last_admit is not None else None,
            admitted=admitted,
            mean_wait=wait_sum / admitted if admitted else 0.0,
            max_wait=wait_max,
        )

    def _tick(self, t: int) -> None:
        rec = self.controller.recommend(self._signals(t))
        self.rate = rec.rate
        self.ticks.append(
            Tick(t, rec.rate, self.s.capacity_rate(t), self.queue, rec.action, rec.reason)
        )

    def _signals(self, t: int) -> Signals:
        return reading(t, self.rate, self.series, self.s.slo, self.s.telemetry)


def reading(
    t: int,
    rate: float,
    series: Series,
    slo: SLOTarget,
    tel: Telemetry,
    utilisation: Callable[[int], float | None] | None = None,
) -> Signals:
    """What a controller reads at ``t`` from ``series`` as Prometheus would show it (nothing
    but the rate during a telemetry outage, no utilisation where the deployment exports
    none); ``utilisation`` (of the data time) replaces the series' own busy share, e.g. a
    shared backend's."""
    if tel.in_outage(t):
        return Signals(time=t, current_rate=rate)
    d = int(tel.data_time(t))
    return Signals(
        time=t,
        current_rate=rate,
        burn_short=series.burn_rate(d, tel.short_window, slo.objective),
        burn_long=series.burn_rate(d, tel.long_window, slo.objective),
        latency_p95=series.quantile(d, tel.latency_window, slo.latency_quantile),
        latency_threshold=slo.latency_threshold,
        queue_length=series.queue_at(d),
        utilisation=tel.exported(
            series.utilisation(d, tel.latency_window) if utilisation is None else utilisation(d)
        ),
        arrivals=series.arrivals(d, 60.0),
        observed_at=float(d),
    )
