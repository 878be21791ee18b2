"""Checking what a store holds against its signed head: one procedure for every reader.

A fresh subscriber, ``mode get``, ``Broadcaster.current()``, a publisher building its next
state and ``mode history`` all go through here, so they agree on what the store says:

- no head and an empty log: a new store, everything normal;
- no head but entries: nothing is vouched for (emptied and refilled, or written by 0.1);
- a head: the snapshot cache is believed only if its messages verify and digest to the
  head's ``states``; otherwise the history is rebuilt by walking the chain back from the
  head's tip. Entries above the head's revision were not written by a publisher.

Publishers may sign with different keys (the operators', a surge detector's) and a reader may
trust only some of them. Every key's last head is kept beside the store's head, and a reader
takes the newest head signed by a key it trusts (``pick_head``). The chain may pass through
states signed by a key the reader does not trust, when a trusted state or head commits to
their bytes: they stay on the history (``Passed``) but are not applied, and are counted as
``forged``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from onsale_obs.modes._backend import Entry, ModeBackend, Snapshot
from onsale_obs.modes._chain import Chain, Head, Passed, digest
from onsale_obs.modes._model import GENESIS, MAX_REVISION, ModeState
from onsale_obs.modes._signing import (
    RejectedMessage,
    Verifier,
    claimed_kid,
    claimed_link,
    peek_head,
    peek_payload,
)


@dataclass(frozen=True)
class StoreView:
    """What a store's content verifies to; ``problem`` says why it is not trusted."""

    chain: Chain
    head: Head | None
    head_bytes: bytes | None
    cursor: int
    problem: str | None = None
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def trusted(self) -> bool:
        """True when every state in ``chain`` is vouched for by a signed head (or none exist)."""
        return self.problem is None


def no_head_problem() -> str:
    """Why a store with signed entries but no head is not believed."""
    return (
        "the store holds signed states but no signed head: it was emptied and "
        "refilled, restored without its head, or written by onsale-obs 0.1, so nothing in it "
        "is vouched for; a key holder can review and re-sign it with 'onsale-obs mode repair'"
    )


def count_signed(entries: Iterable[Entry], verifier: Verifier) -> int:
    """How many entries carry a valid signature (wherever they sit)."""
    signed = 0
    for entry in entries:
        try:
            verifier.open_entry(entry)
        except RejectedMessage:
            continue
        signed += 1
    return signed


def pick_head(verifier: Verifier, head: bytes | None, heads: tuple[bytes, ...]) -> bytes | None:
    """The head this reader goes by: the newest one signed by a key it trusts.

    ``head`` is the store's (the last publisher's), ``heads`` each key's last one. Only what
    they claim is read here (revision, then issue time); the caller verifies the one picked.
    With no candidate naming a trusted key, ``head`` is returned, for the caller to reject.
    """
    if not heads or (len(heads) == 1 and heads[0] == head):
        return head  # one publisher key: nothing to choose
    best: tuple[int, float] | None = None
    picked = head
    for candidate in (head, *heads):
        if candidate is None or not verifier.trusts_signer(candidate):
            continue
        claimed = peek_head(candidate)
        if claimed is None:
            continue
        rank = (claimed.revision, claimed.issued)
        if best is None or rank > best:
            best, picked = rank, candidate
    return picked


def verify_store(
    backend: ModeBackend, verifier: Verifier, snapshot: Snapshot | None = None
) -> StoreView:
    """Verify a store's snapshot (read now unless given) against its head; see the docstring."""
    snap = snapshot if snapshot is not None else backend.snapshot()
    head_bytes = pick_head(verifier, snap.head, snap.heads)
    if head_bytes is None:
        signed = count_signed(backend.history(), verifier) if snap.cursor or snap.latest else 0
        if not signed:  # a new store (junk written before the first publish changes nothing)
            return StoreView(Chain(), None, None, snap.cursor)
        return StoreView(Chain(), None, None, snap.cursor, no_head_problem())
    try:
        head = verifier.open_head(head_bytes)
    except RejectedMessage as exc:
        return StoreView(
            Chain(),
            None,
            head_bytes,
            snap.cursor,
            f"the store's head does not verify ({exc.reason}: {exc.detail})",
            {exc.reason: 1},
        )
    chain = _chain_from_snapshot(snap, head, verifier)
    rejected: dict[str, int] = {}
    if chain is None:  # the cache does not match: rebuild from the log itself
        walk = chain_from_log(backend.history(), head, verifier)
        chain, rejected = walk.chain, walk.rejected
    if chain is None:
        return StoreView(
            Chain(),
            head,
            snap.head,
            snap.cursor,
            f"the store's log and snapshot do not match its signed head (revision "
            f"{head.revision}): entries were deleted or changed without the publishers' key",
            rejected,
        )
    if snap.cursor > head.revision:  # a head put back older than the log: follow the links
        extend_past_head(chain, backend.history(head.revision), verifier)
    return StoreView(chain, head, head_bytes, snap.cursor, None, rejected)


