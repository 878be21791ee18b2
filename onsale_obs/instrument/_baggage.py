"""W3C baggage for the on-sale keys: parse inbound, rewrite for downstream, never trust the mode."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, unquote

EVENT_KEY: Final = "onsale.event"
MODE_KEY: Final = "onsale.mode"
_PREFIX: Final = "onsale."
#: The W3C limit; longer headers are ignored rather than parsed.
MAX_BAGGAGE_BYTES: Final = 8192


def parse_onsale_baggage(header: str) -> tuple[str | None, str | None]:
    """Return (``onsale.event``, ``onsale.mode``) from a baggage header, ignoring the rest."""
    if _PREFIX not in header or len(header) > MAX_BAGGAGE_BYTES:
        return None, None
    event = mode = None
    for member in header.split(","):
        key, sep, value = member.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key == EVENT_KEY:
            event = unquote(value.split(";", 1)[0].strip()) or None
        elif key == MODE_KEY:
            mode = unquote(value.split(";", 1)[0].strip()) or None
    return event, mode


def rewrite_baggage(header: str | None, event: str | None, mode: str) -> str:
    """Inbound baggage with every ``onsale.*`` member replaced by this service's own view."""
    members = []
    if header and len(header) <= MAX_BAGGAGE_BYTES:
        members = [m for m in header.split(",") if m.strip() and not m.strip().startswith(_PREFIX)]
    if event is not None:
        members.append(f"{EVENT_KEY}={quote(event, safe='')}")
    members.append(f"{MODE_KEY}={mode}")
    return ",".join(members)


def strip_onsale_baggage(header: str) -> str:
    """Drop inbound ``onsale.*`` members (edge services facing untrusted clients)."""
    return ",".join(m for m in header.split(",") if m.strip() and not m.strip().startswith(_PREFIX))
