"""Option types shared by the commands, and the parsers for times, durations, scopes and modes.

Parsers raise ``typer.BadParameter``, so a bad value exits with code 2 and a message that names
the option and says what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TypeAlias
from urllib.parse import urlsplit

import typer

from onsale_obs.durations import MAX_DURATION, is_duration, parse_duration
from onsale_obs.exceptions import BadInputError
from onsale_obs.modes import BACKEND_ENV, MAX_TIME, event_scope, parse_mode, parse_scope
from onsale_obs.types import Mode

SIGNING_KEY_ENV = "ONSALE_OBS_SIGNING_KEY"
VERIFY_KEY_ENV = "ONSALE_OBS_VERIFY_KEY"
SCHEDULE_ENV = "ONSALE_OBS_SCHEDULE"
DEFAULT_SCHEDULE_FILE = Path("onsale-schedule.yaml")

OutputFormat: TypeAlias = Literal["table", "json"]

_TIME_EXPECTED = (
    "expected an ISO-8601 time with a zone (2026-12-01T10:00:00Z, 2026-12-01T11:00:00+01:00) "
    "or 'now'"
)


@dataclass(frozen=True, slots=True)
class When:
    """A point in time from the command line: absolute, or ``ago`` seconds before "now".

    Resolved against the clock when the command runs, not when the option is parsed.
    """

    at: float | None = None
    ago: float = 0.0

    def resolve(self, now: float) -> float:
        """Epoch seconds of this point, given the current time."""
        return self.at if self.at is not None else now - self.ago


def duration_seconds(text: str | float) -> float:
    """Parse ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` or combinations such as ``1h30m``.

    A unit is required: ``--for 2`` could mean two hours as easily as two seconds. A number
    (an option's default, which click also passes through the parser) is seconds.
    """
    if isinstance(text, int | float):
        return float(text)
    try:
        return parse_duration(text.lower())
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}.") from None


def seconds_or_duration(text: str | float) -> float:
    """For intervals and timeouts, whose unit is plainly seconds: ``15``, ``0.5`` or ``500ms``."""
    if isinstance(text, str):
        try:
            seconds = float(text)
        except ValueError:
            return duration_seconds(text)
        if not 0 < seconds <= MAX_DURATION:
            raise typer.BadParameter(f"{text!r} must be a number of seconds above zero.")
        return seconds
    return float(text)


def parse_time(text: str) -> When:
    """Parse ``now`` or an ISO-8601 time that carries a zone (``Z`` or ``+01:00``)."""
    stripped = text.strip()
    if stripped.lower() == "now":
        return When()
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time; {_TIME_EXPECTED}.") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no time zone; add Z for UTC or an offset such as +01:00."
        )
    at = moment.timestamp()
    if not 0 <= at <= MAX_TIME:
        raise typer.BadParameter(f"{text!r} is outside 1970-01-01 .. 9999-12-31 (UTC).")
    return When(at=at)


def parse_since(text: str) -> When:
    """Parse a time (see ``parse_time``) or a duration meaning "that long ago"."""
    if is_duration(text):
        return When(ago=duration_seconds(text))
    try:
        return parse_time(text)
    except typer.BadParameter:
        raise typer.BadParameter(
            f"{text!r} is neither a time nor a duration; {_TIME_EXPECTED}, or a duration "
            "meaning that long ago (30m, 7d)."
        ) from None


def http_url(text: str) -> str:
    """Validate an http(s) URL that names a host (the value is not echoed: it may hold a token)."""
    expected = "for example http://127.0.0.1:9090 or http://host/prometheus"
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a valid URL ({exc}); expected http:// or https:// and a host, {expected}."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(
            f"must start with http:// or https:// and name a host; {expected}."
        )
    return text.strip()


def scope_value(text: str) -> str:
    """Validate ``global`` or ``event:ID``."""
    try:
        return parse_scope(text.strip())
    except BadInputError as exc:
        raise typer.BadParameter(plain_message(exc)) from None


def event_value(text: str) -> str:
    """Validate an event id (the ``<id>`` of ``event:ID``) and return it."""
    try:
        event_scope(text.strip())
    except BadInputError as exc:
        raise typer.BadParameter(plain_message(exc)) from None
    return text.strip()


def mode_value(text: str) -> Mode:
    """Validate ``normal`` or ``onsale``."""
    try:
        return parse_mode(text.strip().lower())
    except BadInputError as exc:
        raise typer.BadParameter(plain_message(exc)) from None


def plain_message(exc: BadInputError) -> str:
    """The message without its "field 'x':" prefix, for errors that name the option anyway."""
    return exc.detail if exc.file is None else str(exc)


def split_paths(value: str | None) -> list[str]:
    """Split a comma-separated list of key paths, dropping empty items."""
    return [p.strip() for p in (value or "").split(",") if p.strip()]


# -- option types, shared by every command that needs them ---------------------------------

BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        envvar=BACKEND_ENV,
        metavar="URL",
        help="Mode store: sqlite:///path.db (one host), redis://host:port/db (distributed) "
        "or memory:// (this process only).",
    ),
]
SigningKeyOption = Annotated[
    str | None,
    typer.Option(
        "--signing-key",
        envvar=SIGNING_KEY_ENV,
        metavar="PATH",
        help="PEM Ed25519 private key that signs mode changes ('onsale-obs keys generate').",
        show_default=False,
    ),
]
VerifyKeyOption = Annotated[
    str | None,
    typer.Option(
        "--verify-key",
        envvar=VERIFY_KEY_ENV,
        metavar="PATH[,PATH...]",
        help="PEM Ed25519 public key(s) to trust, comma-separated during a key rotation. "
        "Defaults to the public half of --signing-key.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", help="table for people, json for scripts (stable keys)."),
]
ScopeFilterOption = Annotated[
    str | None,
    typer.Option(
        "--scope",
        parser=scope_value,
        metavar="SCOPE",
        help="Only this scope: global or event:ID.",
        show_default=False,
    ),
]
ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope",
        parser=scope_value,
        metavar="SCOPE",
        help="global, or event:ID for one event.",
    ),
]
EventOption = Annotated[
    str | None,
    typer.Option(
        "--event",
        parser=event_value,
        metavar="ID",
        help="An event id (the scope event:ID).",
        show_default=False,
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why, for the people reading history.")
]
ScheduleFileOption = Annotated[
    Path,
    typer.Option(
        "--file",
        envvar=SCHEDULE_ENV,
        metavar="FILE",
        help="On-sale schedule YAML file.",
    ),
]
ForOption = Annotated[
    float | None,
    typer.Option(
        "--for",
        parser=duration_seconds,
        metavar="DURATION",
        help="Expire after this long (90s, 15m, 2h, 1d, 1h30m); the scope is then normal again.",
        show_default=False,
    ),
]
UntilOption = Annotated[
    When | None,
    typer.Option(
        "--until",
        parser=parse_time,
        metavar="TIME",
        help="Expire at this time (2026-12-01T12:00:00Z or +01:00 offsets).",
        show_default=False,
    ),
]


def folder_value(out: Path, what: str) -> Path:
    """Refuse ``--out -``: ``what`` is several files, so standard output cannot hold them."""
    if str(out) == "-":
        raise typer.BadParameter(
            f"'-' (standard output) takes one file, and {what} are several; give a folder.",
            param_hint="'--out'",
        )
    return out


#: ``--timeout`` of the commands that query Prometheus.
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        parser=seconds_or_duration,
        metavar="DURATION",
        help="Per Prometheus request (seconds, or 500ms, 30s).",
    ),
]
