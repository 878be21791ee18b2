"""Type aliases and protocols shared across onsale-obs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

Mode: TypeAlias = Literal["normal", "onsale"]
Source: TypeAlias = Literal["manual", "schedule", "auto"]
#: Returns the current wall-clock time as seconds since the epoch (``time.time``-like).
Clock: TypeAlias = Callable[[], float]

MODES: tuple[Mode, ...] = ("normal", "onsale")
SOURCES: tuple[Source, ...] = ("manual", "schedule", "auto")
