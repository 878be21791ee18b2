"""Simulation scenarios: YAML files validated once into frozen objects (times in seconds).

A scenario is an on-sale: users queued at the start and waves of arrivals, a browse time,
a checkout backend whose capacity may change, the telemetry pipeline the controller reads
through, and the on-sale SLO. See ``examples/scenarios/`` and the README section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from statistics import NormalDist
from typing import Any

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.yamlfile import read_yaml


@dataclass(frozen=True, slots=True)
class LogNormal:
    """A log-normal duration: ``median`` and ``sigma`` (of the log), clipped to [min, max]."""

    median: float
    sigma: float
    min: float = 0.0
    max: float = 1800.0

    @property
    def mean(self) -> float:
        """Mean of the unclipped distribution."""
        return self.median * math.exp(self.sigma**2 / 2)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, clipped like the draws."""
        value = self.median * math.exp(self.sigma * _normal_quantile(q))
        return min(self.max, max(self.min, value))


@dataclass(frozen=True, slots=True)
class Wave:
    """``users`` join the waiting room evenly between ``start`` and ``end``."""

    start: float
    end: float
    users: int


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """From ``at`` on, the backend has ``workers`` workers (an autoscale step, a failure)."""

    at: float
    workers: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Fault:
    """From ``start`` to ``end`` a share of checkouts fails at once, without added latency
    (a software fault: a bad deploy, a payment provider refusing), whatever the load."""

    start: float
    end: float
    error_share: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class SLOTarget:
    """The on-sale SLO: burn rates use ``objective``; a minute is good when at least
    ``minute_availability`` of its checkouts succeeded (fewer than ``minute_min_bad_events``
    failures never fail a minute: the alert policy's guard against stray errors in a quiet
    minute) and its ``latency_quantile`` is at or below ``latency_threshold``."""

    objective: float = 0.9999
    latency_threshold: float = 1.0
    minute_availability: float = 0.999
    latency_quantile: float = 0.95
    minute_min_bad_events: int = 5


@dataclass(frozen=True, slots=True)
class WaitingRoom:
    """Demand and how admitted users behave."""

    queued_at_start: int
    arrivals: tuple[Wave, ...]
    initial_rate: float
    browse_time: LogNormal
    checkouts_per_user: float = 1.0
    request_gap: float = 5.0
    retry_probability: float = 0.5
    retry_delay: float = 10.0

    @property
    def users(self) -> int:
        """Everyone who will queue: at the start plus every wave."""
        return self.queued_at_start + sum(w.users for w in self.arrivals)


@dataclass(frozen=True, slots=True)
class Backend:
    """The checkout service: ``workers`` in parallel, each serving one request at a time."""

    workers: float
    service_time: LogNormal
    queue_timeout: float = 5.0
    base_error_rate: float = 0.0
    changes: tuple[CapacityChange, ...] = ()
    faults: tuple[Fault, ...] = ()

    def fault_at(self, t: float) -> float:
        """Share of checkouts a software fault fails at ``t`` (0 when none is active)."""
        return max((f.error_share for f in self.faults if f.start <= t < f.end), default=0.0)

    def workers_at(self, t: float) -> float:
        """Workers in service at ``t``."""
        workers = self.workers
        for change in self.changes:
            if change.at <= t:
                workers = change.workers
        return workers

    def capacity_at(self, t: float) -> float:
        """Checkouts per second the backend can serve at ``t`` (Little's law: workers / mean
        service time)."""
        return self.workers_at(t) / self.service_time.mean


