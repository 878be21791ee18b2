"""Embedded mode store in one sqlite file, shared by every process on the host (``sqlite:///``).

Writers serialise on ``BEGIN IMMEDIATE``, so the revision they assign is ``max + 1`` and
unique; readers poll ``revision > cursor`` on the primary key, which costs microseconds.
The file runs in WAL mode so readers never block the writer.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from onsale_obs.exceptions import BackendUnavailableError, StoreIntegrityError
from onsale_obs.modes._backend import Batch, Entry, Seal, Snapshot
from onsale_obs.modes._model import MAX_REVISION
from onsale_obs.modes._signing import claimed_kid

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (
    revision INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    message BLOB NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_scope ON transitions (scope, revision);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    message BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS key_heads (
    kid TEXT PRIMARY KEY,
    message BLOB NOT NULL
);
"""
_HEAD = "SELECT message FROM head WHERE id = 1"
_KEY_HEADS = "SELECT message FROM key_heads"


def _store_head(conn: sqlite3.Connection, head: bytes) -> None:
    """The store's head, and its signing key's last head (see ``Snapshot.heads``)."""
    conn.execute("INSERT OR REPLACE INTO head (id, message) VALUES (1, ?)", (head,))
    conn.execute(
        "INSERT OR REPLACE INTO key_heads (kid, message) VALUES (?, ?)",
        (claimed_kid(head) or "", head),
    )


def _heads(conn: sqlite3.Connection) -> tuple[bytes | None, tuple[bytes, ...]]:
    row = conn.execute(_HEAD).fetchone()
    keys = (_blob(r[0]) for r in conn.execute(_KEY_HEADS).fetchall())
    return (_blob(row[0]) if row else None), tuple(k for k in keys if k is not None)


def _row(revision: object, scope: object, message: object) -> Entry:
    """A row as the reader sees it: anything not as written by a publisher is emptied."""
    rev = revision if isinstance(revision, int) else -1
    if isinstance(message, str):
        message = message.encode("utf-8", "replace")
    return Entry(
        rev,
        scope if isinstance(scope, str) else "",
        message if isinstance(message, bytes) else b"",
    )


def _blob(value: object) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return value if isinstance(value, bytes) else None


