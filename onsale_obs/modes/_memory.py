"""In-process mode store for tests and single-process tools (``memory://``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes._backend import Entry, Seal, Snapshot


class MemoryBackend:
    """Keeps the log in a list; ``unavailable`` simulates an outage for tests."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._log: list[Entry] = []
        self._latest: dict[str, Entry] = {}
        self._changed = threading.Condition()
        self.unavailable = False

    def _check(self) -> None:
        if self.unavailable:
            raise BackendUnavailableError(
                "the in-memory store is marked unavailable.", url=self.url
            )

    def append(self, scope: str, seal: Seal) -> int:
        self._check()
        with self._changed:
            revision = (self._log[-1].revision if self._log else 0) + 1
            entry = Entry(revision, scope, seal(revision))
            self._log.append(entry)
            self._latest[scope] = entry
            self._changed.notify_all()
        return revision

    def inject(self, scope: str, message: bytes, revision: int | None = None) -> None:
        """Put a raw message on the bus, as a misbehaving or hostile client could (tests)."""
        with self._changed:
            revision = revision or (self._log[-1].revision if self._log else 0) + 1
            entry = Entry(revision, scope, message)
            self._log.append(entry)
            self._latest[scope] = entry
            self._changed.notify_all()

    def snapshot(self) -> Snapshot:
        self._check()
        with self._changed:
            cursor = self._log[-1].revision if self._log else 0
            return Snapshot(dict(self._latest), cursor)

    def _after(self, after: int) -> list[Entry]:
        return [e for e in self._log if e.revision > after]

    def read(self, after: int, timeout: float) -> list[Entry]:
        self._check()
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._after(after)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    async def aread(self, after: int, timeout: float) -> list[Entry]:
        self._check()
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                found = self._after(after)
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def history(self, after: int = 0) -> Iterator[Entry]:
        self._check()
        with self._changed:
            found = self._after(after)
        return iter(found)

    def close(self) -> None:
        """Nothing to release."""
