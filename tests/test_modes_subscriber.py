"""The per-service subscriber: expiry, staleness, ordering, rejections, fallback and metrics."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeState,
    ModeSubscriber,
    Schedule,
    ScheduledWindow,
    Signer,
    Verifier,
)
from onsale_obs.testing import FakeClock, key_pair


def make_subscriber(
    memory: MemoryBackend,
    keys: tuple[Signer, Verifier],
    clock: FakeClock,
    registry: CollectorRegistry | None = None,
    schedule: Schedule | None = None,
) -> ModeSubscriber:
    return ModeSubscriber(
        memory, keys[1], clock=clock, registry=registry, schedule=schedule, stale_after=5.0
    )


def test_event_and_global_scopes(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A request is on sale if its event scope or the global scope is; the event label follows the event."""
    sub = make_subscriber(memory, keys, clock)
    sub.sync()
    assert sub.mode_for("final") == "normal"
    broadcaster.set("event:final", "onsale")
    sub.sync()
    assert sub.resolve("final").mode == "onsale"
    assert sub.resolve("final").onsale_event == "final"
    assert sub.mode_for("other") == "normal"
    assert sub.mode_for(None) == "normal"
    broadcaster.set("global", "onsale")
    sub.sync()
    assert sub.resolve("other").mode == "onsale"
    assert sub.resolve("other").onsale_event is None
    assert sub.mode_for(None) == "onsale"


