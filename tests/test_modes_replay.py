"""Each replay guard on its own: in every test here, one check is all that stands between an old,
validly signed state and a service taking it as current (issue 25).

The guards and where each is the only one:
- the position check of ``Verifier.open_entry`` (a message is only valid where it was signed);
- the chain link (``test_modes_subscriber``: a state of another history at the right revision);
- entries above the signed head skipped unread (``test_modes_subscriber``, ``unvouched``);
- the walk back from the head by digests (``test_modes_integrity``: another history's state);
- the snapshot checked against the head (``test_modes_integrity_redis``: snapshot edits);
- the floors kept across a store that went back (below: a whole older backup restored, and
  one whose newest state was signed in the same second as the state held).
"""

from __future__ import annotations

import pytest

from onsale_obs.modes import (
    Broadcaster,
    Entry,
    MemoryBackend,
    ModeSubscriber,
    RejectedMessage,
    Signer,
    Verifier,
    current_states,
)
from onsale_obs.testing import FakeClock


def test_a_message_is_valid_only_where_it_was_signed(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """The same bytes at another revision, or filed under another scope, are a replay."""
    state = broadcaster.set("event:a", "onsale")
    message = memory._log[0].message
    assert keys[1].open_entry(Entry(1, "event:a", message)) == state
    for moved in (Entry(2, "event:a", message), Entry(1, "event:b", message)):
        with pytest.raises(RejectedMessage) as refused:
            keys[1].open_entry(moved)
        assert refused.value.reason == "replayed"


def test_a_whole_older_backup_restored_does_not_roll_a_running_service_back(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """Log, cache and head all restored from before the on-sale: a consistent, validly signed
    older store. Only the floor (the signing time of what the service held when the store went
    back) refuses its states; a fresh reader, which has no floor, sees the older state."""
    publisher = Broadcaster(memory, keys[0], clock=clock)
    publisher.set("event:a", "normal")
    backup = (list(memory._log), dict(memory._latest), memory.head, dict(memory.heads))
    clock.advance(60)
    publisher.set("event:a", "onsale", reason="general sale")
    running = ModeSubscriber(memory, keys[1], clock=clock, registry=None)
    assert running.sync()
    assert running.mode_for("a") == "onsale"
    memory._log[:], memory._latest, memory.head, memory.heads = backup
    clock.advance(1)
    assert running.sync()
    assert running.sync()
    assert running.store_resets == 1
    assert running.mode_for("a") == "onsale"
    assert current_states(memory, keys[1]).states["event:a"].mode == "normal"
    clock.advance(1)
    Broadcaster(memory, keys[0], clock=clock).set("event:a", "normal", reason="sale over")
    assert running.sync()
    assert running.mode_for("a") == "normal"  # newer than the floor: the new history goes on


def test_a_restored_state_signed_in_the_same_second_as_the_held_one_is_still_old(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """The floor refuses what was signed *at or before* it: an on-sale ended within the same
    second (a mistake undone at once) must not come back when a backup taken between the two
    is restored. Only the floor stands between them: the backup is a consistent signed store."""
    publisher = Broadcaster(memory, keys[0], clock=clock)
    publisher.set("event:a", "onsale", reason="by mistake")
    backup = (list(memory._log), dict(memory._latest), memory.head, dict(memory.heads))
    publisher.set("event:a", "normal", reason="undone")  # the clock has not moved
    running = ModeSubscriber(memory, keys[1], clock=clock, registry=None)
    assert running.sync()
    assert running.mode_for("a") == "normal"
    memory._log[:], memory._latest, memory.head, memory.heads = backup
    assert running.sync()
    assert running.sync()
    assert running.store_resets == 1
    assert running.mode_for("a") == "normal"
    assert current_states(memory, keys[1]).states["event:a"].reason == "by mistake"
