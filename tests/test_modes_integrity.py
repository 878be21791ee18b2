"""The signed head and the chain, store-independent: random store edits, freshness, repair.

The property test plays a publisher and an attacker with write access to every structure of
the store (log, snapshot cache, head) but not the key, over random interleavings, and checks
what every reader may hold after each step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import StoreIntegrityError
from onsale_obs.modes import (
    Broadcaster,
    Entry,
    MemoryBackend,
    ModeState,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    generate_key_pair,
    verify_store,
)
from onsale_obs.testing import FakeClock, key_pair

SIGNER, VERIFIER = key_pair()
SCOPES = ("event:a", "event:b", "global")

publish = st.tuples(
    st.just("publish"), st.sampled_from(SCOPES), st.sampled_from(["onsale", "normal"])
)
edit = st.tuples(
    st.sampled_from(
        [
            "delete_entry",
            "readd_old",
            "swap_messages",
            "junk_entry",
            "truncate_tail",
            "snapshot_old",
            "snapshot_delete",
            "snapshot_junk",
            "head_old",
            "head_junk",
            "head_delete",
            "wipe",
        ]
    ),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=1000),
)


def _put_head(store: MemoryBackend, value: bytes | None, j: int) -> None:
    """Write over the store's head (j % 3 == 0), its key's last head (1), or both (2)."""
    if j % 3 != 1:
        store.head = value
    if j % 3 != 0:
        store.heads.clear()
        if value is not None:
            store.heads[SIGNER.kid] = value


def _tamper(
    store: MemoryBackend, op: str, i: int, j: int, seen: list[bytes], heads: list[bytes]
) -> None:
    log = store._log
    if op == "delete_entry" and log:
        del log[i % len(log)]
    elif op == "readd_old" and seen:
        top = max((e.revision for e in log), default=0)
        message = seen[i % len(seen)]
        state = VERIFIER.open(message)
        log.append(Entry(top + 1 if j % 2 else state.revision, state.scope, message))
        log.sort(key=lambda e: e.revision)
    elif op == "swap_messages" and len(log) > 1:
        a, b = i % len(log), j % len(log)
        log[a], log[b] = (
            Entry(log[a].revision, log[b].scope, log[b].message),
            Entry(log[b].revision, log[a].scope, log[a].message),
        )
    elif op == "junk_entry":
        top = max((e.revision for e in log), default=0)
        log.append(Entry(top + 1, SCOPES[i % 3], b'{"v":1}'))
    elif op == "truncate_tail" and log:
        del log[-(1 + i % len(log)) :]
    elif op == "snapshot_old" and seen:
        message = seen[i % len(seen)]
        state = VERIFIER.open(message)
        store._latest[state.scope] = Entry(state.revision, state.scope, message)
    elif op == "snapshot_delete" and store._latest:
        del store._latest[sorted(store._latest)[i % len(store._latest)]]
    elif op == "snapshot_junk":
        store._latest[SCOPES[i % 3]] = Entry(j, SCOPES[i % 3], b"abc")
    elif op == "head_old" and heads:
        _put_head(store, heads[i % len(heads)], j)
    elif op == "head_junk":
        _put_head(store, b"junk", j)
    elif op == "head_delete":
        _put_head(store, None, j)
    elif op == "wipe":
        store.reset()


@settings(max_examples=300)
@given(st.lists(st.one_of(publish, edit), min_size=1, max_size=30))
def test_store_edits_never_make_a_reader_hold_what_no_head_vouched_for(
    steps: list[tuple[str, object, object]],
) -> None:
    """For every reader, after every step:

    - a fresh reader (``verify_store``: new services, ``mode get``, publishers) either refuses
      the store, or holds exactly the whole state map of one head the publisher signed (never a
      forged state, never a mix of two heads); when the store's head is the latest one signed
      and the store was not edited since, exactly the latest map;
    - a running subscriber holds only states the publisher signed, and never goes back in
      time on any scope (``since`` never decreases).
    """
    clock = FakeClock()
    store = MemoryBackend()
    publisher = Broadcaster(store, SIGNER, clock=clock)
    signed_maps: list[dict[str, ModeState]] = [{}]
    published: list[ModeState] = []
    seen_messages: list[bytes] = []
    seen_heads: list[bytes] = []
    running = ModeSubscriber(store, VERIFIER, clock=clock, registry=None)
    held: dict[str, ModeState] = {}
    edited_since_publish = False
    for step in steps:
        clock.advance(1)
        if step[0] == "publish":
            _, scope, mode = step
            try:
                published.append(publisher.set(str(scope), str(mode)))
            except StoreIntegrityError:
                continue  # publishing is refused on a store it cannot verify: a denial only
            assert publisher._last is not None
            signed_maps.append(dict(publisher._last[1].states))
            seen_messages.extend(
                e.message for e in store._log if e.revision == published[-1].revision
            )
            seen_heads.append(publisher._last[0])
            edited_since_publish = False
        else:
            op, i, j = step
            assert isinstance(i, int)
            assert isinstance(j, int)
            _tamper(store, str(op), i, j, seen_messages, seen_heads)
            edited_since_publish = True
        view = verify_store(store, VERIFIER)
        if view.problem is None:
            assert view.chain.states in signed_maps
            if not edited_since_publish:
                assert view.chain.states == signed_maps[-1]
        running.sync()
        for scope, state in running.states().items():
            assert state in published
            before = held.get(scope)
            assert before is None or state.since >= before.since
            held[scope] = state


def test_a_frozen_store_marks_services_stale_after_three_missed_heartbeats(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    """A store that stops changing looks the same as a quiet one, unless the head is re-signed:
    with a heartbeat promise of 10 s, a head 31 s old makes services stale (and on-sale where
    their schedule says so); the next heartbeat ends it. ``mode set`` keeps the promise."""
    publisher = Broadcaster(memory, SIGNER, clock=clock, refresh=10.0)
    publisher.set("event:a", "onsale")
    one_off = Broadcaster(memory, SIGNER, clock=clock)  # no promise of its own
    one_off.set("event:b", "onsale")
    assert verify_store(memory, VERIFIER).head.refresh == 10.0  # type: ignore[union-attr]
    sub = ModeSubscriber(memory, VERIFIER, clock=clock, registry=None)
    assert sub.sync()
    clock.advance(29)
    assert sub.sync()
    assert not sub.stale
    clock.advance(2)
    assert sub.sync()
    assert sub.stale
    assert sub.mode_for("a") == "onsale"  # still serving what it verified
    publisher.heartbeat()
    assert sub.sync()
    assert not sub.stale
    assert sub.head_age() == 0.0


def test_an_old_copy_of_the_head_is_refused_by_running_services(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    """A head from before the last heartbeat, put back: counted as replayed; the newer is kept."""
    publisher = Broadcaster(memory, SIGNER, clock=clock, refresh=10.0)
    publisher.set("event:a", "onsale")
    old_head, old_heads = memory.head, dict(memory.heads)
    sub = ModeSubscriber(memory, VERIFIER, clock=clock, registry=None)
    assert sub.sync()
    clock.advance(20)
    publisher.heartbeat()
    assert sub.sync()
    memory.head, memory.heads = old_head, old_heads
    clock.advance(15)
    assert sub.sync()
    assert sub.rejected()["replayed"] == 1
    assert not sub.stale  # the newer head (20 s old) still keeps the promise
    assert sub.store_resets == 0


def test_repair_re_signs_a_history_with_a_gap(memory: MemoryBackend, clock: FakeClock) -> None:
    """An entry deleted from the middle: readers refuse the store; the key holder's repair
    re-publishes every scope's latest state in a new chain, and readers trust it again."""
    publisher = Broadcaster(memory, SIGNER, clock=clock)
    publisher.set("event:a", "onsale")
    publisher.set("event:b", "onsale")
    publisher.set("event:b", "normal")
    memory._latest["event:a"] = Entry(1, "event:a", b"junk")  # the cache is off too
    del memory._log[1]  # revision 2 (event:b on sale) gone
    assert verify_store(memory, VERIFIER).problem is not None
    publisher = Broadcaster(memory, SIGNER, clock=clock)  # another one: it knows only the store
    with pytest.raises(StoreIntegrityError):
        publisher.set("event:c", "onsale")
    plan = publisher.plan_repair()
    assert plan.needed
    assert "revisions 1-2" in plan.description
    assert "(event:a) from signed states before the gap" in plan.description
    assert {s: st.mode for s, st in plan.states.items()} == {
        "event:a": "onsale",
        "event:b": "normal",
    }
    clock.advance(1)
    publisher.repair(plan)
    view = verify_store(memory, VERIFIER)
    assert view.problem is None
    assert {s: st.mode for s, st in view.chain.states.items()} == {
        "event:a": "onsale",
        "event:b": "normal",
    }
    publisher.set("event:c", "onsale")  # publishing works again


