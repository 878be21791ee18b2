"""The store behind the broadcaster: a resumable, ordered log, a snapshot cache and signed heads.

The store is an untrusted transport: it hands back bytes, and readers believe only what
verifies against the publishers' key (see ``_chain.py`` and ``_verify.py``). Backends never
raise on malformed content: an entry they cannot decode comes back with an empty scope and
message, for the reader to reject and count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Called by ``append`` with the revision it will assign and the head the store holds now
#: (None: none yet); returns the signed message to store and the signed head to store with it.
Seal = Callable[[int, bytes | None], tuple[bytes, bytes]]


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
    #: the signed head as stored when the snapshot was read (None: the store has none)
    head: bytes | None = None
    #: the last head each publisher's key signed, as stored (a reader that does not trust the
    #: key of ``head`` takes the newest of these signed by a key it does trust)
    heads: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Batch:
    """Entries read from the log, and the head as stored right after they were read.

    Every append stores its head in the same atomic write, so an entry above
    ``head``'s revision was not written by a publisher.
    """

    entries: list[Entry]
    head: bytes | None
    #: each publisher key's last head, as in ``Snapshot.heads``
    heads: tuple[bytes, ...] = ()


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
        """Assign the next revision; store ``seal``'s message and head atomically.

        The head is stored twice in that write: as the store's head, and as the last head of
        the key that signed it (``Snapshot.heads``, keyed by the envelope's ``kid``).

        Retries a lost revision race with jittered backoff (``ContentionError`` when it keeps
        losing); raises ``StoreIntegrityError`` when the log's top is out of range.
        """
        ...

    def write_head(self, expected: bytes | None, head: bytes, top: int) -> bool:
        """Replace the head, only if it is still ``expected`` and the log's top is ``top``.

        Like ``append``, it also stores the head as its signing key's last head.
        """
        ...

    def snapshot(self) -> Snapshot:
        """Return the latest entry per scope, the top revision and the head, read atomically."""
        ...

    def read(self, after: int, timeout: float) -> Batch:
        """Return entries after ``after`` in order, waiting up to ``timeout`` s for the first."""
        ...

    async def aread(self, after: int, timeout: float) -> Batch:
        """``read`` for asyncio code: waits without blocking the event loop."""
        ...

    def history(self, after: int = 0) -> Iterator[Entry]:
        """Every entry after ``after``, oldest first."""
        ...

    def close(self) -> None:
        """Release connections; the backend may not be used afterwards."""
        ...
