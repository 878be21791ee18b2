"""Controllers to compare against: fixed rates, AIMD, and an oracle that knows the capacity."""

from __future__ import annotations

from collections.abc import Callable

from onsale_obs.exitrate import _format as fmt
from onsale_obs.exitrate._signals import Action, Recommendation, Signals, usable


class FixedRate:
    """What operators do today: pick a number ("300 or 1000 per minute?") and keep it."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def recommend(self, signals: Signals) -> Recommendation:
        """Always ``rate``."""
        return Recommendation(
            self.rate,
            f"fixed at {fmt.rate(self.rate)}",
            _direction(signals.current_rate, self.rate),
            signals.current_rate,
            signals.time,
            signals,
        )


class AIMDRate:
    """Additive increase, multiplicative decrease on the rate, as Netflix's ``AIMDLimit``
    does on a concurrency limit: ``+step`` per reading while healthy and the queue is not
    empty, ``x backoff`` when the short burn rate or p95 latency is over its threshold (at
    most once per ``decrease_interval``, like TCP's once per round trip). It does not know
    the admission or signal lag; that is the point of comparing against it.
    """

    def __init__(
        self,
        *,
        step: float,
        backoff: float = 0.75,
        burn_threshold: float = 14.4,
        min_rate: float = 100.0,
        max_rate: float = 100_000.0,
        decrease_interval: float = 60.0,
    ) -> None:
        self.step = step
        self.backoff = backoff
        self.burn_threshold = burn_threshold
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.decrease_interval = decrease_interval
        self._last_decrease: float | None = None

    def recommend(self, signals: Signals) -> Recommendation:
        """One AIMD step."""
        base = signals.current_rate
        burn = usable(signals.burn_short)
        p95 = usable(signals.latency_p95)
        threshold = usable(signals.latency_threshold)
        queue = usable(signals.queue_length)
        congested = (burn is not None and burn >= self.burn_threshold) or (
            p95 is not None and threshold is not None and p95 > threshold
        )
        now = signals.time
        if congested:
            if (
                self._last_decrease is not None
                and now - self._last_decrease < self.decrease_interval
            ):
                return self._answer(base, "hold", "congested; cut recently", signals)
            self._last_decrease = now
            rate = max(self.min_rate, base * self.backoff)
            return self._answer(rate, "decrease", "congested: x" + f"{self.backoff:g}", signals)
        if burn is None or p95 is None or threshold is None or queue is None:
            return self._answer(base, "hold", "signals missing", signals)
        if queue <= 0:
            return self._answer(base, "hold", "queue empty", signals)
        rate = min(self.max_rate, base + self.step)
        return self._answer(rate, "increase", f"healthy: +{self.step:,.0f}/min", signals)

    @staticmethod
    def _answer(rate: float, action: Action, reason: str, signals: Signals) -> Recommendation:
        return Recommendation(rate, reason, action, signals.current_rate, signals.time, signals)


class OracleRate:
    """Knows the backend's true capacity at every moment (no signal lag, no estimate) and
    admits ``utilisation`` of it, converted to users/min by Little's law. No foresight: it
    learns of a capacity change when it happens, like a perfect dashboard would."""

    def __init__(self, capacity_rate: Callable[[float], float], utilisation: float = 0.9) -> None:
        self.capacity_rate = capacity_rate
        self.utilisation = utilisation

    def recommend(self, signals: Signals) -> Recommendation:
        """``utilisation`` x the capacity now."""
        capacity = self.capacity_rate(signals.time)
        rate = self.utilisation * capacity
        base = signals.current_rate
        return Recommendation(
            rate,
            f"{self.utilisation:.0%} of the true capacity {fmt.rate(capacity)}",
            _direction(base, rate),
            base,
            signals.time,
            signals,
        )


def _direction(before: float, after: float) -> Action:
    if after > before:
        return "increase"
    return "decrease" if after < before else "hold"
