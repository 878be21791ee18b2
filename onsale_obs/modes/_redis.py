"""Distributed mode store on Redis (``redis://host:port/db``).

Layout (``<prefix>`` defaults to ``onsale``):

- ``<prefix>:log``   stream whose entry ids are ``<revision>-0``: Redis refuses an id that is not
                     above the top, which makes the append a compare-and-set. A publisher signs
                     the revision it expects (the top it last saw + 1); if another publisher got
                     there first the script refuses, returns the real top, and it signs again;
- ``<prefix>:state`` hash ``scope -> "<revision>\\n<message>"``, the versioned snapshot.

Subscribers read the snapshot and the stream's top id atomically, then ``XREAD`` from the
last revision they saw. Pub/sub is not used: a subscriber that reconnects, or a Redis that
restarts (run it with ``appendonly yes``), loses nothing because the stream is resumable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from onsale_obs.exceptions import BackendUnavailableError, BadInputError
from onsale_obs.modes._backend import Entry, Seal, Snapshot

# Returns 0 when stored, else the revision at the top of the log (the caller retries above it).
# A refused append writes nothing, so it costs no fsync.
_APPEND = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local rev = 0
if #top > 0 then rev = tonumber(string.match(top[1][1], '^(%d+)')) end
if tonumber(ARGV[1]) <= rev then return rev end
redis.call('XADD', KEYS[1], ARGV[1] .. '-0', 'scope', ARGV[2], 'msg', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '\\n' .. ARGV[3])
return 0
"""

