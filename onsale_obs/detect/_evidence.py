"""Evidence from request counts (Poisson) that an event is surging: how strongly its readings
say its rate is above a level, and that they trace a growing curve rather than a flat burst.

Readings are ``(time, seconds covered, rate)``: ``rate * seconds`` requests counted over the
``seconds`` before ``time``. Both tests are log-likelihood ratios (nats), so one threshold
means about the same false-alarm odds whatever the reading interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The two rates the level test weighs against each other, as fractions of the level: their
#: log-likelihood ratio per second is positive exactly when the rate is above ~the level.
LOW: float = 0.8
HIGH: float = 1.25
_LOG_RATIO = math.log(HIGH / LOW)
#: Growth rates (1/s) of the exponential curves tried: doubling every 3.5 s to every 28 s.
GROWTH_RATES: tuple[float, ...] = (0.025, 0.04, 0.06, 0.09, 0.13, 0.2)
#: Where in a reading a step may start (the fraction of the reading it covers).
ONSET_PARTS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
#: The usual rate assumed when it is unknown or ~0 (req/s): keeps the logarithms finite.
MIN_USUAL = 0.05

Reading = tuple[float, float, float]


def above_level(score: float, rate: float, seconds: float, level: float) -> float:
    """One step of a one-sided CUSUM: ``score`` plus the evidence of one reading that the
    rate is ``HIGH * level`` rather than ``LOW * level`` (never below 0). It grows by about
    ``seconds * (rate * 0.45 - 0.45 * level)`` nats, so it climbs only while the rate is above
    ``level`` and the faster the further above; a rate under the level drains it."""
    if level <= 0 or seconds <= 0:
        return score
    count = rate * seconds
    return max(0.0, score + count * _LOG_RATIO - (HIGH - LOW) * level * seconds)


def growth(readings: Sequence[Reading], now: float, usual: float, cap: float = math.inf) -> float:
    """How much better (log-likelihood, nats) the readings are explained by a surge than by a
    bot burst. A burst: ``usual``, then from some time on (often within a reading, which counts
    only part of it) a constant extra rate, the whole at most ``cap`` req/s. A surge: a rate
    growing on top of ``usual`` (an exponential curve, or a linear ramp from some time on), or
    a step of any height. Near 0 or negative for a burst; large for a surge building up or
    already well above ``cap``."""
    if not readings:
        return 0.0
    base = max(usual, MIN_USUAL)
    limit = max(0.0, cap - base)
    counts = [rate * seconds for _, seconds, rate in readings]
    seconds = [s for _, s, _ in readings]
    # each reading's midpoint, start and end, in seconds before now (<= 0)
    ages = [t - s / 2 - now for t, s, _ in readings]
    starts = [t - s - now for t, s, _ in readings]
    ends = [t - now for t, _, _ in readings]
    best_burst = _fit(counts, seconds, base, [0.0] * len(counts))[0]  # nothing extra at all
    best_surge = -math.inf
    for start, end in zip(starts, ends, strict=True):
        for part in ONSET_PARTS:
            onset = end - part * (end - start)
            shape = [
                min(1.0, max(0.0, (e - onset) / (e - s))) for s, e in zip(starts, ends, strict=True)
            ]
            free, height = _fit(counts, seconds, base, shape)
            best_surge = max(best_surge, free)
            if height > limit:  # too high for a burst: the best a burst can do is the cap
                free = _loglik(counts, seconds, base, shape, limit)
            best_burst = max(best_burst, free)
    for g in GROWTH_RATES:
        shape = [math.exp(g * a) for a in ages]
        best_surge = max(best_surge, _fit(counts, seconds, base, shape)[0])
    for onset in starts[:-1]:
        shape = [max(0.0, a - onset) / -onset for a in ages]
        best_surge = max(best_surge, _fit(counts, seconds, base, shape)[0])
    return best_surge - best_burst


def _fit(
    counts: Sequence[float], seconds: Sequence[float], base: float, shape: Sequence[float]
) -> tuple[float, float]:
    """The log-likelihood (up to a constant) of Poisson ``counts`` under the rate ``base +
    a * shape`` with the best ``a >= 0`` (Newton's method on a concave function), and ``a``."""
    exposure = sum(f * s for f, s in zip(shape, seconds, strict=True))
    a = 0.0
    if exposure > 0:
        extra = sum(counts) - base * sum(seconds)
        a = max(0.0, extra / exposure)
        for _ in range(8):
            slope = -exposure
            curve = 0.0
            for c, f in zip(counts, shape, strict=True):
                if f > 0 and c > 0:
                    r = base + a * f
                    slope += c * f / r
                    curve += c * f * f / (r * r)
            if curve <= 0:
                break
            step = slope / curve
            a = max(0.0, a + step)
            if abs(step) < 1e-6 * (1.0 + a):
                break
    return _loglik(counts, seconds, base, shape, a), a


def _loglik(
    counts: Sequence[float],
    seconds: Sequence[float],
    base: float,
    shape: Sequence[float],
    a: float,
) -> float:
    total = 0.0
    for c, f, s in zip(counts, shape, seconds, strict=True):
        mu = (base + a * f) * s
        total += (c * math.log(mu) if c > 0 else 0.0) - mu
    return total
