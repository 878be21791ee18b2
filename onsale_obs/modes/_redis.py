"""Distributed mode store on Redis (``redis://host:port/db``).

Layout (``<prefix>`` defaults to ``onsale``):

- ``<prefix>:log``   stream whose entry ids are ``<revision>-0``. A publisher reads the
                     stream's last id and the head, signs revision ``last + 1`` on top of them,
                     and a script appends only if the last id is still the one it read (a
                     compare-and-set); a publisher that lost the race reads again and re-signs;
- ``<prefix>:state`` hash ``scope -> "<revision>\\n<message>"``, a snapshot *cache* that readers
                     check against the head;
- ``<prefix>:head``  the signed head (see ``_chain.py``), written in the same script;
- ``<prefix>:heads`` hash ``key id -> head``: each signing key's last head, written with it
                     (a reader that does not trust the last publisher's key goes by these).

Subscribers read the snapshot, the stream's last id and the heads atomically, then ``XREAD``
from the last revision they saw, with a ``GET`` of the head and an ``HVALS`` of the heads
pipelined behind it so every wake also brings them. Pub/sub is not used: a subscriber that reconnects, or a Redis that
restarts (run it with ``appendonly yes``), loses nothing because the stream is resumable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from onsale_obs.exceptions import (
    BackendUnavailableError,
    BadInputError,
    ContentionError,
    ReplicationTimeoutError,
    StoreIntegrityError,
)
from onsale_obs.modes._backend import Batch, Entry, Seal, Snapshot
from onsale_obs.modes._model import MAX_REVISION
from onsale_obs.modes._redis_url import parse_redis_url
from onsale_obs.modes._signing import claimed_kid
from onsale_obs.redact import redact_url

# The stream's last generated id (what XADD must exceed, even after XDEL), or '0-0'.
_LAST_ID = """
local function last_id(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
"""

_BASE = (
    _LAST_ID
    + """
return {last_id(KEYS[1]), redis.call('GET', KEYS[2])}
"""
)

# Stores only if the stream's last id and the head are still those the state was sealed on
# (ARGV[1], ARGV[6]; '' for no head). Returns '' when stored, else {last id, head}: the caller
# signs again on those. A refused append writes nothing, so it costs no fsync.
_APPEND = (
    _LAST_ID
    + """
local last = last_id(KEYS[1])
local head = redis.call('GET', KEYS[3])
if last ~= ARGV[1] or (head or '') ~= ARGV[6] then return {last, head} end
redis.call('XADD', KEYS[1], ARGV[2] .. '-0', 'scope', ARGV[3], 'msg', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2] .. '\\n' .. ARGV[4])
redis.call('SET', KEYS[3], ARGV[5])
redis.call('HSET', KEYS[4], ARGV[7], ARGV[5])
return ''
"""
)

# Replaces the head only if the head and the stream are still what the caller read.
_WRITE_HEAD = (
    _LAST_ID
    + """
if last_id(KEYS[1]) ~= ARGV[1] then return 0 end
local head = redis.call('GET', KEYS[2])
if ARGV[2] == '0' then
  if head then return 0 end
elseif head ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
return 1
"""
)

_SNAPSHOT = (
    _LAST_ID
    + """
return {last_id(KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3]),
        redis.call('HVALS', KEYS[4])}
"""
)

#: Errors that are the store's, not a bug: unreachable, or refusing (a missing database).
_STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError, redis.ResponseError)
#: Publishers retry a lost revision race, with jittered backoff, for this long.
APPEND_DEADLINE = 10.0
#: The highest sequence part of a stream id: XREAD after ``<n>-<this>`` skips every id of ``n``.
_MAX_SEQ = 2**64 - 1


def _revision(stream_id: bytes | str) -> int:
    """The revision part of a stream id (``<revision>-<seq>``); -1 when it is not one."""
    text = stream_id.decode("ascii", "replace") if isinstance(stream_id, bytes) else stream_id
    head, _, _seq = text.partition("-")
    return int(head) if head.isdigit() else -1


def _resp(*parts: str) -> bytes:
    """One command in Redis's wire format (an array of bulk strings).

    The subscriber's read is encoded here rather than by redis-py's ``pack_commands``: it is
    the same three commands on every wake, and packing them took about 15 us of a wake's CPU.
    """
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _refusal(reply: Any) -> tuple[Any, Any] | None:
    """The append script's answer: None when stored, else the store's (last id, head)."""
    if isinstance(reply, list | tuple) and len(reply) == 2:
        return reply[0], reply[1] if isinstance(reply[1], bytes) else None
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _bytes_list(value: Any) -> tuple[bytes, ...]:
    """The byte strings of a reply that should be a list of them (anything else dropped)."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, bytes))


