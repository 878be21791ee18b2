"""Reading the current, verified state of every scope (no signing key needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onsale_obs.modes._backend import ModeBackend
from onsale_obs.modes._model import ModeState
from onsale_obs.modes._signing import RejectedMessage, Verifier


@dataclass(frozen=True)
class VerifiedStates:
    """The latest state of every scope that verified, and why the others did not."""

    states: dict[str, ModeState]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        """The highest verified revision (0 when nothing verified)."""
        return max((s.revision for s in self.states.values()), default=0)


def current_states(backend: ModeBackend, verifier: Verifier) -> VerifiedStates:
    """Verify the store's snapshot: one state per scope, forged or replayed ones skipped."""
    states: dict[str, ModeState] = {}
    skipped: dict[str, str] = {}
    for scope, entry in sorted(backend.snapshot().latest.items()):
        try:
            states[scope] = verifier.open_entry(entry)
        except RejectedMessage as exc:
            skipped[scope] = exc.reason
    return VerifiedStates(states, skipped)
