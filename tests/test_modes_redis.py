"""The distributed backend against a real redis-server: ordering, outages and restarts."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from onsale_obs.exceptions import BackendUnavailableError, BadInputError, StoreIntegrityError
from onsale_obs.modes import (
    Batch,
    Broadcaster,
    ModeHistory,
    ModeSubscriber,
    Signer,
    Verifier,
    generate_key_pair,
    open_backend,
)
from onsale_obs.modes._redis import RedisBackend
from onsale_obs.testing import ListLogger, RedisServer, key_pair
from tests.workers import finish_worker, start_worker


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    """Poll a condition in an integration test (real servers take real time)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def quick_subscriber(
    url: str, verifier: Verifier, stale_after: float = 0.3, logger: object = None
) -> ModeSubscriber:
    """A subscriber that notices outages and recoveries within a fraction of a second."""
    return ModeSubscriber(
        open_backend(url),
        verifier,
        registry=None,
        poll_timeout=0.2,
        retry_interval=0.05,
        stale_after=stale_after,
        logger=logger,
    )


def test_two_processes_see_every_transition_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two subscriber processes receive every one of 30 transitions, in revision order."""
    keys = generate_key_pair(tmp_path)
    broadcaster = Broadcaster(open_backend(redis_server.url), Signer.from_file(keys.signing_key))
    workers = [start_worker(redis_server.url, keys.verify_key, last_revision=30) for _ in range(2)]
    published = [
        broadcaster.set(f"event:e{i % 3}", "onsale" if i % 2 == 0 else "normal") for i in range(30)
    ]
    expected = [(s.revision, s.scope, s.mode) for s in published]
    assert [r for r, _, _ in expected] == list(range(1, 31))
    for worker in workers:
        assert finish_worker(worker) == expected


def test_redis_restart_loses_no_transition(redis_server: RedisServer, tmp_path: Path) -> None:
    """Kill Redis mid-stream and restart it: subscribers keep serving, recover, miss nothing."""
    keys = generate_key_pair(tmp_path)
    signer = Signer.from_file(keys.signing_key)
    verifier = Verifier.from_files([keys.verify_key])
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    workers = [
        start_worker(redis_server.url, keys.verify_key, last_revision=20, timeout=90)
        for _ in range(2)
    ]
    local = quick_subscriber(redis_server.url, verifier, stale_after=0.5).start()
    try:
        for i in range(10):
            broadcaster.set("event:final", "onsale" if i % 2 == 0 else "normal")
        assert wait_for(lambda: local.revision == 10)
        assert local.mode_for("final") == "normal"

        redis_server.kill()
        with pytest.raises(BackendUnavailableError):
            broadcaster.set(
                "event:final", "onsale"
            )  # the publisher is told; nothing is half-written
        assert local.mode_for("final") == "normal"  # keeps serving the last known state
        assert wait_for(lambda: local.stale)
        assert local.mode_for("final") == "normal"

        redis_server.start()
        for i in range(10, 20):
            broadcaster.set(
                "event:final", "onsale" if i % 2 == 0 else "normal", reason=f"after restart {i}"
            )
        assert wait_for(lambda: local.revision == 20)
        assert not local.stale
    finally:
        local.stop()
    history = ModeHistory(open_backend(redis_server.url), verifier).transitions()
    assert [s.revision for s in history] == list(range(1, 21))
    expected = [(s.revision, s.scope, s.mode) for s in history]
    for worker in workers:
        assert finish_worker(worker, timeout=90) == expected
    assert local.states()["event:final"] == history[-1]


def wipe_and_restart(server: RedisServer) -> None:
    """Kill Redis and start it on an empty data folder, as when it runs without persistence."""
    server.kill()
    assert server.directory is not None
    shutil.rmtree(server.directory)
    server.directory.mkdir()
    server.start()


def test_redis_restarted_without_its_data_is_followed(redis_server: RedisServer) -> None:
    """Redis comes back empty: subscribers say so, keep what they hold, and refuse old states.

    An attacker with access to Redis but not to the key puts old signed states back: with no
    signed head in the store, nothing in it is vouched for, so subscribers keep the mode they
    verified and report themselves stale, and publishers refuse to build on it until a key
    holder reviews it ('mode repair'). Old states written after that are above the new head.
    """
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    for i in range(7):  # revisions 1, 3, 5, 7 on sale; 2, 4, 6 normal
        broadcaster.set("event:final", "onsale" if i % 2 == 0 else "normal")
    old = {e.revision: e.message for e in broadcaster.backend.history()}
    log = ListLogger()
    sub = quick_subscriber(redis_server.url, verifier, logger=log).start()
    try:
        assert wait_for(lambda: sub.revision == 7)
        assert sub.mode_for("final") == "onsale"
        wipe_and_restart(redis_server)
        assert wait_for(lambda: any("went back in time" in e for _, e in log.events))
        assert sub.store_resets == 1
        raw = RedisBackend(redis_server.url)
        for _ in range(3):
            raw.inject("event:final", b"{junk")
        assert raw.inject("event:final", old[4]) == 4  # an old "normal"
        assert wait_for(lambda: sub.trouble is not None and sub.stale)
        assert sub.mode_for("final") == "onsale"  # the state it held, not the old one
        fresh = Broadcaster(open_backend(redis_server.url), signer)
        with pytest.raises(StoreIntegrityError, match="no signed head"):
            fresh.set("event:final", "normal", reason="after the restart")
        plan = fresh.plan_repair()
        assert plan.states == {}  # the old "normal" has no history before it here
        fresh.repair(plan)
        assert fresh.set("event:final", "normal", reason="after the restart").revision == 5
        assert wait_for(lambda: sub.mode_for("final") == "normal")
        assert wait_for(lambda: not sub.stale)
        raw.inject("event:final", b"{junk")
        assert raw.inject("event:final", old[7]) == 7  # an old "onsale", above the new head
        assert wait_for(lambda: sub.rejected()["unvouched"] >= 2)
        assert sub.mode_for("final") == "normal"
        assert not sub.stale
        raw.close()
    finally:
        sub.stop()


def test_a_reset_is_noticed_even_when_the_new_history_passed_our_cursor(
    redis_server: RedisServer,
) -> None:
    """Redis came back empty and got more changes than we had seen before we looked again:
    the entry at our cursor is not ours, so the new history is read from its start."""
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    broadcaster.set("event:a", "onsale")
    broadcaster.set("event:b", "normal")
    seen: list[tuple[str, str]] = []
    sub = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None)
    sub.add_listener(lambda s: seen.append((s.scope, s.mode)))
    assert sub.sync()
    assert sub.revision == 2
    redis_server.kill()
    assert not sub.sync()  # the outage, seen
    wipe_and_restart(redis_server)
    fresh = Broadcaster(open_backend(redis_server.url), signer)
    for scope, mode in (("event:a", "normal"), ("event:b", "onsale"), ("event:c", "onsale")):
        fresh.set(scope, mode)
    assert sub.sync(0.5)
    assert sub.sync(0.5)
    assert (sub.mode_for("a"), sub.mode_for("b"), sub.mode_for("c")) == (
        "normal",
        "onsale",
        "onsale",
    )
    assert seen[2:] == [("event:a", "normal"), ("event:b", "onsale"), ("event:c", "onsale")]
    assert sub.rejected()["replayed"] == 0


def test_subscriber_started_while_redis_down_recovers(redis_server: RedisServer) -> None:
    """A service that starts during an outage answers normal, then catches up when Redis returns."""
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    broadcaster.set("global", "onsale")
    redis_server.kill()
    sub = quick_subscriber(redis_server.url, verifier).start()
    try:
        assert sub.mode_for(None) == "normal"
        assert wait_for(lambda: sub.stale)
        redis_server.start()
        assert wait_for(lambda: sub.mode_for(None) == "onsale")
    finally:
        sub.stop()


def test_concurrent_publishers_get_unique_revisions(redis_server: RedisServer) -> None:
    """Publishers racing for revisions never reuse one; the log stays strictly increasing.

    A publisher that loses a race burns the number it reserved, so gaps are allowed.
    """
    signer, verifier = key_pair()
    backends = [open_backend(redis_server.url) for _ in range(4)]

    async def race() -> list[int]:
        def publish(b: object, n: int) -> list[int]:
            assert isinstance(b, RedisBackend)
            return [
                Broadcaster(b, signer).set("global", "onsale" if i % 2 else "normal").revision
                for i in range(n)
            ]

        results = await asyncio.gather(*(asyncio.to_thread(publish, b, 25) for b in backends))
        return [r for rs in results for r in rs]

    revisions = asyncio.run(race())
    assert len(set(revisions)) == 100
    history = ModeHistory(open_backend(redis_server.url), verifier).transitions()
    assert [s.revision for s in history] == sorted(revisions)


def test_async_subscriber_on_redis(redis_server: RedisServer) -> None:
    """The asyncio task waits on XREAD without blocking the event loop, and sees the change.

    While the first read waits (poll_timeout 1 s, nothing published), a heartbeat must keep
    getting turns: a read that blocked the loop would finish before the heartbeat's next turn.
    """
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    backend = RedisBackend(redis_server.url)
    finished_reads = 0
    real_aread = backend.aread

    async def counting_aread(after: int, timeout: float) -> Batch:
        nonlocal finished_reads
        entries = await real_aread(after, timeout)
        finished_reads += 1
        return entries

    real_read = backend.read

    def counting_read(after: int, timeout: float) -> Batch:
        nonlocal finished_reads
        entries = real_read(after, timeout)
        finished_reads += 1
        return entries

    backend.aread = counting_aread  # type: ignore[method-assign]
    backend.read = counting_read  # type: ignore[method-assign]

    async def scenario() -> str:
        sub = ModeSubscriber(backend, verifier, registry=None, poll_timeout=1.0)
        sub.start_task()
        try:
            while not sub._synced:
                await asyncio.sleep(0.005)
            for _ in range(20):  # 20 turns of the loop inside the first 1 s read
                await asyncio.sleep(0.01)
                assert finished_reads == 0
            await asyncio.to_thread(broadcaster.set, "event:final", "onsale")
            for _ in range(300):
                if sub.mode_for("final") == "onsale":
                    break
                await asyncio.sleep(0.01)
            return sub.mode_for("final")
        finally:
            await sub.astop()
            await backend.aclose()

    assert asyncio.run(scenario()) == "onsale"


def test_async_subscriber_survives_redis_restart(redis_server: RedisServer) -> None:
    """The asyncio task keeps serving through a Redis kill, then reconnects and catches up."""
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)

    async def wait_async(predicate: object) -> bool:
        assert callable(predicate)
        for _ in range(500):
            if predicate():
                return True
            await asyncio.sleep(0.02)
        return False

    async def scenario() -> None:
        sub = quick_subscriber(redis_server.url, verifier)
        sub.start_task()
        try:
            await asyncio.to_thread(broadcaster.set, "event:final", "onsale")
            assert await wait_async(lambda: sub.mode_for("final") == "onsale")
            await asyncio.to_thread(redis_server.kill)
            assert await wait_async(lambda: sub.stale)
            assert sub.mode_for("final") == "onsale"  # the last known state keeps serving
            await asyncio.to_thread(redis_server.start)
            await asyncio.to_thread(broadcaster.set, "event:final", "normal")
            assert await wait_async(lambda: sub.mode_for("final") == "normal" and not sub.stale)
            assert sub.revision == 2
        finally:
            await sub.astop()

    asyncio.run(scenario())


def test_garbage_on_the_bus_is_counted_not_fatal(redis_server: RedisServer) -> None:
    """Malformed, truncated and forged messages written straight into Redis are rejected and counted."""
    signer, verifier = key_pair()
    broadcaster = Broadcaster(open_backend(redis_server.url), signer)
    sub = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None, poll_timeout=0.1)
    assert sub.sync()
    raw = RedisBackend(redis_server.url)
    good = broadcaster.set("event:final", "onsale")
    raw.inject("event:final", b"{not json")
    raw.inject("event:final", signer.seal(good)[:30])
    raw.inject("event:final", key_pair()[0].seal(good))
    assert sub.sync(0.5)
    assert sub.mode_for("final") == "onsale"
    assert sub.rejected()["unvouched"] == 3  # no signed head above them: not even opened
    # a new service starting now still finds the last valid state
    fresh = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None)
    assert fresh.sync()
    assert fresh.mode_for("final") == "onsale"


def test_unreachable_redis_is_backend_error() -> None:
    """Nothing listening on the port: a BackendUnavailableError naming the URL."""
    backend = open_backend("redis://127.0.0.1:1/0")
    with pytest.raises(
        BackendUnavailableError, match=r"redis://127\.0\.0\.1:1/0: cannot reach Redis"
    ):
        backend.snapshot()


def test_missing_redis_database_is_bad_input(redis_server: RedisServer) -> None:
    """A database index the server does not have is the URL's fault (exit 2), not an outage."""
    url = redis_server.url.rsplit("/", 1)[0] + "/99"
    with pytest.raises(BadInputError, match="no such database"):
        open_backend(url).snapshot()


@pytest.mark.parametrize(
    "url",
    [
        "redis://",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/abc",
        "mysql://x",
        "sqlite://host/x.db",
        "nonsense",
    ],
)
def test_bad_backend_urls(url: str) -> None:
    """Unsupported or malformed backend URLs are bad input with the expected forms listed."""
    with pytest.raises(BadInputError, match="expected"):
        open_backend(url)