def extend_past_head(chain: Chain, entries: Iterable[Entry], verifier: Verifier) -> list[ModeState]:
    """Extend ``chain`` with the entries above its head that follow it link by link.

    A publisher stores a new head with every entry, so entries above the head are junk
    unless someone put an older head back: then the signed entries that continue its chain
    are still the history (what the old head cannot vouch for, the links do). Entries that do
    not even claim to follow are skipped unread.
    """
    added: list[ModeState] = []
    for entry in entries:
        if entry.revision <= chain.tip_revision or not revision_in_range(entry.revision):
            continue
        if claimed_link(entry.message) != (chain.tip_revision, chain.tip_digest):
            continue
        try:
            state = verifier.open_entry(entry)
        except RejectedMessage:
            continue
        if chain.link_error(state) is None:
            chain.extend(state, digest(entry.message))
            added.append(state)
    return added


def _chain_from_snapshot(snap: Snapshot, head: Head, verifier: Verifier) -> Chain | None:
    """The history the snapshot cache describes, if it is exactly what the head vouches for."""
    chain = Chain(head.revision, GENESIS if head.revision == 0 else "")
    for scope, entry in snap.latest.items():
        if entry.revision > head.revision:
            return None
        try:
            state = verifier.open_entry(entry)
        except RejectedMessage:
            return None
        chain.states[scope] = state
        chain.digests[scope] = digest(entry.message)
        if entry.revision == head.revision:
            chain.tip_digest = chain.digests[scope]
    return chain if chain.matches(head) else None


@dataclass(frozen=True)
class LogWalk:
    """A log checked against a head: the states on its chain, oldest first, and the rest."""

    states: list[ModeState]
    #: the whole history from its first state to the head (None: a link is missing)
    chain: Chain | None
    #: revisions of the history that are missing or changed, as (first, last) ranges
    gaps: list[tuple[int, int]]
    rejected: dict[str, int]


def chain_from_log(entries: Iterable[Entry], head: Head, verifier: Verifier) -> LogWalk:
    """Walk the chain back from the head's tip through ``entries``.

    The walk follows signed links only, so junk, copies and old states anywhere in the log
    are never on it. When a link is missing, the history before the gap cannot be told from
    another branch signed with the same key, so only the part after the gap is kept, and the
    gap is reported.
    """
    by_revision: dict[int, Entry] = {}
    rejected: dict[str, int] = {}
    entries_above: list[Entry] = []
    for entry in entries:
        if 0 < entry.revision <= head.revision:
            by_revision[entry.revision] = entry
        else:
            entries_above.append(entry)
            # above the head: signed by a key not trusted here (another publisher's, or
            # claimed by a forger), or else not vouched for by any head
            kid = claimed_kid(entry.message)
            above = "forged" if kid and not verifier.trusts_key(kid) else "unvouched"
            rejected[above] = rejected.get(above, 0) + 1
    back: list[tuple[ModeState | Passed, str]] = []
    revision, want = head.revision, head.tip
    legacy_below = 0  # the walk reached a state of 0.1 (no link): its era is taken as it was
    while revision > 0:
        found = by_revision.get(revision)
        if found is None or digest(found.message) != want:
            break
        state: ModeState | Passed | None
        try:
            state = verifier.open_entry(found)
        except RejectedMessage:
            # committed to by what follows it: passed through if another key signed it
            state = passed_state(found, verifier)
            if state is None:
                break
            rejected["forged"] = rejected.get("forged", 0) + 1
        back.append((state, want))
        if state.prev_digest is None:
            legacy_below, revision = revision, 0
            break
        revision, want = state.prev_revision, state.prev_digest
    on_chain = {s.revision for s, _ in back}
    prefix: list[tuple[ModeState | Passed, str]] = []
    gaps: list[tuple[int, int]] = []
    if legacy_below:
        prefix = [*legacy_era(by_revision, verifier, below=legacy_below)]
        on_chain.update(s.revision for s, _ in prefix)
    elif revision > 0:
        # broken: below the gap nothing tells this history from another branch of the same
        # key (a store restored, then written again), so none of it is taken
        gaps.append((1, revision))
    for rev, entry in by_revision.items():
        if rev in on_chain:
            continue
        try:
            verifier.open_entry(entry)
            reason = "replayed"  # signed, but not where the history puts it
        except RejectedMessage as exc:
            reason = exc.reason
        rejected[reason] = rejected.get(reason, 0) + 1
    ordered = prefix + list(reversed(back))
    tail = Chain(head.revision, head.tip) if back else None
    past = [] if tail is None else extend_past_head(tail, entries_above, verifier)
    if past:
        rejected["unvouched"] -= len(past)
        if not rejected["unvouched"]:
            del rejected["unvouched"]
    chain: Chain | None = None
    if revision == 0:
        chain = chain_of(ordered)
        if not chain.matches(head):
            chain = None
        elif tail is not None:
            extend_past_head(chain, entries_above, verifier)
    applied = [s for s, _ in ordered if isinstance(s, ModeState)]
    return LogWalk(applied + past, chain, gaps, rejected)


