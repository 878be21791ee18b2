"""What ``modes/_history.py`` and ``modes/_resets.py`` promise, pinned where their mutation run
found nothing checking it.

The history is what ``mode history``, ``slo report``'s on-sale windows and the exit-rate loop
read: it must show exactly what the signed log proves (and say why when it proves nothing),
and its windows must start and end where the states say. docs/mutation.md lists the mutants.
"""

from __future__ import annotations

import pytest

from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeHistory,
    ModeState,
    Signer,
    Verifier,
    read_history,
    windows_from_states,
)
from onsale_obs.modes._resets import StoreResets
from onsale_obs.modes._verify import no_head_problem
from onsale_obs.testing import FakeClock, key_pair

T0 = 1_800_000_000.0


@pytest.fixture
def three(broadcaster: Broadcaster, clock: FakeClock) -> list[ModeState]:
    """event:a on sale at T0 (until T0+900), event:b at T0+1000 (until T0+1100), then
    event:b normal at T0+2000 and global on sale from T0+3000."""
    made = []
    for at, scope, mode, until in (
        (T0, "event:a", "onsale", T0 + 900),
        (T0 + 1000, "event:b", "onsale", T0 + 1100),
        (T0 + 2000, "event:b", "normal", None),
        (T0 + 3000, "global", "onsale", None),
    ):
        clock.now = at
        made.append(broadcaster.set(scope, mode, until=until))
    return made


