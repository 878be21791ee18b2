"""The exit-rate controller: cut to what the backend sustains on a capacity loss, hold through
a software fault, ramp fast while every signal is healthy and the queue is long.

Pure and clock-driven: the time comes in with the signals, nothing is read or written
outside the object, and the same readings in the same order give the same answers.
The design and every default are explained in the README's "Exit-rate controller" section.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

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
#: ... and to cut again on the share an overload sheds while latency shows it too (the
#: unknown rest, counted as no admissions, reads the backend as sustaining less: a deeper
#: cut). Waiting for 90% kept a start at twice the capacity shedding half its checkouts for
#: minutes on a long browse time, with the fitted lag longer still.
_KNOWN_TO_RECUT = 0.5
#: Growth of the capacity estimate that lifts the ceiling left by a latency or burn cut.
_CAPACITY_GROWTH = 0.1
#: Utilisation below this carries too little load to estimate the capacity from.
_MIN_UTILISATION = 0.05
#: Candidate admission-to-checkout lags (median seconds, log spread) the controller fits
#: to its own steps when ``learn_lag`` is on: browse times from 10 s to 5 minutes.
_LAG_MEDIANS = (10.0, 15.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0, 160.0, 240.0, 300.0)
_LAG_SPREADS = (0.5, 0.9, 1.3)
#: The spans of readings below were set for readings 15 s apart (``serve``'s default
#: interval, a 15 s scrape) and are kept as spans of time at any other cadence. Counted in
#: readings, readings a minute apart waited five minutes for a first lag fit, three for an
#: early estimate, and never looked settled (tuning seeds 1-20: drains up to 0.15 T* slower).
_CADENCE = 15.0
#: However far apart, a lag fit and an early estimate take at least this many readings.
_LEAST_READINGS = 3
#: Readings (data time, utilisation) fitted to: those of the last ``_FIT_WINDOW`` seconds
#: (12 at 15 s), once they span ``_FIT_LEAST`` (6 at 15 s); kept ``_FIT_SPAN`` back.
_FIT_WINDOW = 165.0
_FIT_LEAST = 75.0
_FIT_SPAN = 900.0
#: A lag fit is only informative when the rate changed by this much within the span.
_FIT_MIN_STEP = 0.15
#: Candidates within this much of the best fit are ties; the longest lag among them wins
#: (the safe side: a longer lag credits an increase later, so capacity reads lower).
_FIT_TIE = 1.05
#: Probes wait until the utilisation readings of this span (at least two readings long)
#: agree within this band: after a change the load keeps arriving for as long as the
#: slowest browsers take.
_SETTLE_SPAN = 45.0
_SETTLE_BAND = 0.02
#: While the utilisation is still rising after a change, the last readings, each turned into
#: a capacity under the fitted lag, are an early estimate when they agree within this much
#: (the readings of the last ``_EARLY_WINDOW`` seconds: 4 at 15 s) ...
_EARLY_WINDOW = 45.0
_EARLY_AGREE = 0.08
#: ... taking the lowest under every lag that fits the readings within this factor of the
#: best fit (a capacity change mid-fit can make a wrong, short lag fit best). Waiting for the
#: readings to settle instead cost minutes per step with heavy-tailed browse times: a tenth
#: of a short on-sale.
_EARLY_TIE = 2.0
#: An early step smaller than this waits for the readings to settle instead.
_EARLY_MIN_STEP = 0.1
#: An overload shedding this share of checkouts measures what the backend sustains ...
_MEASURED_SHED = 0.05
#: ... and a rate this much above the target share of that is cut again within the cut
#: interval (a first cut by a fixed fraction left the rate over a halved capacity for the
#: whole interval: minutes of 40-60% failing).
_RECUT = 0.1
#: A reading this busy is saturated however the capacity estimate reads it.
_FULL = 1.0
#: A software fault failing this share of checkouts or more is an outage of checkout: the
#: room pauses at the minimum rate instead of holding (1-50% failing holds).
_OUTAGE_SHARE = 0.8
#: The lag's p90 counts at most this much toward the cut interval (one incident's readings).
_MAX_CUT_LAG = 180.0
#: Decays are computed over at most this many seconds since the previous reading, so one
#: late call after a long pause does not drop the rate in one go.
_MAX_DECAY_SPAN = 300.0
#: p95 in the hold band counts as load-driven once it is this much above the lowest p95 seen
#: in this on-sale; below that the service simply runs near its threshold at rest (a tight
#: objective), and only the utilisation tells the room a probe has.
_LATENCY_GROWTH = 0.1
#: With no utilisation signal at all, p95 grown this much past the on-sale's lowest on each
#: of the last three readings says the load nears what the backend takes: the blind ramp
#: holds (the service's p95 stays flat until then). Blind, tuning seeds 1-20: good minutes
#: 93.6% -> 94.1% on `steady`, 92.8% -> 93.2% on `capacity-drop`.
_BLIND_GROWTH = 0.1
#: p95 over its threshold is the service's own, not the load's, once the on-sale's lowest
#: p95 is over the threshold too and p95 has stayed that low (within ``_LATENCY_GROWTH``)
#: across loads this far apart (the highest utilisation over the lowest): a cut would not
#: bring it under (a slow dependency, an objective set under what the service needs).
_OWN_LATENCY_LOAD = 1.2
#: ... as long as the reading's own p95 is within this of that lowest (the middle of three
#: smooths noise, not a jump: an overload's first reading is no noise) ...
_OWN_LATENCY_JUMP = 1.5
#: ... and that lowest is at most this many times the threshold: a p95 pinned far over it
#: (a timeout, a histogram's top bucket) is more likely an overload than a service's pace.
_OWN_LATENCY_MAX = 2.0
#: A utilisation signal may under-read the bottleneck (it measures the service's CPU while a
#: database behind it is what fills): a capacity loss counted at a reading under this
#: utilisation, on latency alone, and over any reading that was healthy, says the backend is
#: full at that reading, and utilisation is read against it from then on (once per
#: on-sale). Trusted as it was, such a signal put the capacity 1.4x high after every cut
#: and probes went back into the overload every 6 minutes (a signal reading 0.7 at full, tuning seeds 1-20:
#: 74-79% of good minutes). A signal that measures the bottleneck rises to full first; a
#: reading across a capacity fall can still read under this (held-out `capacity-drop`).
_UNDER_READ = 0.8
#: The level is never set below this (a break at less load than this is no utilisation's
#: knee). Any reading past the level raises it to that reading: after a break across a
#: capacity fall, the overload that follows reads 1.0, and utilisation is read as exported.
_LEAST_FULL = 0.4
#: The first probe after a cut on errors steps up at most this much: the readings right
#: after an overload under-read the load (users whose checkout failed and who gave up do
#: not come back), so the capacity they suggest is high.
_AFTER_SHED_STEP = 0.25


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
    shared_burn: float | None = None

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
    2. software fault: short and long burn at or above the alert threshold while p95 is
       within its threshold (or at the service's own level, on a reading with utilisation)
       and the backend is not saturated: hold (probes during it go no
       higher than the rate before it), and once the short burn clears, straight back to
       the rate before the burn rose;
    3. back off (an overload): burn with latency or saturation cuts to ``target_utilisation``
       of what the backend sustains (the share failing says how much it sheds; at least
       -40%), p95 over its threshold alone cuts -10%, a rate at saturation by the reading
       or over the capacity estimate goes back to the target; relative to the exit rate
       the reading reflects, by at most ``max_decrease``; one cut per incident (another
       only after the cut interval, or at once on more severe evidence, or when the share
       a known rate sheds, or a half-known one while p95 is over its threshold, says the
       backend sustains well under the current rate); a latency or burn cut leaves a
       ceiling just under that rate for ``ceiling_memory``; the first such cut of an
       incident at a rate the measured estimate put under saturation is a capacity loss:
       it cuts at least ``loss_backoff`` and the target drops by ``loss_margin`` for the
       rest of the on-sale (down to ``loss_floor``). While only other events on the
       service fail (``shared_burn`` at the alert threshold, this event's own short burn
       within ``probe_max_burn_short``, a complete reading), latency or saturation holds
       instead: their retries load the backend, not this rate; no loss is counted then,
       nor within a cut interval of such a hold. Latency over its threshold that is the
       service's own (the on-sale's lowest p95, of the middle of three readings, over it
       too but at most twice it, and as high at loads 1.2x apart) is no trigger while p95
       keeps to that level (a reading's own p95 within 1.5x it); the ceiling and bound of
       the cut made at it go; no loss is counted on a latency cut where p95 was over the
       threshold at the lightest load;
    4. outage: without burn rates or latency for ``outage_after`` seconds the rate decays
       toward ``safe_rate`` (never up);
    5. hold: a signal missing or stale, the queue empty (not demand-limited), the last
       change too recent to have shown (lag + ``signal_lag``), utilisation readings still
       moving after it, or a signal in its hold band (burn above the probe limits, p95
       above ``latency_margin`` x the threshold and grown more than 10% past the on-sale's
       lowest, or so at rest without a utilisation signal, utilisation within
       ``utilisation_band`` under the target);
    6. probe: step to ``target_utilisation`` of the capacity estimate (multiplicative, up
       to ``max_increase``, under the ceiling), or by ``blind_increase`` for a deployment
       that has no utilisation signal at all (then no further than the capacity prior).
       Readings still rising after a change do not hold when the fitted lag explains them:
       the lowest capacity they give under every lag that fits is an early estimate, and
       the step aims at the target share of it (not while the longest candidate lag, 5
       minutes, fits best: the true one may be longer, and a lag too short reads capacity
       high). Without any utilisation signal the blind step holds while p95 has grown 10%
       past the on-sale's lowest on each of the last three readings. The first step after
       a cut on errors is at most +25%: the readings right after an overload under-read
       the load.

    The capacity estimate is Little's law turned around: the exit rate behind a reading
    (past rates weighted by the admission-to-checkout lag, itself fitted to the
    controller's own steps) divided by the utilisation it caused, smoothed; a cut bounds it
    by what the backend served (or the rate where latency broke), and the first measurement
    under that bound replaces it. Every answer carries its reason in words, e.g.
    ``burn 18x/15x over 1m/5m >= 14.4x: -40%``.
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
        #: When the ceiling was set (it is forgotten after ``ceiling_memory``).
        self._ceiling_at: float | None = None
        #: The admission-to-checkout lag in use: the config's, then the best fit.
        self._lag = (self.config.admission_lag, self.config.admission_lag_spread)
        self._fitted_at: float | None = None
        #: Lags that fit the readings almost as well as the one in use (the last fit).
        self._plausible: list[tuple[float, float]] = []
        #: Two lag fits in a row found the longest candidate best: users may take longer to
        #: reach checkout than any lag fitted, so early estimates are off for the on-sale ...
        self._lag_at_edge = False
        #: ... and until the next fit when the last one did.
        self._last_fit_at_edge = False
        #: Utilisation readings (data time, utilisation) the lag is fitted to.
        self._samples: list[tuple[float, float]] = []
        #: The data times of the last utilisation readings, kept as samples or not.
        self._read_at: deque[float] = deque(maxlen=6)
        #: The last time the queue was seen empty: admissions then fell short of the rate.
        self._empty_at: float | None = None
        #: A software fault in progress: since when, and the rate before it.
        self._fault_since: float | None = None
        self._fault_rate: float | None = None
        #: The rate at the last reading whose short burn was under the probe limit.
        self._good_rate: float | None = None
        #: When the last fault's burn cleared (its long-window burn is then explained).
        self._fault_cleared_at: float | None = None
        #: The capacity estimate is only the prior (no reading has confirmed it yet).
        self._from_prior = False
        #: The capacity estimate is an early one (readings still rising after a change): the
        #: next estimate, early or settled, replaces it rather than being weighed against it.
        self._from_early = False
        #: The capacity estimate is a cut's upper bound, not yet measured below it.
        self._bound_only = False
        #: Where a cut on errors left the rate (the lowest cut since), until the rate rises
        #: above it (a step the shared-backend guard held back does not count); ``None``:
        #: no cap on the next step.
        self._shed_rate: float | None = None
        #: Capacity losses seen under a rate the estimate said had room, and the last one
        #: (when, and the rate it was cut from) until a software fault recognised soon
        #: after takes it back.
        self._losses = 0
        self._last_loss: tuple[float, float] | None = None
        #: When this event last held through another event's failure: a break within a cut
        #: interval of it is still that failure's load, not a capacity loss.
        self._others_at: float | None = None
        #: The lowest p95 of the on-sale (of the last three readings' middle one, so one
        #: low reading does not move it): the latency the service has at a lighter load ...
        self._p95_floor: float | None = None
        self._p95_recent: deque[float] = deque(maxlen=3)
        #: The middle of the last three readings' p95: what the service's own latency is
        #: judged by (one noisy reading, high or low, does not move it).
        self._p95_level: float | None = None
        #: ... and the lowest and highest utilisation p95 has stayed that low at.
        self._flat_range: tuple[float, float] | None = None
        #: When a latency-only cut at that latency, already over its threshold, left the
        #: ceiling, and the capacity bound it set: both go once it shows as the service's own.
        self._own_cut: tuple[float, float | None] | None = None
        #: The raw utilisation reading at which the backend is full (1 unless a capacity
        #: loss at a lower reading said otherwise).
        self._full = 1.0
        #: The highest raw utilisation of a reading with burn and p95 within limits, and
        #: whether the last capacity loss recalibrated (undone if a fault takes it back).
        self._healthy_peak = 0.0
        self._calibrated_loss = False
        if self.config.capacity_prior is not None:
            self._capacity = self.config.capacity_prior
            self._from_prior = True

    @property
    def last_change_at(self) -> float | None:
        """When the rate last changed (by this controller or from outside), or ``None``."""
        return self._last_change_at

    def recommend(self, signals: Signals) -> Recommendation:
        """The exit rate to apply now, with the reason.

        Raises ``BadInputError`` when ``signals.time`` is not a finite number: without a
        clock no lag can be judged. A time before the previous call's (a wall clock stepped
        back) is taken as that time: the clock is read as not moving until it catches up.
        """
        now = signals.time
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise BadInputError(f"expected a finite number of seconds, got {now!r}.", field="time")
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        base = usable(signals.current_rate)
        prefix = ""
        if base is None:
            base = self._last_rate if self._last_rate is not None else self.config.safe
            prefix = f"current rate unknown, using {fmt.rate(base)}; "
        if self._last_rate is None or not _same(base, self._last_rate):
            # the first rate, or one changed from outside: let it show before probing
            self._last_change_at = now
            self._remember(now, base)
        shed = self._shed_rate
        if shed is not None and base > shed and not _same(base, shed):
            self._shed_rate = None  # a step above the cut's rate was taken
        reading = self._read(signals)
        if reading.missing:
            self._blind_since = now if self._blind_since is None else self._blind_since
        else:
            self._blind_since = None
        if reading.queue_length is not None and reading.queue_length <= 0:
            self._empty_at = now
        self._track_floor(reading)
        self._learn(now, reading)
        if (
            reading.burn_short is not None
            and reading.burn_short <= self.config.probe_max_burn_short
            and self._fault_since is None
        ):
            self._good_rate = base  # the last rate the errors were fine at
        rate, action, reason = self._decide(now, base, reading)
        reason = prefix + reason
        if not _same(rate, base):
            self._last_change_at = now
            self._remember(now, rate)
            if rate < base:
                self._last_decrease_at = now
                if self._shed_rate is not None:
                    self._shed_rate = rate
        self._last_rate = rate
        self._last_time = now
        return Recommendation(
            rate, reason, action, signals.current_rate, now, signals, self._capacity
        )

    @property
    def capacity_estimate(self) -> float | None:
        """The backend's capacity as an exit rate (users/min at full utilisation), learnt
        from utilisation readings (or the configured prior until the first one)."""
        return self._capacity

    @property
    def admission_lag(self) -> tuple[float, float]:
        """The admission-to-checkout lag in use: (median seconds, log spread)."""
        return self._lag

    # -- learning ------------------------------------------------------------------------

    def _learn(self, now: float, r: _Reading) -> None:
        """Fold a utilisation reading into the capacity estimate (Little's law: the rate
        behind the reading / the utilisation it caused), after fitting the lag."""
        c = self.config
        u = r.utilisation
        self._has_utilisation = self._has_utilisation or u is not None
        if u is None:
            return
        data_end = self._data_end(now, r)
        if self._read_at and data_end == self._read_at[-1]:
            return  # the same scrape read again (ticks faster than the data): nothing new
        # every reading's time, kept or not: a saturated or idle reading left out of the
        # samples below is no gap in how often readings come
        self._read_at.append(data_end)
        if not _MIN_UTILISATION <= u < c.saturation:
            return  # too little load to measure, or saturated (only an upper bound)
        if self._empty_at is not None and now - self._empty_at < self._horizon():
            return  # the room admitted less than its rate: the rate is not the load
        self._samples.append((data_end, u))
        while self._samples and self._samples[0][0] < data_end - _FIT_SPAN:
            self._samples.pop(0)
        if c.learn_lag:
            self._fit_lag(now)
        if not self._settled(data_end):
            return  # mid-transition the estimate swings with the lag's tail: keep the last
        found = self._seen_rate(now, data_end)
        if found is None or found[1] < _KNOWN_TO_PROBE or found[0] <= 0:
            return
        sample = found[0] / u
        if self._capacity is None or self._from_prior or self._from_early:
            # an early estimate rests on a few readings under a lag fitted to a rise, some
            # from before a change in the backend: one read 1.5x high across an autoscaled
            # step stayed for 14 minutes, the settled readings were smoothed from it, and the
            # probe off that saturated the backend (tuning seed autoscale 28)
            self._capacity = sample
            self._from_prior = self._from_early = False
        elif self._bound_only:
            # a cut's bound is only an upper bound: the first measurement below it replaces
            # it (smoothing from the bound kept the estimate high for minutes, and a probe
            # off it overloaded again)
            self._capacity = min(self._capacity, sample)
        else:
            self._capacity += c.capacity_smoothing * (sample - self._capacity)
        self._bound_only = False
        if self._ceiling is not None and found[1] >= _KNOWN_TO_CUT:
            # compared only on well-known readings: partly known ones read low
            if self._ceiling_capacity is None:
                self._ceiling_capacity = self._capacity
            elif self._capacity > self._ceiling_capacity * (1 + _CAPACITY_GROWTH):
                self._ceiling = self._ceiling_capacity = None  # more capacity: probe again

    def _settled(self, data_end: float) -> bool:
        """Whether the utilisation has stopped rising: the readings of the last
        ``_SETTLE_SPAN`` average at most ``_SETTLE_BAND`` above the span before. Averages,
        so a small backend's noisy readings do not look like a rise. Only a rise counts:
        waiting out a fall too was slower to follow an autoscaled backend and no safer on
        the tuning seeds."""
        span = max(_SETTLE_SPAN, 2 * self._cadence())
        last = [u for at, u in self._samples if data_end - span < at <= data_end]
        before = [u for at, u in self._samples if data_end - 2 * span < at <= data_end - span]
        if len(last) < 2 or len(before) < 2:
            return False
        return sum(last) / len(last) <= sum(before) / len(before) * (1 + _SETTLE_BAND)

    def _fit_lag(self, now: float) -> None:
        """Pick the lag under which the capacity samples agree best: after a step of the rate
        a wrong lag credits it too early or too late, and the samples swing."""
        if self._fitted_at is not None and now - self._fitted_at < 60:
            return
        samples = self._samples[-self._readings(_FIT_WINDOW, _LEAST_READINGS) :]
        if len(samples) < self._readings(_FIT_LEAST, _LEAST_READINGS):
            return
        start = samples[0][0] - _LAG_MEDIANS[-1] * 3
        rates = [rate for at, rate in self._history if at >= start] + [self._rate_at(start)]
        # the first admissions known are a step up from nothing known before them
        opened = self._history[0][0] >= start
        if not opened and max(rates) < min(rates) * (1 + _FIT_MIN_STEP):
            return  # the rate hardly moved: every lag explains the readings
        self._fitted_at = now
        scores: list[tuple[float, float, float]] = []
        for median in _LAG_MEDIANS:
            for spread in _LAG_SPREADS:
                logs = []
                for data_end, u in samples:
                    found = self._seen_rate(now, data_end, (median, spread))
                    if found is None or found[0] <= 0:
                        break
                    logs.append(math.log(found[0] / u))
                else:
                    mean = sum(logs) / len(logs)
                    spread_of = sum((x - mean) ** 2 for x in logs) / len(logs)
                    scores.append((spread_of, median, spread))
        if not scores:
            return
        best, best_median, _ = min(scores)  # ties: the shorter lag
        ties = [(m, s) for score, m, s in scores if score <= best * _FIT_TIE + 1e-6]
        self._lag = max(ties, key=lambda lag: lag[0] * math.exp(1.2816 * lag[1]))
        self._plausible = [(m, s) for score, m, s in scores if score <= best * _EARLY_TIE + 1e-6]
        # The longest candidate fits best: the true lag may be longer still (browse times past
        # 5 minutes), and a lag too short credits a change too early: capacity reads high.
        # Twice in a row, it is kept for the on-sale: a later fit over 165 s of a slow rise
        # can pick a short lag (240 s, even 30 s) and read capacity 1.7x high (a 400 s / 0.9
        # lag). Once alone, only until the next fit: one such fit comes of a capacity change
        # mid-rise, and the fits after it find the lag again.
        at_edge = best_median >= _LAG_MEDIANS[-1]
        self._lag_at_edge = self._lag_at_edge or (at_edge and self._last_fit_at_edge)
        self._last_fit_at_edge = at_edge

    def _read(self, signals: Signals) -> _Reading:
        stale_for = None
        # any clock: a time before zero is still a time (only non-numbers are missing)
        observed = _finite(signals.observed_at)
        if observed is not None and signals.time - observed > self.config.stale_after:
            stale_for = signals.time - observed
            return _Reading(None, None, None, None, None, None, stale_for, observed)
        threshold = usable(signals.latency_threshold)
        utilisation = usable(signals.utilisation)
        burn_short = usable(signals.burn_short)
        p95 = usable(signals.latency_p95)
        if utilisation is not None and self._full < 1.0 and utilisation > self._full:
            # a reading past the level a break set: the signal reads higher than that (up to
            # full again, when the break was a reading across a capacity fall and the
            # overload after it reads 1.0)
            self._rescale(min(utilisation, 1.0))
        if (
            utilisation is not None
            and burn_short is not None
            and burn_short <= self.config.probe_max_burn_short
            and p95 is not None
            and threshold
            and p95 <= threshold
        ):
            self._healthy_peak = max(self._healthy_peak, utilisation)
        return _Reading(
            burn_short=burn_short,
            burn_long=usable(signals.burn_long),
            latency_p95=p95,
            latency_threshold=threshold if threshold else None,
            queue_length=usable(signals.queue_length),
            utilisation=None if utilisation is None else min(utilisation / self._full, 1.0),
            stale_for=None,
            observed_at=observed,
            shared_burn=usable(signals.shared_burn),
        )

    # -- deciding ------------------------------------------------------------------------

    def _decide(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str]:
        c = self.config
        if base > c.max_rate:
            return c.max_rate, "decrease", f"above the maximum {fmt.rate(c.max_rate)}"
        if base < c.min_rate:
            return c.min_rate, "increase", f"below the minimum {fmt.rate(c.min_rate)}"
        if self._ceiling_at is not None and now - self._ceiling_at > c.ceiling_memory:
            self._ceiling = self._ceiling_capacity = self._ceiling_at = None
        fault = self._fault(now, base, r)
        if fault is not None:
            return fault
        own = self._own_latency(r)
        if own:
            self._forget_own_cut()
        backoff = self._backoff(now, base, r)
        if backoff is not None:
            return backoff
        if r.missing:
            return self._blind(now, base, r)
        rate, action, reason = self._probe(now, base, r)
        if own:
            assert r.latency_p95 is not None
            assert r.latency_threshold is not None
            assert self._flat_range is not None
            low, high = self._flat_range
            reason = (
                f"latency p95 {fmt.seconds(r.latency_p95)} > {fmt.seconds(r.latency_threshold)} "
                f"but as high at utilisation {fmt.share(low)} as at {fmt.share(high)}: the "
                f"service's own latency, not the load's, a cut would not bring it under; "
                f"{reason}"
            )
        return rate, action, reason

    def _forget_own_cut(self) -> None:
        """Undo what a latency-only cut on the service's own latency left: its ceiling (if no
        later cut replaced it) and its capacity bound (if nothing measured since)."""
        if self._own_cut is None:
            return
        at, bound = self._own_cut
        self._own_cut = None
        if self._ceiling_at == at:
            self._ceiling = self._ceiling_capacity = self._ceiling_at = None
        if bound is not None and self._bound_only and self._capacity == bound:
            self._capacity = None
            self._bound_only = False

    def _errors(self, r: _Reading) -> bool:
        """Short and long burn at or above the fast alert threshold."""
        c = self.config
        return (
            r.burn_short is not None
            and r.burn_long is not None
            and r.burn_short >= c.burn_threshold
            and r.burn_long >= c.burn_threshold
        )

    def _fault(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str] | None:
        """A software fault: errors while latency has margin and the backend is not saturated.
        Cutting would not lower the share of checkouts failing, only the users served, so
        the rate holds; once the burn clears it returns to the rate before the fault."""
        c = self.config
        errors = self._errors(r)
        latency_ok = (
            r.latency_p95 is not None
            and r.latency_threshold is not None
            and r.latency_p95 <= r.latency_threshold
        ) or self._own_latency_at_rest(r)
        at = base / self._capacity if self._capacity is not None else None
        saturated = (r.utilisation is not None and r.utilisation >= c.saturation) or (
            at is not None and not self._from_prior and at >= c.saturation
        )
        if errors and latency_ok and not saturated:
            assert r.latency_p95 is not None
            assert r.latency_threshold is not None
            within = (
                "within the threshold"
                if r.latency_p95 <= r.latency_threshold
                else "at the service's own level"
            )
            if self._fault_since is None:
                self._fault_since = now
                # the errors were the fault's, not an overload's: no cautious step after
                # them, and a loss counted on its first readings was the fault's too
                self._shed_rate = None
                # the rate before the burn rose: a cut on its first readings was the fault's
                self._fault_rate = max(base, self._good_rate or base)
                loss = self._last_loss
                if loss is not None and now - loss[0] < self._cut_interval():
                    self._losses -= 1
                    self._last_loss = None
                    if self._calibrated_loss:
                        self._rescale(1.0)  # the break was the fault's, not a knee
                    # and so was that loss's cut: back to the rate it was cut from
                    self._fault_rate = max(self._fault_rate, loss[1])
            assert r.burn_short is not None
            failing = r.burn_short * (1 - c.objective)
            if failing >= _OUTAGE_SHARE:
                # checkout is down, not degraded: whoever is let in now only fails; pause
                # at the minimum and come back to the rate before it once the burn clears
                pre = self._fault_rate or base
                return (
                    c.min_rate,
                    "decrease" if base > c.min_rate else "hold",
                    f"burn {fmt.times(r.burn_short)} ({fmt.share(min(failing, 1.0))} failing) "
                    f"with p95 {within}: checkout is down (a software fault "
                    f"failing most checkouts): pause at {fmt.rate(c.min_rate)}, back to "
                    f"{fmt.rate(pre)} when it clears",
                )
            if not r.missing:
                # a fault that started while the rate was low: latency and utilisation
                # still tell what the backend can take
                probe = self._probe(now, base, r)
                top = self._fault_rate or base
                if probe[1] == "increase" and base < top:
                    rate = min(probe[0], top)
                    return (
                        rate,
                        "increase",
                        f"during a software fault, back toward the rate before it "
                        f"({fmt.rate(top)}): {probe[2].rsplit(': ', 1)[0]}: "
                        f"{fmt.change(rate / base - 1)}",
                    )
            assert r.burn_short is not None
            assert r.latency_p95 is not None
            busy = "" if r.utilisation is None else f", utilisation {fmt.share(r.utilisation)}"
            pre = self._fault_rate or base
            back = f", back to {fmt.rate(pre)} when it clears" if pre > base else " until it clears"
            return (
                base,
                "hold",
                f"burn {fmt.times(r.burn_short)}, p95 {fmt.seconds(r.latency_p95)} {within}"
                f"{busy}: a software fault, not a lack of capacity: hold"
                f"{back}",
            )
        if self._fault_since is None:
            return None
        blind = r.missing or (self._has_utilisation and r.utilisation is None)
        if r.burn_short is None or r.burn_short > c.probe_max_burn_short or blind:
            # still failing (or not known): latency or saturation (retries add load) cut as
            # usual, but the failures are the fault's, not a measure of the overload; the
            # fault is only over on a complete reading (missing signals never raise)
            return None
        pre = self._fault_rate if self._fault_rate is not None else base
        lasted = now - self._fault_since
        self._end_fault()
        self._fault_cleared_at = now
        if r.queue_length is None or r.queue_length <= 0 or base >= pre:
            return None  # nothing to restore, or no queue to restore it for
        rate = min(pre, c.max_rate)
        return (
            rate,
            "increase",
            f"burn {fmt.times(r.burn_short)} cleared after a software fault of "
            f"{fmt.seconds(lasted)}: back to the rate before it, {fmt.rate(rate)}: "
            f"{fmt.change(rate / base - 1)}",
        )

    def _end_fault(self) -> None:
        self._fault_since = self._fault_rate = None

    def _backoff(self, now: float, base: float, r: _Reading) -> tuple[float, Action, str] | None:
        c = self.config
        known = self._attributed(now, r, _KNOWN_TO_CUT)
        seen = known or base
        # each trigger: the rate it wants (relative to the rate the reading reflects), why,
        # and how severe it is (saturation: a precaution; latency: users wait; burn: fail)
        wants: list[tuple[float, str, int]] = []
        failing = 0.0
        if self._errors(r) and self._fault_since is None:
            assert r.burn_short is not None
            assert r.burn_long is not None
            # an overloaded backend sheds what it cannot serve: the share failing says by
            # how much the load exceeds it, and what it sustains is the rest
            failing = min(0.9, r.burn_short * (1 - c.objective))
            text = (
                f"burn {fmt.times(r.burn_short)}/{fmt.times(r.burn_long)} over "
                f"{fmt.seconds(c.short_window)}/{fmt.seconds(c.long_window)} "
                f">= {fmt.times(c.burn_threshold)}"
            )
            cut = min(seen * (1 - c.burn_backoff), seen * (1 - failing) * self._target())
            wants.append((cut, text, _BURN))
        if (
            r.latency_p95 is not None
            and r.latency_threshold is not None
            and r.latency_p95 > r.latency_threshold
            and not self._own_latency(r)
        ):
            text = f"latency p95 {fmt.seconds(r.latency_p95)} > {fmt.seconds(r.latency_threshold)}"
            wants.append((seen * (1 - c.latency_backoff), text, _LATENCY))
        # failed checkouts' retries, of this event's own fault or of another event's on a
        # shared backend, load it: neither a full reading nor a break then says the estimate
        # read high or the backend shrank
        faulty = self._fault_since is not None
        others = self._others_fail(r)
        saturated = self._saturation(base, seen, r, None if faulty or others else known)
        if saturated is not None:
            wants.append((*saturated, _SATURATION))
        if not wants:
            return None
        why = self._why(wants, failing, seen, base)
        shed = r.burn_short is not None and r.burn_short > c.probe_max_burn_short
        if others and not r.missing and not shed:
            # another event's checkouts fail and their retries load the shared backend: this
            # event's rate is not what broke it, and the failing event's own controller
            # answers (its burn is over the threshold). A cut here gave the innocent events'
            # users' places away for the other event's fault: a -10% cut on latency, or a
            # saturation cut, left them at 77-85% of their no-fault rate on the tuning seeds
            # at no gain in the service's good minutes. Not with a signal missing (the
            # usual rules decide, as for any incomplete reading), nor once this event's own
            # requests fail past what a probe allows (the backend shedding them).
            assert r.shared_burn is not None
            assert r.burn_short is not None
            self._others_at = now
            return (
                base,
                "hold",
                f"{why}; another event on the service is failing (the service's on-sale burn "
                f"{fmt.times(r.shared_burn)}, this event's own {fmt.times(r.burn_short)}, "
                f"within {fmt.times(c.probe_max_burn_short)}): its retries load the backend, "
                "not this rate: hold",
            )
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
        # -- unless the backend is shedding a measured share: what it serves then does not
        # depend on when the cut shows, and a rate still well above it is cut again
        # (only when the rate behind the reading is known: the share failing is that rate's;
        # half known is enough while latency shows the overload too, the unknown rest
        # counted as no admissions reading the backend as sustaining less, the safe side;
        # without latency the errors may be a fault the utilisation hides)
        measured = None
        slow = any(level == _LATENCY for _, _, level in wants)
        shed_of = self._attributed(now, r, _KNOWN_TO_RECUT if slow else _KNOWN_TO_CUT)
        if shed_of is not None and failing >= _MEASURED_SHED:
            sustained = shed_of * (1 - failing) * self._target()
            if sustained < base * (1 - _RECUT):
                measured = max(c.min_rate, base * (1 - c.max_decrease), sustained)
        within = (
            since is not None and since < self._cut_interval() and severity <= self._last_severity
        )
        if within and measured is None:
            assert since is not None
            return (
                base,
                "hold",
                f"{why}; cut {fmt.seconds(since)} ago, next cut allowed after "
                f"{fmt.seconds(self._cut_interval())}",
            )
        if within and measured is not None:
            assert shed_of is not None
            wanted = measured
            seen = shed_of  # the rate the shed belongs to, for the reason and the bound
            why = self._why(wants, failing, seen, base)
            why += "; still above what the backend sustains, cut again"
        self._last_severity = severity
        if severity == _BURN:
            self._shed_rate = wanted  # recommend() keeps the rate it answers
        # one loss per incident: a cut within the interval of the last (on more severe
        # evidence) answers the same fall
        fresh = since is None or since >= self._cut_interval()
        # ... and a break right after holding through another event's failure is that
        # failure's load still (or this event's own requests shed by it), not a smaller backend
        neighbour = self._others_at is not None and now - self._others_at < self._cut_interval()
        over_at_rest = severity == _LATENCY and self._over_at_rest(r)
        if severity >= _LATENCY and fresh and not faulty and self._had_room(base):
            if others:
                why += "; another event on the service is failing: not counted as a capacity loss"
            elif over_at_rest:
                assert self._p95_floor is not None
                why += (
                    f"; p95 was over its threshold at the on-sale's lightest load too "
                    f"({fmt.seconds(self._p95_floor)}): not counted as a capacity loss"
                )
            elif neighbour:
                assert self._others_at is not None
                ago = fmt.seconds(now - self._others_at)
                why += (
                    f"; held for another event's failure {ago} ago: not counted as a capacity loss"
                )
            else:
                before = self._target()
                self._losses += 1
                self._last_loss = (now, base)
                self._calibrated_loss = False
                why += "; the capacity fell under a rate it had room for"
                why += self._under_reads(r)
                # the users admitted before the loss keep arriving for a browse time: the
                # cut must leave room for the backlog they build to drain (a -10% cut on
                # latency left it growing until errors cut again, minutes later)
                floor = seen * (1 - c.loss_backoff)
                deeper = max(c.min_rate, base * (1 - c.max_decrease), floor)
                if deeper < wanted:
                    wanted = deeper
                    how = (
                        f"at least {fmt.change(-c.loss_backoff)}"
                        if _same(deeper, floor)
                        else "as far as the minimum rate and max_decrease allow"
                    )
                    why += f", cut {how} while the users already admitted arrive"
                if self._target() < before:
                    why += f": probes aim at {fmt.share(self._target())} from now on"
        believed = None if self._from_prior else self._capacity
        if severity >= _LATENCY:
            # lifted when the capacity grows 10% past what was believed at the cut
            self._ceiling = seen * (1 - c.ceiling_margin)
            self._ceiling_capacity = believed
            self._ceiling_at = now
        # what the backend served while shedding is measured capacity; latency over its
        # threshold says the usable capacity is at most the rate behind the reading; a
        # saturated reading bounds it by that rate over the utilisation
        bound = seen * (1 - failing) if failing >= 0.05 else None
        if bound is None and severity >= _LATENCY:
            bound = seen
        elif bound is None and r.utilisation is not None and r.utilisation >= c.saturation:
            bound = seen / r.utilisation
        if self._capacity is None or self._from_prior:
            self._capacity = bound
        elif bound is not None:
            self._capacity = min(self._capacity, bound)
        self._from_prior = self._from_early = False
        self._bound_only = bound is not None and _same(self._capacity or 0.0, bound)
        if severity >= _LATENCY:
            # a cut on latency alone, over its threshold at its lowest so far: maybe the
            # service's own, which readings at other loads tell (then _forget_own_cut)
            alone = all(level == _LATENCY for _, _, level in wants)
            near = alone and over_at_rest and self._near_floor(self._p95_level)
            self._own_cut = (now, self._capacity if self._bound_only else None) if near else None
        if severity == _SATURATION and self._ceiling is None:
            self._ceiling = seen * (1 - c.ceiling_margin)
            # lifted by growth past the estimate the cut leaves: the reading may just have
            # bounded one read high, which would keep probes under the ceiling for its memory
            self._ceiling_capacity = None if believed is None else self._capacity
            self._ceiling_at = now
        return wanted, "decrease", f"{why}: {fmt.change(wanted / base - 1)}"

    def _under_reads(self, r: _Reading) -> str:
        """Recalibrate the utilisation on a capacity loss at a low reading (see
        ``_UNDER_READ``); what it says for the reason, or nothing."""
        u = r.utilisation
        if u is None or u >= _UNDER_READ or self._full < 1.0:
            return ""  # a usual knee, or calibrated already (never lower on a later loss)
        if r.burn_short is None or r.burn_short > self.config.probe_max_burn_short:
            # errors with it may be a software fault's first reading (its latency a blip):
            # read against that level, the fault's next readings would look saturated and
            # never be told from an overload; an overload shows as latency first
            return ""
        # (not calibrated yet: ``u`` is the raw reading) a knee cannot sit at or under a load
        # already read healthy (a fault's first readings, a reading from before a step the
        # latency shows)
        if u < _LEAST_FULL or u <= self._healthy_peak:
            return ""
        self._calibrated_loss = True
        self._rescale(u)
        return (
            f", at utilisation {fmt.share(u)}: the utilisation under-reads the bottleneck, "
            f"{fmt.share(u)} counts as full from now on"
        )

    def _rescale(self, full: float) -> None:
        """Read utilisation against ``full`` from now on, and the samples kept so far and the
        estimates made of them too (a cut's bound is a rate, not a reading: kept)."""
        scale = self._full / full
        self._full = full
        self._samples = [
            (at, v * scale) for at, v in self._samples if v * scale < self.config.saturation
        ]
        if self._flat_range is not None:
            low, high = self._flat_range
            self._flat_range = (low * scale, high * scale)  # only their ratio is read
        if self._capacity is not None and not self._bound_only and not self._from_prior:
            self._capacity /= scale
        if self._ceiling_capacity is not None:
            self._ceiling_capacity /= scale

    def _why(
        self, wants: list[tuple[float, str, int]], failing: float, seen: float, base: float
    ) -> str:
        """The triggers of a cut in words, what the backend sustains of the rate ``seen``
        behind the reading when a large share fails, and that rate when it is not ``base``."""
        texts = []
        for _, text, level in wants:
            if level == _BURN and failing >= self.config.burn_backoff:
                sustains = fmt.rate(seen * (1 - failing))
                text += f" ({fmt.share(failing)} failing: the backend sustains ~{sustains})"
            texts.append(text)
        why = ", ".join(texts)
        if not _same(seen, base):
            why += f" (readings reflect {fmt.rate(seen)})"
        return why

    def _saturation(
        self, base: float, seen: float, r: _Reading, known: float | None
    ) -> tuple[float, str] | None:
        """The rate to fall back to when the current rate loads the backend to saturation,
        and why: judged on the capacity estimate when there is one, else on the reading. A
        full reading of a known rate (``known``: the rate behind it) outvotes an estimate
        that says there is room: saturated readings teach the estimate nothing, so one read
        high would otherwise hold the rate at the full capacity for as long as it stays."""
        c = self.config
        if self._capacity is not None:
            at_base = base / self._capacity
            wanted = self._target() * self._capacity
            what = "capacity prior" if self._from_prior else "utilisation"
            room = r.utilisation is not None and r.utilisation < c.saturation
            if room and not self._from_prior and at_base < 1:
                return None  # the reading has room and the estimate wobbles under saturation
            full = r.utilisation is not None and r.utilisation >= _FULL
            if full and known is not None and base / known > at_base:
                at_base = base / known  # the reading's load, at the full utilisation
                wanted = self._target() * known  # under the estimate's: known < capacity
                source = "capacity prior" if self._from_prior else "estimate"
                what = f"full utilisation at {fmt.rate(known)} (the {source} read high): load"
        elif r.utilisation is not None:
            at_base = r.utilisation * base / seen
            wanted = seen * min(0.95, self._target() / max(r.utilisation, 1e-9))
            what = "utilisation"
        else:
            return None
        if at_base < c.saturation:
            return None
        return wanted, f"{what} {fmt.share(at_base)} >= {fmt.share(c.saturation)}"

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
        effect = self._effect_lag()
        if self._last_change_at is not None and now - self._last_change_at < effect:
            waited = now - self._last_change_at
            return (
                base,
                "hold",
                f"last change {fmt.seconds(waited)} ago, its effect shows after "
                f"{fmt.seconds(effect)}",
            )
        faulty = self._fault_since is not None  # the burn is the fault's, not the load's
        if r.burn_short > c.probe_max_burn_short and not faulty:
            return (
                base,
                "hold",
                f"burn {fmt.times(r.burn_short)} over {fmt.seconds(c.short_window)} above "
                f"the probe limit {fmt.times(c.probe_max_burn_short)}",
            )
        if r.burn_long > c.probe_max_burn_long and not faulty and not self._explained(now):
            return (
                base,
                "hold",
                f"burn {fmt.times(r.burn_long)} over {fmt.seconds(c.long_window)} above "
                f"the probe limit {fmt.times(c.probe_max_burn_long)}",
            )
        ceiling = c.latency_margin * r.latency_threshold
        flat = self._flat_latency(r)
        if r.latency_p95 > ceiling and not flat:
            return (
                base,
                "hold",
                f"latency p95 {fmt.seconds(r.latency_p95)} in the hold band "
                f"{fmt.seconds(ceiling)}..{fmt.seconds(r.latency_threshold)}",
            )
        if r.utilisation is not None:
            unknown = self._capacity is None or self._from_prior
            if unknown or not self._settled(self._data_end(now, r)):
                early = self._early_capacity(now)
                wanted = 0.0 if early is None else self._target() * early / base - 1
                if early is None or wanted < _EARLY_MIN_STEP:
                    edge = (
                        f"; the longest lag fitted ({fmt.seconds(_LAG_MEDIANS[-1])}) fits "
                        "best, users may take longer to reach checkout: no early estimate"
                        if self._beyond_lags()
                        else ""
                    )
                    if unknown:
                        return (
                            base,
                            "hold",
                            "capacity not known yet: readings do not reflect the rate" + edge,
                        )
                    recent = [u for _, u in self._samples[-self._readings(_EARLY_WINDOW, 2) :]]
                    return (
                        base,
                        "hold",
                        f"utilisation still moving ({', '.join(fmt.share(u) for u in recent)}): "
                        "the last change has not fully shown" + edge,
                    )
                # the readings so far, under the lag fitted to them, already tell the
                # capacity: step to a safe share of it rather than wait minutes for the
                # slowest browsers
                if (
                    self._capacity is None
                    or self._from_prior
                    or self._from_early  # a later early estimate, up or down
                    or early > self._capacity
                ):
                    self._capacity = early
                    self._from_prior = False
                    self._from_early = True
                    self._bound_only = False  # no longer a cut's bound: it counts as measured
                step = min(c.max_increase, wanted)
                why = (
                    f"utilisation still rising, the readings so far put the capacity at "
                    f"~{fmt.rate(early)} (lag ~{fmt.seconds(self._lag[0])})"
                )
                return self._step_up(now, base, r, step, why)
            assert self._capacity is not None
            at_base = base / self._capacity
            floor = self._target() - c.utilisation_band
            if at_base >= floor:
                return (
                    base,
                    "hold",
                    f"utilisation {fmt.share(at_base)} in the hold band "
                    f"{fmt.share(floor)}..{fmt.share(c.saturation)}",
                )
            # multiplicative while the headroom is large, bounded by what was observed
            wanted = self._target() / max(at_base, 1e-9) - 1
            step = min(c.max_increase, max(c.min_increase, wanted))
            why = (
                f"utilisation {fmt.share(at_base)} < {fmt.share(floor)} "
                f"(capacity ~{fmt.rate(self._capacity)})"
            )
        elif self._has_utilisation:
            return base, "hold", "utilisation unknown: never increase on missing signals"
        else:
            level = min(self._p95_recent, default=None)  # every one of the last three
            lowest = self._p95_floor
            if level is not None and lowest is not None and level > lowest * (1 + _BLIND_GROWTH):
                return (
                    base,
                    "hold",
                    f"latency p95 {fmt.seconds(level)} grown "
                    f"{fmt.change(level / lowest - 1)} past the on-sale's lowest "
                    f"{fmt.seconds(lowest)}: with no utilisation signal, the load is near what "
                    "the backend takes",
                )
            step = c.blind_increase
            why = "no utilisation signal"
            if self._capacity is not None:  # the prior bounds a blind ramp
                room = self._target() * self._capacity / base - 1
                if room <= c.min_increase:
                    return base, "hold", f"at the capacity prior's target {fmt.rate(base)}"
                step = min(step, room)
        return self._step_up(now, base, r, step, why)

    def _step_up(
        self, now: float, base: float, r: _Reading, step: float, why: str
    ) -> tuple[float, Action, str]:
        """An increase by ``step`` (a share of ``base``), under the ceiling and the maximum."""
        c = self.config
        assert r.burn_short is not None
        assert r.latency_p95 is not None
        assert r.queue_length is not None
        top = c.max_rate if self._ceiling is None else min(c.max_rate, self._ceiling)
        if base >= top or _same(base, top):
            if top < c.max_rate:
                since = 0.0 if self._ceiling_at is None else now - self._ceiling_at
                return (
                    base,
                    "hold",
                    f"at {fmt.rate(top)}, just under where latency or errors broke "
                    f"{fmt.seconds(since)} ago",
                )
            return base, "hold", f"at the maximum {fmt.rate(c.max_rate)}"
        if self._shed_rate is not None and step > _AFTER_SHED_STEP:
            step = _AFTER_SHED_STEP
            why += f", the first step after shedding at most {fmt.change(step)}"
        rate = min(top, base * (1 + step))
        p95 = fmt.seconds(r.latency_p95)
        if (
            r.latency_threshold is not None
            and c.latency_margin * r.latency_threshold < r.latency_p95 <= r.latency_threshold
            and self._p95_floor is not None
        ):
            # only a flat p95 gets here from the hold band: say why it did not hold
            p95 += (
                f" in the hold band but within {_LATENCY_GROWTH:.0%} of the on-sale's "
                f"lowest {fmt.seconds(self._p95_floor)}: the service's own, not the load's"
            )
        return (
            rate,
            "increase",
            f"healthy (burn {fmt.times(r.burn_short)}, p95 {p95}), "
            f"{r.queue_length:,.0f} waiting, {why}: {fmt.change(rate / base - 1)}",
        )

    def _early_capacity(self, now: float) -> float | None:
        """The capacity the last readings agree on under the fitted lag, before they settle
        (``None`` before a fit, or while they disagree: then the lag does not explain them,
        or once the longest candidate lag fitted best: the true one may be longer)."""
        if self._fitted_at is None:
            return None  # the configured lag was never checked against the readings
        if self._beyond_lags():
            return None  # only a lower bound of the lag is known: wait for the readings
        wanted = self._readings(_EARLY_WINDOW, _LEAST_READINGS)
        recent = self._samples[-wanted:]
        if len(recent) < wanted:
            return None
        estimates = []
        for data_end, u in recent:
            found = self._seen_rate(now, data_end)
            if found is None or found[1] < _KNOWN_TO_PROBE or found[0] <= 0:
                return None
            estimates.append(found[0] / u)
        low = min(estimates)
        if max(estimates) > low * (1 + _EARLY_AGREE):
            return None
        for lag in self._plausible:
            for data_end, u in recent:
                found = self._seen_rate(now, data_end, lag)
                if found is None or found[0] <= 0:
                    return None
                low = min(low, found[0] / u)
        return low

    def _beyond_lags(self) -> bool:
        """Whether the readings may lag more than any candidate: the longest fitted best at
        the last fit, or at two fits in a row before."""
        return self._lag_at_edge or self._last_fit_at_edge

    def _track_floor(self, r: _Reading) -> None:
        """Keep the on-sale's lowest p95 (of the last three readings' middle one) and the
        range of utilisation p95 has stayed within ``_LATENCY_GROWTH`` of it at."""
        p95, u = r.latency_p95, r.utilisation
        if p95 is None or p95 <= 0:
            return  # a p95 of 0 (no requests in its window, an exporter's default) is none
        self._p95_recent.append(p95)
        level = self._p95_level = sorted(self._p95_recent)[len(self._p95_recent) // 2]
        floor = self._p95_floor
        if floor is None or level < floor:
            if floor is not None and level * (1 + _LATENCY_GROWTH) < floor:
                self._flat_range = None  # a new, lower level: what was flat before is not
            self._p95_floor = level
        # a full reading says nothing of the load (the backend queues or sheds it)
        if (
            u is not None
            and _MIN_UTILISATION <= u < self.config.saturation
            and self._near_floor(level)
        ):
            low, high = self._flat_range or (u, u)
            self._flat_range = (min(low, u), max(high, u))

    def _near_floor(self, p95: float | None) -> bool:
        """Whether ``p95`` is within ``_LATENCY_GROWTH`` of the on-sale's lowest."""
        floor = self._p95_floor
        return p95 is not None and floor is not None and p95 <= floor * (1 + _LATENCY_GROWTH)

    def _over_at_rest(self, r: _Reading) -> bool:
        """Whether the on-sale's lowest p95 is over the threshold already."""
        return (
            self._p95_floor is not None
            and r.latency_threshold is not None
            and self._p95_floor > r.latency_threshold
        )

    def _own_latency_at_rest(self, r: _Reading) -> bool:
        """The service's own latency on a reading that shows it at its own level (not only
        the middle of three) with the backend measured: what a software fault needs to be
        told from an overload by (a first overloaded reading with the utilisation missing
        read as a fault, and restored the overloaded rate after it)."""
        return (
            self._own_latency(r) and self._near_floor(r.latency_p95) and r.utilisation is not None
        )

    def _own_latency(self, r: _Reading) -> bool:
        """Whether p95 over its threshold is the service's own: the on-sale's lowest p95 is
        over it too (but at most ``_OWN_LATENCY_MAX`` times it), and p95 (the middle of the
        last three readings, the reading's own within ``_OWN_LATENCY_JUMP`` of the lowest) is
        no higher than that lowest (within ``_LATENCY_GROWTH``), as it was at loads
        ``_OWN_LATENCY_LOAD`` apart. Then a cut would not bring it under."""
        return (
            r.latency_p95 is not None
            and r.latency_threshold is not None
            and r.latency_p95 > r.latency_threshold
            and self._p95_floor is not None
            and r.latency_threshold < self._p95_floor <= _OWN_LATENCY_MAX * r.latency_threshold
            and r.latency_p95 <= self._p95_floor * _OWN_LATENCY_JUMP
            and self._near_floor(self._p95_level)
            and self._flat_range is not None
            and self._flat_range[1] >= self._flat_range[0] * _OWN_LATENCY_LOAD
        )

    def _flat_latency(self, r: _Reading) -> bool:
        """Whether p95 is no higher than the lowest of the on-sale (within
        ``_LATENCY_GROWTH``) on a reading with utilisation: a service that runs near its
        threshold at rest, not latency grown with the load. Only the utilisation then says
        whether a probe has room (without it the hold band stays the only guard)."""
        return r.utilisation is not None and self._near_floor(r.latency_p95)

    def _explained(self, now: float) -> bool:
        """Whether the long window's burn is an incident already answered: a cut or a
        healed software fault within the long window (and the short window is clean)."""
        c = self.config
        recent = [t for t in (self._last_decrease_at, self._fault_cleared_at) if t is not None]
        return any(now - t <= c.long_window + c.signal_lag for t in recent)

    # -- lags and attribution ------------------------------------------------------------

    def _cadence(self) -> float:
        """Seconds between utilisation readings (every one, whether or not it became a
        sample): the lower median of the last five gaps, so one long gap (an outage, the
        first reading) does not make them look sparse (the reference ``_CADENCE`` before
        there are two readings)."""
        gaps = sorted(b - a for a, b in pairwise(self._read_at) if b > a)
        if not gaps:
            return _CADENCE
        return max(1.0, gaps[(len(gaps) - 1) // 2])

    def _readings(self, span: float, least: int) -> int:
        """How many of the latest readings cover ``span`` seconds (at least ``least``)."""
        return max(least, math.ceil(span / self._cadence() - 1e-9) + 1)

    def _lag_p90(self) -> float:
        median, spread = self._lag
        return median * math.exp(1.2816 * spread)

    def _target(self) -> float:
        """The utilisation probes aim for: the configured one, less a margin per capacity
        loss seen (never below the floor, nor above the configured target)."""
        c = self.config
        target = c.target_utilisation
        return max(min(c.loss_floor, target), target - c.loss_margin * self._losses)

    def _others_fail(self, r: _Reading) -> bool:
        """Whether the service's on-sale requests, all events together, burn at the alert
        threshold while this event's own do not: another event's failure (its retries load
        the shared backend), not a smaller backend."""
        threshold = self.config.burn_threshold
        return (
            r.shared_burn is not None
            and r.shared_burn >= threshold
            and r.burn_short is not None  # not known is not innocent: a loss stays a loss
            and r.burn_short < threshold
        )

    def _had_room(self, base: float) -> bool:
        """Whether the measured capacity estimate put ``base`` under saturation (a break
        there is a capacity loss, or an estimate that was wrong)."""
        c = self.config
        if self._capacity is None or self._from_prior or self._bound_only:
            return False
        return base <= c.saturation * self._capacity

    def _effect_lag(self) -> float:
        """Seconds after a change before its effect can be seen: admission + signal lag."""
        return self._lag[0] + self.config.signal_lag

    def _cut_interval(self) -> float:
        c = self.config
        if c.decrease_interval is not None:
            return c.decrease_interval
        return min(self._lag_p90(), _MAX_CUT_LAG) + c.signal_lag + c.short_window / 2

    def _horizon(self) -> float:
        """How long a moment's admissions keep showing in the readings."""
        return self._lag_p90() + self.config.signal_lag + self.config.utilisation_window

    def _remember(self, now: float, rate: float) -> None:
        self._history.append((now, rate))
        horizon = now - _LAG_MEDIANS[-1] * 6 - self.config.utilisation_window - _FIT_SPAN
        while len(self._history) > 1 and self._history[1][0] <= horizon:
            self._history.pop(0)

    def _rate_at(self, at: float) -> float:
        rate = self._history[0][1] if self._history else 0.0
        for since, value in self._history:
            if since > at:
                break
            rate = value
        return rate

    def _data_end(self, now: float, r: _Reading) -> float:
        c = self.config
        window = max(c.utilisation_window, 1.0)
        end = r.observed_at if r.observed_at is not None else now - c.signal_lag + window / 2
        return min(now, end)

    def _seen_rate(
        self, now: float, data_end: float, lag: tuple[float, float] | None = None
    ) -> tuple[float, float] | None:
        """The exit rate behind a utilisation reading ending at ``data_end``, and how much
        of it is known.

        Past rates are weighted by how many of the users each admitted reached checkout
        during the reading's window (the admission to checkout lag is log-normal: ``lag``,
        by default the one in use). Admissions before the first reading are unknown and
        counted as none; the second value is the share of the weight that falls after the
        first reading. Counting the unknown as none makes the load look heavier per
        admitted user, the safe side for an increase.
        """
        if not self._history:
            return None
        median, spread = self._lag if lag is None else lag
        window = max(self.config.utilisation_window, 1.0)
        first = self._history[0][0]
        seen = covered = 0.0
        for k in range(_POINTS):  # the middles of _POINTS equal slices of the window
            at = data_end - window * (k + 0.5) / _POINTS
            covered += _lag_cdf(at - first, median, spread) / _POINTS
            for i, (since, rate) in enumerate(self._history):
                if since >= at:
                    break
                # users admitted in [since, until) reach checkout at `at` if their lag is
                # in (at - until, at - since]
                until = self._history[i + 1][0] if i + 1 < len(self._history) else now
                share = _lag_cdf(at - since, median, spread) - _lag_cdf(at - until, median, spread)
                seen += rate * max(0.0, share) / _POINTS
        return seen, covered

    def _attributed(self, now: float, r: _Reading, needed: float) -> float | None:
        """The exit rate behind the reading when at least ``needed`` of it is known."""
        found = self._seen_rate(now, self._data_end(now, r))
        if found is None or found[1] < needed or found[0] <= 0:
            return None
        return found[0]


def _lag_cdf(lag: float, median: float, spread: float) -> float:
    """Share of admitted users who reached checkout within ``lag`` seconds."""
    if lag <= 0:
        return 0.0
    if median <= 0:
        return 1.0
    if spread <= 0:
        return 1.0 if lag >= median else 0.0
    z = math.log(lag / median) / spread
    return 0.5 * math.erfc(-z / _SQRT2)


_SQRT2 = math.sqrt(2.0)


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(1.0, abs(a), abs(b))