_SNAPSHOT = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local cursor = '0'
if #top > 0 then cursor = top[1][1] end
return {cursor, redis.call('HGETALL', KEYS[2])}
"""

#: Errors that are the store's, not a bug: unreachable, or refusing (a missing database).
_STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError, redis.ResponseError)
#: Publishers retry a lost revision race this many times before giving up.
_MAX_APPEND_ATTEMPTS = 50


def _revision(stream_id: bytes | str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.split("-", 1)[0])


class RedisBackend:
    """Mode store on one Redis database; see the module docstring for the layout."""

    def __init__(
        self, url: str, *, prefix: str | None = None, connect_timeout: float = 1.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise BadInputError(
                f"{url!r} is not a Redis URL; expected redis://host:port/db.", field="backend"
            )
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise BadInputError(
                f"{url!r} has a bad port; expected redis://host:port/db with a port in 1..65535.",
                field="backend",
            ) from None
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise BadInputError(
                f"{url!r} names database {db!r}; expected a number (redis://host:port/0).",
                field="backend",
            )
        query = parse_qs(parts.query)
        self.url = url
        self.prefix = prefix or query.get("prefix", ["onsale"])[0]
        self._keys = (f"{self.prefix}:log", f"{self.prefix}:state")
        self._last_revision: int | None = None
        self._connect_timeout = connect_timeout
        clean_url = parts._replace(query="").geturl()
        self._client_url = clean_url
        self._client: redis.Redis = redis.Redis.from_url(
            clean_url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=connect_timeout + 10.0,
            retry=Retry(NoBackoff(), 0),
        )
        # the subscriber's own connections, made on its first read
        self._reader: Any = None
        self._areader: Any = None
        self._append = self._client.register_script(_APPEND)
        self._snapshot = self._client.register_script(_SNAPSHOT)

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError | BadInputError:
        if isinstance(exc, redis.ResponseError) and "DB index" in str(exc):
            return BadInputError(
                f"{self.url!r}: Redis has no such database ({exc}).", field="backend"
            )
        if isinstance(exc, redis.ResponseError):
            return BackendUnavailableError(f"Redis refused the command ({exc}).", url=self.url)
        return BackendUnavailableError(f"cannot reach Redis ({exc}).", url=self.url)

    def append(self, scope: str, seal: Seal) -> int:
        log, state = self._keys
        try:
            if self._last_revision is None:
                top = self._client.xrevrange(log, count=1)
                self._last_revision = _revision(top[0][0] or b"0") if top else 0
            for attempt in range(_MAX_APPEND_ATTEMPTS):
                revision = self._last_revision + 1
                refused = int(
                    self._append(keys=[log, state], args=[revision, scope, seal(revision)])
                )
                if not refused:
                    self._last_revision = revision
                    return revision
                self._last_revision = refused
                # another publisher is appending right now: back off a little, randomly, so
                # racing publishers spread out instead of colliding again
                time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
        except _STORE_ERRORS as exc:
            self._last_revision = None  # after an outage, read the top again
            raise self._unavailable(exc) from None
        raise BackendUnavailableError(
            f"lost the revision race {_MAX_APPEND_ATTEMPTS} times in a row.", url=self.url
        )

    def snapshot(self) -> Snapshot:
        log, state = self._keys
        try:
            cursor_id, flat = self._snapshot(keys=[log, state])
        except _STORE_ERRORS as exc:
            raise self._unavailable(exc) from None
        latest: dict[str, Entry] = {}
        for i in range(0, len(flat), 2):
            scope = flat[i].decode()
            revision_text, _, message = bytes(flat[i + 1]).partition(b"\n")
            latest[scope] = Entry(int(revision_text), scope, message)
        return Snapshot(latest, _revision(cursor_id))

    @staticmethod
    def _entry(stream_id: Any, fields: Any) -> Entry:
        return Entry(_revision(stream_id), bytes(fields[b"scope"]).decode(), bytes(fields[b"msg"]))

    # The subscriber's hot path, paid in every service process at once on each change: a
    # connection of its own, driven directly, skips the client's per-command machinery (pool
    # checkout, retry wrapper, response callbacks), about 60 us of the ~200 us CPU a wake
    # costs a sync subscriber (see the README's broadcaster performance section).

    def _xread_command(self, after: int, timeout: float) -> tuple[Any, ...]:
        block_ms = max(1, int(timeout * 1000))
        return ("XREAD", "COUNT", 1000, "BLOCK", block_ms, "STREAMS", self._keys[0], f"{after}-0")

    @staticmethod
    def _xread_entries(reply: Any) -> list[Entry]:
        if not reply:
            return []
        # RESP3 (redis-py >= 8 by default) answers a map, RESP2 a list of [stream, items]
        streams = reply.values() if isinstance(reply, dict) else (pair[1] for pair in reply)
        entries: list[Entry] = []
        for items in streams:
            for stream_id, flat in items:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                entries.append(RedisBackend._entry(stream_id, fields))
        return entries

    def read(self, after: int, timeout: float) -> list[Entry]:
        conn = self._reader
        if conn is None:
            conn = self._reader = self._client.connection_pool.make_connection()
        try:
            conn.send_command(*self._xread_command(after, timeout))
            reply = conn.read_response()
        except _STORE_ERRORS as exc:
            conn.disconnect()  # the next read connects again
            raise self._unavailable(exc) from None
        except BaseException:
            conn.disconnect()  # a reply may be half read: never reuse the connection
            raise
        return self._xread_entries(reply)

    async def aread(self, after: int, timeout: float) -> list[Entry]:
        conn = self._areader
        if conn is None:
            client = aredis.Redis.from_url(
                self._client_url,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._connect_timeout + 10.0,
                retry=AsyncRetry(NoBackoff(), 0),  # connect once; the subscriber retries
            )
            conn = self._areader = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command(*self._xread_command(after, timeout))
            reply = await conn.read_response()
        except _STORE_ERRORS as exc:
            await conn.disconnect(nowait=True)
            raise self._unavailable(exc) from None
        except BaseException:  # cancelled mid-read (the subscriber stopping), or a bug
            await conn.disconnect(nowait=True)
            raise
        return self._xread_entries(reply)

    def history(self, after: int = 0) -> Iterator[Entry]:
        start = f"({after}-0" if after else "-"
        while True:
            try:
                items = self._client.xrange(self._keys[0], min=start, max="+", count=1000)
            except _STORE_ERRORS as exc:
                raise self._unavailable(exc) from None
            if not items:
                return
            for stream_id, fields in items:
                yield self._entry(stream_id, fields)
            start = f"({_revision(items[-1][0] or b'0')}-0"

    def inject(self, scope: str, message: bytes) -> int:
        """Write a raw message as a client without the signing key could (tests, drills)."""
        return self.append(scope, lambda _revision: message)

    async def aclose(self) -> None:
        """``close`` from the event loop the async reads ran on, closing their connection too."""
        if self._areader is not None:
            await self._areader.disconnect()
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.disconnect()
            self._reader = None
        self._client.close()
        self._areader = None  # closing it needs its event loop; its socket goes with it