@pytest.mark.usefixtures("three")
def test_transitions_take_the_start_instant_and_leave_the_end_instant_out(
    memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    history = ModeHistory(memory, keys[1])
    assert [s.revision for s in history.transitions(start=T0 + 1000, end=T0 + 2000)] == [2]
    assert [s.revision for s in history.transitions(start=T0, end=T0 + 1000)] == [1]


@pytest.mark.usefixtures("three")
def test_windows_are_chosen_by_scope_and_by_overlap_up_to_their_very_edges(
    memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """A window overlaps ``[start, end)`` when it starts before ``end`` and ends after
    ``start``: one that ends at ``start`` or starts at ``end`` only touches it."""
    history = ModeHistory(memory, keys[1])

    def scopes(**query: float | str) -> list[str]:
        return [w.scope for w in history.onsale_windows(**query)]  # type: ignore[arg-type]

    assert scopes() == ["event:a", "event:b", "global"]
    assert scopes(scope="event:b") == ["event:b"]
    assert scopes(end=T0 + 1000) == ["event:a"]
    assert scopes(end=T0 + 1001) == ["event:a", "event:b"]
    assert scopes(start=T0 + 900) == ["event:b", "global"]
    assert scopes(start=T0 + 899) == ["event:a", "event:b", "global"]
    assert scopes(start=T0 + 1100, end=T0 + 3000) == []


def test_an_on_sale_that_began_the_instant_the_last_one_expired_is_a_window_of_its_own() -> None:
    """At ``until`` a state has expired (the subscriber serves normal from that instant), so
    an on-sale signed then is a new window, not an extension of the expired one; a window
    keeps the source and reason of the state that opened it."""
    states = [
        ModeState("event:a", "onsale", 1, T0, T0 + 600, "schedule", "presale"),
        ModeState("event:a", "onsale", 2, T0 + 600, T0 + 900, "manual", "general sale"),
        ModeState("event:a", "onsale", 3, T0 + 700, T0 + 1200, "auto", "surge"),
    ]
    windows = windows_from_states(states)
    assert [(w.start, w.end, w.revisions, w.source, w.reason) for w in windows] == [
        (T0, T0 + 600, (1,), "schedule", "presale"),
        (T0 + 600, T0 + 1200, (2, 3), "manual", "general sale"),
    ]


def test_an_empty_store_has_an_empty_verified_history(
    memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    read = read_history(memory, keys[1])
    assert (read.states, read.chain, read.gaps, read.rejected, read.problem, read.top) == (
        [],
        None,
        [],
        {},
        None,
        0,
    )


def test_junk_in_a_store_without_a_head_is_left_out_and_not_a_problem(
    memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """Nobody signed anything yet: what an unkeyed writer put there is not history, and the
    store is not untrusted for it (a new store with junk serves everything normal)."""
    stranger, _ = key_pair()
    memory.inject("event:a", b"junk")
    memory.inject("event:a", stranger.seal(ModeState("event:a", "onsale", 2, T0)))
    read = read_history(memory, keys[1])
    assert (read.states, read.gaps, read.rejected, read.problem, read.top) == (
        [],
        [],
        {"unvouched": 2},
        None,
        2,
    )


def test_signed_states_without_a_head_are_not_believed_and_the_history_says_why(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    broadcaster.set("event:a", "onsale")
    broadcaster.set("event:a", "normal")
    memory.head = None  # emptied and refilled, or restored without its heads
    memory.heads.clear()
    read = read_history(memory, keys[1])
    assert (read.states, read.chain, read.gaps, read.rejected, read.problem, read.top) == (
        [],
        None,
        [],
        {"unvouched": 2},
        no_head_problem(),
        2,
    )
    history = ModeHistory(memory, keys[1])
    assert history.transitions() == []
    assert (history.problem, history.rejected, history.top) == (
        no_head_problem(),
        {"unvouched": 2},
        2,
    )


def test_a_head_signed_by_another_key_proves_nothing_and_is_named_forged(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """``mode history`` then exits 3 with this problem (no gaps: nothing at all verified)."""
    broadcaster.set("event:a", "onsale")
    stranger = Broadcaster(MemoryBackend(), key_pair()[0])
    stranger.set("event:a", "normal")
    stolen_head = stranger.backend.snapshot().head
    assert stolen_head is not None
    memory.head = stolen_head
    memory.heads.clear()
    read = read_history(memory, keys[1])
    kid = stranger.signer.kid
    assert (read.states, read.chain, read.gaps, read.rejected, read.top) == (
        [],
        None,
        [],
        {"forged": 1},
        1,
    )
    assert read.problem == (
        f"the store's head does not verify (forged: signed by unknown key {kid!r})"
    )
    history = ModeHistory(memory, keys[1])
    assert history.transitions() == []
    assert history.problem == read.problem


@pytest.mark.usefixtures("three")
def test_a_verified_history_carries_its_chain_and_the_log_top_for_conditional_writes(
    memory: MemoryBackend, keys: tuple[Signer, Verifier]
) -> None:
    """The exit-rate loop publishes ``if_latest=read.top``: the top is the log's highest id,
    junk above the head included, so a write races nothing it has not read."""
    read = read_history(memory, keys[1])
    assert [s.revision for s in read.states] == [1, 2, 3, 4]
    assert read.chain is not None
    assert read.chain.tip_revision == 4
    assert (read.gaps, read.rejected, read.problem, read.top) == ([], {}, None, 4)
    memory.inject("event:a", b"junk above the head")
    read = read_history(memory, keys[1])
    assert [s.revision for s in read.states] == [1, 2, 3, 4]
    assert (read.rejected, read.problem, read.top) == ({"unvouched": 1}, None, 5)
    history = ModeHistory(memory, keys[1])
    assert [s.revision for s in history.transitions()] == [1, 2, 3, 4]
    assert (history.rejected, history.problem, history.top) == ({"unvouched": 1}, None, 5)


@pytest.mark.parametrize(
    ("removed", "gaps", "named"),
    [(2, [(1, 2)], "revisions 1-2"), (1, [(1, 1)], "revisions 1 ")],
)
def test_a_history_with_a_hole_shows_only_what_follows_it_and_names_the_hole(
    three: list[ModeState],
    memory: MemoryBackend,
    keys: tuple[Signer, Verifier],
    removed: int,
    gaps: list[tuple[int, int]],
    named: str,
) -> None:
    """Below a missing entry nothing tells this history from another branch of the same key,
    so only the states after the hole are shown, and ``mode history`` warns which revisions."""
    memory._log[:] = [e for e in memory._log if e.revision != removed]
    history = ModeHistory(memory, keys[1])
    assert history.transitions() == three[removed:]
    assert history.gaps == gaps
    assert history.problem == (
        f"{named.rstrip()} of the signed history are missing or changed: the states around "
        "them may be missing from this history"
    )
    assert history.problem.startswith(named)
    read = read_history(memory, keys[1])
    assert read.chain is None
    assert read.problem is None  # the read itself verified; the gap is reported apart


def test_a_refusal_after_the_store_went_back_names_the_revision_and_why() -> None:
    resets = StoreResets()
    held = ModeState("event:a", "normal", 6, T0)
    resets.store_went_back({"event:a": held})
    old = ModeState("event:a", "onsale", 5, T0)
    assert resets.refusal(old) == (
        "revision 5 was signed before the store went back in time (an old state)"
    )
    assert resets.refusal(ModeState("event:a", "onsale", 2, T0 + 0.001)) is None
    assert resets.refusal(ModeState("event:b", "onsale", 2, T0 - 60)) is None
