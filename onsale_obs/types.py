"""Type aliases and protocols shared across onsale-obs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, TypeAlias

Mode: TypeAlias = Literal["normal", "onsale"]
Source: TypeAlias = Literal["manual", "schedule", "auto"]
#: Returns the current wall-clock time as seconds since the epoch (``time.time``-like).
Clock: TypeAlias = Callable[[], float]

MODES: tuple[Mode, ...] = ("normal", "onsale")
SOURCES: tuple[Source, ...] = ("manual", "schedule", "auto")

# ASGI, as in starlette.types: the middleware depends on the protocol, not on a framework.
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
