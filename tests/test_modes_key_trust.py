"""Publishers with their own keys (the operators', the surge detector's), readers that trust some.

Issue 21: a subscriber that does not trust the detector's key rejects the detector's states
(counted as ``forged``) and keeps trusting the store and every operator state, before and after
them; revoking the detector's key never needs the store re-signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import StoreIntegrityError
from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeBackend,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    Verifier,
    current_states,
    generate_key_pair,
)
from onsale_obs.modes._model import ModeState
from onsale_obs.modes._redis import RedisBackend
from onsale_obs.modes._verify import verify_store
from onsale_obs.testing import FakeClock, RedisServer, key_pair

OPS, OPS_ONLY = key_pair()
DETECTOR, DETECTOR_ONLY = key_pair()
BOTH = OPS_ONLY.also_trusting(DETECTOR.private_key.public_key())


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModeBackend]:
    """Each backend: the per-key heads are stored by each of them."""
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param == "sqlite":
        backend: ModeBackend = SqliteBackend(str(tmp_path / "modes.db"), poll_interval=0.005)
        yield backend
        backend.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    backend = RedisBackend(server.url)
    yield backend
    backend.close()


def _publishers(
    store: ModeBackend, clock: FakeClock, *, refresh: float | None = None
) -> tuple[Broadcaster, Broadcaster]:
    """The operators' and the detector's broadcasters; each publisher trusts both keys."""
    ops = Broadcaster(store, OPS, clock=clock, verifier=BOTH, refresh=refresh)
    detector = Broadcaster(store, DETECTOR, clock=clock, verifier=BOTH)
    return ops, detector


def _modes(sub: ModeSubscriber) -> dict[str, str]:
    return {scope: state.mode for scope, state in sub.states().items()}


def test_a_reader_that_does_not_trust_the_detector_keeps_every_operator_state(
    store: ModeBackend,
) -> None:
    """Operators, then the detector, then operators again: the operators-only reader applies
    the operators' states on both sides of the detector's, rejects the detector's as forged,
    and never takes the store for untrusted or gone back; a reader trusting both applies all."""
    clock = FakeClock()
    ops, detector = _publishers(store, clock)
    ops.set("event:presale", "onsale")
    untrusting = ModeSubscriber(store, OPS_ONLY, clock=clock, registry=None)
    trusting = ModeSubscriber(store, BOTH, clock=clock, registry=None)
    assert untrusting.sync()
    assert trusting.sync()

    clock.advance(1)
    detector.set("event:final", "onsale", source="auto", reason="surge: 40 req/s")
    for sub in (untrusting, trusting):
        assert sub.sync()
    assert _modes(untrusting) == {"event:presale": "onsale"}
    assert untrusting.rejected()["forged"] == 1
    assert _modes(trusting) == {"event:presale": "onsale", "event:final": "onsale"}

    clock.advance(1)
    ops.set("event:other", "onsale")  # its link commits to the detector's state
    clock.advance(1)
    ops.set("event:presale", "normal", reason="sold out")
    for sub in (untrusting, trusting):
        assert sub.sync()
        assert sub.sync()
    assert _modes(untrusting) == {"event:presale": "normal", "event:other": "onsale"}
    assert _modes(trusting) == {
        "event:presale": "normal",
        "event:other": "onsale",
        "event:final": "onsale",
    }
    for sub in (untrusting, trusting):
        assert sub.trouble is None
        assert not sub.stale
        assert sub.store_resets == 0
        assert sub.rejected()["replayed"] == 0
        assert sub.rejected()["unvouched"] == 0

    # fresh readers (new services, 'mode get'): the same verdicts
    fresh = current_states(store, OPS_ONLY)
    assert fresh.problem is None
    assert {s: v.mode for s, v in fresh.states.items()} == _modes(untrusting)
    assert fresh.rejected == {"forged": 1}
    assert current_states(store, BOTH).states.keys() == trusting.states().keys()
    # a publisher that does not trust the other key refuses to build past its state
    # rather than drop it from the history of every reader that trusts it
    clock.advance(1)
    detector.set("event:final", "normal", source="auto")
    untrusting_ops = Broadcaster(store, OPS, clock=clock, verifier=OPS_ONLY)
    with pytest.raises(StoreIntegrityError) as refused:
        untrusting_ops.set("event:presale", "onsale")
    assert DETECTOR.kid in str(refused.value)
    assert "--verify-key" in str(refused.value)
    assert trusting.sync()
    assert trusting.resolve("final").mode == "normal"
    assert trusting.store_resets == 0


def test_the_operators_heartbeat_keeps_untrusting_readers_fresh_while_the_detector_publishes(
    store: ModeBackend,
) -> None:
    """Heads promise a re-sign every 10 s: the operators' heartbeat re-signs a head over a
    history that ends in a detector state, and the operators-only reader stays fresh through
    it (the detector's own heads are not ones it can check)."""
    clock = FakeClock()
    ops, detector = _publishers(store, clock, refresh=10.0)
    ops.set("event:presale", "onsale")
    untrusting = ModeSubscriber(store, OPS_ONLY, clock=clock, registry=None)
    assert untrusting.sync()
    for second in range(1, 61):
        clock.advance(1)
        if second % 7 == 0:
            detector.set("event:final", "onsale" if second % 14 else "normal", source="auto")
        if second % 10 == 0:
            ops.heartbeat()
        assert untrusting.sync()
        assert not untrusting.stale, second
    assert untrusting.sync()  # the head over a state it skipped: the chain is rebuilt
    assert untrusting.trouble is None
    assert untrusting.store_resets == 0
    assert untrusting.head_age() == 0.0  # the last heartbeat's head, over the detector's state
    assert _modes(untrusting) == {"event:presale": "onsale"}
    assert untrusting.rejected()["forged"] == 8
    assert verify_store(store, OPS_ONLY).problem is None


def test_operators_who_revoke_the_detector_key_repair_the_store_without_its_states(
    store: ModeBackend,
) -> None:
    """The detector's key is revoked: 'mode repair' with the operators' key alone re-publishes
    every scope's operator state without the detector's, and publishing goes on; readers
    that trusted both keys follow the new history, which no longer holds the detector's state."""
    clock = FakeClock()
    ops, detector = _publishers(store, clock)
    ops.set("event:presale", "onsale")
    clock.advance(1)
    detector.set("event:final", "onsale", source="auto")
    trusting = ModeSubscriber(store, BOTH, clock=clock, registry=None)
    assert trusting.sync()
    assert trusting.resolve("final").mode == "onsale"
    revoked = Broadcaster(store, OPS, clock=clock, verifier=OPS_ONLY)
    plan = revoked.plan_repair()
    assert plan.needed
    assert DETECTOR.kid in plan.description
    assert set(plan.states) == {"event:presale"}
    clock.advance(1)
    revoked.repair(plan)
    clock.advance(1)
    revoked.set("event:other", "onsale")
    # the new history holds no state of the revoked key, for any reader
    for verifier in (OPS_ONLY, BOTH):
        fresh = current_states(store, verifier)
        assert {s: v.mode for s, v in fresh.states.items()} == {
            "event:presale": "onsale",
            "event:other": "onsale",
        }
    # a running reader sees the history replaced (as after any repair that re-publishes)
    assert trusting.sync()
    assert trusting.sync()
    assert trusting.trouble is None
    assert trusting.store_resets == 1
    assert trusting.resolve("other").mode == "onsale"
    assert current_states(store, OPS_ONLY).problem is None
    assert not revoked.plan_repair().needed


def test_a_reader_trusting_no_publisher_key_still_refuses_the_store() -> None:
    """Per-key heads are not a way around the key: with no head it can check, nothing is held."""
    clock = FakeClock()
    store = MemoryBackend()
    ops, detector = _publishers(store, clock)
    ops.set("event:presale", "onsale")
    detector.set("event:final", "onsale", source="auto")
    _, stranger = key_pair()
    view = current_states(store, stranger)
    assert view.problem is not None
    assert "does not verify" in view.problem
    assert view.states == {}


def test_a_detector_state_that_no_operator_head_commits_to_is_never_applied_by_the_untrusting() -> (
    None
):
    """The operators' head is older than the detector's state: the untrusting reader's chain
    ends at the operators' head, and the state above it is forged to it, not 'unvouched'."""
    clock = FakeClock()
    store = MemoryBackend()
    ops, detector = _publishers(store, clock)
    ops.set("event:presale", "onsale")
    detector.set("event:final", "onsale", source="auto")
    view = verify_store(store, OPS_ONLY)
    assert view.problem is None
    assert view.chain.tip_revision == 1
    assert set(view.chain.states) == {"event:presale"}
    assert view.cursor == 2


# -- any interleaving, any edit by a store writer without keys --------------------------------

_step = st.one_of(
    st.tuples(
        st.sampled_from(["ops", "detector", "ops_beat", "detector_beat"]),
        st.sampled_from(["event:a", "event:b", "global"]),
        st.sampled_from(["onsale", "normal"]),
    ),
    st.tuples(
        st.sampled_from(["head_old", "head_delete", "key_heads_old", "truncate"]),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
)


@settings(max_examples=150)
@given(st.lists(_step, min_size=1, max_size=25))
def test_every_reader_holds_only_states_signed_by_a_key_it_trusts(
    steps: list[tuple[str, object, object]],
) -> None:
    """Two publishers trusting each other, two running readers (operators only, both keys)
    and fresh readers, under any interleaving with heads put back or deleted and the log's
    tail cut: a reader holds only states of keys it trusts that were published, never goes
    back in time on a scope.
    Until the store is edited, fresh readers hold exactly each scope's last state of a key
    they trust (operators only) or its last state (both keys)."""
    clock = FakeClock()
    store = MemoryBackend()
    ops, detector = _publishers(store, clock, refresh=30.0)
    readers = {
        "ops": ModeSubscriber(store, OPS_ONLY, clock=clock, registry=None),
        "both": ModeSubscriber(store, BOTH, clock=clock, registry=None),
    }
    signed_by = {"ops": {OPS.kid}, "both": {OPS.kid, DETECTOR.kid}}
    published: list[tuple[str, ModeState]] = []  # (kid, state), in order
    head_signers: set[str] = set()
    seen_heads: list[bytes] = []
    held: dict[str, dict[str, float]] = {"ops": {}, "both": {}}
    edited = False  # ever: then only the running readers' rules are checked
    for step in steps:
        clock.advance(1)
        kind = step[0]
        if kind in ("ops", "detector"):
            who = ops if kind == "ops" else detector
            try:
                state = who.set(
                    str(step[1]), str(step[2]), source="manual" if kind == "ops" else "auto"
                )
            except StoreIntegrityError:  # refused on a store it cannot verify: a denial only
                continue
            published.append((who.signer.kid, state))
            head_signers.add(who.signer.kid)
        elif kind in ("ops_beat", "detector_beat"):
            who = ops if kind == "ops_beat" else detector
            try:
                who.heartbeat()
            except StoreIntegrityError:
                continue
            head_signers.add(who.signer.kid)
        else:
            edited = True
            i, j = int(step[1]), int(step[2])  # type: ignore[call-overload]
            if kind == "head_old" and seen_heads:
                store.head = seen_heads[i % len(seen_heads)]
            elif kind == "head_delete":
                store.head = None
            elif kind == "key_heads_old" and seen_heads:
                old = seen_heads[i % len(seen_heads)]
                store.heads[OPS.kid if j % 2 else DETECTOR.kid] = old
            elif kind == "truncate" and store._log:
                del store._log[-(1 + i % len(store._log)) :]
        if store.head is not None and store.head not in seen_heads:
            seen_heads.append(store.head)
        for name, sub in readers.items():
            sub.sync()
            for scope, state in sub.states().items():
                assert any(k in signed_by[name] and s == state for k, s in published)
                before = held[name].get(scope)
                assert before is None or state.since >= before
                held[name][scope] = state.since
        if not edited:
            for name, verifier in (("ops", OPS_ONLY), ("both", BOTH)):
                view = verify_store(store, verifier)
                if not head_signers & signed_by[name]:
                    # only another key's states: no head it can check, so nothing is held
                    # (an empty store would read as 'all normal': never assumed)
                    assert view.problem is not None
                    continue
                assert view.problem is None
                expected: dict[str, ModeState] = {}
                for kid, state in published:
                    if kid in signed_by[name]:
                        expected[state.scope] = state
                assert view.chain.states == expected


def test_revoking_the_detector_key_on_the_command_line(tmp_path: Path) -> None:
    """'mode set' without the detector's key refuses (exit 3, naming the key and the way out);
    'mode repair --yes' with the operators' key alone re-publishes without the detector's
    states; 'mode set' and 'mode get' then work with the operators' key alone."""
    ops = generate_key_pair(tmp_path / "ops", name="ops")
    auto = generate_key_pair(tmp_path / "auto", name="auto")
    url = f"sqlite:///{tmp_path / 'modes.db'}"
    runner = CliRunner()
    both = f"{ops.verify_key},{auto.verify_key}"
    sign = ["--backend", url, "--signing-key", str(ops.signing_key)]
    assert (
        runner.invoke(app, ["mode", "set", "onsale", "--scope", "event:presale", *sign]).exit_code
        == 0
    )
    detector = Broadcaster(
        SqliteBackend(url.removeprefix("sqlite:///")),
        Signer.from_file(auto.signing_key),
        verifier=Verifier.from_files([ops.verify_key]),
    )
    detector.set("event:final", "onsale", source="auto", reason="surge")
    refused = runner.invoke(app, ["mode", "set", "onsale", "--scope", "event:x", *sign])
    assert refused.exit_code == 3
    assert auto.kid in refused.stderr
    assert "--verify-key" in refused.stderr
    assert "mode repair" in refused.stderr
    # trusting both keys, an operator builds on the detector's state (it is then committed:
    # an operators-only publisher can build on top of it, without applying it)
    trusting = runner.invoke(
        app, ["mode", "set", "normal", "--scope", "event:other", *sign, "--verify-key", both]
    )
    assert trusting.exit_code == 0, trusting.output
    assert runner.invoke(app, ["mode", "set", "normal", "--scope", "event:y", *sign]).exit_code == 0
    detector.set("event:final", "normal", source="auto", reason="surge over")
    detector.backend.close()
    assert runner.invoke(app, ["mode", "set", "onsale", "--scope", "event:x", *sign]).exit_code == 3
    repaired = runner.invoke(app, ["mode", "repair", "--yes", *sign, "--format", "json"])
    assert repaired.exit_code == 0, repaired.output
    assert {s["scope"] for s in json.loads(repaired.stdout)["scopes"]} == {
        "event:presale",
        "event:other",
        "event:y",
    }
    assert runner.invoke(app, ["mode", "set", "onsale", "--scope", "event:x", *sign]).exit_code == 0
    got = runner.invoke(
        app,
        ["mode", "get", "--backend", url, "--verify-key", str(ops.verify_key), "--format", "json"],
    )
    assert got.exit_code == 0, got.output
    assert {s["scope"] for s in json.loads(got.stdout)["scopes"]} == {
        "event:presale",
        "event:other",
        "event:y",
        "event:x",
    }
