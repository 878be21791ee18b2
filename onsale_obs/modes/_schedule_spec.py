"""Validation of schedule files with pydantic (imported only when a file is read)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from onsale_obs.modes._model import MAX_TIME


class WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str | None = None
    scope: str | None = None
    start: datetime
    end: datetime
    reason: str = Field(default="", max_length=500)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a time zone, for example 2026-12-01T10:00:00Z")
        if value.timestamp() > MAX_TIME:
            raise ValueError("must be before the end of year 9999 (UTC)")
        return value

    @model_validator(mode="after")
    def _check(self) -> WindowSpec:
        if (self.event is None) == (self.scope is None):
            raise ValueError(
                "give exactly one of 'event' (an event id) or 'scope' (global or event:<id>)"
            )
        if self.end <= self.start:
            raise ValueError("'end' must be later than 'start'")
        return self


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    onsales: list[WindowSpec] = Field(default_factory=list)
