"""Following a mode store that went back in time, without letting old signed states back in.

A Redis restarted without its data (or restored from an older backup) numbers revisions from
where it now is, so a subscriber that kept its cursor would wait for ever, and one that simply
trusted the new numbers would accept any old signed message put back at a high revision. After
an outage the subscriber therefore checks that the store still holds the entry at its cursor;
if not, it reads the store's log again from the start under these rules:

- per scope, a *floor*: the signing time (``since``) of the state held when the store went
  back. A state signed at or before it belongs to the old history and is refused as a replay,
  whatever its revision, for good (several resets raise the floor);
- the first state above the floor replaces the held one even with a lower revision; from then
  on revisions order the scope again.

Publishers' clocks are assumed roughly in step (NTP): a state signed after the reset by a
publisher whose clock is behind the old one's would be refused until its clock passes the floor.
"""

from __future__ import annotations

from collections.abc import Mapping

from onsale_obs.modes._backend import Entry, ModeBackend
from onsale_obs.modes._model import ModeState


class StoreResets:
    """A subscriber's memory of the store's resets (see the module docstring)."""

    def __init__(self) -> None:
        self.floors: dict[str, float] = {}
        #: scopes still waiting for their first state of the store's new history
        self.waiting: set[str] = set()
        #: entries up to this revision are the store's history as found at the last reset:
        #: refusing its old states there is expected, not an attack, so it is not counted
        self.catch_up_to = 0
        #: the entry the subscriber's cursor points at, to recognise the store after an outage
        self.at_cursor: Entry | None = None

    def store_went_back(self, states: Mapping[str, ModeState], top: int) -> None:
        """The store no longer has our history: remember what we hold, read it again from 0."""
        for scope, state in states.items():
            self.floors[scope] = max(self.floors.get(scope, state.since), state.since)
        self.waiting = set(states)
        self.catch_up_to = top
        self.at_cursor = None

    def still_holds_cursor(self, backend: ModeBackend, cursor: int) -> bool:
        """True when the store still has, at ``cursor``, the entry we read there."""
        seen = self.at_cursor
        if seen is None or cursor == 0:
            return True  # nothing to compare (nothing read yet)
        there = next(iter(backend.history(cursor - 1)), None)
        return (
            there is not None and there.revision == seen.revision and there.message == seen.message
        )

    def refusal(self, state: ModeState, previous: ModeState | None) -> str | None:
        """Why ``state`` must be refused as a replay (None: accept it)."""
        floor = self.floors.get(state.scope)
        if floor is not None and state.since <= floor:
            return (
                f"revision {state.revision} was signed before the store went back in time "
                "(an old state)"
            )
        if previous is None:
            return None
        if state.scope in self.waiting:
            self.waiting.discard(state.scope)  # the first state of the new history
            return None
        if state.revision <= previous.revision:
            return f"revision {state.revision} is not newer than {previous.revision}"
        return None
