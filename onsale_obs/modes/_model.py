"""Modes, scopes and the signed, versioned state a scope is in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onsale_obs.exceptions import BadInputError
from onsale_obs.types import MODES, SOURCES, Mode, Source

GLOBAL_SCOPE = "global"
EVENT_PREFIX = "event:"
#: Event ids travel in baggage, metric labels and Redis keys: keep them short and plain.
EVENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # \Z: no trailing newline
#: A reason is for people; anything longer is a mistake or an attack on the bus.
MAX_REASON_LENGTH = 500
#: The last second a state's times may name (9999-12-31T23:59:59Z): every later time would
#: break ISO-8601 formatting in every reader, so stores and subscribers refuse it.
MAX_TIME = 253402300799.0
#: The highest revision any store may assign: integers above 2**53 lose precision in JSON
#: readers, so an id or row beyond it can only come from a broken or hostile store.
MAX_REVISION = 2**53 - 1
#: ``prev_digest`` of the first state of a history (nothing before it).
GENESIS = "genesis"


def event_scope(event_id: str) -> str:
    """Return the scope name of one event (``event:<id>``), validating the id."""
    if not EVENT_ID_PATTERN.match(event_id):
        raise BadInputError(
            f"event id {event_id!r} is invalid; expected 1-128 characters of letters, digits, "
            "'.', '_' or '-', starting with a letter or digit.",
            field="event",
        )
    return EVENT_PREFIX + event_id


def parse_scope(text: str) -> str:
    """Validate a scope written by a person (``global`` or ``event:<id>``) and return it."""
    if text == GLOBAL_SCOPE:
        return text
    if text.startswith(EVENT_PREFIX):
        return event_scope(text[len(EVENT_PREFIX) :])
    raise BadInputError(
        f"scope {text!r} is invalid; expected 'global' or 'event:<id>' (for example event:final-2026).",
        field="scope",
    )


def scope_event(scope: str) -> str | None:
    """Return the event id of an ``event:<id>`` scope, or None for ``global``."""
    return scope[len(EVENT_PREFIX) :] if scope.startswith(EVENT_PREFIX) else None


def parse_mode(text: str) -> Mode:
    """Validate a mode name."""
    for mode in MODES:
        if text == mode:
            return mode
    raise BadInputError(
        f"mode {text!r} is unknown; expected one of: {', '.join(MODES)}.", field="mode"
    )


def parse_source(text: str) -> Source:
    """Validate a state source name."""
    for source in SOURCES:
        if text == source:
            return source
    raise BadInputError(
        f"source {text!r} is unknown; expected one of: {', '.join(SOURCES)}.", field="source"
    )


def check_reason(reason: str) -> str:
    """Reject reasons that are too long to be meant for people."""
    if len(reason) > MAX_REASON_LENGTH:
        raise BadInputError(
            f"reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH} are allowed.",
            field="reason",
        )
    return reason


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as an ISO-8601 UTC timestamp (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ModeState:
    """The mode one scope is in, from ``since`` until ``until`` (or until the next revision).

    ``revision`` is assigned by the store and strictly increases with every transition of
    any scope, so it orders the whole history.
    """

    scope: str
    mode: Mode
    revision: int
    since: float
    until: float | None = None
    source: Source = "manual"
    reason: str = ""
    #: the waiting room's recommended exit rate (users/min), published by ``onsale-obs serve``
    exit_rate: float | None = None
    #: the hash chain: the revision and SHA-256 (hex) of the message of the state published
    #: just before this one (any scope), or 0 and ``GENESIS`` for the first state of a history.
    #: None on states that are not part of a chain (built in code, or written by 0.1).
    prev_revision: int = 0
    prev_digest: str | None = None

    def is_onsale_at(self, now: float) -> bool:
        """True while this state puts its scope on sale at ``now`` (expiry honoured)."""
        return self.mode == "onsale" and (self.until is None or now < self.until)

    def is_expired_at(self, now: float) -> bool:
        """True once ``until`` has passed: the scope is back to normal."""
        return self.until is not None and now >= self.until

    def to_payload(self) -> dict[str, Any]:
        """The fields that are signed, with times as epoch seconds."""
        return {
            "v": 1,
            "scope": self.scope,
            "mode": self.mode,
            "revision": self.revision,
            "since": self.since,
            "until": self.until,
            "source": self.source,
            "reason": self.reason,
            # only when set, so states without it sign exactly as before
            **({} if self.exit_rate is None else {"exit_rate": self.exit_rate}),
            **(
                {}
                if self.prev_digest is None
                else {"prev": {"revision": self.prev_revision, "digest": self.prev_digest}}
            ),
        }

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a state (times as ISO-8601 UTC strings)."""
        return {
            "scope": self.scope,
            "event": scope_event(self.scope),
            "mode": self.mode,
            "revision": self.revision,
            "since": iso(self.since),
            "until": iso(self.until),
            "source": self.source,
            "reason": self.reason,
            **({} if self.exit_rate is None else {"exit_rate": self.exit_rate}),
        }

    @classmethod
    def from_payload(cls, payload: Any) -> ModeState:
        """Build a state from a decoded payload, raising ``BadInputError`` on any bad field."""
        if not isinstance(payload, dict):
            raise BadInputError("a mode state must be a JSON object.", field="payload")
        if payload.get("v") != 1:
            raise BadInputError(
                f"unsupported state version {payload.get('v')!r}; expected 1.", field="v"
            )
        scope = _field(payload, "scope", str)
        if "kind" in payload:
            raise BadInputError("a signed head is not a mode state.", field="kind")
        revision = _revision_field(payload, "revision", minimum=1)
        prev_revision, prev_digest = _prev_field(payload, revision)
        since = _number(payload, "since")
        until_raw = payload.get("until")
        until = None if until_raw is None else _number(payload, "until")
        if until is not None and until <= since:
            raise BadInputError("until must be later than since.", field="until")
        exit_rate = None if payload.get("exit_rate") is None else _number(payload, "exit_rate")
        if exit_rate is not None and (exit_rate < 0 or exit_rate == float("inf")):
            raise BadInputError(
                "exit_rate must be a number of users per minute >= 0.", field="exit_rate"
            )
        return cls(
            scope=parse_scope(scope),
            mode=parse_mode(_field(payload, "mode", str)),
            revision=revision,
            since=since,
            until=until,
            source=parse_source(_field(payload, "source", str)),
            reason=check_reason(_field(payload, "reason", str)),
            exit_rate=exit_rate,
            prev_revision=prev_revision,
            prev_digest=prev_digest,
        )


