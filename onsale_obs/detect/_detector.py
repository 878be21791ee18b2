"""Deciding, from per-event request rates, which events are surging: no I/O here.

``SurgeDetector.step(now, rates, current)`` takes one reading (requests per second per event,
or None when the rates could not be read) and the verified current states, and returns what
to publish. ``AutoMode`` (``_run.py``) does the reading and the publishing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from onsale_obs.detect._baseline import SERVICE, DiurnalBaseline
from onsale_obs.exceptions import BadInputError
from onsale_obs.modes import GLOBAL_SCOPE, ModeState, event_scope

ActionKind = Literal["onsale", "extend", "normal", "skip"]


@dataclass(frozen=True)
class DetectorConfig:
    """The knobs of ``onsale-obs mode auto`` (defaults tuned in ``benchmarks/surge_detection.py``).

    A surge: an event's rate above ``factor`` times its usual rate at this hour *and* above
    ``floor`` requests per second, for ``window`` seconds. It ends after ``quiet`` seconds
    below that. ``max_auto`` caps the events on sale by the detector at once,
    ``max_flips_per_hour`` how often one event may be flipped on sale in an hour.
    """

    factor: float = 5.0
    floor: float = 6.0
    window: float = 6.0
    quiet: float = 300.0
    max_auto: int = 5
    max_flips_per_hour: int = 2
    dry_run: bool = False

    def __post_init__(self) -> None:
        for name in ("factor", "floor", "window", "quiet"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise BadInputError(f"{name} must be a number >= 0, got {value}.", field=name)
        if self.factor < 1:
            raise BadInputError(f"factor must be at least 1, got {self.factor}.", field="factor")
        if self.quiet <= 0:
            raise BadInputError(f"quiet must be above 0 seconds, got {self.quiet}.", field="quiet")
        for name in ("max_auto", "max_flips_per_hour"):
            if getattr(self, name) < 1:
                raise BadInputError(f"{name} must be at least 1.", field=name)

    @property
    def hold(self) -> float:
        """How far ahead ``until`` is set: a detector that stops leaves no scope on sale longer."""
        return 2 * self.quiet


@dataclass(frozen=True)
class Action:
    """What the detector decided about one event at one reading.

    ``onsale``: flip it on sale until ``until``; ``extend``: push ``until`` further; ``normal``:
    the surge is over; ``skip``: a surge was seen but not published (``reason`` says why).
    """

    kind: ActionKind
    event: str
    reason: str
    rate: float
    baseline: float | None
    until: float | None = None

    @property
    def scope(self) -> str:
        return "event:" + self.event

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.kind,
            "scope": self.scope,
            "event": self.event,
            "rate": round(self.rate, 3),
            "baseline": None if self.baseline is None else round(self.baseline, 3),
            "until": self.until,
            "reason": self.reason,
        }


@dataclass
class _Track:
    """One event's state in the detector."""

    breach_since: float | None = None
    surging: bool = False
    last_breach: float = 0.0
    until: float = 0.0
    #: the threshold it crossed (kept while it surges: the baseline is not learnt meanwhile)
    threshold: float = 0.0
    baseline: float | None = None
    #: revision of the state this detector published for it (None in dry-run)
    revision: int | None = None
    flips: deque[float] = field(default_factory=deque)
    skipped_for: str | None = None


