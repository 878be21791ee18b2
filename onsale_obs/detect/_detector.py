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
from onsale_obs.detect._evidence import LOW, above_level, growth
from onsale_obs.exceptions import BadInputError
from onsale_obs.modes import GLOBAL_SCOPE, ModeState, event_scope

ActionKind = Literal["onsale", "extend", "normal", "skip"]


@dataclass(frozen=True)
class DetectorConfig:
    """The knobs of ``onsale-obs mode auto`` (defaults tuned in ``benchmarks/surge_detection.py``).

    The threshold: ``factor`` times the event's usual rate at this hour, and at least
    ``floor`` requests per second. A surge is confirmed by any of three rules:

    * **sustained**: the rate above the threshold for ``window`` seconds;
    * **steep**: above ``high`` req/s (and the threshold) for ``high_window`` seconds, a level
      bot bursts do not reach, so sudden surges are confirmed sooner; sooner still once the
      readings' evidence (a CUSUM of Poisson log-likelihood ratios, ``high_evidence`` nats)
      says the rate is above ``high``: one reading at ~25 req/s or more;
    * **growth**: the readings of the last ``growth_window`` seconds are explained better, by
      ``growth_evidence`` nats, by a rate growing on top of the usual one (an exponential curve
      or a ramp), or a step above 0.8 x ``high``, than by a bot burst (the usual rate, then a
      flat extra rate from some time, often within a reading). Ramps and exponential growth
      pass it seconds after they cross the threshold; a flat burst does not;
    * **rising**: over the last ``rise_window`` seconds, split into thirds, the rate averaged
      over each third never falls from one third to the next, the first third averages at
      least ``rise_level`` req/s (and twice the usual rate), the last third averages above
      the threshold and at least ``rise_factor`` times the first, and the latest reading is
      above the threshold. Ramps and exponential growth pass it before they have been above
      the floor for a whole ``window``; a bot burst, flat after its onset, does not.

    ``high``, ``high_evidence``, ``growth_evidence`` or ``rise_window`` 0 turns that rule off.
    The sustained window is 10 s: the growth and evidence rules see surges sooner, and bot
    bursts of 7-11 s at 7-10 req/s passed a 6 s window (most of the false flips). A surge ends after ``quiet`` seconds
    below the threshold, counted from the time of the last reading above it minus ``lag``
    (how old the newest data of a reading can be: two scrape intervals via Prometheus, 0
    in-process), so a late-seen end is not held longer. ``max_auto`` caps the events on
    sale by the detector at once, ``max_flips_per_hour`` how often one event may be flipped
    on sale in an hour.
    """

    factor: float = 5.0
    floor: float = 6.0
    window: float = 10.0
    high: float = 15.0
    high_window: float = 4.0
    rise_window: float = 18.0
    rise_level: float = 2.0
    rise_factor: float = 2.0
    high_evidence: float = 4.0
    growth_evidence: float = 4.0
    growth_window: float = 30.0
    quiet: float = 300.0
    lag: float = 0.0
    max_auto: int = 5
    max_flips_per_hour: int = 2
    dry_run: bool = False

    def __post_init__(self) -> None:
        for name in (
            "factor",
            "floor",
            "window",
            "high",
            "high_window",
            "rise_window",
            "rise_level",
            "rise_factor",
            "high_evidence",
            "growth_evidence",
            "growth_window",
            "quiet",
            "lag",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise BadInputError(f"{name} must be a number >= 0, got {value}.", field=name)
        if self.factor < 1:
            raise BadInputError(f"factor must be at least 1, got {self.factor}.", field="factor")
        if self.quiet <= 0:
            raise BadInputError(f"quiet must be above 0 seconds, got {self.quiet}.", field="quiet")
        if self.lag >= self.quiet:
            raise BadInputError(
                f"lag must be under the quiet period ({self.quiet:g}s), got {self.lag}.",
                field="lag",
            )
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
    #: since when it has been above ``high`` too (the steep rule)
    high_since: float | None = None
    #: the evidence (nats) that it is above ``high`` (a CUSUM over the breach's readings)
    high_score: float = 0.0
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
        #: per event in the readings, its readings of the last ``rise_window`` seconds:
        #: (time, seconds it covers, rate)
        self._recent: dict[str, deque[tuple[float, float, float]]] = {}
        self._last: float | None = None
        #: how far back the growth rule looks (0: off)
        self._growth_span = config.growth_window if config.growth_evidence > 0 else 0.0
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
            self._recent.clear()
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
        self._remember(now, dt, valid)
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
                kept.high_since = None
                kept.high_score = 0.0
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
                how = self._confirmed(event, track, rate, now, dt, threshold, usual)
                if how is None:
                    continue
                reason = self._why_not(event, track, now, state, theirs, global_onsale, auto_now)
                if reason is not None:
                    if track.skipped_for != reason:  # said once per breach and reason
                        track.skipped_for = reason
                        actions.append(Action("skip", event, reason, rate, usual))
                    continue
                track.surging = True
                track.high_since = None
                track.high_score = 0.0
                track.last_breach = now - cfg.lag
                track.until = now + cfg.hold
                track.threshold = threshold
                track.baseline = usual
                track.flips.append(now)
                auto_now += 1
                actions.append(
                    Action(
                        "onsale",
                        event,
                        _reason(event, how, usual, threshold, total, service_usual, cfg),
                        rate,
                        usual,
                        track.until,
                    )
                )
            else:
                if track is not None:
                    track.breach_since = None
                    track.high_since = None
                    track.high_score = 0.0
                    track.skipped_for = None
                    if not track.flips and not track.surging:
                        del self._tracks[event]
                on_sale = state is not None and state.is_onsale_at(now)
                if dt > 0 and not on_sale and not global_onsale:
                    self.baseline.learn(event, rate, now, dt)
        return actions

    def _remember(self, now: float, dt: float, valid: Mapping[str, float]) -> None:
        """Keep each event's readings of the last ``rise_window`` seconds (for the rising rule)."""
        span = max(self.config.rise_window, self._growth_span)
        for event in [e for e in self._recent if e not in valid]:
            del self._recent[event]  # out of the readings: its history starts afresh
        if span <= 0:
            return
        if dt <= 0:  # the first reading (or the first after an outage) covers no interval
            self._recent.clear()
            return
        oldest = now - span + _EPS
        for event, rate in valid.items():
            recent = self._recent.get(event)
            if recent is None:
                recent = self._recent[event] = deque()
            recent.append((now, dt, rate))
            while recent[0][0] <= oldest:
                recent.popleft()

    def _confirmed(
        self,
        event: str,
        track: _Track,
        rate: float,
        now: float,
        dt: float,
        threshold: float,
        usual: float | None,
    ) -> str | None:
        """Which rule confirms this breach as a surge, said for the reason (None: none yet)."""
        cfg = self.config
        assert track.breach_since is not None
        high = max(cfg.high, threshold)
        if cfg.high > 0 and rate > high:
            if track.high_since is None:
                track.high_since = now
        else:
            track.high_since = None
        if cfg.high > 0 and cfg.high_evidence > 0:
            track.high_score = above_level(track.high_score, rate, dt, high)
        if now - track.breach_since >= cfg.window:
            return f"{rate:.1f} req/s for {cfg.window:g}s"
        if track.high_since is not None and now - track.high_since >= cfg.high_window:
            return f"{rate:.1f} req/s, above {high:.1f} for {cfg.high_window:g}s"
        if cfg.high_evidence > 0 and track.high_score >= cfg.high_evidence:
            return f"{rate:.1f} req/s, clearly above {high:.1f} ({track.high_score:.1f} nats)"
        recent = self._recent.get(event)
        if self._growth_span > 0 and recent and len(recent) >= 3:
            nats = growth(recent, now, usual or 0.0, LOW * high if cfg.high > 0 else math.inf)
            if nats >= cfg.growth_evidence:
                return (
                    f"{rate:.1f} req/s, growing over {self._growth_span:g}s "
                    f"({nats:.1f} nats against a flat burst)"
                )
        thirds = self.rising(event, now, threshold, usual)
        if thirds is not None:
            first, middle, last = thirds
            return (
                f"{rate:.1f} req/s, rising {first:.1f} -> {middle:.1f} -> {last:.1f} "
                f"over {cfg.rise_window:g}s"
            )
        return None

    def rising(
        self, event: str, now: float, threshold: float, usual: float | None
    ) -> tuple[float, float, float] | None:
        """The rising rule: ``event``'s rate averaged over each third of the last
        ``rise_window`` seconds if they show a surge building up (see ``DetectorConfig``),
        else None (also when its readings do not cover the whole span yet)."""
        cfg = self.config
        span = cfg.rise_window
        start = now - span
        # the readings kept go back as far as the growth rule looks: the last span's only
        recent = [r for r in self._recent.get(event, ()) if r[0] > start + _EPS]
        if span <= 0 or not recent:
            return None
        if recent[0][0] - recent[0][1] > start + _EPS:
            return None  # not read for the whole span yet
        count = [0.0, 0.0, 0.0]
        seconds = [0.0, 0.0, 0.0]
        for t, covered, rate in recent:
            third = min(2, max(0, math.ceil((t - start) / (span / 3) - 1e-6) - 1))
            count[third] += rate * covered
            seconds[third] += covered
        if not all(seconds):
            return None  # readings sparser than a third of the span
        first, middle, last = (c / s for c, s in zip(count, seconds, strict=True))
        latest = recent[-1][2]
        level = max(cfg.rise_level, 2 * usual) if usual is not None else cfg.rise_level
        if (
            first >= level
            and first <= middle <= last
            and last >= cfg.rise_factor * first
            and last > threshold
            and latest > threshold
        ):
            return first, middle, last
        return None

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
            track.last_breach = now - cfg.lag  # the time of the reading's oldest data
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


#: tolerance when comparing times (seconds)
_EPS = 1e-6


def _holds(state: ModeState, now: float) -> bool:
    """Whether an operator's or the schedule's state decides this scope now."""
    if state.source == "manual":
        return not state.is_expired_at(now)  # a manual state, on sale or normal, wins
    return state.source == "schedule" and state.is_onsale_at(now)


def _reason(
    event: str,
    how: str,
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
        f"auto: surge on {event}: {how}, {usual_text}, "
        f"threshold {threshold:.1f} (x{cfg.factor:g}, floor {cfg.floor:g}){service}"
    )
