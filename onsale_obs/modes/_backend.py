"""The store behind the broadcaster: a versioned snapshot plus a resumable, ordered log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Builds the signed message once the store has assigned the revision it will carry.
Seal = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Entry:
    """One transition in the store's log."""

    revision: int
    scope: str
    message: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest message of every scope and the log position it reflects."""

    latest: dict[str, Entry]
    cursor: int


@runtime_checkable
class ModeBackend(Protocol):
    """What every broadcaster backend (memory, sqlite, redis) provides.

    Revisions are assigned by the store, strictly increase across all scopes and are never
    reused; ``read(after=n)`` returns every entry with a revision above ``n`` in order, so a
    subscriber that remembers its cursor never misses a transition across reconnects.
    All methods raise ``BackendUnavailableError`` when the store cannot be reached.
    """

    url: str

    def append(self, scope: str, seal: Seal) -> int:
        """Assign the next revision, store ``seal(revision)`` as the scope's latest state."""
        ...

    def snapshot(self) -> Snapshot:
        """Return the latest entry per scope and the highest revision, read atomically."""
        ...

    def read(self, after: int, timeout: float) -> list[Entry]:
        """Return entries after ``after`` in order, waiting up to ``timeout`` s for the first."""
        ...

    async def aread(self, after: int, timeout: float) -> list[Entry]:
        """``read`` for asyncio code: waits without blocking the event loop."""
        ...

    def history(self, after: int = 0) -> Iterator[Entry]:
        """Every entry after ``after``, oldest first."""
        ...

    def close(self) -> None:
        """Release connections; the backend may not be used afterwards."""
        ...
