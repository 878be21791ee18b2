"""W3C baggage for the on-sale keys: parse inbound, rewrite for downstream, never trust the mode."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, unquote, unquote_plus

EVENT_KEY: Final = "onsale.event"
MODE_KEY: Final = "onsale.mode"
_PREFIX: Final = "onsale."
#: The W3C limit; longer headers are ignored rather than parsed.
MAX_BAGGAGE_BYTES: Final = 8192
#: What a caller's ``onsale.mode`` is recorded as (anything else: ``invalid``).
_MODES: Final = frozenset({"normal", "onsale"})


def _key(member: str) -> str:
    """A member's key as OTel's propagator reads it (percent-decoded: ``onsale%2Eevent``)."""
    key = member.partition("=")[0]
    return unquote_plus(key).strip() if "%" in key or "+" in key else key.strip()


def _foreign(member: str) -> bool:
    """True for a non-empty member that is not ``onsale.*``."""
    return bool(member.strip()) and not _key(member).startswith(_PREFIX)


def parse_onsale_baggage(header: str) -> tuple[str | None, str | None]:
    """Return (``onsale.event``, ``onsale.mode``) from a baggage header, ignoring the rest."""
    if (_PREFIX not in header and "%" not in header) or len(header) > MAX_BAGGAGE_BYTES:
        return None, None
    event = mode = None
    for member in header.split(","):
        _, sep, value = member.partition("=")
        if not sep:
            continue
        key = _key(member)
        if key == EVENT_KEY:
            event = unquote(value.split(";", 1)[0].strip()) or None
        elif key == MODE_KEY:
            claimed = unquote(value.split(";", 1)[0].strip())
            # telemetry only, and on every span: never the caller's free text
            mode = (claimed if claimed in _MODES else "invalid") if claimed else None
    return event, mode


def rewrite_baggage(header: str | None, event: str | None, mode: str) -> str:
    """Inbound baggage with every ``onsale.*`` member replaced by this service's own view."""
    members = []
    if header and len(header) <= MAX_BAGGAGE_BYTES:
        members = [m for m in header.split(",") if _foreign(m)]
    if event is not None:
        members.append(f"{EVENT_KEY}={quote(event, safe='')}")
    members.append(f"{MODE_KEY}={mode}")
    return ",".join(members)


def strip_onsale_baggage(header: str) -> str:
    """Drop inbound ``onsale.*`` members (edge services facing untrusted clients)."""
    return ",".join(m for m in header.split(",") if _foreign(m))
