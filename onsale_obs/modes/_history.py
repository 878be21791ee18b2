"""Verified history of transitions and the on-sale windows it implies (for the SLO engine)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from onsale_obs.modes._backend import Entry, ModeBackend
from onsale_obs.modes._model import ModeState, OnSaleWindow
from onsale_obs.modes._signing import RejectedMessage, Verifier


@dataclass
class ModeHistory:
    """Reads every transition from a backend, keeping only the ones that verify."""

    backend: ModeBackend
    verifier: Verifier
    rejected: dict[str, int] = field(default_factory=dict)

    def transitions(
        self, start: float | None = None, end: float | None = None, scope: str | None = None
    ) -> list[ModeState]:
        """Verified states (oldest first) whose ``since`` falls in ``[start, end)``."""
        return [
            s
            for s in self._all()
            if (scope is None or s.scope == scope)
            and (start is None or s.since >= start)
            and (end is None or s.since < end)
        ]

    def _all(self) -> list[ModeState]:
        states, self.rejected = verify_entries(self.backend.history(), self.verifier)
        return states

    def onsale_windows(
        self, start: float | None = None, end: float | None = None, scope: str | None = None
    ) -> list[OnSaleWindow]:
        """On-sale windows per scope that overlap ``[start, end)``, unclipped, oldest first.

        Consecutive on-sale states of one scope (an extended ``until``, a changed reason) are
        one window; a window ends at the next normal state or at ``until``, whichever is first.
        """
        return [
            w
            for w in windows_from_states(self._all())
            if (scope is None or w.scope == scope)
            and (end is None or w.start < end)
            and (start is None or w.end is None or w.end > start)
        ]


def verify_entries(
    entries: Iterable[Entry], verifier: Verifier
) -> tuple[list[ModeState], dict[str, int]]:
    """The entries that verify, as states (oldest first), and the rejected ones by reason."""
    states: list[ModeState] = []
    rejected: dict[str, int] = {}
    last: dict[str, int] = {}
    for entry in entries:
        try:
            state = verifier.open_entry(entry)
        except RejectedMessage as exc:
            rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
            continue
        if state.revision <= last.get(state.scope, 0):
            rejected["replayed"] = rejected.get("replayed", 0) + 1
            continue
        last[state.scope] = state.revision
        states.append(state)
    return states, rejected


def windows_from_states(states: list[ModeState]) -> list[OnSaleWindow]:
    """Fold an ordered list of verified states into on-sale windows."""
    open_: dict[str, tuple[ModeState, list[int], float | None]] = {}
    done: list[OnSaleWindow] = []

    def close(scope: str, at: float | None) -> None:
        first, revisions, until = open_.pop(scope)
        ends = [t for t in (at, until) if t is not None]
        done.append(
            OnSaleWindow(
                scope,
                first.since,
                min(ends) if ends else None,
                first.source,
                first.reason,
                tuple(revisions),
            )
        )

    for state in states:
        current = open_.get(state.scope)
        if current is not None and current[2] is not None and current[2] <= state.since:
            close(state.scope, None)  # it had already expired before this state arrived
            current = None
        if state.mode == "onsale":
            if current is None:
                open_[state.scope] = (state, [state.revision], state.until)
            else:
                open_[state.scope] = (current[0], [*current[1], state.revision], state.until)
        elif current is not None:
            close(state.scope, state.since)
    for scope in list(open_):
        close(scope, None)
    return sorted(done, key=lambda w: (w.start, w.scope))
