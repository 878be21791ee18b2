"""``plan next`` and ``plan backtest``: from past on-sales to the next one, with the spread.

A service's capacity is read per past on-sale as users/min per replica,
``good_rps_per_replica x 60 / requests_per_user``, so the fan-out and the per-replica limit of
the same on-sale stay together. Ranges are the lowest and highest of the on-sales used; with a
single on-sale there is no range ("1 past on-sale: range not estimated"). A service's limit
comes from the on-sales that reached it (where its SLO broke); only when none did, from all of
them, as a lower bound. The recommendation takes the low end (the safe side): replicas sized on the lowest capacity per replica, the
controller's capacity prior at the lowest capacity of the vertical, and a start at the
controller's target utilisation of it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onsale_obs.exceptions import BadInputError
from onsale_obs.plan._profile import OnSaleProfile, Profile

#: the controller's default target utilisation (ExitRateConfig.target_utilisation)
TARGET_UTILISATION = 0.92
ONE_ONSALE = "1 past on-sale: range not estimated"


@dataclass(frozen=True, slots=True)
class Spread:
    """A value from past on-sales: the one used, and the lowest and highest (None: no range)."""

    value: float
    low: float | None
    high: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float], *, pick: str = "low") -> Spread:
        """``pick`` the low end, the median or the high end of ``values`` (at least one)."""
        lo, hi = min(values), max(values)
        value = {"low": lo, "median": statistics.median(values), "high": hi}[pick]
        if len(values) < 2:
            return cls(value, None, None, len(values))
        return cls(value, lo, hi, len(values))

    def scaled(self, factor: float) -> Spread:
        """Every number times ``factor``."""
        return Spread(
            self.value * factor,
            None if self.low is None else self.low * factor,
            None if self.high is None else self.high * factor,
            self.n,
        )

    def to_json(self) -> dict[str, Any]:
        """``{"value", "low", "high", "on_sales", "note"}``."""
        return {
            "value": round(self.value, 3),
            "low": None if self.low is None else round(self.low, 3),
            "high": None if self.high is None else round(self.high, 3),
            "on_sales": self.n,
            "note": ONE_ONSALE if self.low is None else None,
        }

    def text(self, fmt: str = "{:,.0f}") -> str:
        """``1,200 (1,100-1,350)`` or ``1,200 (1 past on-sale: range not estimated)``."""
        if self.low is None or self.high is None:
            return f"{fmt.format(self.value)} ({ONE_ONSALE})"
        return f"{fmt.format(self.value)} ({fmt.format(self.low)}-{fmt.format(self.high)})"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """One service of the vertical for the next on-sale."""

    name: str
    requests_per_user: Spread
    rps_per_replica: Spread
    #: True when no past on-sale pushed the service to its limit (a lower bound)
    limit_is_lower_bound: bool
    replicas: int
    #: users/min the service takes at ``replicas``
    capacity: Spread

    def to_json(self) -> dict[str, Any]:
        """The service's JSON."""
        return {
            "service": self.name,
            "requests_per_user": self.requests_per_user.to_json(),
            "rps_per_replica": self.rps_per_replica.to_json(),
            "limit_is_lower_bound": self.limit_is_lower_bound,
            "replicas": self.replicas,
            "capacity_users_per_minute": self.capacity.to_json(),
        }


