"""Embedded mode store in one sqlite file, shared by every process on the host (``sqlite:///``).

Writers serialise on ``BEGIN IMMEDIATE``, so the revision they assign is ``max + 1`` and
unique; readers poll ``revision > cursor`` on the primary key, which costs microseconds.
The file runs in WAL mode so readers never block the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes._backend import Entry, Seal, Snapshot

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (
    revision INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    message BLOB NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_scope ON transitions (scope, revision);
"""


class SqliteBackend:
    """Mode store in a sqlite file; ``poll_interval`` bounds how quickly readers see changes."""

    def __init__(self, path: str, *, url: str | None = None, poll_interval: float = 0.02) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailableError(
                f"cannot open the sqlite mode store ({exc}).", url=self.url
            ) from None
        self._conn = conn
        return conn

    def append(self, scope: str, seal: Seal) -> int:
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (head,) = conn.execute(
                        "SELECT COALESCE(MAX(revision), 0) FROM transitions"
                    ).fetchone()
                    revision = int(head) + 1
                    conn.execute(
                        "INSERT INTO transitions (revision, scope, message, recorded_at) VALUES (?, ?, ?, ?)",
                        (revision, scope, seal(revision), time.time()),
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot write the mode store ({exc}).", url=self.url
                ) from None
            return revision

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[int, str, bytes]]:
        with self._lock:
            conn = self._connect()
            try:
                return [
                    (int(r), str(s), bytes(m)) for r, s, m in conn.execute(sql, args).fetchall()
                ]
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot read the mode store ({exc}).", url=self.url
                ) from None

    def snapshot(self) -> Snapshot:
        # One statement reads one consistent WAL snapshot: latest per scope and the head together.
        rows = self._query(
            "SELECT t.revision, t.scope, t.message FROM transitions t "
            "JOIN (SELECT scope, MAX(revision) AS rev FROM transitions GROUP BY scope) m "
            "ON t.scope = m.scope AND t.revision = m.rev "
            "UNION ALL SELECT COALESCE(MAX(revision), 0), '', x'' FROM transitions"
        )
        cursor = 0
        latest: dict[str, Entry] = {}
        for revision, scope, message in rows:
            if scope == "":
                cursor = revision
            else:
                latest[scope] = Entry(revision, scope, message)
        return Snapshot(latest, cursor)

    def _after(self, after: int) -> list[Entry]:
        rows = self._query(
            "SELECT revision, scope, message FROM transitions WHERE revision > ? ORDER BY revision",
            (after,),
        )
        return [Entry(r, s, m) for r, s, m in rows]

    def read(self, after: int, timeout: float) -> list[Entry]:
        deadline = time.monotonic() + timeout
        while True:
            found = self._after(after)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            time.sleep(min(self.poll_interval, remaining))

    async def aread(self, after: int, timeout: float) -> list[Entry]:
        deadline = time.monotonic() + timeout
        while True:
            found = self._after(after)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            await asyncio.sleep(min(self.poll_interval, remaining))

    def history(self, after: int = 0) -> Iterator[Entry]:
        return iter(self._after(after))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