def test_mode_repair_and_heartbeat_on_the_command_line(tmp_path: Path) -> None:
    """``mode repair`` shows the plan and writes only with --yes; ``mode heartbeat --once``."""
    pair = generate_key_pair(tmp_path / "keys")
    db = tmp_path / "modes.db"
    url = f"sqlite:///{db}"
    Broadcaster(SqliteBackend(str(db)), Signer.from_file(pair.signing_key)).set("event:a", "onsale")
    runner = CliRunner()
    sign = ["--backend", url, "--signing-key", str(pair.signing_key)]
    beat = runner.invoke(app, ["mode", "heartbeat", "--once", "--interval", "5s", *sign])
    assert beat.exit_code == 0, beat.output
    assert "signed the head at revision 1" in beat.stderr
    got = runner.invoke(
        app,
        ["mode", "get", "--backend", url, "--verify-key", str(pair.verify_key), "--format", "json"],
    )
    assert json.loads(got.stdout)["head"]["refresh_seconds"] == 5.0
    plan = runner.invoke(app, ["mode", "repair", *sign, "--format", "json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)["needed"] is False
    SqliteBackend(str(db))  # the store stays usable
    import sqlite3

    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM head")
        raw.execute("DELETE FROM key_heads")
    refused = runner.invoke(app, ["mode", "set", "normal", "--scope", "event:a", *sign])
    assert refused.exit_code == 3
    assert "mode repair" in refused.stderr
    dry = runner.invoke(app, ["mode", "repair", *sign, "--format", "json"])
    assert json.loads(dry.stdout)["written"] is False
    assert [s["scope"] for s in json.loads(dry.stdout)["scopes"]] == ["event:a"]
    done = runner.invoke(app, ["mode", "repair", "--yes", *sign])
    assert done.exit_code == 0, done.output
    assert "repaired" in done.stdout
    assert runner.invoke(app, ["mode", "set", "normal", "--scope", "event:a", *sign]).exit_code == 0
    stop = runner.invoke(app, ["mode", "heartbeat", "--stop", *sign])
    assert stop.exit_code == 0, stop.output
    got = runner.invoke(
        app,
        ["mode", "get", "--backend", url, "--verify-key", str(pair.verify_key), "--format", "json"],
    )
    assert json.loads(got.stdout)["head"]["refresh_seconds"] is None


def test_a_new_signing_key_publishes_on_the_old_keys_history(tmp_path: Path) -> None:
    """Key rotation: a publisher with the new key refuses the old key's history unless told to
    trust it (--verify-key OLD); services that trust both follow."""
    old = generate_key_pair(tmp_path / "old")
    new = generate_key_pair(tmp_path / "new")
    url = f"sqlite:///{tmp_path / 'modes.db'}"
    runner = CliRunner()
    first = ["mode", "set", "onsale", "--scope", "event:a", "--backend", url]
    assert runner.invoke(app, [*first, "--signing-key", str(old.signing_key)]).exit_code == 0
    second = ["mode", "set", "normal", "--scope", "event:a", "--backend", url]
    refused = runner.invoke(app, [*second, "--signing-key", str(new.signing_key)])
    assert refused.exit_code == 3
    assert "does not verify" in refused.stderr
    trusted = runner.invoke(
        app, [*second, "--signing-key", str(new.signing_key), "--verify-key", str(old.verify_key)]
    )
    assert trusted.exit_code == 0, trusted.output
    both = f"{old.verify_key},{new.verify_key}"
    got = runner.invoke(
        app, ["mode", "get", "--backend", url, "--verify-key", both, "--format", "json"]
    )
    assert [s["mode"] for s in json.loads(got.stdout)["scopes"]] == ["normal"]


def test_a_state_of_another_history_at_the_same_revision_is_not_history(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    """An entry replaced by one signed for the same revision and scope in another store (same
    key): the walk from the head follows digests, so ``mode history`` leaves it out and reports
    the gap, and fresh readers do not take it."""
    other = MemoryBackend()
    Broadcaster(other, SIGNER, clock=clock).set("event:a", "normal")
    Broadcaster(other, SIGNER, clock=clock).set("event:a", "onsale", reason="elsewhere")
    publisher = Broadcaster(memory, SIGNER, clock=clock)
    publisher.set("event:a", "normal")
    publisher.set("event:a", "normal", reason="here")
    publisher.set("event:b", "normal")
    memory._log[1] = other._log[1]  # same revision (2), same scope, valid signature
    memory._latest["event:a"] = other._log[1]
    history = publisher.history()
    reasons = [s.reason for s in history.transitions()]
    assert "elsewhere" not in reasons
    assert history.gaps == [(1, 2)]
    assert history.rejected == {"replayed": 2}
    assert verify_store(memory, VERIFIER).problem is not None


def test_an_older_genuine_head_put_back_rolls_nothing_back(
    memory: MemoryBackend, clock: FakeClock
) -> None:
    """The store's head replaced by an older one the publishers really signed, the log intact:
    fresh readers and history still reach the latest state through the links, and the next
    publisher continues that history instead of forking it at the old head."""
    publisher = Broadcaster(memory, SIGNER, clock=clock)
    publisher.set("event:a", "onsale")
    old_head = memory.head
    publisher.set("event:a", "normal", reason="sale over")
    memory.head = old_head
    view = verify_store(memory, VERIFIER)
    assert view.problem is None
    assert view.chain.states["event:a"].reason == "sale over"
    history = Broadcaster(memory, SIGNER, clock=clock).history()
    assert [s.reason for s in history.transitions()] == ["", "sale over"]
    clock.advance(1)
    later = Broadcaster(memory, SIGNER, clock=clock).set("event:b", "onsale")
    assert (later.revision, later.prev_revision) == (3, 2)
    assert verify_store(memory, VERIFIER).chain.states["event:a"].reason == "sale over"