class SqliteBackend:
    """Mode store in a sqlite file; ``poll_interval`` bounds how quickly readers see changes.

    A reader notices when the file it opened was replaced (a restore, a copy over it): it
    opens the new file on its next read, and the head tells it the store went back.
    """

    def __init__(self, path: str, *, url: str | None = None, poll_interval: float = 0.02) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.poll_interval = poll_interval
        self._lock = threading.RLock()  # a publisher's seal reads the store inside append
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None

    def _file_identity(self) -> tuple[int, int] | None:
        if self.path == ":memory:":
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _reopen_if_replaced(self) -> None:
        """A file replaced under us (a restore, a copy over it): read the new one from now on."""
        with self._lock:
            replaced = self._identity is not None and self._file_identity() != self._identity
            if self._conn is not None and replaced:
                self._conn.close()
                self._conn = None

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
        self._identity = self._file_identity()
        return conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[tuple[sqlite3.Connection, int, bytes | None]]:
        """One write transaction (``BEGIN IMMEDIATE``): the connection, the log's top, the head."""
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (top,) = conn.execute(
                        "SELECT COALESCE(MAX(revision), 0) FROM transitions"
                    ).fetchone()
                    row = conn.execute(_HEAD).fetchone()
                    yield conn, top, _blob(row[0]) if row else None
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot write the mode store ({exc}).", url=self.url
                ) from None

    def append(self, scope: str, seal: Seal) -> int:
        with self._writing() as (conn, top, stored_head):
            if not isinstance(top, int) or not 0 <= top < MAX_REVISION:
                raise StoreIntegrityError(
                    f"the log's top revision {top!r} is beyond {MAX_REVISION}: it was written "
                    "without the publishers' key; delete that row and run "
                    "'onsale-obs mode repair'.",
                    url=self.url,
                )
            revision = top + 1
            message, head = seal(revision, stored_head)
            conn.execute(
                "INSERT INTO transitions (revision, scope, message, recorded_at) VALUES (?, ?, ?, ?)",
                (revision, scope, message, time.time()),
            )
            _store_head(conn, head)
        return revision

    def write_head(self, expected: bytes | None, head: bytes, top: int) -> bool:
        with self._writing() as (conn, now_top, stored):
            ok = now_top == top and stored == expected
            if ok:
                _store_head(conn, head)
        return ok

    def _read(
        self, after: int | None
    ) -> tuple[list[Entry], int, tuple[bytes | None, tuple[bytes, ...]]]:
        """Entries after ``after`` (None: the latest per scope), the top, then the head."""
        with self._lock:
            conn = self._connect()
            try:
                # one consistent WAL snapshot for all three reads (inside append's own
                # transaction when a publisher's seal reads the store)
                own = not conn.in_transaction
                if own:
                    conn.execute("BEGIN")
                try:
                    if after is None:
                        rows = conn.execute(
                            "SELECT t.revision, t.scope, t.message FROM transitions t "
                            "JOIN (SELECT scope, MAX(revision) AS rev FROM transitions "
                            "GROUP BY scope) m ON t.scope = m.scope AND t.revision = m.rev"
                        ).fetchall()
                    else:
                        rows = conn.execute(
                            "SELECT revision, scope, message FROM transitions "
                            "WHERE revision > ? ORDER BY revision LIMIT 1000",
                            (after,),
                        ).fetchall()
                    (top,) = conn.execute(
                        "SELECT COALESCE(MAX(revision), 0) FROM transitions"
                    ).fetchone()
                    heads = _heads(conn)
                finally:
                    if own:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot read the mode store ({exc}).", url=self.url
                ) from None
        entries = [_row(*r) for r in rows]
        return entries, top if isinstance(top, int) else 0, heads

    def snapshot(self) -> Snapshot:
        entries, top, (head, heads) = self._read(None)
        return Snapshot({e.scope: e for e in entries}, top, head, heads)

    # Readers poll: each poll is one primary-key query; the head is read once entries are
    # found (or the wait ends), after them, so it covers every entry a publisher wrote.

    def _poll(self, after: int) -> list[Entry]:
        with self._lock:
            conn = self._connect()
            try:
                rows = conn.execute(
                    "SELECT revision, scope, message FROM transitions "
                    "WHERE revision > ? ORDER BY revision LIMIT 1000",
                    (after,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot read the mode store ({exc}).", url=self.url
                ) from None
        return [_row(*r) for r in rows]

    def _batch(self, found: list[Entry]) -> Batch:
        """``found`` with the heads as stored now (read after the entries)."""
        with self._lock:
            conn = self._connect()
            try:
                head, heads = _heads(conn)
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot read the mode store ({exc}).", url=self.url
                ) from None
        return Batch(found, head, heads)

    def read(self, after: int, timeout: float) -> Batch:
        self._reopen_if_replaced()
        deadline = time.monotonic() + timeout
        while True:
            found = self._poll(after)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return self._batch(found)
            time.sleep(min(self.poll_interval, remaining))

    async def aread(self, after: int, timeout: float) -> Batch:
        import asyncio  # here, not at the top: 'mode get' reads synchronously (CLI start-up)

        self._reopen_if_replaced()
        deadline = time.monotonic() + timeout
        while True:
            found = self._poll(after)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return self._batch(found)
            await asyncio.sleep(min(self.poll_interval, remaining))

    def history(self, after: int = 0) -> Iterator[Entry]:
        while True:
            found, _top, _heads = self._read(after)
            yield from found
            if len(found) < 1000:
                return
            after = found[-1].revision

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