def _revision_field(payload: dict[str, Any], name: str, *, minimum: int) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInputError(f"{name} must be an integer, got {value!r}.", field=name)
    if not minimum <= value <= MAX_REVISION:
        raise BadInputError(
            f"{name} must be between {minimum} and {MAX_REVISION}, got {value}.", field=name
        )
    return value


def _prev_field(payload: dict[str, Any], revision: int) -> tuple[int, str | None]:
    prev = payload.get("prev")
    if prev is None:
        return 0, None
    if not isinstance(prev, dict):
        raise BadInputError("prev must be an object with revision and digest.", field="prev")
    prev_revision = _revision_field(prev, "revision", minimum=0)
    digest = prev.get("digest")
    if prev_revision >= revision:
        raise BadInputError("prev.revision must be below the state's revision.", field="prev")
    if prev_revision == 0 and digest != GENESIS:
        raise BadInputError(f"prev.digest of the first state must be {GENESIS!r}.", field="prev")
    if prev_revision > 0 and not is_digest(digest):
        raise BadInputError("prev.digest must be 64 lowercase hex characters.", field="prev")
    assert isinstance(digest, str)
    return prev_revision, digest


_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


def is_digest(value: object) -> bool:
    """True for a SHA-256 digest written as 64 lowercase hex characters."""
    return isinstance(value, str) and _DIGEST.match(value) is not None


def _field(payload: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind):
        raise BadInputError(f"{name} must be a {kind.__name__}, got {value!r}.", field=name)
    return value


def _number(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadInputError(f"{name} must be a number of epoch seconds, got {value!r}.", field=name)
    if name in ("since", "until") and not 0 <= value <= MAX_TIME:
        raise BadInputError(
            f"{name} must be between 1970 and the end of year 9999, got {value!r}.", field=name
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class OnSaleWindow:
    """A span of time during which one scope was on sale (``end`` None: still on sale)."""

    scope: str
    start: float
    end: float | None
    source: Source
    reason: str
    revisions: tuple[int, ...] = field(default=())

    @property
    def event(self) -> str | None:
        """The event id, or None for a global on-sale."""
        return scope_event(self.scope)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a window."""
        return {
            "scope": self.scope,
            "event": self.event,
            "start": iso(self.start),
            "end": iso(self.end),
            "source": self.source,
            "reason": self.reason,
            "revisions": list(self.revisions),
        }