def test_until_expires_back_to_normal(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """An on-sale with ``until`` reverts to normal at that instant without any new message."""
    broadcaster.set("event:final", "onsale", until=clock() + 60)
    sub = make_subscriber(memory, keys, clock)
    sub.sync()
    clock.advance(59.9)
    assert sub.mode_for("final") == "onsale"
    clock.advance(0.1)
    assert sub.mode_for("final") == "normal"


def test_transitions_apply_in_revision_order(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """Every transition is seen once, in order, and the last one wins."""
    sub = make_subscriber(memory, keys, clock)
    seen: list[tuple[int, str]] = []
    sub.add_listener(lambda s: seen.append((s.revision, s.mode)))
    sub.sync()
    for i in range(6):
        broadcaster.set("event:final", "onsale" if i % 2 == 0 else "normal")
    sub.sync()
    assert seen == [(i + 1, "onsale" if i % 2 == 0 else "normal") for i in range(6)]
    assert sub.mode_for("final") == "normal"
    assert sub.revision == 6


def test_an_old_state_copied_into_the_log_is_skipped_unread(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """Re-sending an old, validly signed on-sale state does not put the scope back on sale.

    No signed head covers it (a publisher stores its head with every append), so it is not
    even opened.
    """
    sub = make_subscriber(memory, keys, clock)
    old = broadcaster.set("event:final", "onsale")
    broadcaster.set("event:final", "normal")
    sub.sync()
    memory.inject("event:final", keys[0].seal(old))  # same bytes, new position in the log
    sub.sync()
    assert sub.mode_for("final") == "normal"
    assert sub.rejected()["unvouched"] == 1
    assert sub.revision == 3  # it moved past it


def test_a_signed_state_of_another_history_is_refused_by_its_link(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A state signed for this very revision and scope, but in another history (a store that
    was reset, a staging store with the same key), breaks the chain: refused as a replay, even
    once a later publish puts the signed head above it. The link is the only guard here: the
    signature, scope, revision and head all pass."""
    other = MemoryBackend()
    elsewhere = Broadcaster(other, keys[0], clock=clock)
    elsewhere.set("event:final", "normal")
    elsewhere.set("event:x", "normal")
    foreign = elsewhere.set("event:final", "onsale", reason="another history")
    broadcaster = Broadcaster(memory, keys[0], clock=clock)
    broadcaster.set("event:final", "normal")
    broadcaster.set("event:y", "normal")
    sub = make_subscriber(memory, keys, clock)
    sub.sync()
    memory.inject("event:final", keys[0].seal(foreign), revision=3)
    assert keys[1].open_entry(memory.snapshot().latest["event:final"]) == foreign
    broadcaster.set("event:z", "normal")  # revision 4: the head now covers revision 3
    sub.sync()
    assert sub.mode_for("final") == "normal"
    assert sub.rejected()["replayed"] == 1
    assert sub.states()["event:z"].revision == 4  # the real history goes on


def test_forged_unsigned_and_garbage_are_counted(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A client without the private key cannot change the mode; each bad message is counted.

    With no signed head above them they are skipped unread (``unvouched``); with the head
    replaced by junk too, each is opened and refused for what it is.
    """
    intruder, _ = key_pair()
    forged = ModeState("event:final", "onsale", 1, clock(), None, "manual", "")
    bad = [
        intruder.seal(forged),
        b'{"v":1,"payload":"{}"}',
        b"\x00\xff not json",
        keys[0].seal(forged)[:40],  # truncated
        b"x" * 100_000,
    ]
    sub = make_subscriber(memory, keys, clock)
    sub.sync()
    for revision, message in enumerate(bad, start=1):
        memory.inject("event:final", message, revision=revision)
    sub.sync()
    assert sub.mode_for("final") == "normal"
    assert sub.rejected()["unvouched"] == 5
    assert sub.revision == 5  # it moved past them and keeps going

    second = MemoryBackend()
    Broadcaster(second, keys[0], clock=clock).set("global", "normal")
    sub = make_subscriber(second, keys, clock)
    sub.sync()
    second.head = b"not a signed head"
    second.heads.clear()
    for revision, message in enumerate(bad, start=2):
        second.inject("event:final", message, revision=revision)
    sub.sync()
    assert sub.mode_for("final") == "normal"
    assert sub.rejected() == {
        "malformed": 3,  # two bad envelopes, and the junk head
        "oversized": 1,
        "unsigned": 1,
        "forged": 1,
        "replayed": 0,
        "expired": 0,
        "unvouched": 0,
    }
    assert sub.revision == 6


def test_expired_state_on_arrival_does_not_put_scope_on_sale(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A state whose ``until`` passed before it arrived is counted as expired and never on sale."""
    sub = make_subscriber(memory, keys, clock)
    sub.sync()
    late = Broadcaster(memory, keys[0], clock=FakeClock(clock() - 600))
    late.set("event:final", "onsale", until=clock() - 60)
    sub.sync()
    assert sub.mode_for("final") == "normal"
    assert sub.rejected()["expired"] == 1


def test_outage_keeps_last_state_then_marks_stale(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """When the store is down the last known modes keep serving; after ``stale_after`` it is stale."""
    broadcaster.set("event:final", "onsale")
    sub = make_subscriber(memory, keys, clock)
    assert sub.sync()
    memory.unavailable = True
    assert not sub.sync()
    assert sub.mode_for("final") == "onsale"
    assert not sub.stale
    clock.advance(5.0)
    assert not sub.sync()
    assert sub.stale
    assert sub.mode_for("final") == "onsale"
    memory.unavailable = False
    assert sub.sync()
    assert not sub.stale


def test_stale_falls_back_to_schedule(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """With the store unreachable, a scheduled window still puts its event on sale."""
    schedule = Schedule([ScheduledWindow("event:final", clock() + 10, clock() + 100)])
    sub = make_subscriber(memory, keys, clock, schedule=schedule)
    memory.unavailable = True
    sub.sync()
    clock.advance(20)
    sub.sync()
    assert sub.stale
    assert sub.resolve("final").mode == "onsale"
    assert sub.resolve("final").onsale_event == "final"
    assert sub.mode_for("other") == "normal"
    clock.advance(100)
    assert sub.mode_for("final") == "normal"


def test_reads_never_raise_before_first_sync(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A subscriber that never reached the store answers normal instead of failing requests."""
    sub = make_subscriber(memory, keys, clock)
    assert sub.mode_for("final") == "normal"
    assert sub.mode_for(None) == "normal"


def test_listener_errors_do_not_stop_updates(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A listener that raises is logged and the view still updates."""
    sub = make_subscriber(memory, keys, clock)

    def broken(state: ModeState) -> None:
        raise RuntimeError("boom")

    sub.add_listener(broken)
    broadcaster.set("event:final", "onsale")
    assert sub.sync()
    assert sub.mode_for("final") == "onsale"


def test_metrics_expose_mode_stale_and_rejections(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """``onsale_mode{scope}`` follows the mode (expiry included), with stale and rejection metrics.

    The junk injected last must not hide the scope's latest valid state from a new subscriber.
    """
    registry = CollectorRegistry()
    sub = make_subscriber(memory, keys, clock, registry=registry)
    broadcaster.set("event:final", "onsale", until=clock() + 30)
    broadcaster.set("global", "normal")
    memory.inject("event:final", b"junk")
    sub.sync()
    text = generate_latest(registry).decode()
    assert 'onsale_mode{scope="event:final"} 1.0' in text
    assert 'onsale_mode{scope="global"} 0.0' in text
    assert "onsale_mode_stale 0.0" in text
    assert 'onsale_mode_rejected_total{reason="unvouched"} 1.0' in text
    assert "onsale_mode_revision 2.0" in text  # the junk at revision 3 was read, not applied
    clock.advance(31)
    assert 'onsale_mode{scope="event:final"} 0.0' in generate_latest(registry).decode()


def test_background_thread_follows_changes(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """``start()`` keeps the view current from a thread until ``stop()``."""
    sub = ModeSubscriber(memory, keys[1], registry=None, poll_timeout=0.05)
    seen: list[int] = []
    sub.add_listener(lambda s: seen.append(s.revision))
    arrived = threading.Event()
    sub.add_listener(lambda s: arrived.set())
    sub.start()
    try:
        assert sub.wait_synced(5)
        state = broadcaster.set("event:final", "onsale")
        assert arrived.wait(5)
        assert seen == [state.revision]
        assert sub.mode_for("final") == "onsale"
    finally:
        sub.stop()
    assert sub._thread is not None
    assert not sub._thread.is_alive()
    broadcaster.set("event:final", "normal")  # after stop(): nobody reads it
    time.sleep(0.2)  # four poll timeouts, had the thread still been reading
    assert seen == [state.revision]
    assert sub.mode_for("final") == "onsale"


def test_asyncio_task_follows_changes(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """``start_task()`` keeps the view current from an asyncio task (the loop not blocked: see
    ``test_async_subscriber_on_redis``)."""

    async def scenario() -> str:
        sub = ModeSubscriber(memory, keys[1], registry=None, poll_timeout=0.05)
        sub.start_task()
        try:
            for _ in range(100):
                await asyncio.sleep(0.01)
                if sub.revision == 0 and not memory.snapshot().latest:
                    broadcaster.set("event:final", "onsale")
                if sub.mode_for("final") == "onsale":
                    break
            return sub.mode_for("final")
        finally:
            await sub.astop()

    assert asyncio.run(scenario()) == "onsale"


@pytest.mark.parametrize("reason", ["", "x" * 500])
def test_reason_length_limit_accepted(broadcaster: Broadcaster, reason: str) -> None:
    """Reasons up to 500 characters are accepted."""
    assert broadcaster.set("global", "onsale", reason=reason).reason == reason
