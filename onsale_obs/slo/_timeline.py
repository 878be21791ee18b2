"""When would each alert have fired? The policy's rules evaluated at many past moments.

Every evaluation needs only the burn-rate windows ending at that moment, so one source read
answers them all: the spans of every moment go into one :class:`CountRequest` (named by their
end, so windows of different moments never collide).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from onsale_obs.durations import format_duration
from onsale_obs.modes._model import OnSaleWindow, iso
from onsale_obs.slo._data import Collected, CountRequest, Progress, Source, Span
from onsale_obs.slo._engine import burn_rate, count, rule_result
from onsale_obs.slo._plan import plan
from onsale_obs.slo._spec import MODES, SLO, Priority, SLOSpec
from onsale_obs.types import Mode


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule that would have been firing at ``at``."""

    at: float
    slo: str
    mode: Mode
    rule: str
    priority: Priority
    long_burn: float
    short_burn: float

    def to_json(self) -> dict[str, Any]:
        """The JSON object of one point of the timeline."""
        return {
            "at": iso(self.at),
            "slo": self.slo,
            "mode": self.mode,
            "rule": self.rule,
            "priority": self.priority,
            "long_burn_rate": self.long_burn,
            "short_burn_rate": self.short_burn,
        }


def _span(seconds: float, at: float) -> Span:
    return Span(f"last:{format_duration(seconds)}@{at:.3f}", at - seconds, at)


def timeline_request(
    spec: SLOSpec,
    times: Sequence[float],
    *,
    slos: Iterable[SLO] | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
) -> CountRequest:
    """One request for the burn-rate windows of every SLO at every moment of ``times``."""
    chosen = tuple(spec.slos if slos is None else slos)
    base = plan(spec, max(times), slos=chosen, onsale_windows=onsale_windows)
    spans = {
        s.name: s for at in times for slo in chosen for w in slo.windows() for s in (_span(w, at),)
    }
    return CountRequest(
        at=base.at,
        spans=tuple(sorted(spans.values(), key=lambda s: (s.start, s.name))),
        thresholds=base.thresholds,
        custom=base.custom,
        onsale_windows=base.onsale_windows,
        grace=base.grace,
        services=base.services,
    )


def burns_at(
    slo: SLO, mode: Mode, collected: Collected, at: float
) -> tuple[dict[float, float | None], dict[float, float]]:
    """Burn rate and bad events per policy window of ``slo`` ending at ``at`` (None: no data)."""
    objective = slo.objectives[mode]
    burns: dict[float, float | None] = {}
    bad: dict[float, float] = {}
    for w in slo.windows():
        agg = collected.spans.get(_span(w, at).name)
        total, good = count(slo, mode, agg) if agg is not None else (0.0, 0.0)
        burns[w], bad[w] = burn_rate(total, good, objective), total - good
    return burns, bad


def firings(
    spec: SLOSpec, collected: Collected, times: Sequence[float], slos: Iterable[SLO] | None = None
) -> list[Firing]:
    """Every (moment, SLO, mode, rule) whose rule fires, oldest first."""
    out = []
    for at in sorted(times):
        for slo in spec.slos if slos is None else slos:
            for mode in MODES:
                burns, bad = burns_at(slo, mode, collected, at)
                for rule in slo.policy[mode]:
                    r = rule_result(rule, burns, bad)
                    if r.firing and r.long_burn is not None and r.short_burn is not None:
                        out.append(
                            Firing(
                                at, slo.name, mode, r.name, r.priority, r.long_burn, r.short_burn
                            )
                        )
    return out


def alert_timeline(
    spec: SLOSpec,
    source: Source,
    times: Sequence[float],
    *,
    slos: Iterable[SLO] | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
    progress: Progress | None = None,
) -> list[Firing]:
    """Which rules fire at each of ``times`` (one read of ``source`` for all of them)."""
    if not times:
        return []
    chosen = tuple(spec.slos if slos is None else slos)
    request = timeline_request(spec, times, slos=chosen, onsale_windows=onsale_windows)
    return firings(spec, source.collect(request, progress), times, chosen)
