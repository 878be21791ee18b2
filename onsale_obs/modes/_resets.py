"""Following a mode store that went back in time, without letting old signed states back in.

A store emptied, restored from an older backup or replaced by another file holds a history
that is not the one a running subscriber followed: its signed head is gone, older, or names
another state at the same revision. The subscriber then keeps serving the states it holds and
reads the store's history again, under these rules:

- per scope, a *floor*: the signing time (``since``) of the state held when the store went
  back. A state signed at or before it belongs to the old history and is refused as a replay,
  whatever its revision, for good (several resets raise the floor);
- the first state above the floor replaces the held one even with a lower revision; from then
  on the new history's chain orders the scope again.

Publishers' clocks are assumed roughly in step (NTP): a state signed after the reset by a
publisher whose clock is behind the old one's would be refused until its clock passes the floor.
"""

from __future__ import annotations

from collections.abc import Mapping

from onsale_obs.modes._model import ModeState


class StoreResets:
    """A subscriber's memory of the store's resets (see the module docstring)."""

    def __init__(self) -> None:
        self.floors: dict[str, float] = {}

    def store_went_back(self, states: Mapping[str, ModeState]) -> None:
        """The store no longer has our history: remember what we hold."""
        for scope, state in states.items():
            self.floors[scope] = max(self.floors.get(scope, state.since), state.since)

    def refusal(self, state: ModeState) -> str | None:
        """Why ``state`` must be refused as a replay (None: accept it).

        Within one history the chain orders states (each follows the last applied), so only a
        history read again after the store went back needs this check.
        """
        floor = self.floors.get(state.scope)
        if floor is not None and state.since <= floor:
            return (
                f"revision {state.revision} was signed before the store went back in time "
                "(an old state)"
            )
        return None
