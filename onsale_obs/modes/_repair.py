"""``mode repair``: a key holder reviews what a broken store still proves, and signs it again.

Readers trust nothing that no signed head vouches for, and publishers refuse to build on such
a store, so a store whose head was lost (emptied, restored, written by 0.1) or whose log lost
entries stays unusable until someone with the key decides what it holds. The plan shows that
decision before anything is written:

- the store verifies: nothing to do;
- the log holds one unbroken signed history (chained from its first state, or the unchained
  states of 0.1 that a new head can vouch for as they are): sign a head over it;
- the history has a gap: start a new chain that re-publishes the latest state of every scope
  the surviving, verifiable history names;
- the history verifies, but states signed by a key this key does not trust follow it (that
  key was revoked): start a new chain that re-publishes the states this key trusts;
- ``empty``: start a new, empty history (every scope normal).
"""

from __future__ import annotations

from dataclasses import dataclass

from onsale_obs.modes._backend import Entry, ModeBackend
from onsale_obs.modes._chain import Chain
from onsale_obs.modes._model import ModeState
from onsale_obs.modes._signing import RejectedMessage, Verifier
from onsale_obs.modes._verify import (
    chain_from_log,
    chain_of,
    forward_chain,
    legacy_era,
    revision_in_range,
    untrusted_successor,
    verify_store,
)


@dataclass(frozen=True)
class RepairPlan:
    """What a repair would vouch for; ``republish`` None: sign a head over ``chain`` as it is."""

    needed: bool
    description: str
    chain: Chain
    stored_head: bytes | None
    top: int
    republish: list[ModeState] | None = None

    @property
    def states(self) -> dict[str, ModeState]:
        """The state of every scope once the repair is written."""
        if self.republish is not None:
            return {s.scope: s for s in self.republish}
        return dict(self.chain.states)


def plan_repair(backend: ModeBackend, verifier: Verifier, *, empty: bool = False) -> RepairPlan:
    """Decide what a repair would sign; see the module docstring."""
    snap = backend.snapshot()
    if empty:
        return RepairPlan(
            True,
            "start a new, empty history: every scope normal",
            Chain(),
            snap.head,
            snap.cursor,
            [],
        )
    view = verify_store(backend, verifier, snap)
    blocked = untrusted_successor(backend, view, verifier)
    if blocked is not None:
        states = sorted(view.chain.states.values(), key=lambda s: s.revision)
        return RepairPlan(
            True,
            f"revision {blocked[0]} on is signed by key {blocked[1]!r}, which this key does not "
            f"trust (revoked?): start a new chain that re-publishes the latest state of the "
            f"{len(states)} scopes this key trusts, without that key's states",
            Chain(),
            snap.head,
            snap.cursor,
            states,
        )
    if view.problem is None:
        return RepairPlan(
            False,
            "the store verifies against its signed head: nothing to repair",
            view.chain,
            snap.head,
            snap.cursor,
        )
    entries = [e for e in backend.history() if revision_in_range(e.revision)]
    by_revision = {e.revision: e for e in entries}
    head = None
    if snap.head is not None:
        try:
            head = verifier.open_head(snap.head)
        except RejectedMessage:
            head = None
    if head is not None:
        walk = chain_from_log(entries, head, verifier)
        if walk.gaps:
            first, last = walk.gaps[0]
            folded = chain_of((s, "") for s in walk.states).states
            before = _latest_signed(by_revision, verifier, below=last, skip=set(folded))
            folded.update(before)
            review = (
                f"; {len(before)} of them ({', '.join(sorted(before))}) from signed states before "
                "the gap, which nothing vouches for: review them"
                if before
                else ""
            )
            return RepairPlan(
                True,
                f"revisions {first}-{last} of the signed history are missing or changed: start "
                f"a new chain that re-publishes the latest state of its {len(folded)} scopes"
                + review,
                Chain(),
                snap.head,
                snap.cursor,
                sorted(folded.values(), key=lambda s: s.revision),
            )
    forward, _states = forward_chain(by_revision, verifier, upto=max(by_revision, default=0))
    if forward.tip_revision:
        return RepairPlan(
            True,
            f"the log holds a signed history up to revision {forward.tip_revision} but no valid "
            "head: sign a head over it",
            forward,
            snap.head,
            snap.cursor,
        )
    legacy = legacy_era(by_revision, verifier, below=max(by_revision, default=0) + 1)
    if legacy:
        return RepairPlan(
            True,
            f"the log holds {len(legacy)} unchained states (onsale-obs 0.1): sign a head that "
            "vouches for them as they are",
            chain_of(legacy),
            snap.head,
            snap.cursor,
        )
    return RepairPlan(
        True,
        "nothing in the log verifies: start a new, empty history",
        Chain(),
        snap.head,
        snap.cursor,
        [],
    )


def _latest_signed(
    by_revision: dict[int, Entry], verifier: Verifier, *, below: int, skip: set[str]
) -> dict[str, ModeState]:
    """The latest validly signed state of each scope not in ``skip``, below a revision."""
    found: dict[str, ModeState] = {}
    for revision in sorted(r for r in by_revision if r < below):
        try:
            state = verifier.open_entry(by_revision[revision])
        except RejectedMessage:
            continue
        if state.scope not in skip:
            found[state.scope] = state
    return found
