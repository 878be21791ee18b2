"""History of transitions and the on-sale windows the SLO engine reads from it."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeHistory,
    ModeState,
    Signer,
    Verifier,
    windows_from_states,
)
from onsale_obs.testing import FakeClock, key_pair

T0 = 1_800_000_000.0


def test_history_by_time_range_and_scope(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """Transitions are queryable by time range and scope, oldest first."""
    clock.now = T0
    broadcaster.set("event:a", "onsale")
    clock.now = T0 + 100
    broadcaster.set("event:b", "onsale")
    clock.now = T0 + 200
    broadcaster.set("event:a", "normal")
    history = ModeHistory(memory, keys[1])
    assert [s.revision for s in history.transitions()] == [1, 2, 3]
    assert [s.revision for s in history.transitions(start=T0 + 50, end=T0 + 200)] == [2]
    assert [s.revision for s in history.transitions(scope="event:a")] == [1, 3]


def test_windows_end_at_normal_or_until(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """A window ends at the next normal state or at ``until``; extensions merge into one window."""
    clock.now = T0
    broadcaster.set("event:a", "onsale", until=T0 + 600, reason="first")
    clock.now = T0 + 300
    broadcaster.set("event:a", "onsale", until=T0 + 900, reason="extended")
    clock.now = T0 + 1000
    broadcaster.set("event:b", "onsale", until=T0 + 1100)
    clock.now = T0 + 2000
    broadcaster.set("event:b", "normal")
    clock.now = T0 + 3000
    broadcaster.set("global", "onsale")
    windows = ModeHistory(memory, keys[1]).onsale_windows()
    assert [(w.scope, w.start, w.end, w.revisions) for w in windows] == [
        ("event:a", T0, T0 + 900, (1, 2)),
        ("event:b", T0 + 1000, T0 + 1100, (3,)),
        ("global", T0 + 3000, None, (5,)),
    ]
    assert windows[0].reason == "first"
    assert [w.scope for w in ModeHistory(memory, keys[1]).onsale_windows(start=T0 + 950)] == [
        "event:b",
        "global",
    ]


def test_history_skips_forged_and_replayed(
    broadcaster: Broadcaster, memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> None:
    """Forged and replayed entries never become part of the verified history."""
    first = broadcaster.set("event:a", "onsale")
    broadcaster.set("event:a", "normal")
    memory.inject("event:a", keys[0].seal(first))
    intruder, _ = key_pair()
    memory.inject("event:a", intruder.seal(ModeState("event:a", "onsale", 4, clock(), None)))
    history = ModeHistory(memory, keys[1])
    assert [s.revision for s in history.transitions()] == [1, 2]
    # above the signed head: the copy is not vouched for; the intruder's key is not trusted
    assert history.rejected == {"unvouched": 1, "forged": 1}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["event:a", "event:b", "global"]), st.booleans(), st.integers(1, 500)
        ),
        max_size=40,
    )
)
def test_windows_never_overlap_within_a_scope(steps: list[tuple[str, bool, int]]) -> None:
    """Whatever the sequence of states, a scope's windows are ordered, disjoint and well-formed."""
    now = T0
    states = []
    for revision, (scope, onsale, gap) in enumerate(steps, start=1):
        now += gap
        states.append(
            ModeState(
                scope,
                "onsale" if onsale else "normal",
                revision,
                now,
                now + 300 if gap % 2 else None,
            )
        )
    windows = windows_from_states(states)
    for scope in {"event:a", "event:b", "global"}:
        mine = [w for w in windows if w.scope == scope]
        for w in mine:
            assert w.end is None or w.end > w.start
        for a, b in itertools.pairwise(mine):
            assert a.end is not None
            assert a.end <= b.start
    assert sum(len(w.revisions) for w in windows) == sum(1 for _, on, _ in steps if on)
