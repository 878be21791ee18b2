"""Validation of SLO spec files with pydantic (imported only when a file is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from onsale_obs.durations import parse_duration

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
Duration = Annotated[str | int | float, Field(description="90s, 5m, 1h, 30d")]


def _seconds(value: str | int | float) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 250ms, 1s or 5m")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be longer than zero")
        return float(value)
    return parse_duration(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectivesModel(_Strict):
    normal: float = Field(gt=0, lt=100, description="percent, e.g. 99.9")
    onsale: float = Field(gt=0, lt=100, description="percent, e.g. 99.99")


class _SelectorFields(_Strict):
    routes: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [m.upper() for m in value]


StatusClass = Literal["1xx", "2xx", "3xx", "4xx", "5xx"]


def _server_errors() -> list[StatusClass]:
    return ["5xx"]


class AvailabilityModel(_SelectorFields):
    type: Literal["availability"]
    bad_codes: list[StatusClass] = Field(default_factory=_server_errors, min_length=1)


class ThresholdModel(_Strict):
    normal: Duration
    onsale: Duration


class LatencyModel(_SelectorFields):
    type: Literal["latency"]
    threshold: ThresholdModel | Duration

    @field_validator("threshold")
    @classmethod
    def _check(
        cls, value: ThresholdModel | str | int | float
    ) -> ThresholdModel | str | int | float:
        for one in (value.normal, value.onsale) if isinstance(value, ThresholdModel) else (value,):
            _seconds(one)
        return value


class PromQLModel(_Strict):
    type: Literal["promql"]
    good: str = Field(min_length=1, description="counter selector of good events")
    total: str = Field(min_length=1, description="counter selector of all events")


class RuleModel(_Strict):
    long: Duration | None = None
    short: Duration | None = None
    burn_rate: float | None = Field(default=None, gt=0)
    priority: Literal["P1", "P2", "P3", "P4"] | None = None
    min_bad_events: int | None = Field(default=None, ge=0)

    @field_validator("long", "short")
    @classmethod
    def _check(cls, value: str | int | float | None) -> str | int | float | None:
        if value is not None:
            _seconds(value)
        return value


class AlertingModel(_Strict):
    normal: dict[str, RuleModel | None] = Field(default_factory=dict)
    onsale: dict[str, RuleModel | None] = Field(default_factory=dict)


class SLOModel(_Strict):
    name: str = Field(pattern=_NAME)
    service: str = Field(min_length=1)
    description: str = ""
    sli: Annotated[AvailabilityModel | LatencyModel | PromQLModel, Field(discriminator="type")]
    objectives: ObjectivesModel
    window: Duration | Literal["month"] = "30d"
    alerting: AlertingModel = Field(default_factory=AlertingModel)
    runbook: str | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | int | float) -> str | int | float:
        if value != "month":
            _seconds(value)
        return value


class SpecModel(_Strict):
    slos: list[SLOModel] = Field(min_length=1)
    onsale_grace: Duration = "5m"

    @model_validator(mode="after")
    def _unique(self) -> SpecModel:
        seen: set[str] = set()
        for slo in self.slos:
            if slo.name in seen:
                raise ValueError(f"two SLOs are called {slo.name!r}; names must be unique")
            seen.add(slo.name)
        return self


def seconds(value: str | int | float) -> float:
    """A validated duration in seconds."""
    return _seconds(value)