@dataclass(frozen=True, slots=True)
class NextPlan:
    """What ``plan next`` recommends."""

    demand: float
    start: float
    like: tuple[str, ...]
    rate: float
    rate_basis: str
    services: tuple[ServicePlan, ...]
    capacity: Spread
    starting_rate: float
    capacity_prior: float
    drain_seconds: Spread
    first_to_saturate: str
    notes: tuple[str, ...]

    @property
    def prior_is_lower_bound(self) -> bool:
        """True when the service that saturates first never reached its limit in the past
        on-sales used: the capacity prior is then only a lower bound, and given to the
        controller it would stop the ramp there (no reading has measured the real limit)."""
        return any(
            s.limit_is_lower_bound for s in self.services if s.name == self.first_to_saturate
        )

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of ``plan next --format json``."""
        from onsale_obs.modes._model import iso

        return {
            "demand": self.demand,
            "start": iso(self.start),
            "like": list(self.like),
            "sized_for_rate": round(self.rate, 3),
            "sized_for": self.rate_basis,
            "warm_start": {
                "starting_rate": round(self.starting_rate, 3),
                "capacity_prior": round(self.capacity_prior, 3),
                "capacity_prior_is_lower_bound": self.prior_is_lower_bound,
            },
            "capacity_users_per_minute": self.capacity.to_json(),
            "drain_seconds": self.drain_seconds.to_json(),
            "first_to_saturate": self.first_to_saturate,
            "services": [s.to_json() for s in self.services],
            "notes": list(self.notes),
        }


def choose(profile: Profile, like: Sequence[str]) -> list[OnSaleProfile]:
    """The on-sales named by ``like`` (default: all); an unknown event is bad input."""
    if not profile.onsales:
        raise BadInputError(
            "the profile has no on-sale; learn one with 'onsale-obs plan learn'.", field="profile"
        )
    if not like:
        return list(profile.onsales)
    known = profile.events()
    unknown = [e for e in like if e not in known]
    if unknown:
        raise BadInputError(
            f"no past on-sale of {', '.join(map(repr, unknown))} in the profile; it has "
            f"{', '.join(map(repr, known))}.",
            field="--like",
        )
    return [o for o in profile.onsales if o.event in like]


def _per_replica_users(o: OnSaleProfile, service: str) -> float | None:
    s = o.services.get(service)
    if s is None or not s.requests_per_user or not s.good_rps_per_replica:
        return None
    return s.good_rps_per_replica * 60.0 / s.requests_per_user


def _limit_onsales(onsales: Sequence[OnSaleProfile], service: str) -> list[OnSaleProfile]:
    """The on-sales that measured ``service``'s limit (it broke), if any; else all of them
    (each then only a lower bound). An on-sale that never pushed a service says little about
    where it breaks: mixing it in would size on the quietest night, not on the limit."""
    reached = [o for o in onsales if (s := o.services.get(service)) and s.limit_reached]
    return reached or list(onsales)


def service_spreads(
    onsales: Sequence[OnSaleProfile], service: str
) -> tuple[Spread, Spread, Spread, bool]:
    """Fan-out, rps per replica, users/min per replica (low end picked) and whether the
    limit is only a lower bound, for ``service`` over ``onsales``."""
    seen = [o for o in onsales if service in o.services]
    if not seen:
        raise BadInputError(
            f"service {service!r} is in none of the on-sales used; the profile has "
            f"{', '.join(sorted({s for o in onsales for s in o.services}))}.",
            field="--service",
        )
    fan = [s.requests_per_user for o in seen if (s := o.services[service]).requests_per_user]
    limits = _limit_onsales(seen, service)
    per = [
        s.good_rps_per_replica for o in limits if (s := o.services[service]).good_rps_per_replica
    ]
    users = [u for o in limits if (u := _per_replica_users(o, service)) is not None]
    if not fan:
        raise BadInputError(
            f"service {service!r} has no requests per admitted user in the profile (admitted "
            "users were not recorded); learn with --admitted or --admitted-query.",
            field=service,
        )
    if not per or not users:
        raise BadInputError(
            f"service {service!r} has no requests per second per replica in the profile "
            "(replicas or its SLO were not known); learn with --replicas or --replicas-query.",
            field=service,
        )
    reached = any(o.services[service].limit_reached for o in seen)
    return (
        Spread.of(fan, pick="median"),
        Spread.of(per),
        Spread.of(users),
        not reached,
    )


def plan_next(
    profile: Profile,
    *,
    demand: float,
    start: float,
    like: Sequence[str] = (),
    services: Sequence[str] = (),
    rate: float | None = None,
    drain_within: float | None = None,
    target: float = TARGET_UTILISATION,
    replicas: Mapping[str, int] | None = None,
) -> NextPlan:
    """Recommend the warm start and the vertical's replicas for an on-sale of ``demand`` users.

    The vertical is sized for ``rate`` users/min, or the rate that drains ``demand`` within
    ``drain_within`` seconds, or else the highest exit rate the on-sales used held with the
    SLO met. ``replicas`` fixes the replicas of the services named (a vertical that will
    not be scaled): their capacity is taken as it is, and the warm start follows it.
    """
    if not (demand > 0 and math.isfinite(demand)):
        raise BadInputError("expected a number of users above zero.", field="--demand")
    used = choose(profile, like)
    names = list(services) or sorted({s for o in used for s in o.services})
    unknown = sorted(set(replicas or {}) - set(names))
    if unknown:
        raise BadInputError(
            f"{', '.join(map(repr, unknown))} is no service of the vertical ({', '.join(names)}).",
            field="--replicas",
        )
    notes: list[str] = []
    if len(used) == 1:
        notes.append(ONE_ONSALE)
    if rate is not None:
        basis = "--rate"
    elif drain_within is not None:
        rate = demand / (drain_within / 60.0) / target
        basis = f"drain within {drain_within / 60:.0f} min at {target:.0%} of capacity"
    else:
        held = [o.max_good_exit_rate for o in used if o.max_good_exit_rate]
        if not held:
            raise BadInputError(
                "the on-sales used recorded no admitted users, so no exit rate held with the "
                "SLO met is known; give --rate or --drain-within.",
                field="--rate",
            )
        rate = max(held)
        basis = "the highest exit rate held with the SLO met"
    plans = []
    for name in names:
        fan, per, users, lower = service_spreads(used, name)
        fixed = (replicas or {}).get(name)
        count = fixed if fixed is not None else max(1, math.ceil(rate / (users.value * target)))
        if lower:
            notes.append(
                f"{name}: no past on-sale reached its limit; its capacity is a lower bound "
                "(replicas on the safe side)"
            )
        plans.append(ServicePlan(name, fan, per, lower, count, users.scaled(count)))
    first = min(plans, key=lambda p: p.capacity.value)
    capacity = _vertical(plans)
    prior = capacity.value
    starting = min(rate, target * prior)
    drain = Spread(
        demand / starting * 60.0,
        None if capacity.high is None else demand / min(rate, target * capacity.high) * 60.0,
        None if capacity.low is None else demand / min(rate, target * capacity.low) * 60.0,
        capacity.n,
    )
    return NextPlan(
        demand=demand,
        start=start,
        like=tuple(like),
        rate=rate,
        rate_basis=basis,
        services=tuple(plans),
        capacity=capacity,
        starting_rate=starting,
        capacity_prior=prior,
        drain_seconds=drain,
        first_to_saturate=first.name,
        notes=tuple(dict.fromkeys(notes)),
    )


def _vertical(plans: Sequence[ServicePlan]) -> Spread:
    """The vertical's capacity: its narrowest service, at each end of the range."""
    value = min(p.capacity.value for p in plans)
    lows = [p.capacity.low for p in plans]
    highs = [p.capacity.high for p in plans]
    n = min(p.capacity.n for p in plans)
    if any(x is None for x in lows) or any(x is None for x in highs):
        return Spread(value, None, None, n)
    return Spread(
        value, min(x for x in lows if x is not None), min(x for x in highs if x is not None), n
    )


