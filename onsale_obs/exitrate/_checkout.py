"""The simulated checkout backend: workers, a bounded queue, latency that grows with load.

Each simulated second the requests that arrive are served by ``workers`` parallel workers
with a log-normal service time. Two queueing effects make latency grow:

- below capacity, the Erlang-C-like wait of an M/M/c queue at the utilisation of the last
  half minute
  (Sakasegawa's approximation ``Wq = s * rho^(sqrt(2(c+1)) - 1) / (c (1 - rho))``), which
  stretches every service time by ``1 + Wq / s``;
- above capacity, a backlog: requests that cannot start this second wait for the ones ahead
  of them (``backlog / capacity`` seconds).

The queue is bounded: a request that would wait longer than ``queue_timeout`` is rejected
at once (a 503), which is where overload errors come from; a small ``base_error_rate``
adds the stray errors of a healthy system. Outcomes are computed for the second's requests
as a whole (expected shares, closed-form), so a run costs the same however many requests
it holds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from onsale_obs.exitrate._scenario import Backend

#: Upper bounds (seconds) of the latency histogram the signals read, like a Prometheus
#: histogram's ``le`` labels; the SLO threshold is added to them.
DEFAULT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
_SQRT2 = math.sqrt(2.0)
#: The utilisation the M/M/c wait is computed at is averaged over about this many seconds:
#: a stationary queue takes time to build (tens of seconds near saturation), and a burst
#: of a few seconds over capacity is the backlog's business, not the stationary wait's.
_SMOOTHING = 30.0
#: The stationary wait is computed at most at this utilisation; beyond it the backlog rules.
_RHO_CAP = 0.98


@dataclass(slots=True)
class SecondOutcome:
    """What happened to one second's checkout requests."""

    requests: float
    errors: float
    ok: float
    #: ``ok`` requests at or below each bucket bound (cumulative, like ``le`` buckets).
    buckets: list[float]
    #: ``ok`` requests at or below the SLO latency threshold.
    fast: float
    busy: float
    capacity: float


class CheckoutBackend:
    """The backend's state across seconds: backlog and smoothed utilisation."""

    def __init__(self, spec: Backend, threshold: float, rng: random.Random) -> None:
        self.spec = spec
        self.threshold = threshold
        self.buckets = tuple(sorted({*DEFAULT_BUCKETS, threshold}))
        self._rng = rng
        self._backlog = 0.0
        self._rho = 0.0
        self._median = spec.service_time.median
        self._sigma = max(spec.service_time.sigma, 1e-6)

    @property
    def backlog(self) -> float:
        """Requests waiting for a worker."""
        return self._backlog

    def serve(self, t: float, arrivals: float) -> SecondOutcome:
        """Serve the requests arriving in second ``t``."""
        spec = self.spec
        workers = spec.workers_at(t)
        capacity = workers / spec.service_time.mean
        before = self._backlog
        work = before + arrivals
        served = min(work, capacity)
        after = work - served
        limit = capacity * spec.queue_timeout
        shed = max(0.0, after - limit)
        after -= shed
        self._backlog = after
        accepted = arrivals - shed
        drawn = self._poisson(accepted * spec.base_error_rate) if spec.base_error_rate else 0
        stray = min(float(drawn), accepted)
        # a software fault fails its share at once (no work done, no latency added)
        stray += (accepted - stray) * spec.fault_at(t)
        ok = accepted - stray
        self._rho += (min(arrivals / capacity, 2.0) - self._rho) / _SMOOTHING
        wait = (before + after) / 2 / capacity
        stretch = 1.0 + _mmc_wait(min(self._rho, _RHO_CAP), workers)
        scale = stretch * self._median
        buckets = [ok * self._share_within(bound, wait, scale) for bound in self.buckets]
        fast = ok * self._share_within(self.threshold, wait, scale)
        return SecondOutcome(
            requests=arrivals,
            errors=shed + stray,
            ok=ok,
            buckets=buckets,
            fast=fast,
            busy=served / capacity if capacity > 0 else 1.0,
            capacity=capacity,
        )

    def _share_within(self, bound: float, wait: float, scale: float) -> float:
        """Share of requests whose latency ``wait + stretch * service`` is <= ``bound``."""
        room = bound - wait
        if room <= 0:
            return 0.0
        z = math.log(room / scale) / self._sigma
        return 0.5 * math.erfc(-z / _SQRT2)

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 30:  # normal approximation; exactness does not matter at this size
            return max(0, round(self._rng.gauss(mean, math.sqrt(mean))))
        limit = math.exp(-mean)
        count, product = 0, self._rng.random()
        while product > limit:
            count += 1
            product *= self._rng.random()
        return count


def _mmc_wait(rho: float, workers: float) -> float:
    """Mean wait in queue of an M/M/c queue per unit of mean service time (Sakasegawa)."""
    if rho <= 0:
        return 0.0
    c = max(workers, 1.0)
    wait: float = rho ** (math.sqrt(2 * (c + 1)) - 1) / (c * (1 - rho))
    return wait
