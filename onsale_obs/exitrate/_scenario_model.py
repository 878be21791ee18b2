"""Validation of simulation scenario files with pydantic (imported only when a file is read)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from onsale_obs.durations import duration_value

Duration = Annotated[str | int | float, Field(description="90s, 5m, 1h, or seconds")]


def seconds(value: str | int | float, *, zero: bool = False) -> float:
    """A duration in seconds; ``zero`` allows ``0`` (an offset such as ``at: 0s``)."""
    return duration_value(value, zero=zero)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SLOModel(_Strict):
    objective: float = Field(
        default=99.99, gt=0, lt=100, description="on-sale availability, percent"
    )
    latency_threshold: Duration = "1s"
    minute_availability: float = Field(default=99.9, gt=0, le=100, description="percent per minute")
    latency_quantile: float = Field(default=0.95, gt=0, lt=1)
    minute_min_bad_events: int = Field(default=5, ge=0, description="fewer bad never fail a minute")

    @field_validator("latency_threshold")
    @classmethod
    def _duration(cls, value: str | int | float) -> str | int | float:
        seconds(value)
        return value


class WaveModel(_Strict):
    start: Duration
    end: Duration
    users: int = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> WaveModel:
        if seconds(self.end) <= seconds(self.start, zero=True):
            raise ValueError("end must be after start")
        return self

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | int | float) -> str | int | float:
        seconds(value, zero=True)
        return value


class LogNormalModel(_Strict):
    median: Duration
    sigma: float = Field(ge=0, le=3)
    min: Duration = "0s"
    max: Duration = "30m"

    @field_validator("median", "max")
    @classmethod
    def _positive(cls, value: str | int | float) -> str | int | float:
        seconds(value)
        return value

    @field_validator("min")
    @classmethod
    def _offset(cls, value: str | int | float) -> str | int | float:
        seconds(value, zero=True)
        return value


class RetryModel(_Strict):
    probability: float = Field(default=0.5, ge=0, le=1)
    delay: Duration = "10s"


class WaitingRoomModel(_Strict):
    queued_at_start: int = Field(ge=0)
    arrivals: list[WaveModel] = Field(default_factory=list)
    initial_rate: float = Field(gt=0, description="users/min the operator starts with")
    browse_time: LogNormalModel
    checkouts_per_user: float = Field(default=1.0, gt=0, le=20)
    request_gap: Duration = "5s"
    retry: RetryModel = Field(default_factory=lambda: RetryModel())


class ChangeModel(_Strict):
    at: Duration
    workers: float = Field(gt=0)
    note: str = ""

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | int | float) -> str | int | float:
        seconds(value, zero=True)
        return value


class FaultModel(_Strict):
    start: Duration
    end: Duration
    error_share: float = Field(gt=0, le=1, description="share of checkouts failing")
    note: str = ""

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | int | float) -> str | int | float:
        seconds(value, zero=True)
        return value


class BackendModel(_Strict):
    workers: float = Field(gt=0, description="parallel checkout workers")
    service_time: LogNormalModel
    queue_timeout: Duration = "5s"
    base_error_rate: float = Field(default=0.0, ge=0, lt=1)
    changes: list[ChangeModel] = Field(default_factory=list)
    faults: list[FaultModel] = Field(default_factory=list)


class OutageModel(_Strict):
    start: Duration
    end: Duration

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | int | float) -> str | int | float:
        seconds(value, zero=True)
        return value


class TelemetryModel(_Strict):
    scrape_interval: Duration = "15s"
    eval_interval: Duration = "15s"
    short_window: Duration = "1m"
    long_window: Duration = "5m"
    latency_window: Duration = "1m"
    outages: list[OutageModel] = Field(default_factory=list)
    #: Whether the deployment exports the backend's utilisation (false: the controller runs
    #: on burn, latency and the queue alone, as ``serve`` does without ``--utilisation-query``).
    utilisation: bool = True
    #: What the exported utilisation reads when the bottleneck is full (under 1: it measures
    #: something else, e.g. the service's CPU while the database fills).
    utilisation_scale: float = Field(default=1.0, gt=0, le=1)


class ScenarioModel(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    description: str = ""
    seed: int = Field(ge=0)
    horizon: Duration = "3h"
    tick: Duration = "15s"
    slo: SLOModel = Field(default_factory=lambda: SLOModel())
    waiting_room: WaitingRoomModel
    backend: BackendModel
    telemetry: TelemetryModel = Field(default_factory=lambda: TelemetryModel())
    controller: dict[str, bool | float | None] = Field(default_factory=dict)