# --------------------------------------------------------------------------- back-testing


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """One service of one on-sale, predicted from the on-sales before it only."""

    event: str
    start: float
    service: str
    earlier: int
    peak_rps_predicted: float | None
    peak_rps_actual: float
    sustainable_predicted: float | None
    sustainable_actual: float | None
    #: the actual sustainable rate is a lower bound (the service did not reach its limit)
    actual_is_lower_bound: bool

    @staticmethod
    def _error(pred: float | None, actual: float | None) -> float | None:
        if pred is None or not actual:
            return None
        return pred / actual - 1.0

    @property
    def peak_error(self) -> float | None:
        """Relative error of the predicted peak rps (0.05: 5% over)."""
        return self._error(self.peak_rps_predicted, self.peak_rps_actual)

    @property
    def sustainable_error(self) -> float | None:
        """Relative error of the predicted rps per replica the SLO held at."""
        return self._error(self.sustainable_predicted, self.sustainable_actual)

    def to_json(self) -> dict[str, Any]:
        """The row's JSON."""
        from onsale_obs.modes._model import iso

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "event": self.event,
            "start": iso(self.start),
            "service": self.service,
            "earlier_on_sales": self.earlier,
            "peak_rps": {
                "predicted": r(self.peak_rps_predicted),
                "actual": r(self.peak_rps_actual),
                "error": r(self.peak_error),
            },
            "sustainable_rps_per_replica": {
                "predicted": r(self.sustainable_predicted),
                "actual": r(self.sustainable_actual),
                "error": r(self.sustainable_error),
                "actual_is_lower_bound": self.actual_is_lower_bound,
            },
        }


