"""Per-second counters of a simulated on-sale, and the Prometheus-style readings taken from them.

Counters are kept cumulative (like Prometheus counters), so any window is two lookups:
``increase(x[w])`` at data time ``d`` is ``cum[d] - cum[d - w]``.
"""

from __future__ import annotations

from onsale_obs.exitrate._checkout import SecondOutcome


class Series:
    """Cumulative per-second counters; index ``t`` holds the total over seconds ``< t``."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bucket_bounds = buckets
        self.requests = [0.0]
        self.errors = [0.0]
        self.ok = [0.0]
        self.fast = [0.0]
        self.busy = [0.0]
        self.capacity = [0.0]
        self.joined = [0.0]
        self.buckets: list[list[float]] = [[0.0] for _ in buckets]
        #: Users waiting at the end of each second (a gauge, not cumulative).
        self.queue: list[float] = []

    def record(self, outcome: SecondOutcome, queue: float, joined: float) -> None:
        """Append one second."""
        self.requests.append(self.requests[-1] + outcome.requests)
        self.errors.append(self.errors[-1] + outcome.errors)
        self.ok.append(self.ok[-1] + outcome.ok)
        self.fast.append(self.fast[-1] + outcome.fast)
        self.busy.append(self.busy[-1] + outcome.busy)
        self.capacity.append(self.capacity[-1] + outcome.capacity)
        self.joined.append(self.joined[-1] + joined)
        for cum, value in zip(self.buckets, outcome.buckets, strict=True):
            cum.append(cum[-1] + value)
        self.queue.append(queue)

    @property
    def seconds(self) -> int:
        """Seconds recorded."""
        return len(self.queue)

    def queue_at(self, end: int) -> float | None:
        """Users waiting in the second before ``end`` (``None`` outside the series)."""
        return self.queue[end - 1] if 0 < end <= len(self.queue) else None

    @staticmethod
    def increase(cum: list[float], end: int, window: float) -> float:
        """Sum over the seconds ``[end - window, end)`` (clipped at 0)."""
        end = max(0, min(end, len(cum) - 1))
        start = max(0, end - int(window))
        return cum[end] - cum[start]

    def burn_rate(self, end: int, window: float, objective: float) -> float | None:
        """Error ratio over the window divided by the error budget; ``None`` without requests."""
        total = self.increase(self.requests, end, window)
        if total <= 0:
            return None
        return self.increase(self.errors, end, window) / total / (1 - objective)

    def quantile(self, end: int, window: float, q: float) -> float | None:
        """``histogram_quantile(q, ...)`` over the window, as Prometheus interpolates it."""
        total = self.increase(self.ok, end, window)
        if total <= 0:
            return None
        rank = q * total
        lower, below = 0.0, 0.0
        for bound, cum in zip(self.bucket_bounds, self.buckets, strict=True):
            count = self.increase(cum, end, window)
            if count >= rank:
                if count <= below:
                    return bound
                return lower + (bound - lower) * (rank - below) / (count - below)
            lower, below = bound, count
        return self.bucket_bounds[-1]

    def utilisation(self, end: int, window: float) -> float | None:
        """Average busy share of the workers over the window."""
        seconds = min(end, len(self.busy) - 1) - max(0, end - int(window))
        if seconds <= 0:
            return None
        return self.increase(self.busy, end, window) / seconds

    def arrivals(self, end: int, window: float) -> float | None:
        """Users joining the waiting room per minute over the window."""
        seconds = min(end, len(self.joined) - 1) - max(0, end - int(window))
        if seconds <= 0:
            return None
        return self.increase(self.joined, end, window) * 60.0 / seconds