class SurgeDetector:
    """Learns each event's and the service's usual rates and declares surges (see ``step``)."""

    def __init__(self, config: DetectorConfig, baseline: DiurnalBaseline | None = None) -> None:
        self.config = config
        self.baseline = baseline if baseline is not None else DiurnalBaseline()
        self._tracks: dict[str, _Track] = {}
        self._last: float | None = None
        #: event ids seen that fail validation (never published), bounded
        self.invalid: set[str] = set()

    def surging(self) -> list[str]:
        """The events this detector holds on sale (or would, in dry-run)."""
        return sorted(e for e, t in self._tracks.items() if t.surging)

    def threshold(self, event: str, now: float) -> tuple[float, float | None]:
        """The rate above which ``event`` breaches now, and its usual rate (None: unknown)."""
        usual = self.baseline.expected(event, now)
        if usual is None:
            return self.config.floor, None
        return max(self.config.floor, self.config.factor * usual), usual

    def published(self, event: str, state: ModeState) -> None:
        """Record the state published for an ``onsale``/``extend`` action (its revision)."""
        track = self._tracks.get(event)
        if track is not None:
            track.revision = state.revision

    def unpublished(self, action: Action) -> None:
        """Undo the bookkeeping of an action whose publication failed (tried again next time)."""
        track = self._tracks.get(action.event)
        if track is None:
            return
        if action.kind == "onsale":
            track.surging = False
            if track.flips:
                track.flips.pop()
        elif action.kind == "normal":
            track.surging = True

    def step(
        self,
        now: float,
        rates: Mapping[str, float] | None,
        current: Mapping[str, ModeState],
    ) -> list[Action]:
        """One reading: learn, then decide. ``rates`` None (unreadable): nothing changes."""
        if rates is None:
            self._last = None  # the next reading starts afresh: no dt spanning the outage
            return []
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        cfg = self.config
        actions: list[Action] = []
        global_state = current.get(GLOBAL_SCOPE)
        global_onsale = global_state is not None and global_state.is_onsale_at(now)
        valid: dict[str, float] = {}
        for event, rate in rates.items():
            if event in self.invalid:
                continue
            try:
                event_scope(event)
            except BadInputError:
                if len(self.invalid) < 10_000:
                    self.invalid.add(event)
                continue
            if math.isfinite(rate) and rate >= 0:
                valid[event] = rate
        total = sum(valid.values())
        service_usual = self.baseline.expected(SERVICE, now)
        if dt > 0 and not global_onsale:
            self.baseline.learn(SERVICE, total, now, dt)
        auto_now = sum(
            1
            for scope, state in current.items()
            if state.source == "auto" and state.is_onsale_at(now) and scope != GLOBAL_SCOPE
        )
        for event, kept in list(self._tracks.items()):
            if event not in valid and not kept.surging:
                kept.breach_since = None  # out of the readings: a breach starts afresh
            while kept.flips and now - kept.flips[0] >= 3600:
                kept.flips.popleft()
            if not kept.flips and not kept.surging and kept.breach_since is None:
                del self._tracks[event]  # nothing to remember: the memory stays bounded
        for event in sorted(set(valid) | {e for e, t in self._tracks.items() if t.surging}):
            rate = valid.get(event, 0.0)
            track = self._tracks.get(event)
            state = current.get("event:" + event)
            theirs = state is not None and state.source != "auto" and _holds(state, now)
            if track is not None and track.surging:
                actions.extend(self._while_surging(event, track, rate, now, state, theirs))
                continue
            threshold, usual = self.threshold(event, now)
            if rate > threshold:
                if track is None:
                    track = self._tracks[event] = _Track()
                if track.breach_since is None:
                    track.breach_since = now
                    track.skipped_for = None
                if now - track.breach_since < cfg.window:
                    continue
                reason = self._why_not(event, track, now, state, theirs, global_onsale, auto_now)
                if reason is not None:
                    if track.skipped_for != reason:  # said once per breach and reason
                        track.skipped_for = reason
                        actions.append(Action("skip", event, reason, rate, usual))
                    continue
                track.surging = True
                track.last_breach = now
                track.until = now + cfg.hold
                track.threshold = threshold
                track.baseline = usual
                track.flips.append(now)
                auto_now += 1
                actions.append(
                    Action(
                        "onsale",
                        event,
                        _reason(event, rate, usual, threshold, total, service_usual, cfg),
                        rate,
                        usual,
                        track.until,
                    )
                )
            else:
                if track is not None:
                    track.breach_since = None
                    track.skipped_for = None
                    if not track.flips and not track.surging:
                        del self._tracks[event]
                on_sale = state is not None and state.is_onsale_at(now)
                if dt > 0 and not on_sale and not global_onsale:
                    self.baseline.learn(event, rate, now, dt)
        return actions

    def _while_surging(
        self,
        event: str,
        track: _Track,
        rate: float,
        now: float,
        state: ModeState | None,
        theirs: bool,
    ) -> list[Action]:
        cfg = self.config
        # still auto: ours, even re-published by another writer (serve's exit-rate loop copies
        # the state with its exit rate, source kept); anything else is an operator taking over
        ours = cfg.dry_run or (state is not None and state.source == "auto")
        if not ours or theirs:
            # someone else published for this scope since: it is theirs now
            track.surging = False
            track.breach_since = None
            return []
        if rate > track.threshold:
            track.last_breach = now
            if track.until - now < cfg.quiet:
                track.until = now + cfg.hold
                return [
                    Action(
                        "extend",
                        event,
                        f"surge continues: {rate:.1f} req/s (threshold {track.threshold:.1f})",
                        rate,
                        track.baseline,
                        track.until,
                    )
                ]
            return []
        if now - track.last_breach >= cfg.quiet:
            track.surging = False
            track.breach_since = None
            return [
                Action(
                    "normal",
                    event,
                    f"surge over: {rate:.1f} req/s, below {track.threshold:.1f} for {cfg.quiet:g}s",
                    rate,
                    track.baseline,
                )
            ]
        return []

    def _why_not(
        self,
        event: str,
        track: _Track,
        now: float,
        state: ModeState | None,
        theirs: bool,
        global_onsale: bool,
        auto_now: int,
    ) -> str | None:
        """Why a confirmed surge is not published (None: it is)."""
        cfg = self.config
        if theirs and state is not None:
            return f"the scope's {state.source} state is in force (never overridden)"
        if global_onsale:
            return "the global scope is on sale"
        if state is not None and state.source == "auto" and state.is_onsale_at(now):
            # on sale by an earlier run of the detector: adopt it
            return None
        while track.flips and now - track.flips[0] >= 3600:
            track.flips.popleft()
        if len(track.flips) >= cfg.max_flips_per_hour:
            return f"flipped {len(track.flips)} times in the last hour (cap)"
        if auto_now >= cfg.max_auto:
            return f"{auto_now} events are on sale by the detector already (cap {cfg.max_auto})"
        return None


def _holds(state: ModeState, now: float) -> bool:
    """Whether an operator's or the schedule's state decides this scope now."""
    if state.source == "manual":
        return not state.is_expired_at(now)  # a manual state, on sale or normal, wins
    return state.source == "schedule" and state.is_onsale_at(now)


def _reason(
    event: str,
    rate: float,
    usual: float | None,
    threshold: float,
    total: float,
    service_usual: float | None,
    cfg: DetectorConfig,
) -> str:
    usual_text = "no baseline yet" if usual is None else f"usual {usual:.1f} req/s at this hour"
    service = f"; service {total:.1f} req/s" + (
        "" if service_usual is None else f" (usual {service_usual:.1f})"
    )
    return (
        f"auto: surge on {event}: {rate:.1f} req/s for {cfg.window:g}s, {usual_text}, "
        f"threshold {threshold:.1f} (x{cfg.factor:g}, floor {cfg.floor:g}){service}"
    )
