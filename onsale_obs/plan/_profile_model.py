"""Validation of profile files (pydantic, at the edge): JSON -> the frozen objects of ``_profile``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from onsale_obs.plan._profile import (
    Break,
    OnSaleProfile,
    Profile,
    ServiceProfile,
    parse_iso,
)

Count = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _time(value: str) -> str:
    parse_iso(value)
    return value


class BreakModel(_Strict):
    kind: Literal["errors", "latency"]
    at: str
    rps: Count
    rps_per_replica: Count | None

    _at = field_validator("at")(_time)


class RouteModel(_Strict):
    requests: Count
    per_user: Count | None


class ServiceModel(_Strict):
    requests: Count
    peak_rps: Count
    sustained_rps: Count
    replicas: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None
    requests_per_user: Count | None
    routes: dict[str, RouteModel]
    good_rps: Count | None
    good_rps_per_replica: Count | None
    limit_reached: bool
    broke: BreakModel | None

    def service(self) -> ServiceProfile:
        b = self.broke
        return ServiceProfile(
            requests=self.requests,
            peak_rps=self.peak_rps,
            sustained_rps=self.sustained_rps,
            replicas=self.replicas,
            requests_per_user=self.requests_per_user,
            routes={r: m.requests for r, m in self.routes.items()},
            good_rps=self.good_rps,
            good_rps_per_replica=self.good_rps_per_replica,
            broke=None if b is None else Break(b.kind, parse_iso(b.at), b.rps, b.rps_per_replica),
        )


class AdmittedModel(_Strict):
    users: Count | None
    peak_per_minute: Count | None
    source: str | None


class OnSaleModel(_Strict):
    event: str
    scope: str
    start: str
    end: str
    admitted: AdmittedModel
    max_good_exit_rate: Count | None
    first_break: str | None
    services: dict[str, ServiceModel]
    notes: list[str]

    _times = field_validator("start", "end")(_time)

    def onsale(self) -> OnSaleProfile:
        return OnSaleProfile(
            scope=self.scope,
            start=parse_iso(self.start),
            end=parse_iso(self.end),
            services={n: s.service() for n, s in self.services.items()},
            admitted_users=self.admitted.users,
            admitted_peak_per_minute=self.admitted.peak_per_minute,
            admitted_source=self.admitted.source,
            max_good_exit_rate=self.max_good_exit_rate,
            first_break=self.first_break,
            notes=tuple(self.notes),
        )


class ProfileModel(_Strict):
    version: Literal[1]
    learned_at: str
    source: str
    judgement: str
    onsales: list[OnSaleModel]
    warnings: list[str]

    _learned = field_validator("learned_at")(_time)

    def profile(self) -> Profile:
        onsales = sorted((o.onsale() for o in self.onsales), key=lambda o: o.start)
        return Profile(
            onsales=tuple(onsales),
            learned_at=parse_iso(self.learned_at),
            source=self.source,
            judgement=self.judgement,
            warnings=tuple(self.warnings),
        )
