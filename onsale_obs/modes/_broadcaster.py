"""Publishing mode changes: signed, store-versioned, with the schedule applied automatically."""

from __future__ import annotations

import time
from dataclasses import dataclass

from onsale_obs.exceptions import BadInputError, StaleWriteError
from onsale_obs.modes._backend import ModeBackend
from onsale_obs.modes._current import current_states
from onsale_obs.modes._history import ModeHistory
from onsale_obs.modes._model import MAX_TIME, ModeState, check_reason, parse_mode, parse_scope
from onsale_obs.modes._schedule import Schedule
from onsale_obs.modes._signing import Signer, Verifier
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

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = Verifier([self.signer.private_key.public_key()])

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
        made: list[ModeState] = []

        def seal(revision: int) -> bytes:
            if if_latest is not None and revision > if_latest + 1:
                raise StaleWriteError(
                    f"the mode store moved on to revision {revision - 1} since revision "
                    f"{if_latest} was read; nothing was written."
                )
            state = ModeState(
                scope, checked_mode, revision, since, until, source, reason, exit_rate
            )
            made.append(state)
            return self.signer.seal(state)

        revision = self.backend.append(scope, seal)
        return next(s for s in reversed(made) if s.revision == revision)

    def current(self) -> dict[str, ModeState]:
        """The latest verified state of every scope (states that fail verification are skipped)."""
        assert self.verifier is not None
        return current_states(self.backend, self.verifier).states

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
        assert self.verifier is not None
        return ModeHistory(self.backend, self.verifier)