def backtest(profile: Profile) -> list[BacktestRow]:
    """Predict each on-sale from the ones before it (oldest first; the first has none).

    Peak rps: the earlier on-sales' median fan-out x this on-sale's peak admitted rate / 60
    (the rate the room actually ran); sustainable rate: the earlier on-sales' lowest rps per
    replica with the SLO met, among those that reached the limit if any did (what ``plan
    next`` sizes replicas on).
    """
    if len(profile.onsales) < 2:
        raise BadInputError(
            f"{len(profile.onsales)} past on-sale(s): a back-test needs at least 2 (each "
            "on-sale is predicted from the ones before it).",
            field="profile",
        )
    rows = []
    onsales = list(profile.onsales)
    for i in range(1, len(onsales)):
        this, earlier = onsales[i], onsales[:i]
        for name, actual in sorted(this.services.items()):
            fans = [
                s.requests_per_user
                for o in earlier
                if (s := o.services.get(name)) is not None and s.requests_per_user
            ]
            pers = [
                s.good_rps_per_replica
                for o in _limit_onsales(earlier, name)
                if (s := o.services.get(name)) is not None and s.good_rps_per_replica
            ]
            peak_pred = (
                statistics.median(fans) * this.admitted_peak_per_minute / 60.0
                if fans and this.admitted_peak_per_minute
                else None
            )
            rows.append(
                BacktestRow(
                    event=this.event,
                    start=this.start,
                    service=name,
                    earlier=i,
                    peak_rps_predicted=peak_pred,
                    peak_rps_actual=actual.peak_rps,
                    sustainable_predicted=min(pers) if pers else None,
                    sustainable_actual=actual.good_rps_per_replica,
                    actual_is_lower_bound=not actual.limit_reached,
                )
            )
    return rows


def backtest_summary(rows: Sequence[BacktestRow]) -> dict[str, dict[str, float | None]]:
    """Per service: mean absolute error of the peak and of the sustainable rate (limits
    reached only)."""
    out: dict[str, dict[str, float | None]] = {}
    for name in sorted({r.service for r in rows}):
        mine = [r for r in rows if r.service == name]
        peaks = [abs(e) for r in mine if (e := r.peak_error) is not None]
        sus = [
            abs(e)
            for r in mine
            if (e := r.sustainable_error) is not None and not r.actual_is_lower_bound
        ]
        out[name] = {
            "peak_rps_mean_abs_error": round(statistics.fmean(peaks), 4) if peaks else None,
            "sustainable_mean_abs_error": round(statistics.fmean(sus), 4) if sus else None,
        }
    return out
