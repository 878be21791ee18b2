"""Publishing mode changes: signed, store-versioned, with the schedule applied automatically."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from onsale_obs.exceptions import BadInputError, StaleWriteError, StoreIntegrityError
from onsale_obs.modes._backend import ModeBackend
from onsale_obs.modes._chain import Chain, Head, digest
from onsale_obs.modes._history import ModeHistory
from onsale_obs.modes._model import MAX_TIME, ModeState, check_reason, parse_mode, parse_scope
from onsale_obs.modes._repair import RepairPlan, plan_repair
from onsale_obs.modes._schedule import Schedule
from onsale_obs.modes._signing import Signer, Verifier
from onsale_obs.modes._verify import untrusted_successor, verify_store
from onsale_obs.redact import redact_url
from onsale_obs.types import Clock, Mode, Source


@dataclass
class Broadcaster:
    """Changes modes in a backend. Only holders of the signing key can construct a useful one.

    The schedule runs by calling ``apply_schedule`` periodically (``onsale-obs mode schedule run``).
    Manual changes are overrides: while a scope's latest state is ``manual`` and has not
    expired, the schedule leaves that scope alone. ``clear`` hands the scope back to the
    schedule.
    """

    backend: ModeBackend
    signer: Signer
    clock: Clock = time.time
    verifier: Verifier | None = None
    #: promise readers a re-signed head at least this often (seconds; ``heartbeat``), so they
    #: can tell a frozen store from a quiet one. None: keep the promise the store's head makes.
    refresh: float | None = None
    #: the head this broadcaster wrote last and the history it vouches for (saves re-verifying)
    _last: tuple[bytes, Chain, Head] | None = field(default=None, init=False, repr=False)
    #: a history to build on instead of the store's (``repair``)
    _base_override: Chain | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # the history it builds on may be signed by other trusted keys (rotation), and its
        # own heads by its own key
        own = self.signer.private_key.public_key()
        self.verifier = (
            Verifier([own]) if self.verifier is None else self.verifier.also_trusting(own)
        )

    def _verifier(self) -> Verifier:
        assert self.verifier is not None
        return self.verifier

    def _base(self, stored_head: bytes | None) -> tuple[Chain, Head | None, bool]:
        """The verified history the store holds under ``stored_head``; refuse to build on less.

        The third value is False when the store moved on while it was read (another publisher
        appended): the append this is for will lose its race and be tried again.
        """
        if self._base_override is not None:
            return self._base_override, None, True
        last = self._last
        if last is not None and stored_head == last[0]:
            return last[1], last[2], True
        view = verify_store(self.backend, self._verifier())
        if view.problem is not None:
            raise StoreIntegrityError(
                f"{view.problem}. Nothing was published: a publisher builds only on a history "
                "it can verify.",
                url=redact_url(self.backend.url),
            )
        found = untrusted_successor(self.backend, view, self._verifier())
        if found is not None:
            raise StoreIntegrityError(
                f"revision {found[0]} follows the store's history but is signed by key "
                f"{found[1]!r}, which this publisher does not trust; building past it "
                "would drop it for every reader that does. Nothing was published. Give "
                "this publisher that key's verify key (--verify-key or "
                "ONSALE_OBS_VERIFY_KEY) to build on it; to revoke that key instead, "
                "'onsale-obs mode repair' re-publishes the history without its states.",
                url=redact_url(self.backend.url),
            )
        return view.chain, view.head, view.head_bytes == stored_head

    def _promise(self, previous: Head | None) -> float | None:
        if self.refresh is not None:
            return self.refresh
        return previous.refresh if previous is not None else None

    def set(
        self,
        scope: str,
        mode: Mode | str,
        *,
        until: float | None = None,
        source: Source = "manual",
        reason: str = "",
        exit_rate: float | None = None,
        if_latest: int | None = None,
    ) -> ModeState:
        """Publish a new state for ``scope`` and return it with its store-assigned revision.

        ``exit_rate`` (users/min) carries the waiting room's recommendation to subscribers.
        ``if_latest``: write only if the store's latest revision is still this one (raises
        ``StaleWriteError`` otherwise), for writes derived from what was read.
        """
        scope = parse_scope(scope)
        checked_mode = parse_mode(mode)
        check_reason(reason)
        since = self.clock()
        if until is not None and until <= since:
            raise BadInputError("until must be in the future.", field="until")
        if until is not None and until > MAX_TIME:
            raise BadInputError("until must be before the end of year 9999.", field="until")
        made: list[tuple[ModeState, bytes, Chain, Head]] = []

        def seal(revision: int, stored_head: bytes | None) -> tuple[bytes, bytes]:
            if if_latest is not None and revision > if_latest + 1:
                raise StaleWriteError(
                    f"the mode store moved on to revision {revision - 1} since revision "
                    f"{if_latest} was read; nothing was written."
                )
            chain, previous, current = self._base(stored_head)
            if revision <= chain.tip_revision and current:
                raise StoreIntegrityError(
                    f"the log's top (revision {revision - 1}) is below its signed head "
                    f"(revision {chain.tip_revision}): entries were deleted without the key, and "
                    "publishing now would reuse a revision; see 'onsale-obs mode repair'.",
                    url=redact_url(self.backend.url),
                )
            state = ModeState(
                scope,
                checked_mode,
                revision,
                since,
                until,
                source,
                reason,
                exit_rate,
                prev_revision=chain.tip_revision,
                prev_digest=chain.tip_digest,
            )
            message = self.signer.seal(state)
            extended = chain.copy()
            extended.extend(state, digest(message))
            head = extended.head(self.clock(), self._promise(previous))
            head_bytes = self.signer.seal_head(head)
            made.append((state, head_bytes, extended, head))
            return message, head_bytes

        revision = self.backend.append(scope, seal)
        state, head_bytes, extended, head = next(
            m for m in reversed(made) if m[0].revision == revision
        )
        self._last = (head_bytes, extended, head)
        return state

    def current(self) -> dict[str, ModeState]:
        """The latest state of every scope, as the store's signed head vouches for it.

        Raises ``StoreIntegrityError`` when the store does not verify against its head.
        """
        view = verify_store(self.backend, self._verifier())
        if view.problem is not None:
            raise StoreIntegrityError(view.problem, url=redact_url(self.backend.url))
        return dict(view.chain.states)

    def heartbeat(self, refresh: float | None = None, *, withdraw: bool = False) -> Head:
        """Re-sign the store's head now, so readers can tell a quiet store from a frozen one.

        ``refresh`` (default: this broadcaster's) is the promise written into the head: readers
        mark themselves stale once the newest head is three of these intervals old. Run it at
        that interval (``onsale-obs mode heartbeat``). ``withdraw``: sign a head that promises
        nothing, so readers stop expecting heartbeats.
        """
        promise = None if withdraw else refresh if refresh is not None else self.refresh
        for _attempt in range(20):
            snap = self.backend.snapshot()
            view = verify_store(self.backend, self._verifier(), snap)
            if view.problem is not None:
                raise StoreIntegrityError(view.problem, url=redact_url(self.backend.url))
            head = view.chain.head(self.clock(), promise)
            head_bytes = self.signer.seal_head(head)
            if self.backend.write_head(snap.head, head_bytes, snap.cursor):
                self._last = (head_bytes, view.chain, head)
                return head
            # a publisher appended meanwhile: its head is as fresh; sign on top of it again
        raise StoreIntegrityError(
            "the head kept changing while it was re-signed; try again.",
            url=redact_url(self.backend.url),
        )

    def plan_repair(self, *, empty: bool = False) -> RepairPlan:
        """What ``repair`` would vouch for (see ``_repair.py``); writes nothing."""
        return plan_repair(self.backend, self._verifier(), empty=empty)

    def repair(self, plan: RepairPlan) -> Head:
        """Sign the history a ``plan_repair`` found, so readers trust the store again."""
        if plan.republish is None:
            head = plan.chain.head(self.clock(), self.refresh)
            head_bytes = self.signer.seal_head(head)
            if not self.backend.write_head(plan.stored_head, head_bytes, plan.top):
                raise StoreIntegrityError(
                    "the store changed while the repair was planned; nothing was written: plan "
                    "it again.",
                    url=redact_url(self.backend.url),
                )
            self._last = (head_bytes, plan.chain, head)
            return head
        # the log has a gap: start a new chain that re-asserts every state the plan carries
        self._base_override = Chain()
        try:
            if not plan.republish:
                head = Chain().head(self.clock(), self.refresh)
                head_bytes = self.signer.seal_head(head)
                if not self.backend.write_head(plan.stored_head, head_bytes, plan.top):
                    raise StoreIntegrityError(
                        "the store changed while the repair was planned; plan it again.",
                        url=redact_url(self.backend.url),
                    )
                self._last = (head_bytes, Chain(), head)
                return head
            for state in plan.republish:
                self._republish(state)
                self._base_override = self._last[1] if self._last else None
        finally:
            self._base_override = None
        assert self._last is not None
        return self._last[2]

    def _republish(self, old: ModeState) -> None:
        until = old.until if old.until is not None and old.until > self.clock() else None
        if old.mode == "onsale" and old.until is not None and until is None:
            return  # it has ended since: nothing to carry
        self.set(
            old.scope,
            old.mode,
            until=until,
            source=old.source,
            reason=old.reason or f"re-signed by mode repair (was revision {old.revision})",
            exit_rate=old.exit_rate,
        )

    def clear(self, scope: str, *, schedule: Schedule | None = None, reason: str = "") -> ModeState:
        """End a manual override: the scope follows the schedule again (normal if none)."""
        scope = parse_scope(scope)
        now = self.clock()
        window = schedule.active(scope, now) if schedule is not None else None
        if window is not None:
            return self.set(
                scope,
                "onsale",
                until=window.end,
                source="schedule",
                reason=reason or window.reason or "override cleared; scheduled on-sale",
            )
        return self.set(scope, "normal", source="schedule", reason=reason or "override cleared")

    def apply_schedule(self, schedule: Schedule) -> list[ModeState]:
        """One pass of the schedule: start due windows, end windows cut short; return changes."""
        now = self.clock()
        current = self.current()
        changes: list[ModeState] = []
        for scope in sorted(schedule.scopes() | set(current)):
            state = current.get(scope)
            if state is not None and state.source == "manual" and not state.is_expired_at(now):
                continue  # a manual override wins over the schedule
            window = schedule.active(scope, now)
            onsale_now = state is not None and state.is_onsale_at(now)
            if window is not None:
                if not onsale_now or (state is not None and state.until != window.end):
                    changes.append(
                        self.set(
                            scope,
                            "onsale",
                            until=window.end,
                            source="schedule",
                            reason=window.reason or "scheduled on-sale",
                        )
                    )
            elif onsale_now and state is not None and state.source == "schedule":
                # the window was removed from the schedule while it was running
                changes.append(
                    self.set(scope, "normal", source="schedule", reason="removed from the schedule")
                )
        return changes

    def history(self) -> ModeHistory:
        """The verified history of this backend."""
        return ModeHistory(self.backend, self._verifier())
