"""Verified history of transitions and the on-sale windows it implies (for the SLO engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

from onsale_obs.modes._backend import ModeBackend
from onsale_obs.modes._model import ModeState, OnSaleWindow
from onsale_obs.modes._signing import RejectedMessage, Verifier
from onsale_obs.modes._verify import (
    LogWalk,
    chain_from_log,
    count_signed,
    no_head_problem,
    pick_head,
)


@dataclass
class ModeHistory:
    """Reads every transition from a backend, keeping only the history its signed head vouches for.

    After each read, ``rejected`` counts the entries left out by reason, ``gaps`` lists the
    revisions of the history that are missing or changed, and ``problem`` says why nothing
    could be verified (None when the history verified).
    """

    backend: ModeBackend
    verifier: Verifier
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    problem: str | None = None
    #: the highest revision in the log when it was read (for writes conditional on it)
    top: int = 0

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
        walk = read_history(self.backend, self.verifier)
        self.rejected, self.gaps, self.problem = walk.rejected, walk.gaps, walk_problem(walk)
        self.top = walk.top
        return walk.states

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


@dataclass(frozen=True)
class HistoryRead(LogWalk):
    """A ``LogWalk`` of the whole store, with why it could not be checked (if so)."""

    problem: str | None = None
    top: int = 0


def read_history(backend: ModeBackend, verifier: Verifier) -> HistoryRead:
    """Read the head, then the log, and walk the log's chain back from the head."""
    snap = backend.snapshot()  # first: the log read after it covers the head
    head_bytes = pick_head(verifier, snap.head, snap.heads)
    entries = list(backend.history())
    top = max((e.revision for e in entries), default=0)
    if head_bytes is None:
        signed = count_signed(entries, verifier)
        problem = no_head_problem() if signed else None
        rejected = {"unvouched": len(entries)} if entries else {}
        return HistoryRead([], None, [], rejected, problem, top)
    try:
        head = verifier.open_head(head_bytes)
    except RejectedMessage as exc:
        problem = f"the store's head does not verify ({exc.reason}: {exc.detail})"
        return HistoryRead([], None, [], {exc.reason: 1}, problem, top)
    walk = chain_from_log(entries, head, verifier)
    return HistoryRead(walk.states, walk.chain, walk.gaps, walk.rejected, None, top)


def walk_problem(walk: HistoryRead) -> str | None:
    """Why (part of) a history could not be verified, for people (None: it all verified)."""
    if walk.problem is not None:
        return walk.problem
    if walk.gaps:
        ranges = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in walk.gaps)
        return (
            f"revisions {ranges} of the signed history are missing or changed: the states around "
            "them may be missing from this history"
        )
    return None


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
