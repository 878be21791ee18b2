"""Reading the current, verified state of every scope (no signing key needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onsale_obs.modes._backend import ModeBackend
from onsale_obs.modes._chain import Head
from onsale_obs.modes._model import ModeState
from onsale_obs.modes._signing import Verifier
from onsale_obs.modes._verify import verify_store


@dataclass(frozen=True)
class VerifiedStates:
    """The latest state of every scope, as the store's signed head vouches for it.

    ``problem`` is set (and ``states`` empty) when the store does not verify against its
    head: the same verdict a freshly started subscriber reaches.
    """

    states: dict[str, ModeState]
    skipped: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    head: Head | None = None
    #: entries read while checking the store that no signed head vouches for, by reason
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        """The revision of the history's last state (0 when there is none)."""
        if self.head is not None:
            return self.head.revision
        return max((s.revision for s in self.states.values()), default=0)


def current_states(backend: ModeBackend, verifier: Verifier) -> VerifiedStates:
    """Verify the store's snapshot against its signed head (see ``_verify.py``)."""
    view = verify_store(backend, verifier)
    return VerifiedStates(dict(view.chain.states), {}, view.problem, view.head, view.rejected)