def _entry(stream_id: Any, flat: Any) -> Entry:
    """A stream entry as the reader sees it; one it cannot decode has no scope and no message."""
    fields: dict[Any, Any] = {}
    if isinstance(flat, list | tuple) and len(flat) % 2 == 0:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
    elif isinstance(flat, dict):
        fields = flat
    text = _text(stream_id)
    scope = _text(fields.get(b"scope", b""))
    message = fields.get(b"msg", b"")
    if not isinstance(message, bytes) or not text.endswith("-0"):
        return Entry(_revision(text), "", b"")  # not ours: publishers write <revision>-0
    return Entry(_revision(text), scope, message)


class RedisBackend:
    """Mode store on one Redis database; see the module docstring for the layout."""

    def __init__(
        self, url: str, *, prefix: str | None = None, connect_timeout: float = 1.0
    ) -> None:
        target = parse_redis_url(url)
        self.url = url
        self.target = target
        self.prefix = prefix or target.prefix
        self._keys = (f"{self.prefix}:log", f"{self.prefix}:state", f"{self.prefix}:head")
        self._heads_key = f"{self.prefix}:heads"
        self._connect_timeout = connect_timeout
        self._sentinel_managers: list[Any] = []  # closed with the backend
        self._client: redis.Redis = self._make_client(sync=True)
        # the subscriber's own connections, made on its first read
        self._reader: Any = None
        self._areader: Any = None
        # (last id, head) this backend's last append left, while nothing else is known to
        # have written since: the next append is sealed on it without a read first
        self._written: tuple[bytes, bytes] | None = None
        self._read_packet: tuple[tuple[str, int], bytes] | None = None  # the last one built
        self._base = self._client.register_script(_BASE)
        self._append = self._client.register_script(_APPEND)
        self._write_head = self._client.register_script(_WRITE_HEAD)
        self._snapshot = self._client.register_script(_SNAPSHOT)

    def _make_client(self, *, sync: bool) -> Any:
        """A client of the primary: the URL's server, or the one the Sentinels name now.

        Connections made from a Sentinel client ask the Sentinels for the primary whenever
        they connect, so after a failover a reconnect reaches the new primary.
        """
        t = self.target
        options: dict[str, Any] = {
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": self._connect_timeout + 10.0,
            # connect once: subscribers and publishers retry on their own terms
            "retry": (Retry if sync else AsyncRetry)(NoBackoff(), 0),
        }
        if not t.sentinel:
            return (redis.Redis if sync else aredis.Redis).from_url(t.client_url, **options)
        sentinel_kwargs = {"socket_connect_timeout": self._connect_timeout}
        if t.sentinel_password:
            sentinel_kwargs["password"] = t.sentinel_password  # type: ignore[assignment]
        sentinel = (Sentinel if sync else AsyncSentinel)(
            list(t.sentinels),
            sentinel_kwargs=sentinel_kwargs,
            socket_timeout=self._connect_timeout,
        )
        assert t.service is not None
        self._sentinel_managers.append(sentinel)
        return sentinel.master_for(
            t.service, db=t.db, username=t.username, password=t.password, **options
        )

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError | BadInputError:
        shown = redact_url(self.url)
        if isinstance(exc, redis.ResponseError) and "DB index" in str(exc):
            return BadInputError(f"{shown!r}: Redis has no such database ({exc}).", field="backend")
        if isinstance(exc, redis.ResponseError) and "WRONGTYPE" in str(exc):
            return StoreIntegrityError(
                f"a key of the mode store holds the wrong type ({exc}): it was written by "
                f"something else; move it away (RENAME) and run 'onsale-obs mode repair'.",
                url=shown,
            )
        if isinstance(exc, redis.ResponseError):
            return BackendUnavailableError(f"Redis refused the command ({exc}).", url=shown)
        return BackendUnavailableError(f"cannot reach Redis ({exc}).", url=shown)

    def append(self, scope: str, seal: Seal) -> int:
        log, _state, head = self._keys
        backoff = EqualJitterBackoff(cap=0.2, base=0.002)
        deadline = time.monotonic() + APPEND_DEADLINE
        attempts = 0
        try:
            # what this backend wrote last (the usual case for a publisher): sealed on it
            # without reading the store first; the script refuses it if the store moved
            cached = self._written is not None
            last, stored_head = self._written or self._base(keys=[log, head])
            while True:
                attempts += 1
                last_text = _text(last)
                top = _revision(last_text)
                if not 0 <= top < MAX_REVISION:
                    raise StoreIntegrityError(
                        f"the log's last id {last_text!r} is beyond revision {MAX_REVISION}: it "
                        f"was written without the publishers' key, and Redis accepts no later "
                        f"id on that stream; move it away (RENAME {log} {log}.bad) and run "
                        "'onsale-obs mode repair'.",
                        url=redact_url(self.url),
                    )
                revision = top + 1
                message, new_head = seal(revision, stored_head)
                self._written = None
                refused = self._store(last_text, revision, scope, message, new_head, stored_head)
                if refused is None:
                    self._written = (f"{revision}-0".encode(), new_head)
                    return revision
                last, stored_head = refused
                if attempts == 1 and cached:
                    continue  # only the cache was out of date: no one to back off from
                # another publisher appended first: back off a little, randomly, so racing
                # publishers spread out instead of colliding again, then sign on its top
                if time.monotonic() >= deadline:
                    break
                time.sleep(backoff.compute(attempts))
        except _STORE_ERRORS as exc:
            raise self._unavailable(exc) from None
        raise ContentionError(
            f"{redact_url(self.url)}: other publishers kept appending first: lost the revision "
            f"race {attempts} times in {APPEND_DEADLINE:.0f} s; nothing was written, running "
            "it again is safe."
        )

    def _store(
        self,
        last: str,
        revision: int,
        scope: str,
        message: bytes,
        head: bytes,
        sealed_on: bytes | None,
    ) -> tuple[Any, Any] | None:
        """Run the append script; with ``wait``, also wait for replicas on the same connection.

        Returns None when stored, else the stream's (last id, head) now: the state was sealed on
        others (``sealed_on`` is the head it was sealed on). Raises ``ReplicationTimeoutError``
        when the transition is stored on the primary but fewer replicas than asked for
        acknowledged it in time: it may be lost if the primary fails over now.
        """
        keys = [*self._keys, self._heads_key]
        args = [last, revision, scope, message, head, sealed_on or b"", claimed_kid(head) or ""]
        wanted = self.target.wait_replicas
        if not wanted:
            return _refusal(self._append(keys=keys, args=args))
        pipe = self._client.pipeline(transaction=False)
        self._append(keys=keys, args=args, client=pipe)
        pipe.execute_command(  # type: ignore[no-untyped-call]
            "WAIT", wanted, max(1, int(self.target.wait_timeout * 1000))
        )
        refused_raw, acked = pipe.execute()
        refused = _refusal(refused_raw)
        if refused is None and int(acked) < wanted:
            raise ReplicationTimeoutError(
                f"revision {revision} is stored on the primary, but {acked} of the {wanted} "
                f"replica(s) asked for acknowledged it within {self.target.wait_timeout:g} s: if "
                "the primary fails over now it may be lost. Check with 'onsale-obs mode get' "
                "once replication is back, and set the mode again if it is missing.",
                url=redact_url(self.url),
            )
        return refused

    def write_head(self, expected: bytes | None, head: bytes, top: int) -> bool:
        log, _state, head_key = self._keys
        self._written = None
        try:
            last, _stored = self._base(keys=[log, head_key])
            if _revision(_text(last)) != top:
                return False
            return bool(
                self._write_head(
                    keys=[log, head_key, self._heads_key],
                    args=[
                        _text(last),
                        0 if expected is None else 1,
                        expected or b"",
                        head,
                        claimed_kid(head) or "",
                    ],
                )
            )
        except _STORE_ERRORS as exc:
            raise self._unavailable(exc) from None

    def snapshot(self) -> Snapshot:
        try:
            last, flat, head, heads = self._snapshot(keys=[*self._keys, self._heads_key])
        except _STORE_ERRORS as exc:
            raise self._unavailable(exc) from None
        latest: dict[str, Entry] = {}
        for i in range(0, len(flat) - 1, 2):
            scope = _text(flat[i])
            revision_text, _, message = bytes(flat[i + 1]).partition(b"\n")
            revision = int(revision_text) if revision_text.isdigit() else -1
            latest[scope] = Entry(revision, scope, message)  # a cache: checked by the reader
        return Snapshot(
            latest,
            max(_revision(_text(last)), 0),
            head if isinstance(head, bytes) else None,
            _bytes_list(heads),
        )

    # The subscriber's hot path, paid in every service process at once on each change: a
    # connection of its own, driven directly, skips the client's per-command machinery (pool
    # checkout, retry wrapper, response callbacks), about 60 us of the ~200 us CPU a wake
    # costs a sync subscriber (see the README's broadcaster performance section). The GET of
    # the head rides in the same packet and Redis answers it right after the XREAD returns.

    def _read_commands(self, after: int, timeout: float) -> bytes:
        """``XREAD`` of the entries after ``after`` and ``GET`` of the head, one packet."""
        block_ms = max(1, int(timeout * 1000))
        start = f"{after}-{_MAX_SEQ}" if after > 0 else "0-0"
        key = (start, block_ms)
        if self._read_packet is None or self._read_packet[0] != key:
            log, _state, head = self._keys
            packet = _resp("XREAD", "COUNT", "1000", "BLOCK", str(block_ms), "STREAMS", log, start)
            self._read_packet = (
                key,
                packet + _resp("GET", head) + _resp("HVALS", self._heads_key),
            )
        return self._read_packet[1]

    @staticmethod
    def _batch(reply: Any, head: Any, heads: Any) -> Batch:
        entries: list[Entry] = []
        if reply:
            # RESP3 (redis-py >= 8 by default) answers a map, RESP2 a list of [stream, items]
            streams = reply.values() if isinstance(reply, dict) else (pair[1] for pair in reply)
            for items in streams:
                for stream_id, flat in items:
                    entries.append(_entry(stream_id, flat))
        return Batch(entries, head if isinstance(head, bytes) else None, _bytes_list(heads))

    def read(self, after: int, timeout: float) -> Batch:
        conn = self._reader
        if conn is None:
            conn = self._reader = self._client.connection_pool.make_connection()
        try:
            conn.connect()  # no-op when connected; a Sentinel-managed one asks for the primary
            conn.send_packed_command([self._read_commands(after, timeout)])
            reply = conn.read_response()
            head = conn.read_response()
            heads = conn.read_response()
        except _STORE_ERRORS as exc:
            conn.disconnect()  # the next read connects again
            raise self._unavailable(exc) from None
        except BaseException:
            conn.disconnect()  # a reply may be half read: never reuse the connection
            raise
        return self._batch(reply, head, heads)

    async def aread(self, after: int, timeout: float) -> Batch:
        conn = self._areader
        if conn is None:
            client = self._make_client(sync=False)
            conn = self._areader = client.connection_pool.make_connection()
        try:
            await conn.connect()
            await conn.send_packed_command([self._read_commands(after, timeout)])
            reply = await conn.read_response()
            head = await conn.read_response()
            heads = await conn.read_response()
        except _STORE_ERRORS as exc:
            await conn.disconnect(nowait=True)
            raise self._unavailable(exc) from None
        except BaseException:  # cancelled mid-read (the subscriber stopping), or a bug
            await conn.disconnect(nowait=True)
            raise
        return self._batch(reply, head, heads)

    def history(self, after: int = 0) -> Iterator[Entry]:
        start = f"({after}-{_MAX_SEQ}" if after > 0 else "-"
        while True:
            try:
                items = self._client.xrange(self._keys[0], min=start, max="+", count=1000)
            except _STORE_ERRORS as exc:
                raise self._unavailable(exc) from None
            if not items:
                return
            for stream_id, flat in items:
                yield _entry(stream_id, flat)
            start = "(" + _text(items[-1][0])

    def inject(self, scope: str, message: bytes) -> int:
        """Write a raw message as a client without the signing key could (tests, drills).

        It lands at the next revision without touching the head, as such a client's would.
        """
        log, state, _head = self._keys
        last = _text(self._base(keys=[log, self._keys[2]])[0])
        revision = _revision(last) + 1
        self._client.xadd(log, {"scope": scope, "msg": message}, id=f"{revision}-0")
        self._client.hset(state, scope, str(revision).encode() + b"\n" + message)
        return revision

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
        for manager in self._sentinel_managers:
            for client in manager.sentinels:
                if isinstance(client, redis.Redis):  # the async ones go with their loop
                    client.close()
        self._areader = None  # closing it needs its event loop; its socket goes with it
