"""Validation of SLO spec files with pydantic (imported only when a file is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from onsale_obs.durations import duration_value

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


def _duration(value: object) -> object:
    duration_value(value)  # checked here, so every duration field says what it expects
    return value


def _window(value: object) -> object:
    return value if value == "month" else _duration(value)


def _threshold(value: object) -> object:
    return value if isinstance(value, dict) else _duration(value)


Duration = Annotated[
    str | int | float,
    BeforeValidator(_duration),
    Field(description="a duration such as 90s, 5m, 1h or 30d"),
]


class _Strict(BaseModel):
    # strict: YAML's true is no number and 1 no string; floats must be finite
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


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


class BucketsModel(_Strict):
    normal: list[Duration] = Field(min_length=1)
    onsale: list[Duration] = Field(min_length=1)


def _buckets(value: object) -> object:
    if isinstance(value, list):
        for item in value:
            _duration(item)
    return value


class LatencyModel(_SelectorFields):
    type: Literal["latency"]
    threshold: Annotated[
        ThresholdModel | str | int | float,
        BeforeValidator(_threshold),
        Field(description="a duration for both modes, or {normal: 250ms, onsale: 1s}"),
    ]
    buckets: Annotated[
        BucketsModel | list[str | int | float] | None,
        BeforeValidator(_buckets),
        Field(
            description="the le boundaries of the service's onsale_request_duration_seconds "
            "histogram when they are not the defaults (one list, or one per mode); the "
            "threshold must be one of them"
        ),
    ] = None


class PromQLModel(_Strict):
    type: Literal["promql"]
    good: str = Field(min_length=1, description="counter selector of good events")
    total: str = Field(min_length=1, description="counter selector of all events")


SLIModel = Annotated[AvailabilityModel | LatencyModel | PromQLModel, Field(discriminator="type")]


class RuleModel(_Strict):
    long: Duration | None = None
    short: Duration | None = None
    burn_rate: float | None = Field(default=None, gt=0)
    priority: Literal["P1", "P2", "P3", "P4"] | None = None
    min_bad_events: int | None = Field(default=None, ge=0)


class AlertingModel(_Strict):
    normal: dict[str, RuleModel | None] = Field(default_factory=dict)
    onsale: dict[str, RuleModel | None] = Field(default_factory=dict)


class SLOModel(_Strict):
    name: str = Field(
        pattern=_NAME,
        description="a name of lower-case letters, digits, '.', '_' and '-' (at most 63, "
        "starting with a letter or digit)",
    )
    service: str = Field(min_length=1)
    description: str = ""
    sli: SLIModel
    objectives: ObjectivesModel
    window: Annotated[str | int | float, BeforeValidator(_window)] = "30d"
    alerting: AlertingModel = Field(default_factory=AlertingModel)
    runbook: str | None = None


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
    return duration_value(value)