@dataclass(frozen=True, slots=True)
class Telemetry:
    """How the controller sees the system: Prometheus scrape and rule evaluation."""

    scrape_interval: float = 15.0
    eval_interval: float = 15.0
    short_window: float = 60.0
    long_window: float = 300.0
    latency_window: float = 60.0
    outages: tuple[tuple[float, float], ...] = ()
    #: Whether the controller sees the backend's utilisation (a deployment may export none).
    utilisation: bool = True
    #: The share of the bottleneck's busy share the exported utilisation shows: under 1
    #: when it measures something that is not what fills (the service's CPU while its
    #: database is the bottleneck), so it reads 0.7 when the backend is full at 0.7.
    utilisation_scale: float = 1.0

    def exported(self, busy: float | None) -> float | None:
        """The utilisation the deployment exports for the busy share ``busy``: none where it
        exports none, else ``utilisation_scale`` of it."""
        return None if busy is None or not self.utilisation else busy * self.utilisation_scale

    def data_time(self, t: float) -> float:
        """Time of the newest data point behind a reading taken at ``t``. Taken at its
        worst: the rule evaluation read was about to be replaced, and the scrape it used
        was about to be replaced too (``scrape_interval + eval_interval`` old)."""
        return max(0.0, t - self.scrape_interval - self.eval_interval)

    def in_outage(self, t: float) -> bool:
        """Whether Prometheus is unreachable at ``t``."""
        return any(start <= t < end for start, end in self.outages)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated on-sale (see the module docstring)."""

    name: str
    seed: int
    waiting_room: WaitingRoom
    backend: Backend
    slo: SLOTarget = field(default_factory=SLOTarget)
    telemetry: Telemetry = field(default_factory=Telemetry)
    horizon: float = 3 * 3600.0
    tick: float = 15.0
    description: str = ""
    controller: dict[str, float | bool | None] = field(default_factory=dict)
    source: str = "<scenario>"

    def capacity_rate(self, t: float) -> float:
        """The backend's capacity at ``t`` as an exit rate (users/min), by Little's law."""
        return self.backend.capacity_at(t) * 60.0 / self.waiting_room.checkouts_per_user

    def controller_config(self) -> ExitRateConfig:
        """Our controller's parameters: defaults, the lags this scenario's operator knows
        (median time from admission to checkout and its spread; scrape + evaluation + half
        the rate window), then the scenario's own overrides."""
        t = self.telemetry
        room = self.waiting_room
        values: dict[str, Any] = {
            # a user's checkout requests follow the browse, request_gap apart
            "admission_lag": room.browse_time.quantile(0.5)
            + (room.checkouts_per_user - 1) * room.request_gap / 2,
            "admission_lag_spread": room.browse_time.sigma,
            "signal_lag": t.scrape_interval + t.eval_interval + t.latency_window / 2,
            "utilisation_window": t.latency_window,
            # the lag is known from the room's analytics: no need to fit it
            "learn_lag": False,
            "short_window": t.short_window,
            "long_window": t.long_window,
        }
        values.update(self.controller)
        try:
            return ExitRateConfig(**values)
        except BadInputError as exc:
            raise BadInputError(
                exc.detail, file=self.source, field=f"controller.{exc.field}"
            ) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every error names the file and the field."""
    data = read_yaml(path, expected="a scenario YAML file (see examples/scenarios/)")
    return scenario_from_data(data, file=str(path))


def scenario_from_data(data: Any, *, file: str = "<scenario>") -> Scenario:
    """Validate parsed YAML (a mapping with ``name``, ``seed``, ``waiting_room``, ``backend``)."""
    from pydantic import ValidationError

    from onsale_obs.exitrate._scenario_model import ScenarioModel

    if not isinstance(data, dict):
        raise BadInputError(
            "expected a mapping with name, seed, waiting_room and backend at the top level "
            "(see examples/scenarios/).",
            file=file,
        )
    try:
        m = ScenarioModel.model_validate(data)
    except ValidationError as exc:
        raise BadInputError.from_validation(
            exc, file=file, data=data, model=ScenarioModel
        ) from None
    conv = _Converter(file)
    room = m.waiting_room
    backend = m.backend
    tel = m.telemetry
    scenario = Scenario(
        name=m.name,
        description=m.description.strip(),
        seed=m.seed,
        horizon=conv.dur(m.horizon, "horizon"),
        tick=conv.dur(m.tick, "tick"),
        slo=SLOTarget(
            objective=m.slo.objective / 100,
            latency_threshold=conv.dur(m.slo.latency_threshold, "slo.latency_threshold"),
            minute_availability=m.slo.minute_availability / 100,
            latency_quantile=m.slo.latency_quantile,
            minute_min_bad_events=m.slo.minute_min_bad_events,
        ),
        waiting_room=WaitingRoom(
            queued_at_start=room.queued_at_start,
            arrivals=tuple(
                Wave(
                    conv.dur(w.start, f"waiting_room.arrivals.{i}.start", zero=True),
                    conv.dur(w.end, f"waiting_room.arrivals.{i}.end"),
                    w.users,
                )
                for i, w in enumerate(room.arrivals)
            ),
            initial_rate=room.initial_rate,
            browse_time=conv.lognormal(room.browse_time, "waiting_room.browse_time"),
            checkouts_per_user=room.checkouts_per_user,
            request_gap=conv.dur(room.request_gap, "waiting_room.request_gap", zero=True),
            retry_probability=room.retry.probability,
            retry_delay=conv.dur(room.retry.delay, "waiting_room.retry.delay"),
        ),
        backend=Backend(
            workers=backend.workers,
            service_time=conv.lognormal(backend.service_time, "backend.service_time"),
            queue_timeout=conv.dur(backend.queue_timeout, "backend.queue_timeout"),
            base_error_rate=backend.base_error_rate,
            changes=tuple(
                sorted(
                    (
                        CapacityChange(
                            conv.dur(c.at, f"backend.changes.{i}.at", zero=True),
                            c.workers,
                            c.note,
                        )
                        for i, c in enumerate(backend.changes)
                    ),
                    key=lambda c: c.at,
                )
            ),
            faults=tuple(
                Fault(
                    conv.dur(f.start, f"backend.faults.{i}.start", zero=True),
                    conv.dur(f.end, f"backend.faults.{i}.end"),
                    f.error_share,
                    f.note,
                )
                for i, f in enumerate(backend.faults)
            ),
        ),
        telemetry=Telemetry(
            scrape_interval=conv.dur(tel.scrape_interval, "telemetry.scrape_interval"),
            eval_interval=conv.dur(tel.eval_interval, "telemetry.eval_interval"),
            short_window=conv.dur(tel.short_window, "telemetry.short_window"),
            long_window=conv.dur(tel.long_window, "telemetry.long_window"),
            latency_window=conv.dur(tel.latency_window, "telemetry.latency_window"),
            outages=tuple(
                (
                    conv.dur(o.start, f"telemetry.outages.{i}.start", zero=True),
                    conv.dur(o.end, f"telemetry.outages.{i}.end"),
                )
                for i, o in enumerate(tel.outages)
            ),
            utilisation=tel.utilisation,
            utilisation_scale=tel.utilisation_scale,
        ),
        controller=dict(m.controller),
        source=file,
    )
    _check(scenario, file)
    scenario.controller_config()  # unknown or invalid controller overrides fail here
    return scenario


class _Converter:
    """Durations from a validated model, with errors that name the file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def dur(self, value: str | int | float, where: str, *, zero: bool = False) -> float:
        from onsale_obs.exitrate._scenario_model import seconds

        try:
            return seconds(value, zero=zero)
        except ValueError as exc:
            raise BadInputError(f"{exc}.", file=self.file, field=where) from None

    def lognormal(self, m: Any, where: str) -> LogNormal:
        dist = LogNormal(
            median=self.dur(m.median, f"{where}.median"),
            sigma=m.sigma,
            min=self.dur(m.min, f"{where}.min", zero=True),
            max=self.dur(m.max, f"{where}.max"),
        )
        if dist.min > dist.max:
            raise BadInputError("min is above max.", file=self.file, field=f"{where}.min")
        return dist


