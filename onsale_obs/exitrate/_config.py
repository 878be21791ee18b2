"""The exit-rate controller's parameters, their defaults and why (README: "Parameters")."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from onsale_obs.exceptions import BadInputError


@dataclass(frozen=True, slots=True)
class ExitRateConfig:
    """Parameters of :class:`~onsale_obs.exitrate.ExitRateController`; rates in users/min.

    Bounds:
        min_rate: never recommend less (the room must keep moving). Default 100.
        max_rate: never recommend more (what the edge and the payment provider allow).
            Default 100,000.
        safe_rate: where a long signal outage decays to; ``None`` means ``min_rate``.
        capacity_prior: the backend's capacity as an exit rate (users/min) from a past
            on-sale (warm start); used until the first reading measures it: a start far
            above it is cut at once, and a ramp without utilisation stops at the target
            share of it. ``None`` (the default): no prior.
        objective: the on-sale availability objective behind the burn rates (0.9999 for
            99.99%); with it a burn rate converts to the share of checkouts failing, which
            on an overload says how much the backend sheds. Default 0.9999.

    Back-off (fast):
        burn_threshold: cut when the short *and* the long burn rate are at or above this
            (the on-sale fast alert rule: 14.4x). Default 14.4.
            Errors while p95 is within its threshold and the backend is not saturated are a
            software fault, not an overload: the rate holds (a cut fails as large a share
            of checkouts) and returns to the rate before the fault once the short burn is
            under ``probe_max_burn_short`` again.
        burn_backoff: the least cut on an overload's burn, as a share of the rate; more
            when the share failing says the backend sustains less (the cut then goes to
            the target utilisation of what it sustains). Default 0.4 (-40%).
        latency_backoff: the cut when p95 latency is over its threshold without errors
            (a backlog building, nothing shed yet). Default 0.1; errors that follow cut at
            once to what the backend sustains.
        saturation: cut back to the target utilisation when the current rate loads the
            backend this much (by the capacity estimate, else the reading). Default 0.95.
        max_decrease: no single cut is larger. Default 0.7: a loss of 60% of the capacity
            at the target utilisation is answered in one cut.
        decrease_interval: seconds after a cut before the next one; ``None`` (the default)
            waits until readings could show the cut: the admission lag's p90 (users admitted
            before the cut keep arriving at checkout that long) + ``signal_lag`` + half the
            short window. Cutting on readings that still show the old overload would cut
            again and again for one incident.

    Probing (slow):
        target_utilisation: utilisation an increase (and a cut) aims for, until a capacity
            loss lowers it (``loss_margin``). Default 0.92: draining within 15% of the
            physical limit needs about 87% on average, ramps and incidents included, and
            small tiers' latency knees sit just above 0.9.
        utilisation_band: hold while utilisation is within this below the target (up to
            ``saturation``). Default 0.02.
        latency_margin: p95 between margin x threshold and the threshold is the latency
            hold band: no increase there once p95 has grown into it, more than 10% past the
            on-sale's lowest p95. A service whose p95 sits in the band at rest (a tight
            objective) is left to its utilisation there, or held without one. Default 0.8.
        probe_max_burn_short / probe_max_burn_long: increase only while the burn rates are
            at or below these. Short 3x: at a 99.99% objective one stray error in 10,000
            checkouts is already 1x, and a real overload burns hundreds; long 6x: the on-sale
            slow alert rule. The long limit is waived while its burn is the incident the
            last cut answered (that cut came within the long window and the short window is
            clean again). Defaults 3.0 and 6.0.
        ceiling_margin: after a cut for latency or burn, probes stay this far under the
            exit rate behind that reading (where the backend's latency knee or a failure
            was), until the capacity estimate grows by 10% over the one learnt after the
            cut (autoscaling), or ``ceiling_memory`` passes. TCP's slow-start threshold, for
            the same reason. Default 0.05.
        ceiling_memory: seconds a ceiling holds. Default 600: long enough not to probe
            straight back into the knee, short enough to follow a capacity that wanders.
        loss_margin: each capacity loss (latency or errors breaking at a rate the measured
            estimate put under ``saturation``: the capacity fell, or the estimate was wrong)
            lowers the utilisation probes and cuts aim for by this much, for the rest of the
            on-sale. Default 0.03: a capacity that moved once may move again, and at 0.92 any
            fall of more than 8% is an overload. 0 keeps ``target_utilisation``.
        loss_floor: the losses never take the target below this (nor does it raise a
            target configured under it). Default 0.84.
        loss_backoff: the least cut on a capacity loss (see ``loss_margin``), as a share of
            the rate, where latency alone would cut ``latency_backoff``. Default 0.3 (-30%):
            the users admitted before the loss keep arriving for a browse time whatever the
            room does, and the backlog they build at a rate over the smaller capacity must
            drain before latency recovers. 0 cuts a loss as any other break.
        max_increase: largest step up, taken only while the capacity estimate says the
            headroom is that large and the readings have settled after the last change.
            Default 1.0 (x2): a start at a fifth of the capacity is at the target in three
            steps.
        min_increase: smallest step up. Default 0.02.
        blind_increase: the step up when utilisation is not known. Default 0.1.
        admission_lag: seconds from admission to checkout (the median browse time), as a
            start. Default 60.
        admission_lag_spread: spread of that time, as the sigma of its logarithm (it is
            log-normal: most users are quick, a few take long). Default 0.6.
        learn_lag: fit the lag to the controller's own steps: the median (10 s - 5 min) and
            spread under which the capacity samples after a change agree best (ties go to
            the longer lag, the safe side). Default true.
        signal_lag: seconds for a change at the backend to show in the signals (scrape +
            rule evaluation + half the rate window). Default 60.
            An increase waits ``admission_lag + signal_lag`` after any change of the rate.
        capacity_smoothing: weight of a new reading in the capacity estimate (capacity =
            the exit rate behind a reading / its utilisation; smoothed because one-minute
            readings wobble by a few percent, forgotten at every cut). Default 0.3.
        utilisation_window: seconds the utilisation reading averages over. Default 60.
            With ``admission_lag`` it tells which past exit rate a reading reflects: the
            backend sees the users admitted one browse time earlier.

    Missing signals:
        stale_after: a reading whose ``observed_at`` is older than this many seconds counts
            as missing. Default 120.
        outage_after: seconds without burn rates or latency after which the rate decays
            toward ``safe_rate``. Default 600: a Prometheus restart or a scrape gap is held
            through; what the backend could take a minute ago it can most likely take now.
        decay_per_minute: share of the rate lost per minute of outage. Default 0.1.

    Window labels for reasons (the windows themselves are the signal source's):
        short_window, long_window: seconds. Defaults 60 and 300.
    """

    min_rate: float = 100.0
    max_rate: float = 100_000.0
    safe_rate: float | None = None
    capacity_prior: float | None = None
    objective: float = 0.9999
    burn_threshold: float = 14.4
    burn_backoff: float = 0.4
    latency_backoff: float = 0.1
    saturation: float = 0.95
    max_decrease: float = 0.7
    decrease_interval: float | None = None
    target_utilisation: float = 0.92
    utilisation_band: float = 0.02
    latency_margin: float = 0.8
    probe_max_burn_short: float = 3.0
    probe_max_burn_long: float = 6.0
    ceiling_margin: float = 0.05
    ceiling_memory: float = 600.0
    loss_margin: float = 0.03
    loss_floor: float = 0.84
    loss_backoff: float = 0.3
    max_increase: float = 1.0
    min_increase: float = 0.02
    blind_increase: float = 0.1
    admission_lag: float = 60.0
    admission_lag_spread: float = 0.6
    learn_lag: bool = True
    signal_lag: float = 60.0
    utilisation_window: float = 60.0
    capacity_smoothing: float = 0.3
    stale_after: float = 120.0
    outage_after: float = 600.0
    decay_per_minute: float = 0.1
    short_window: float = 60.0
    long_window: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "learn_lag":
                if not isinstance(value, bool):
                    raise BadInputError(f"expected true or false, got {value!r}.", field=f.name)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadInputError(f"expected a number, got {value!r}.", field=f.name)
            if not math.isfinite(value) or value < 0:
                raise BadInputError(f"expected a finite number >= 0, got {value!r}.", field=f.name)
        if self.min_rate <= 0:
            raise BadInputError("the minimum rate must be above zero.", field="min_rate")
        if self.max_rate < self.min_rate:
            raise BadInputError(
                f"max_rate {self.max_rate:g} is below min_rate {self.min_rate:g}.",
                field="max_rate",
            )
        if self.safe_rate is not None and not self.min_rate <= self.safe_rate <= self.max_rate:
            raise BadInputError(
                f"expected a safe rate between min_rate {self.min_rate:g} and max_rate "
                f"{self.max_rate:g}, got {self.safe_rate:g}.",
                field="safe_rate",
            )
        shares = ("burn_backoff", "latency_backoff", "max_decrease", "decay_per_minute")
        for name in (*shares, "ceiling_margin"):
            if not 0 < getattr(self, name) < 1:
                raise BadInputError("expected a share between 0 and 1 (exclusive).", field=name)
        if self.capacity_prior is not None and self.capacity_prior <= 0:
            raise BadInputError(
                "expected a capacity above zero (users/min).", field="capacity_prior"
            )
        if not 0 < self.objective < 1:
            raise BadInputError(
                f"expected an objective between 0 and 1 (0.9999 for 99.99%), got {self.objective!r}.",
                field="objective",
            )
        for name in ("loss_margin", "loss_backoff"):
            if getattr(self, name) >= 1:
                raise BadInputError("expected a share from 0 up to 1 (exclusive).", field=name)
        names = ("target_utilisation", "saturation", "latency_margin", "capacity_smoothing")
        for name in (*names, "loss_floor"):
            if not 0 < getattr(self, name) <= 1:
                raise BadInputError("expected a share in (0, 1].", field=name)
        if self.loss_floor <= self.utilisation_band:
            raise BadInputError(
                f"expected a floor above utilisation_band {self.utilisation_band:g}: at or "
                "under it no probe would ever start.",
                field="loss_floor",
            )
        if self.saturation < self.target_utilisation:
            raise BadInputError(
                "saturation must be at or above target_utilisation.", field="saturation"
            )
        if self.min_increase > self.max_increase:
            raise BadInputError("min_increase is above max_increase.", field="min_increase")
        if self.burn_threshold <= 0:
            raise BadInputError("expected a burn rate above zero.", field="burn_threshold")

    @property
    def safe(self) -> float:
        """The rate a long outage decays to."""
        return self.min_rate if self.safe_rate is None else self.safe_rate

    @property
    def cut_interval(self) -> float:
        """Seconds after a cut before the next cut (see ``decrease_interval``)."""
        if self.decrease_interval is not None:
            return self.decrease_interval
        p90 = self.admission_lag * math.exp(1.2816 * self.admission_lag_spread)
        return p90 + self.signal_lag + self.short_window / 2

    @property
    def effect_lag(self) -> float:
        """Seconds after a change before its effect can be seen: admission + signal lag."""
        return self.admission_lag + self.signal_lag
