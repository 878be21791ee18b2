"""In-process mode store for tests and single-process tools (``memory://``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes._backend import Batch, Entry, Seal, Snapshot
from onsale_obs.modes._signing import claimed_kid


class MemoryBackend:
    """Keeps the log in a list; ``unavailable`` simulates an outage for tests."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._log: list[Entry] = []
        self._latest: dict[str, Entry] = {}
        #: the signed head as stored (tests may replace it, as a hostile writer could)
        self.head: bytes | None = None
        #: each signing key's last head (tests may change these too)
        self.heads: dict[str, bytes] = {}
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
            revision = self._top() + 1
            message, head = seal(revision, self.head)
            entry = Entry(revision, scope, message)
            self._log.append(entry)
            self._latest[scope] = entry
            self._store_head(head)
            self._changed.notify_all()
        return revision

    def _store_head(self, head: bytes) -> None:
        self.head = head
        self.heads[claimed_kid(head) or ""] = head

    def _top(self) -> int:
        return max((e.revision for e in self._log), default=0)

    def write_head(self, expected: bytes | None, head: bytes, top: int) -> bool:
        self._check()
        with self._changed:
            if self.head != expected or self._top() != top:
                return False
            self._store_head(head)
            self._changed.notify_all()
            return True

    def inject(self, scope: str, message: bytes, revision: int | None = None) -> None:
        """Put a raw message on the bus, as a misbehaving or hostile client could (tests)."""
        with self._changed:
            revision = revision or self._top() + 1
            entry = Entry(revision, scope, message)
            self._log.append(entry)
            self._log.sort(key=lambda e: e.revision)
            self._latest[scope] = entry
            self._changed.notify_all()

    def snapshot(self) -> Snapshot:
        self._check()
        with self._changed:
            return Snapshot(dict(self._latest), self._top(), self.head, tuple(self.heads.values()))

    def _after(self, after: int) -> list[Entry]:
        return [e for e in self._log if e.revision > after]

    def read(self, after: int, timeout: float) -> Batch:
        self._check()
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._after(after)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return Batch(found, self.head, tuple(self.heads.values()))
                self._changed.wait(remaining)

    async def aread(self, after: int, timeout: float) -> Batch:
        self._check()
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                found = self._after(after)
                head, heads = self.head, tuple(self.heads.values())
            if found or time.monotonic() >= deadline:
                return Batch(found, head, heads)
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def history(self, after: int = 0) -> Iterator[Entry]:
        self._check()
        with self._changed:
            found = self._after(after)
        return iter(found)

    def reset(self) -> None:
        """Forget everything, as a store restarted without its data would (tests)."""
        with self._changed:
            self._log.clear()
            self._latest.clear()
            self.head = None
            self.heads.clear()
            self._changed.notify_all()

    def close(self) -> None:
        """Nothing to release."""
