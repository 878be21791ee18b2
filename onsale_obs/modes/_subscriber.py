"""The per-service view of the modes: a lock-free read per request, kept current in the background.

Reads never block and never raise: the request path only dereferences an immutable view that
the background thread (sync apps) or task (async apps) replaces atomically. When the backend
cannot be reached the last verified view keeps serving, is marked stale after ``stale_after``
seconds, and the local schedule (if configured) also puts scopes on sale.

The store is untrusted (see ``_chain.py``): a state is applied only if it verifies and links to
the last state applied; an entry above the signed head's revision is skipped unread; every read
brings the head, so a store that went back (emptied, restored, replaced) is noticed within one
read, and a head older than its publisher's promise marks the view stale ("frozen").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale_obs.modes._backend import Batch, ModeBackend
from onsale_obs.modes._chain import Chain, Head, digest
from onsale_obs.modes._log import modes_logger
from onsale_obs.modes._model import GLOBAL_SCOPE, ModeState, scope_event
from onsale_obs.modes._resets import StoreResets
from onsale_obs.modes._schedule import Schedule
from onsale_obs.modes._signing import (
    REJECT_REASONS,
    RejectedMessage,
    RejectReason,
    Verifier,
    claimed_link,
    peek_head,
)
from onsale_obs.modes._verify import (
    StoreView,
    count_signed,
    no_head_problem,
    pick_head,
    revision_in_range,
    verify_store,
)
from onsale_obs.redact import redact_text
from onsale_obs.types import Clock, Mode

#: Rejected messages are logged once, then summed up at most once per this many seconds.
REJECT_LOG_INTERVAL = 10.0
#: While changes stream in, a head that agrees with them is verified at most this often.
HEAD_VERIFY_INTERVAL = 1.0

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
    ``onsale_mode_stale``, ``onsale_mode_revision``, ``onsale_mode_rejected_total``,
    ``onsale_mode_store_reset_total`` and ``onsale_mode_head_age_seconds``.
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
        self._log = logger if logger is not None else modes_logger()
        self._view = _View(stale=True)
        #: the states served (what the store's verified history says, and what is held
        #: across a store that went back)
        self._states: dict[str, ModeState] = {}
        #: the store's history as verified so far (None: the store is not trusted now)
        self._chain: Chain | None = None
        #: the last head that verified, and the bytes it came in
        self._head: Head | None = None
        self._head_bytes: bytes | None = None
        #: why the store is not trusted now (None: it is); the view is stale meanwhile
        self._trouble: str | None = None
        self._cursor = 0
        self._synced = False
        self._needs_sync = True
        self._last_ok: float | None = None
        self._started_at = clock()
        self._rejected: dict[RejectReason, int] = dict.fromkeys(REJECT_REASONS, 0)
        self._reject_unlogged: dict[str, int] = {}
        self._reject_logged_at: float | None = None
        self._store_resets = 0
        self._head_checked_at = -math.inf
        #: the last (head, heads) read and the head picked from them (``pick_head``)
        self._picked: tuple[bytes | None, tuple[bytes, ...], bytes | None] = (None, (), None)
        #: the highest revision above the chain skipped as signed by a key not trusted here
        #: (0: none): a trusted state or head may commit to it later, and the chain is then
        #: rebuilt through it (``verify_store``) rather than taken as gone or replayed
        self._passed_above = 0
        #: the last of those that follows the chain, link by link (what the next may follow)
        self._passed_tip: tuple[int, str] | None = None
        #: the next sync rebuilds the chain through such states (its rejections not recounted)
        self._rebuilding = False
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._sync_lock = threading.Lock()
        self._outage_logged = False
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
        """True while the store is unreachable (``stale_after``), untrusted or frozen."""
        return self._view.stale

    @property
    def trouble(self) -> str | None:
        """Why the store is not trusted now (None: it is)."""
        return self._trouble

    @property
    def revision(self) -> int:
        """The highest revision read from the log so far (applied or skipped)."""
        return self._cursor

    @property
    def applied_revision(self) -> int:
        """The revision of the last state of the verified history (0: none, or untrusted)."""
        chain = self._chain
        return chain.tip_revision if chain is not None else 0

    @property
    def head(self) -> Head | None:
        """The newest signed head seen."""
        return self._head

    def head_age(self) -> float | None:
        """Seconds since the newest signed head was issued (None before the first)."""
        head = self._head
        return None if head is None else max(0.0, self._clock() - head.issued)

    @property
    def store_resets(self) -> int:
        """How many times the store was seen to go back in time."""
        return self._store_resets

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
                if self._needs_sync:
                    self._adopt(verify_store(self._backend, self._verifier))
                batch = self._backend.read(self._cursor, timeout)
                self._apply(batch)
            except Exception as exc:  # unreachable, or a backend bug: never kill the subscriber
                self._on_failure(exc)
                return False
            self._on_success()
            return True

    async def async_sync(self, timeout: float = 0.0) -> bool:
        """``sync`` for asyncio: never blocks the event loop."""
        try:
            if self._needs_sync:
                view = await asyncio.to_thread(verify_store, self._backend, self._verifier)
                with self._sync_lock:
                    self._adopt(view)
            batch = await self._backend.aread(self._cursor, timeout)
            with self._sync_lock:
                self._apply(batch)
        except Exception as exc:
            self._on_failure(exc)
            return False
        with self._sync_lock:
            self._on_success()
        return True

    def _adopt(self, view: StoreView) -> None:
        """Take a verified store (first sync, or after it went back) as the base to follow."""
        self._head_bytes = view.head_bytes
        rebuilding, self._rebuilding = self._rebuilding, False
        cursor = view.cursor
        for reason, count in view.rejected.items():
            if reason in self._rejected and not rebuilding:
                self._rejected[reason] += count
        if view.problem is not None:
            if view.problem != self._trouble:
                self._log.error(
                    "mode store cannot be trusted; serving the modes verified before",
                    problem=view.problem,
                )
            self._trouble = view.problem
            self._chain = None
            self._head = None
        else:
            if self._trouble is not None:
                self._log.info("mode store verifies again", revision=view.chain.tip_revision)
            self._trouble = None
            self._chain = view.chain.copy()
            self._head = view.head
            tip = view.chain.tip_revision
            if rebuilding:
                # what was read above the rebuilt chain stays read (and counted); what came
                # since is read next, link by link, as any new entry is
                cursor = max(tip, self._cursor)
                if self._passed_tip is not None and self._passed_tip[0] <= tip:
                    self._passed_tip = None
                if self._passed_above <= tip:
                    self._passed_above = 0
            else:
                self._passed_above = view.cursor if view.cursor > tip else 0
                self._passed_tip = None
            for state in sorted(view.chain.states.values(), key=lambda s: s.revision):
                self._hold(state, live=False)
        self._synced = True
        self._needs_sync = False
        self._publish_view()
        # last: whoever sees the cursor move (``revision``) sees the states up to it served
        self._cursor = cursor

    def _pick(self, batch: Batch) -> bytes | None:
        """The head to go by in ``batch``: the newest signed by a trusted key (cached)."""
        head, heads, picked = self._picked
        if batch.head != head or batch.heads != heads:
            picked = pick_head(self._verifier, batch.head, batch.heads)
            self._picked = (batch.head, batch.heads, picked)
        return picked

    def _apply(self, batch: Batch) -> None:
        chain = self._chain
        head_bytes = self._pick(batch)
        if chain is None:  # untrusted: only a new head can change that
            for entry in batch.entries:
                self._cursor = max(self._cursor, entry.revision)
            if head_bytes != self._head_bytes:
                self._needs_sync = True
            return
        if head_bytes is None and batch.entries and count_signed(batch.entries, self._verifier):
            # signed states in a store with no head: what a fresh reader refuses too
            self._adopt(StoreView(Chain(), None, None, self._cursor, no_head_problem()))
            for entry in batch.entries:
                self._cursor = max(self._cursor, entry.revision)
            return
        # Every append stores its head in the same write, and the head is read after the
        # entries: an entry above the head's revision was not written by a publisher, unless
        # the head itself was put back. So such an entry is opened only if it claims to
        # follow the last state applied (then its signature and link decide); the rest are
        # skipped unread. The head is only parsed here; its signature is checked below.
        hint = peek_head(head_bytes)
        limit = hint.revision if hint is not None else (0 if head_bytes is None else math.inf)
        changed = False
        unlinked: list[tuple[str, int]] = []  # replays, unless the store went back under us
        cursor = self._cursor
        for entry in batch.entries:
            cursor = max(cursor, entry.revision)
            if not revision_in_range(entry.revision):
                self._reject("malformed", f"id {entry.revision} is out of range", entry.revision)
                continue
            if entry.revision > limit and not self._follows(chain, entry.message):
                self._reject("unvouched", "no signed head covers it", entry.revision)
                continue
            try:
                state = self._verifier.open_entry(entry)
            except RejectedMessage as exc:
                self._reject(exc.reason, exc.detail, entry.revision)
                if not self._verifier.trusts_signer(entry.message):
                    self._passed_above = max(self._passed_above, entry.revision)
                    if self._follows(chain, entry.message):
                        self._passed_tip = (entry.revision, digest(entry.message))
                continue
            broken = chain.link_error(state)
            if broken is not None:
                unlinked.append((broken, entry.revision))
                continue
            chain.extend(state, digest(entry.message))
            changed = self._hold(state, live=True) or changed
        if changed:
            self._publish_view()
        # moved once the batch is served: ``revision`` never runs ahead of what is served
        self._cursor = cursor
        if chain.tip_revision >= self._passed_above:
            self._passed_above, self._passed_tip = 0, None
        elif unlinked:
            # states that may follow one signed by a key not trusted here: the chain is
            # rebuilt through it if a trusted state commits to it (``verify_store``)
            self._rebuild()
            return
        resets = self._store_resets
        self._check_head(head_bytes, hint, chain, idle=not batch.entries)
        if self._store_resets == resets:
            for detail, revision in unlinked:
                self._reject("replayed", detail, revision)

    def _check_head(
        self, head_bytes: bytes | None, hint: Head | None, chain: Chain, *, idle: bool
    ) -> None:
        """Does the store still hold the history we follow? If not, it went back in time.

        A head that agrees with the history applied is verified at most once per
        ``HEAD_VERIFY_INTERVAL`` while changes stream in (a signature check per change would
        double a wake's cost); one that disagrees is verified at once.
        """
        if head_bytes is None:
            if chain.tip_revision > 0 or self._head is not None:
                self._went_back("its signed head is gone (emptied, or restarted without its data)")
            return
        if head_bytes == self._head_bytes:
            return  # verified (or refused) already
        agrees = (
            hint is not None
            and hint.revision == chain.tip_revision
            and hint.tip == chain.tip_digest
        )
        now = time.monotonic()
        if agrees and not idle and now - self._head_checked_at < HEAD_VERIFY_INTERVAL:
            return  # checked on a later read
        self._head_checked_at = now
        try:
            head = self._verifier.open_head(head_bytes)
        except RejectedMessage as exc:
            self._reject(exc.reason, f"the store's head: {exc.detail}", None)
            self._head_bytes = head_bytes  # counted once; the chain's links keep deciding
            return
        if head.revision < chain.tip_revision:
            self._went_back(
                f"its signed head is at revision {head.revision}, below the {chain.tip_revision} "
                "already applied"
            )
        elif head.revision == chain.tip_revision:
            if head.tip != chain.tip_digest or head.states != chain.states_digest():
                self._went_back(f"its history at revision {head.revision} is not the one applied")
            elif self._head is not None and head.issued < self._head.issued:
                self._reject("replayed", "an older copy of the signed head", None)
                self._head_bytes = head_bytes
            else:
                self._head, self._head_bytes = head, head_bytes
        elif self._passed_above:
            # ahead of the chain through a state signed by a key not trusted here, which
            # this head may commit to: rebuild the chain from the store (``verify_store``)
            self._rebuild()
        elif self._cursor >= head.revision:
            # read past the head's revision without reaching it: vouched entries are gone
            self._went_back(
                f"its log lost entries up to revision {head.revision} that its head vouches for"
            )

    def _follows(self, chain: Chain, message: bytes) -> bool:
        """Does ``message`` claim to follow the chain, or the last state skipped above it as
        signed by a key not trusted here? (Its signature is not checked.)"""
        link = claimed_link(message)
        return link is not None and (
            link == (chain.tip_revision, chain.tip_digest) or link == self._passed_tip
        )

    def _rebuild(self) -> None:
        """Verify the store afresh on the next sync, its rejections already counted here."""
        self._needs_sync = True
        self._rebuilding = True

    def _went_back(self, why: str) -> None:
        self._store_resets += 1
        self._log.error(
            "mode store went back in time; serving the modes verified before",
            why=why,
            store_revision=self._head.revision if self._head is not None else 0,
            seen_revision=self._chain.tip_revision if self._chain is not None else 0,
        )
        self._resets.store_went_back(self._states)
        self._chain = None
        self._head = None
        self._head_bytes = None
        self._needs_sync = True

    def _hold(self, state: ModeState, *, live: bool) -> bool:
        """Serve ``state`` unless it is older than what is held; True when it was taken."""
        refused = self._resets.refusal(state)
        if refused is not None:
            if live:
                self._reject("replayed", refused, state.revision)
            return False
        if live and state.mode == "onsale" and state.is_expired_at(self._clock()):
            # It still supersedes older revisions (the scope is normal now), but it must not
            # put the scope on sale: the time it claimed has passed.
            self._reject(
                "expired", f"until has passed for revision {state.revision}", state.revision
            )
        self._states[state.scope] = state
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                self._log.exception("mode listener failed", listener=repr(listener))
        return True

    def _reject(self, reason: RejectReason, detail: str, revision: int | None) -> None:
        """Count a rejected message; log the first, then a summary at most every 10 s."""
        self._rejected[reason] += 1
        now = self._clock()
        last = self._reject_logged_at
        if last is not None and now - last < REJECT_LOG_INTERVAL:
            self._reject_unlogged[reason] = self._reject_unlogged.get(reason, 0) + 1
            return
        self._log.warning(
            "mode state rejected",
            reason=reason,
            detail=detail,
            revision=revision,
            **(
                {"also_rejected_since_last_line": self._reject_unlogged}
                if self._reject_unlogged
                else {}
            ),
        )
        self._reject_unlogged = {}
        self._reject_logged_at = now

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

    def _frozen(self, now: float) -> bool:
        head = self._head
        return head is not None and not head.fresh_at(now)

    def _on_success(self) -> None:
        now = self._clock()
        self._last_ok = now
        if self._outage_logged:
            self._log.info("mode store reachable again", revision=self._cursor)
            self._outage_logged = False
        frozen = self._frozen(now)
        if frozen and not self._view.stale:
            self._log.error(
                "mode store looks frozen: its signed head is older than its publisher promised",
                head_revision=self._head.revision if self._head else None,
                head_age=round(now - self._head.issued, 1) if self._head else None,
            )
        self._set_stale(self._trouble is not None or frozen)

    def _on_failure(self, exc: BaseException) -> None:
        if not self._outage_logged:
            self._log.warning(
                "mode store unreachable; serving the last known modes",
                error=redact_text(str(exc), self._backend.url),
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
            "Revision of the last verified state this subscriber applied.",
            value=self._sub.applied_revision,
        )
        rejected = CounterMetricFamily(
            "onsale_mode_rejected",
            "Mode states rejected by this subscriber, by reason.",
            labels=["reason"],
        )
        for reason, count in self._sub.rejected().items():
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "onsale_mode_store_reset",
            "Times this subscriber saw the mode store go back in time (emptied, restored, "
            "replaced); it kept serving the modes it had verified.",
            value=self._sub.store_resets,
        )
        age = self._sub.head_age()
        yield GaugeMetricFamily(
            "onsale_mode_head_age_seconds",
            "Age of the newest signed head of the mode store (NaN before the first).",
            value=float("nan") if age is None else age,
        )
