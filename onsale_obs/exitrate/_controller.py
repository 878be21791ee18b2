"""The exit-rate controller: back off fast on burn, latency or saturation; probe up slowly.

Pure and clock-driven: the time comes in with the signals, nothing is read or written
outside the object, and the same readings in the same order give the same answers.
The design and every default are explained in ``README_SECTION.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate import _format as fmt
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.exitrate._signals import Action, Recommendation, Signals, usable

#: Smallest relative difference between two rates that counts as a change.
_SAME = 1e-9
#: Severity of the evidence behind a cut: a cut only follows another within cut_interval
#: on more severe evidence.
_SATURATION, _LATENCY, _BURN = 1, 2, 3
#: Slices of the utilisation window the exit rate behind a reading is averaged over.
_POINTS = 5
#: Share of a reading's admissions that must be known to cut relative to them ...
_KNOWN_TO_CUT = 0.9
#: ... and to probe from them (the unknown rest counts as no admissions: the safe side).
_KNOWN_TO_PROBE = 0.5
#: Growth of the capacity estimate that lifts the ceiling left by a latency or burn cut.
_CAPACITY_GROWTH = 0.1
#: Utilisation below this carries too little load to estimate the capacity from.
_MIN_UTILISATION = 0.05
#: Decays are computed over at most this many seconds since the previous reading, so one
#: late call after a long pause does not drop the rate in one go.
_MAX_DECAY_SPAN = 300.0


@dataclass(frozen=True, slots=True)
class _Reading:
    """The usable part of a reading (missing, invalid or stale values are ``None``)."""

    burn_short: float | None
    burn_long: float | None
    latency_p95: float | None
    latency_threshold: float | None
    queue_length: float | None
    utilisation: float | None
    stale_for: float | None
    observed_at: float | None

    @property
    def missing(self) -> list[str]:
        """Names of the health signals an increase needs and this reading lacks."""
        names = []
        if self.burn_short is None:
            names.append("short burn rate")
        if self.burn_long is None:
            names.append("long burn rate")
        if self.latency_p95 is None or self.latency_threshold is None:
            names.append("latency p95")
        return names


class ExitRateController:
    """Recommends a waiting room's exit rate (users/min) from the on-sale's signals.

    Each call to :meth:`recommend` decides in this order; the first rule that applies wins:

    1. bounds: a current rate outside ``[min_rate, max_rate]`` is brought inside;
    2. back off: short *and* long burn at or above the alert threshold (-40%), p95 latency
       above its threshold (-25%), or the current rate loading the backend to
       ``saturation`` (back to the target) cut the rate, relative to the exit rate the
       reading reflects, by at most ``max_decrease``; one cut per incident (another only
       after ``cut_interval``, or at once on more severe evidence); a latency or burn cut
       leaves a ceiling just under the rate where it happened;
    3. outage: without burn rates or latency for ``outage_after`` seconds the rate decays
       toward ``safe_rate`` (never up);
    4. hold: a signal missing or stale, the queue empty (not demand-limited), the last
       change too recent to have shown (``admission_lag + signal_lag``), or a signal in
       its hold band (burn above the probe limits, p95 above ``latency_margin`` x the
       threshold, utilisation within ``utilisation_band`` under the target);
    5. probe: step toward ``target_utilisation`` of the capacity estimate (between
       ``min_increase`` and ``max_increase``, under the ceiling), or by ``blind_increase``
       for a deployment that has no utilisation signal at all.

    The capacity estimate is Little's law turned around: the exit rate behind a reading
    (past rates weighted by the admission-to-checkout lag) divided by the utilisation it
    caused, smoothed, and forgotten at every cut. Every answer carries its reason in
    words, e.g. ``burn 18x/15x over 1m/5m >= 14.4x: -40%``.
    """

    def __init__(self, config: ExitRateConfig | None = None) -> None:
        self.config = config or ExitRateConfig()
        self._last_rate: float | None = None
        self._last_time: float | None = None
        self._last_change_at: float | None = None
        self._last_decrease_at: float | None = None
        self._last_severity = 0
        #: Where latency or errors last broke (less a margin): probes stay below it until
        #: the capacity estimate grows past the one learnt after that cut.
        self._ceiling: float | None = None
        self._ceiling_capacity: float | None = None
        self._blind_since: float | None = None
        #: (time, rate) from each change on: which rate the backend saw at a given time.
        self._history: list[tuple[float, float]] = []
        #: Smoothed capacity estimate, users/min at full utilisation (None: not known).
        self._capacity: float | None = None
        #: Whether a utilisation reading ever came: once it has, its absence holds.
        self._has_utilisation = False

    @property
    def last_change_at(self) -> float | None:
        """When the rate last changed (by this controller or from outside), or ``None``."""
        return self._last_change_at

    def recommend(self, signals: Signals) -> Recommendation:
        """The exit rate to apply now, with the reason.

        Raises ``BadInputError`` when ``signals.time`` is not a finite number: without a
        clock no lag can be judged.
        """
        now = signals.time
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise BadInputError(f"expected a finite number of seconds, got {now!r}.", field="time")
        base = usable(signals.current_rate)
        prefix = ""
        if base is None:
            base = self._last_rate if self._last_rate is not None else self.config.safe
            prefix = f"current rate unknown, using {fmt.rate(base)}; "
        if self._last_rate is None or not _same(base, self._last_rate):
            # the first rate, or one changed from outside: let it show before probing
            self._last_change_at = now
            self._remember(now, base)
        reading = self._read(signals)
        if reading.missing:
            self._blind_since = now if self._blind_since is None else self._blind_since
        else:
            self._blind_since = None
        self._learn(now, reading)
        rate, action, reason = self._decide(now, base, reading)
        reason = prefix + reason
        if not _same(rate, base):
            self._last_change_at = now
            self._remember(now, rate)
            if rate < base:
                self._last_decrease_at = now
                if action == "decrease":
                    self._capacity = None  # it was wrong, or the capacity changed
        self._last_rate = rate
        self._last_time = now
        return Recommendation(
            rate, reason, action, signals.current_rate, now, signals, self._capacity
        )

    @property
    def capacity_estimate(self) -> float | None:
        """The backend's capacity as an exit rate (users/min at full utilisation), learnt
        from utilisation readings; ``None`` until known and after every cut."""
        return self._capacity

    def _learn(self, now: float, r: _Reading) -> None:
        """Fold a utilisation reading into the capacity estimate (Little's law: the rate
        behind the reading / the utilisation it caused)."""
        c = self.config
        u = r.utilisation
        self._has_utilisation = self._has_utilisation or u is not None
        if u is None or not _MIN_UTILISATION <= u < c.saturation:
            return  # too little load to measure, or saturated (only an upper bound)
        found = self._seen_rate(now, r)
        if found is None or found[1] < _KNOWN_TO_PROBE or found[0] <= 0:
            return
        sample = found[0] / u
        if self._capacity is None:
            self._capacity = sample
        else:
            self._capacity += c.capacity_smoothing * (sample - self._capacity)
        if self._ceiling is not None and found[1] >= _KNOWN_TO_CUT:
            # compared only on well-known readings: partly known ones read low
            if self._ceiling_capacity is None:
                self._ceiling_capacity = self._capacity
            elif self._capacity > self._ceiling_capacity * (1 + _CAPACITY_GROWTH):
                self._ceiling = self._ceiling_capacity = None  # more capacity: probe again

    def _read(self, signals: Signals) -> _Reading:
        stale_for = None
        observed = usable(signals.observed_at)
        if observed is not None and signals.time - observed > self.config.stale_after:
            stale_for = signals.time - observed
            return _Reading(None, None, None, None, None, None, stale_for, observed)
        threshold = usable(signals.latency_threshold)
        utilisation = usable(signals.utilisation)
        return _Reading(
            burn_short=usable(signals.burn_short),
            burn_long=usable(signals.burn_long),
            latency_p95=usable(signals.latency_p95),
            latency_threshold=threshold if threshold else None,
            queue_length=usable(signals.queue_length),
            utilisation=None if utilisation is None else min(utilisation, 1.0),
            stale_for=None,
            observed_at=observed,
        )

    def _decide(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str]:
        c = self.config
        if base > c.max_rate:
            return c.max_rate, "decrease", f"above the maximum {fmt.rate(c.max_rate)}"
        if base < c.min_rate:
            return c.min_rate, "increase", f"below the minimum {fmt.rate(c.min_rate)}"
        backoff = self._backoff(now, base, r)
        if backoff is not None:
            return backoff
        if r.missing:
            return self._blind(now, base, r)
        return self._probe(now, base, r)

    def _backoff(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str] | None:
        c = self.config
        seen = self._attributed(now, r, _KNOWN_TO_CUT) or base
        # each trigger: the rate it wants (relative to the rate the reading reflects), why,
        # and how severe it is (saturation: a precaution; latency: users wait; burn: fail)
        wants: list[tuple[float, str, int]] = []
        if (
            r.burn_short is not None
            and r.burn_long is not None
            and r.burn_short >= c.burn_threshold
            and r.burn_long >= c.burn_threshold
        ):
            text = (
                f"burn {fmt.times(r.burn_short)}/{fmt.times(r.burn_long)} over "
                f"{fmt.seconds(c.short_window)}/{fmt.seconds(c.long_window)} "
                f">= {fmt.times(c.burn_threshold)}"
            )
            wants.append((seen * (1 - c.burn_backoff), text, _BURN))
        if (
            r.latency_p95 is not None
            and r.latency_threshold is not None
            and r.latency_p95 > r.latency_threshold
        ):
            text = f"latency p95 {fmt.seconds(r.latency_p95)} > {fmt.seconds(r.latency_threshold)}"
            wants.append((seen * (1 - c.latency_backoff), text, _LATENCY))
        saturated = self._saturation(base, seen, r)
        if saturated is not None:
            wants.append((*saturated, _SATURATION))
        if not wants:
            return None
        why = ", ".join(text for _, text, _ in wants)
        if not _same(seen, base):
            why += f" (readings reflect {fmt.rate(seen)})"
        wanted = max(c.min_rate, base * (1 - c.max_decrease), min(w for w, _, _ in wants))
        if wanted >= base or _same(wanted, base):
            if base <= c.min_rate:
                return base, "hold", f"{why}; already at the minimum {fmt.rate(c.min_rate)}"
            return base, "hold", f"{why}; already cut to {fmt.rate(base)}"
        severity = max(level for _, _, level in wants)
        since = None if self._last_decrease_at is None else now - self._last_decrease_at
        # one cut per incident: readings keep showing the old overload for a while after a
        # cut, so only more severe evidence (latency after saturation, errors after
        # latency) cuts again before cut_interval
        if since is not None and since < c.cut_interval and severity <= self._last_severity:
            return (
                base,
                "hold",
                f"{why}; cut {fmt.seconds(since)} ago, next cut allowed after "
                f"{fmt.seconds(c.cut_interval)}",
            )
        self._last_severity = severity
        if severity >= _LATENCY:
            self._ceiling = seen * (1 - c.ceiling_margin)
            self._ceiling_capacity = None
        return wanted, "decrease", f"{why}: {fmt.change(wanted / base - 1)}"

    def _saturation(self, base: float, seen: float, r: _Reading) -> tuple[float, str] | None:
        """The rate to fall back to when the current rate loads the backend to saturation:
        judged on the capacity estimate when there is one, else on the reading itself."""
        c = self.config
        if self._capacity is not None:
            at_base = base / self._capacity
            wanted = c.target_utilisation * self._capacity
        elif r.utilisation is not None:
            at_base = r.utilisation * base / seen
            wanted = seen * min(0.95, c.target_utilisation / max(r.utilisation, 1e-9))
        else:
            return None
        if at_base < c.saturation:
            return None
        return wanted, f"utilisation {fmt.share(at_base)} >= {fmt.share(c.saturation)}"

    def _blind(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str]:
        c = self.config
        what = (
            f"signals stale for {fmt.seconds(r.stale_for)}"
            if r.stale_for is not None
            else f"{', '.join(r.missing)} unknown"
        )
        blind_for = now - (self._blind_since if self._blind_since is not None else now)
        if blind_for < c.outage_after:
            return base, "hold", f"{what}: never increase on missing signals"
        if base <= c.safe:
            return base, "hold", f"{what} for {fmt.seconds(blind_for)}; at or below the safe rate"
        span = 0.0 if self._last_time is None else max(0.0, now - self._last_time)
        factor = (1 - c.decay_per_minute) ** (min(span, _MAX_DECAY_SPAN) / 60)
        rate = max(c.safe, base * factor)
        if _same(rate, base):
            return base, "hold", f"{what} for {fmt.seconds(blind_for)}; decaying toward safe rate"
        return (
            rate,
            "decay",
            f"{what} for {fmt.seconds(blind_for)} (> {fmt.seconds(c.outage_after)}): toward "
            f"the safe rate {fmt.rate(c.safe)}: {fmt.change(rate / base - 1)}",
        )

    def _probe(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str]:
        c = self.config
        assert r.burn_short is not None
        assert r.burn_long is not None
        assert r.latency_p95 is not None
        assert r.latency_threshold is not None
        if r.queue_length is None:
            return base, "hold", "queue length unknown: never increase on missing signals"
        if r.queue_length <= 0:
            return base, "hold", "queue empty: not demand-limited"
        if self._last_change_at is not None and now - self._last_change_at < c.effect_lag:
            waited = now - self._last_change_at
            return (
                base,
                "hold",
                f"last change {fmt.seconds(waited)} ago, its effect shows after "
                f"{fmt.seconds(c.effect_lag)}",
            )
        if r.burn_short > c.probe_max_burn_short:
            return (
                base,
                "hold",
                f"burn {fmt.times(r.burn_short)} over {fmt.seconds(c.short_window)} above "
                f"the probe limit {fmt.times(c.probe_max_burn_short)}",
            )
        if r.burn_long > c.probe_max_burn_long and not self._explained(now):
            return (
                base,
                "hold",
                f"burn {fmt.times(r.burn_long)} over {fmt.seconds(c.long_window)} above "
                f"the probe limit {fmt.times(c.probe_max_burn_long)}",
            )
        ceiling = c.latency_margin * r.latency_threshold
        if r.latency_p95 > ceiling:
            return (
                base,
                "hold",
                f"latency p95 {fmt.seconds(r.latency_p95)} in the hold band "
                f"{fmt.seconds(ceiling)}..{fmt.seconds(r.latency_threshold)}",
            )
        if r.utilisation is not None:
            if self._capacity is None:
                return base, "hold", "capacity not known yet: readings do not reflect the rate"
            at_base = base / self._capacity
            floor = c.target_utilisation - c.utilisation_band
            if at_base >= floor:
                return (
                    base,
                    "hold",
                    f"utilisation {fmt.share(at_base)} in the hold band "
                    f"{fmt.share(floor)}..{fmt.share(c.saturation)}",
                )
            wanted = c.target_utilisation / max(at_base, 1e-9) - 1
            step = min(c.max_increase, max(c.min_increase, wanted))
            why = (
                f"utilisation {fmt.share(at_base)} < {fmt.share(floor)} "
                f"(capacity ~{fmt.rate(self._capacity)})"
            )
        elif self._has_utilisation:
            return base, "hold", "utilisation unknown: never increase on missing signals"
        else:
            step = c.blind_increase
            why = "no utilisation signal"
        top = c.max_rate if self._ceiling is None else min(c.max_rate, self._ceiling)
        if base >= top or _same(base, top):
            if top < c.max_rate:
                return (
                    base,
                    "hold",
                    f"at {fmt.rate(top)}, just under where latency or errors last broke",
                )
            return base, "hold", f"at the maximum {fmt.rate(c.max_rate)}"
        rate = min(top, base * (1 + step))
        return (
            rate,
            "increase",
            f"healthy (burn {fmt.times(r.burn_short)}, p95 {fmt.seconds(r.latency_p95)}), "
            f"{r.queue_length:,.0f} waiting, {why}: {fmt.change(rate / base - 1)}",
        )

    def _explained(self, now: float) -> bool:
        """Whether the long window's burn is the incident the last cut answered: that cut
        came within the long window (and the caller saw the short window clean again)."""
        if self._last_decrease_at is None:
            return False
        return now - self._last_decrease_at <= self.config.long_window + self.config.signal_lag

    def _remember(self, now: float, rate: float) -> None:
        self._history.append((now, rate))
        horizon = now - self.config.effect_lag - self.config.utilisation_window - 600.0
        while len(self._history) > 1 and self._history[1][0] <= horizon:
            self._history.pop(0)

    def _seen_rate(self, now: float, r: _Reading) -> tuple[float, float] | None:
        """The exit rate behind a utilisation reading, and how much of it is known.

        Past rates are weighted by how many of the users each admitted reached checkout
        during the reading's window (the admission to checkout lag is log-normal:
        ``admission_lag`` median, ``admission_lag_spread``). Admissions before the first
        reading are unknown and counted as none; the second value is the share of the
        weight that falls after the first reading. Counting the unknown as none makes the
        load look heavier per admitted user, the safe side for an increase.
        """
        if not self._history:
            return None
        c = self.config
        window = max(c.utilisation_window, 1.0)
        data_end = r.observed_at if r.observed_at is not None else now - c.signal_lag + window / 2
        data_end = min(now, data_end)
        first = self._history[0][0]
        seen = covered = 0.0
        for k in range(_POINTS):  # the middles of _POINTS equal slices of the window
            at = data_end - window * (k + 0.5) / _POINTS
            covered += self._lag_cdf(at - first) / _POINTS
            for i, (since, rate) in enumerate(self._history):
                # users admitted in [since, until) reach checkout at `at` if their lag is
                # in (at - until, at - since]
                until = self._history[i + 1][0] if i + 1 < len(self._history) else now
                share = self._lag_cdf(at - since) - self._lag_cdf(at - until)
                seen += rate * max(0.0, share) / _POINTS
        return seen, covered

    def _attributed(self, now: float, r: _Reading, needed: float) -> float | None:
        """The exit rate behind the reading when at least ``needed`` of it is known."""
        found = self._seen_rate(now, r)
        if found is None or found[1] < needed or found[0] <= 0:
            return None
        return found[0]

    def _lag_cdf(self, lag: float) -> float:
        """Share of admitted users who reached checkout within ``lag`` seconds."""
        c = self.config
        if lag <= 0:
            return 0.0
        if c.admission_lag <= 0:
            return 1.0
        if c.admission_lag_spread <= 0:
            return 1.0 if lag >= c.admission_lag else 0.0
        z = math.log(lag / c.admission_lag) / c.admission_lag_spread
        return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(1.0, abs(a), abs(b))