def _check(s: Scenario, file: str) -> None:
    """Cross-field rules the model cannot see alone."""
    if s.tick > 600:
        raise BadInputError("expected a tick of at most 10m.", file=file, field="tick")
    if s.horizon > 24 * 3600:
        raise BadInputError("expected a horizon of at most 24h.", file=file, field="horizon")
    if s.tick > s.horizon:
        raise BadInputError("the tick is longer than the horizon.", file=file, field="tick")
    if s.waiting_room.users == 0:
        raise BadInputError(
            "nobody queues: set queued_at_start or add arrivals.",
            file=file,
            field="waiting_room.queued_at_start",
        )
    for i, wave in enumerate(s.waiting_room.arrivals):
        if wave.end > s.horizon:
            raise BadInputError(
                "the wave ends after the horizon.",
                file=file,
                field=f"waiting_room.arrivals.{i}.end",
            )
    for i, fault in enumerate(s.backend.faults):
        if fault.end <= fault.start:
            raise BadInputError(
                "end must be after start.", file=file, field=f"backend.faults.{i}.end"
            )
    for i, (start, end) in enumerate(s.telemetry.outages):
        if end <= start:
            raise BadInputError(
                "end must be after start.", file=file, field=f"telemetry.outages.{i}.end"
            )
    t = s.telemetry
    if t.short_window >= t.long_window:
        raise BadInputError(
            "the short window must be shorter than the long one.",
            file=file,
            field="telemetry.short_window",
        )
    known = {f.name for f in fields(ExitRateConfig)}
    for name in s.controller:
        if name not in known:
            raise BadInputError(
                f"unknown controller parameter; expected one of {', '.join(sorted(known))}.",
                file=file,
                field=f"controller.{name}",
            )


def _normal_quantile(q: float) -> float:
    """Inverse of the standard normal CDF."""
    return NormalDist().inv_cdf(q)
