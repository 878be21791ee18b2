"""The profile file: what past on-sales taught, per on-sale and per service (versioned JSON).

Schema (``version`` 1; README, "Planning on-sales"): a profile holds ``onsales``, each with its
window, its admitted users (where recorded), the highest exit rate it held with the SLO met,
where it broke, and per service of the vertical its requests, fan-out (requests per admitted
user, per route too), peak and sustained request rates, and the highest request rate (per
replica, where replica counts are known) served with the service's SLOs met.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from onsale_obs.exceptions import BadInputError

PROFILE_VERSION = 1
BreakKind = Literal["errors", "latency"]


@dataclass(frozen=True, slots=True)
class Break:
    """Where a service stopped meeting its SLO: the first bad minute."""

    kind: BreakKind
    at: float
    rps: float
    rps_per_replica: float | None


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """One service during one on-sale."""

    requests: float
    peak_rps: float
    #: the highest 10-minute mean rate (the whole on-sale's mean when it is shorter)
    sustained_rps: float
    #: the most replicas seen during the on-sale (None: unknown)
    replicas: float | None
    #: requests per admitted user (None: admitted users not recorded)
    requests_per_user: float | None
    #: requests per route ("METHOD /route") during the on-sale
    routes: dict[str, float]
    #: the highest one-minute rate with every SLO of the service met (None: no SLO judged it)
    good_rps: float | None
    good_rps_per_replica: float | None
    #: the service's SLO broke in this on-sale (good_rps is then near its limit; if not, a
    #: lower bound of it)
    broke: Break | None = None

    @property
    def limit_reached(self) -> bool:
        """Whether the on-sale pushed the service past what it could serve."""
        return self.broke is not None

    def route_per_user(self, admitted: float | None) -> dict[str, float | None]:
        """Requests per admitted user per route."""
        return {r: (n / admitted if admitted else None) for r, n in self.routes.items()}


@dataclass(frozen=True, slots=True)
class OnSaleProfile:
    """One past on-sale."""

    scope: str
    start: float
    end: float
    services: dict[str, ServiceProfile]
    admitted_users: float | None = None
    admitted_peak_per_minute: float | None = None
    admitted_source: str | None = None
    #: the highest admitted users/min in a minute whose SLOs all held (None: not recorded)
    max_good_exit_rate: float | None = None
    #: the first service that broke, if any
    first_break: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def event(self) -> str:
        """The event id (``global`` for a global on-sale)."""
        return self.scope.removeprefix("event:")

    def to_json(self) -> dict[str, Any]:
        """The on-sale's JSON object (see the module docstring)."""
        return {
            "event": self.event,
            "scope": self.scope,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "admitted": {
                "users": _num(self.admitted_users),
                "peak_per_minute": _num(self.admitted_peak_per_minute),
                "source": self.admitted_source,
            },
            "max_good_exit_rate": _num(self.max_good_exit_rate),
            "first_break": self.first_break,
            "services": {
                name: _service_json(s, self.admitted_users) for name, s in self.services.items()
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Profile:
    """Every past on-sale learnt, oldest first."""

    onsales: tuple[OnSaleProfile, ...]
    learned_at: float
    source: str = ""
    judgement: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def services(self) -> list[str]:
        """Every service seen in any on-sale, sorted."""
        return sorted({s for o in self.onsales for s in o.services})

    def events(self) -> list[str]:
        """The event ids of the on-sales, oldest first."""
        return [o.event for o in self.onsales]

    def to_json(self) -> dict[str, Any]:
        """The profile file's content."""
        return {
            "version": PROFILE_VERSION,
            "learned_at": _iso(self.learned_at),
            "source": self.source,
            "judgement": self.judgement,
            "onsales": [o.to_json() for o in self.onsales],
            "warnings": list(self.warnings),
        }

    def dumps(self) -> str:
        """Stable, reviewable JSON: sorted keys, two-space indent, a final newline."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def _service_json(s: ServiceProfile, admitted: float | None) -> dict[str, Any]:
    b = s.broke
    return {
        "requests": _num(s.requests),
        "peak_rps": _num(s.peak_rps),
        "sustained_rps": _num(s.sustained_rps),
        "replicas": _num(s.replicas),
        "requests_per_user": _num(s.requests_per_user),
        "routes": {
            r: {"requests": _num(n), "per_user": _num(n / admitted if admitted else None)}
            for r, n in sorted(s.routes.items())
        },
        "good_rps": _num(s.good_rps),
        "good_rps_per_replica": _num(s.good_rps_per_replica),
        "limit_reached": s.limit_reached,
        "broke": None
        if b is None
        else {
            "kind": b.kind,
            "at": _iso(b.at),
            "rps": _num(b.rps),
            "rps_per_replica": _num(b.rps_per_replica),
        },
    }


def _num(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _iso(ts: float) -> str:
    from onsale_obs.modes._model import iso

    text = iso(ts)
    assert text is not None
    return text


# --------------------------------------------------------------------------- reading


def load_profile(path: str | Path) -> Profile:
    """Read a profile file; every error names the file and the field."""
    from pydantic import ValidationError

    from onsale_obs.plan._profile_model import ProfileModel

    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(
            "no such file; expected a profile written by 'onsale-obs plan learn --out FILE'.",
            file=file,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read it ({exc.__class__.__name__}).", file=file) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"not JSON (line {exc.lineno}, column {exc.colno}); expected a profile written by "
            "'onsale-obs plan learn'.",
            file=file,
        ) from None
    if not isinstance(data, dict) or data.get("version") != PROFILE_VERSION:
        got = data.get("version") if isinstance(data, dict) else None
        raise BadInputError(
            f"expected a profile of version {PROFILE_VERSION}, got {got!r}.",
            file=file,
            field="version",
        )
    try:
        model = ProfileModel.model_validate(data)
    except ValidationError as exc:
        raise BadInputError.from_validation(exc, file=file, data=data, model=ProfileModel) from None
    return model.profile()


def parse_iso(text: str) -> float:
    """An ISO-8601 time with a zone, as epoch seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time zone is required (2026-12-01T10:00:00Z)")
    return moment.timestamp()
