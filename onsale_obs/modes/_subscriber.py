"""The per-service view of the modes: a lock-free read per request, kept current in the background.

Reads never block and never raise: the request path only dereferences an immutable view that
the background thread (sync apps) or task (async apps) replaces atomically. When the backend
cannot be reached the last verified view keeps serving, is marked stale after ``stale_after``
seconds, and the local schedule (if configured) also puts scopes on sale.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes._backend import Entry, ModeBackend
from onsale_obs.modes._model import GLOBAL_SCOPE, ModeState, scope_event
from onsale_obs.modes._resets import StoreResets
from onsale_obs.modes._schedule import Schedule
from onsale_obs.modes._signing import REJECT_REASONS, RejectedMessage, RejectReason, Verifier
from onsale_obs.types import Clock, Mode

#: Called with every accepted state, from the background thread or task. Must not block.
Listener = Callable[[ModeState], None]


class Resolution(NamedTuple):
    """The effective mode of a request and the event id that made it on sale (if any)."""

    mode: Mode
    onsale_event: str | None


_NORMAL = Resolution("normal", None)
_GLOBAL_ONSALE = Resolution("onsale", None)


@dataclass(frozen=True, slots=True)
class _View:
    """What the request path reads: only on-sale states, each with its answer made in advance.

    ``onsale_events`` maps an event id to (until, its Resolution); ``global_until`` is set
    (to ``until``, or infinity) while the global scope is on sale.
    """

    onsale_events: dict[str, tuple[float, Resolution]] = field(default_factory=dict)
    global_until: float | None = None
    stale: bool = False


class ModeSubscriber:
    """Keeps a service's view of every scope's mode current; see the module docstring.

    Pass ``registry`` (for example ``prometheus_client.REGISTRY``) to export ``onsale_mode{scope}``,
    ``onsale_mode_stale``, ``onsale_mode_revision`` and ``onsale_mode_rejected_total``.
    """

    def __init__(
        self,
        backend: ModeBackend,
        verifier: Verifier,
        *,
        clock: Clock = time.time,
        schedule: Schedule | None = None,
        registry: CollectorRegistry | None = None,
        stale_after: float = 5.0,
        poll_timeout: float = 1.0,
        retry_interval: float = 0.5,
        logger: Any = None,
    ) -> None:
        self._backend = backend
        self._verifier = verifier
        self._clock = clock
        self._schedule = schedule
        self.stale_after = stale_after
        self.poll_timeout = poll_timeout
        self.retry_interval = retry_interval
        self._log = logger if logger is not None else structlog.get_logger("onsale_obs.modes")
        self._view = _View(stale=True)
        self._states: dict[str, ModeState] = {}
        self._cursor = 0
        self._synced = False
        self._last_ok: float | None = None
        self._started_at = clock()
        self._rejected: dict[RejectReason, int] = dict.fromkeys(REJECT_REASONS, 0)
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._sync_lock = threading.Lock()
        self._outage_logged = False
        # after an outage, check the store still holds our history before reading on
        self._check_store = False
        self._resets = StoreResets()
        if registry is not None:
            registry.register(_SubscriberCollector(self))

    # -- the request path: O(1), lock-free, never raises ---------------------------------

    def resolve(self, event: str | None) -> Resolution:
        """Effective mode for a request of ``event`` (None: no event scope)."""
        view = self._view
        if event is not None:
            found = view.onsale_events.get(event)
            if found is not None and self._clock() < found[0]:
                return found[1]
        if view.global_until is not None and self._clock() < view.global_until:
            return _GLOBAL_ONSALE
        if view.stale and self._schedule is not None:
            return self._scheduled(event, self._clock())
        return _NORMAL

    def _scheduled(self, event: str | None, now: float) -> Resolution:
        schedule = self._schedule
        if schedule is None or not schedule.is_onsale(event, now):
            return _NORMAL
        on = event is not None and schedule.active("event:" + event, now) is not None
        return Resolution("onsale", event if on else None)

    def mode_for(self, event: str | None) -> Mode:
        """Effective mode (``normal`` or ``onsale``) for a request of ``event``."""
        return self.resolve(event).mode

    @property
    def stale(self) -> bool:
        """True while the backend has not answered for ``stale_after`` seconds."""
        return self._view.stale

    @property
    def revision(self) -> int:
        """The highest revision applied so far."""
        return self._cursor

    def states(self) -> dict[str, ModeState]:
        """The latest verified state per scope (a copy)."""
        return dict(self._states)

    def rejected(self) -> dict[RejectReason, int]:
        """How many messages were rejected, by reason."""
        return dict(self._rejected)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every state accepted from now on.

        That includes the states of the first snapshot (the current state of every scope),
        then every transition in revision order.
        """
        self._listeners.append(listener)

    # -- keeping the view current ---------------------------------------------------------

    def sync(self, timeout: float = 0.0) -> bool:
        """One round of catching up (waiting up to ``timeout`` s for news). False on outage.

        The background thread calls this in a loop; tests call it directly with a fake clock.
        """
        with self._sync_lock:
            try:
                if not self._synced or self._check_store:
                    self._apply_snapshot()
                entries = self._backend.read(self._cursor, timeout)
            except BackendUnavailableError as exc:
                self._on_failure(exc)
                return False
            except Exception as exc:  # a backend bug must not kill the subscriber
                self._on_failure(exc)
                return False
            self._apply(entries)
            self._on_success()
            return True

    async def async_sync(self, timeout: float = 0.0) -> bool:
        """``sync`` for asyncio: never blocks the event loop."""
        try:
            if not self._synced or self._check_store:
                await asyncio.to_thread(self._locked_snapshot)
            entries = await self._backend.aread(self._cursor, timeout)
        except Exception as exc:
            self._on_failure(exc)
            return False
        with self._sync_lock:
            self._apply(entries)
            self._on_success()
        return True

    def _locked_snapshot(self) -> None:
        with self._sync_lock:
            self._apply_snapshot()

    def _apply_snapshot(self) -> None:
        snapshot = self._backend.snapshot()
        if self._synced:
            # after an outage: if the store still holds our history, its log has every
            # transition since our cursor; if not (restarted without its data, restored from
            # an older backup), read its new history from the start (see _resets.py)
            if snapshot.cursor < self._cursor or not self._resets.still_holds_cursor(
                self._backend, self._cursor
            ):
                self._log.error(
                    "mode store went back in time; was it restarted without persistence?",
                    store_revision=snapshot.cursor,
                    seen_revision=self._cursor,
                )
                self._resets.store_went_back(self._states, snapshot.cursor)
                self._cursor = 0
            self._check_store = False
            return
        unverified = [
            entry.scope
            for entry in sorted(snapshot.latest.values(), key=lambda e: e.revision)
            if not self._accept(entry, live=False)
        ]
        if unverified:
            self._recover_from_log(set(unverified), snapshot.cursor)
        self._cursor = max(self._cursor, snapshot.cursor)
        self._resets.at_cursor = next(
            (e for e in snapshot.latest.values() if e.revision == snapshot.cursor), None
        )
        self._synced = True
        self._check_store = False
        self._publish_view()

    def _recover_from_log(self, scopes: set[str], cursor: int) -> None:
        """A scope's latest entry did not verify: fall back to its latest entry that does."""
        best: dict[str, ModeState] = {}
        for entry in self._backend.history():
            if entry.revision > cursor or entry.scope not in scopes:
                continue
            try:
                best[entry.scope] = self._verifier.open_entry(entry)
            except RejectedMessage:
                continue
        for scope, state in best.items():
            current = self._states.get(scope)
            if current is None or state.revision > current.revision:
                self._states[scope] = state

    def _apply(self, entries: Iterable[Entry]) -> None:
        changed = False
        for entry in entries:
            changed = self._accept(entry, live=True) or changed
            if entry.revision >= self._cursor:
                self._cursor = entry.revision
                self._resets.at_cursor = entry
        if changed:
            self._publish_view()

    def _accept(self, entry: Entry, *, live: bool) -> bool:
        try:
            state = self._verifier.open_entry(entry)
        except RejectedMessage as exc:
            self._reject(exc.reason, exc.detail, entry)
            return False
        refused = self._resets.refusal(state, self._states.get(state.scope))
        if refused is not None:
            if entry.revision > self._resets.catch_up_to:
                self._reject("replayed", refused, entry)
            return False
        if live and state.mode == "onsale" and state.is_expired_at(self._clock()):
            # It still supersedes older revisions (the scope is normal now), but it must not
            # put the scope on sale: the time it claimed has passed.
            self._reject("expired", f"until has passed for revision {state.revision}", entry)
        self._states[state.scope] = state
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                self._log.exception("mode listener failed", listener=repr(listener))
        return True

    def _reject(self, reason: RejectReason, detail: str, entry: Entry) -> None:
        self._rejected[reason] += 1
        self._log.warning(
            "mode state rejected", reason=reason, detail=detail, revision=entry.revision
        )

    def _publish_view(self) -> None:
        onsale_events = {}
        global_until = None
        for scope, state in self._states.items():
            if state.mode != "onsale":
                continue
            until = state.until if state.until is not None else math.inf
            event = scope_event(scope)
            if event is not None:
                onsale_events[event] = (until, Resolution("onsale", event))
            elif scope == GLOBAL_SCOPE:
                global_until = until
        self._view = _View(onsale_events, global_until, self._view.stale)

    def _set_stale(self, stale: bool) -> None:
        if self._view.stale != stale:
            view = self._view
            self._view = _View(view.onsale_events, view.global_until, stale)

    def _on_success(self) -> None:
        self._last_ok = self._clock()
        if self._outage_logged:
            self._log.info("mode store reachable again", revision=self._cursor)
            self._outage_logged = False
        self._set_stale(False)

    def _on_failure(self, exc: BaseException) -> None:
        self._check_store = self._synced
        if not self._outage_logged:
            self._log.warning(
                "mode store unreachable; serving the last known modes", error=str(exc)
            )
            self._outage_logged = True
        since = self._last_ok if self._last_ok is not None else self._started_at
        if self._clock() - since >= self.stale_after:
            self._set_stale(True)

    # -- background drivers ---------------------------------------------------------------

    def start(self) -> ModeSubscriber:
        """Start the background thread (sync apps). Returns self; idempotent."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run_thread, name="onsale-mode-subscriber", daemon=True
            )
            self._thread.start()
        return self

    def _run_thread(self) -> None:
        while not self._stop.is_set():
            if not self.sync(self.poll_timeout):
                self._stop.wait(self.retry_interval)

    def start_task(self) -> asyncio.Task[None]:
        """Start the background task on the running event loop (async apps)."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(
                self._run_task(), name="onsale-mode-subscriber"
            )
        return self._task

    async def _run_task(self) -> None:
        while not self._stop.is_set():
            if not await self.async_sync(self.poll_timeout):
                await asyncio.sleep(self.retry_interval)

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the first snapshot is applied (for start-up code). False on timeout."""
        deadline = time.monotonic() + timeout
        while not self._synced and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._synced

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background thread or task."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.poll_timeout + 2.0)
        if self._task is not None:
            self._task.cancel()

    async def astop(self) -> None:
        """Stop the background task and wait for it."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def scopes_onsale(self) -> dict[str, bool]:
        """Every known scope (stored or scheduled) and whether it is on sale now."""
        now = self._clock()
        view = self._view
        # copy first: the background thread may add a scope while a scrape iterates
        out = {scope: state.is_onsale_at(now) for scope, state in dict(self._states).items()}
        if view.stale and self._schedule is not None:
            for scope in self._schedule.scopes():
                out[scope] = out.get(scope, False) or self._schedule.active(scope, now) is not None
        return out


class _SubscriberCollector(Collector):
    """Exports ``onsale_mode{scope}`` and the subscriber's health at scrape time."""

    def __init__(self, subscriber: ModeSubscriber) -> None:
        self._sub = subscriber

    def collect(self) -> Iterator[Metric]:
        mode = GaugeMetricFamily(
            "onsale_mode", "1 while the scope is on sale, else 0.", labels=["scope"]
        )
        for scope, onsale in sorted(self._sub.scopes_onsale().items()):
            mode.add_metric([scope], 1.0 if onsale else 0.0)
        yield mode
        yield GaugeMetricFamily(
            "onsale_mode_stale",
            "1 while the mode store has not answered for the stale threshold.",
            value=1.0 if self._sub.stale else 0.0,
        )
        yield GaugeMetricFamily(
            "onsale_mode_revision",
            "Highest mode revision this subscriber applied.",
            value=self._sub.revision,
        )
        rejected = CounterMetricFamily(
            "onsale_mode_rejected",
            "Mode states rejected by this subscriber, by reason.",
            labels=["reason"],
        )
        for reason, count in self._sub.rejected().items():
            rejected.add_metric([reason], count)
        yield rejected