def untrusted_successor(
    backend: ModeBackend, view: StoreView, verifier: Verifier
) -> tuple[int, str] | None:
    """The first entry above a trusted view's chain that follows it but names a key
    ``verifier`` lacks (None too for a view that is not trusted, or has nothing above).

    Returned as (revision, key id). A publisher that built past it would leave it off the
    history for every reader that trusts that key, so it refuses instead (``Broadcaster``).
    """
    chain = view.chain
    if view.problem is not None or view.cursor <= chain.tip_revision:
        return None  # the usual case: nothing to read
    tip = (chain.tip_revision, chain.tip_digest)
    for entry in backend.history(chain.tip_revision):
        if claimed_link(entry.message) != tip:
            continue
        if not verifier.trusts_signer(entry.message):
            return entry.revision, claimed_kid(entry.message) or "?"
        try:
            verifier.open_entry(entry)
        except RejectedMessage:
            continue
        tip = (entry.revision, digest(entry.message))
    return None


def passed_state(entry: Entry, verifier: Verifier) -> Passed | None:
    """``entry`` as a state to pass through, if a key this reader does not hold signed it.

    Only for an entry whose bytes a trusted state or head commits to. A message naming a key
    the reader does trust, but not verifying, is never passed: that is a forgery. Its scope,
    revision and link are read from the committed payload and must be where the log has it.
    """
    if verifier.trusts_signer(entry.message):
        return None
    payload = peek_payload(entry.message)
    if not isinstance(payload, dict):
        return None
    scope, revision = payload.get("scope"), payload.get("revision")
    if scope != entry.scope or revision != entry.revision or isinstance(revision, bool):
        return None
    link = claimed_link(entry.message)
    if link is None:
        return None
    return Passed(entry.scope, entry.revision, link[0], link[1])


def legacy_era(
    by_revision: dict[int, Entry], verifier: Verifier, *, below: int
) -> list[tuple[ModeState, str]]:
    """The unchained states (written by 0.1) below a chained history's first state, in order.

    They are taken as 0.1 took them: every state that verifies, at the revision it was
    signed for. A chained state vouches for this era by linking to its last state.
    """
    era: list[tuple[ModeState, str]] = []
    for rev in sorted(r for r in by_revision if r < below):
        entry = by_revision[rev]
        try:
            state = verifier.open_entry(entry)
        except RejectedMessage:
            continue
        if state.prev_digest is None:
            era.append((state, digest(entry.message)))
    return era


def forward_chain(
    by_revision: dict[int, Entry], verifier: Verifier, *, upto: int
) -> tuple[Chain, list[tuple[ModeState, str]]]:
    """The history that chains forward from a first state, through revisions up to ``upto``."""
    chain = Chain()
    states: list[tuple[ModeState, str]] = []
    for revision in sorted(r for r in by_revision if r <= upto):
        entry = by_revision[revision]
        try:
            state = verifier.open_entry(entry)
        except RejectedMessage:
            continue
        if chain.link_error(state) is None:
            message_digest = digest(entry.message)
            chain.extend(state, message_digest)
            states.append((state, message_digest))
    return chain, states


def chain_of(ordered: Iterable[tuple[ModeState | Passed, str]]) -> Chain:
    """The chain object of a history already checked link by link (oldest first)."""
    chain = Chain()
    for state, message_digest in ordered:
        chain.extend(state, message_digest)
    return chain


def revision_in_range(revision: int) -> bool:
    """False for an id no publisher can have assigned (negative, zero or above the maximum)."""
    return 0 < revision <= MAX_REVISION
