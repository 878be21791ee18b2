"""Prometheus recording and alerting rules from an SLO spec, with the engine's numbers.

Per SLO, one rule group. Recording rules (labels ``slo``, ``service``, ``mode``), per window
``W`` of either mode's policy and the SLO window:

- ``slo:sli_events:increase<W>`` and ``slo:sli_bad:increase<W>``: events and bad events,
- ``slo:sli_error:ratio_rate<W>``: bad / events, from the summed increases (never an average
  of ratios),
- ``slo:burn_rate:ratio_rate<W>``: that ratio over the mode's error budget,
- ``slo:sli_bad_by_event:increase<W>`` (long windows only, with ``event``): which on-sale burns,

and metadata ``slo:objective:ratio``, ``slo:error_budget:ratio`` and
``slo:error_budget_remaining:ratio`` (1 - the burn rate over the SLO window: 1 untouched,
below 0 overspent). Alerting rules, one per mode and policy rule, fire exactly when the engine
says a rule fires: both windows at or above the burn rate and at least ``min_bad_events`` bad
events in the long window. Their labels are DESIGN.md's: ``mode``, ``priority``, ``severity``,
``slo``, ``service`` (and ``event`` for on-sales).

Windows of at most an hour (and any that is not a whole number of hours) read the raw
counters. Longer ones never do: they are sums of **tiles**, recorded increases that end now
and follow each other back in time. The hour tile (``...:increase1h``, from the counters)
builds the six-hour tile (six hour tiles at offsets 0h..5h), which builds the day tile
(``...:increase1d``: four six-hour tiles), and any other window is hour tiles, then six-hour
tiles, then day tiles behind them (``tile_terms``): 30 days read 30 recorded samples per mode
instead of a month of every counter. A missing tile (Prometheus was down, or the rules are
younger than the window) counts as 0 and never hides the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from onsale_obs.durations import format_duration
from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._promql import is_selector, le_matcher, matcher, quote, selector
from onsale_obs.slo._spec import (
    MODES,
    SLO,
    AlertRule,
    AvailabilitySLI,
    LatencySLI,
    PromQLSLI,
    SLOSpec,
)
from onsale_obs.types import Mode

REQUESTS: Final = "onsale_requests_total"
BUCKETS: Final = "onsale_request_duration_seconds_bucket"
DEFAULT_RUNBOOK: Final = "https://runbooks.example.com/onsale-obs/{slo}"
_MODE_TEXT: Final = {"normal": "normal time", "onsale": "on-sales"}
HOUR: Final = 3600.0
DAY: Final = 86400.0


class RulesError(BadInputError):
    """The spec would produce invalid rules (bad PromQL, duplicate alert names)."""


@dataclass(frozen=True, slots=True)
class Queries:
    """PromQL for one SLI: events, bad events, bad events per event id, in a window ``w``."""

    events: Callable[[str], str]
    bad: Callable[[str], str]
    bad_by_event: Callable[[str], str]


def window_name(seconds: float) -> str:
    """``300`` -> ``5m``: the suffix of the recording rules of that window."""
    return format_duration(seconds)


def exact(value: float) -> str:
    """A number as PromQL text, as written: ``14.4``, ``6``, ``0.9999``."""
    return format(Decimal(repr(value)).normalize(), "f")


def error_budget(objective: float) -> str:
    """``1 - objective`` as PromQL text, without binary noise (``0.0001``)."""
    return format((Decimal(1) - Decimal(repr(objective))).normalize(), "f")


def slo_window(slo: SLO) -> float:
    """The SLO window Prometheus uses (a calendar month becomes a rolling 30 days)."""
    return 30 * 86400.0 if slo.calendar_month else slo.window


def alert_name(slo: SLO, mode: Mode, rule: str) -> str:
    """``CheckoutAvailabilityOnsaleFastBurn`` for the rule named ``rule``."""
    words = re.split(r"[^a-zA-Z0-9]+", f"{slo.name} {mode} {rule} burn")
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def queries(slo: SLO) -> Queries:
    """The PromQL of ``slo``'s SLI; raises RulesError for selectors that are not PromQL."""
    sli = slo.sli
    if isinstance(sli, PromQLSLI):
        for name, text in (("good", sli.good), ("total", sli.total)):
            if not is_selector(text):
                raise RulesError(
                    f"{text!r} is not a series selector; expected a counter such as "
                    'payments_total{outcome="ok"} (no functions, no ranges).',
                    field=f"slos.{slo.name}.sli.{name}",
                )
        return _ratio_queries(sli.total, [sli.good])
    base = [
        f"service={quote(slo.service)}",
        matcher("route", sli.selector.routes),
        matcher("method", sli.selector.methods),
    ]
    if isinstance(sli, AvailabilitySLI):
        total = selector(REQUESTS, base)
        bad = selector(REQUESTS, [*base, matcher("code", sorted(sli.bad_codes))])
        return Queries(
            lambda w: f"sum by (mode) (increase({total}[{w}]))",
            lambda w: (
                f"sum by (mode) (increase({bad}[{w}]))\nor\n0 * sum by (mode) (increase({total}[{w}]))"
            ),
            lambda w: f"sum by (mode, event) (increase({bad}[{w}]))",
        )
    assert isinstance(sli, LatencySLI)
    goods = [
        selector(BUCKETS, [*base, f"mode={quote(m)}", le_matcher(sli.threshold[m])]) for m in MODES
    ]
    return _ratio_queries(selector(BUCKETS, [*base, 'le="+Inf"']), goods)


def _ratio_queries(total: str, goods: list[str]) -> Queries:
    """Bad = all - good, for SLIs whose selectors count good events."""

    def good(by: str, w: str) -> str:
        return f"sum by ({by}) ({' or '.join(f'increase({g}[{w}])' for g in goods)})"

    def events(by: str, w: str) -> str:
        return f"sum by ({by}) (increase({total}[{w}]))"

    return Queries(
        lambda w: events("mode", w),
        lambda w: f"{events('mode', w)}\n-\n({good('mode', w)} or 0 * {events('mode', w)})",
        lambda w: (
            f"{events('mode, event', w)}\n-\n({good('mode, event', w)} or 0 * {events('mode, event', w)})"
        ),
    )


def _rec(record: str, expr: str, slo: SLO, **labels: str) -> dict[str, Any]:
    return {
        "record": record,
        "expr": expr,
        "labels": {"slo": slo.name, "service": slo.service, **labels},
    }


def _of(record: str, slo: SLO, mode: Mode | None = None) -> str:
    """A reference to one of this SLO's recorded series (single quotes: usable in templates)."""
    inner = f"slo='{slo.name}'" + ("" if mode is None else f",mode='{mode}'")
    return f"{record}{{{inner}}}"


def tiled(seconds: float) -> bool:
    """True for a window built from tiles (longer than an hour, whole hours), not the counters."""
    return seconds > HOUR and seconds % HOUR == 0


#: tile windows, each a sum of the one before (6 hour tiles, 4 six-hour tiles)
TILES: Final = ((DAY, "1d"), (6 * HOUR, "6h"), (HOUR, "1h"))


def tile_terms(seconds: float) -> list[tuple[str, float]]:
    """The tiles that make up a window: (tile window name, offset in seconds), newest first.

    The window's own tile is made of the next smaller tile (``1d``: four ``6h`` tiles at
    offsets 0h, 6h, 12h, 18h; ``6h``: six ``1h`` tiles). Any other window is hour tiles for
    the hours, then six-hour tiles, then day tiles behind them: ``3d`` is three ``1d`` tiles
    at offsets 0, 1d and 2d; ``1d7h`` is one ``1h``, one ``6h`` at 1h and one ``1d`` at 7h.
    """
    for i, (size, _) in enumerate(TILES[:-1]):
        if seconds == size:
            smaller, name = TILES[i + 1]
            return [(name, k * smaller) for k in range(int(size // smaller))]
    terms: list[tuple[str, float]] = []
    offset, rest = 0.0, seconds
    for size, name in reversed(TILES):
        bigger = next((b for b, _ in reversed(TILES) if b > size), None)
        count = int(rest // size) if bigger is None else int((rest % bigger) // size)
        terms += [(name, offset + k * size) for k in range(count)]
        offset += count * size
        rest -= count * size
    return terms


def _tile_sum(record: str, slo: SLO, seconds: float, by: str) -> str:
    """``sum by (by)`` over the tiles of ``record`` making up the window (missing ones: 0)."""
    terms = []
    for i, (tile, offset) in enumerate(tile_terms(seconds)):
        at = "" if offset == 0 else f" offset {window_name(offset)}"
        terms.append(f'label_replace({_of(f"{record}{tile}", slo)}{at}, "tile", "{i}", "", "")')
    return f"sum by ({by}) (\n  " + "\n  or ".join(terms) + "\n)"


def _helper_windows(windows: set[float]) -> set[float]:
    """The tile windows (1h, 6h, 1d) that the tiled windows among ``windows`` are built from."""
    sizes = {name: size for size, name in TILES}
    out: set[float] = set()
    todo = [w for w in windows if tiled(w)]
    while todo:
        for tile, _ in tile_terms(todo.pop()):
            if sizes[tile] not in out:
                out.add(sizes[tile])
                if tiled(sizes[tile]):
                    todo.append(sizes[tile])
    return out


def recording_rules(slo: SLO) -> list[dict[str, Any]]:
    """Every recording rule of ``slo`` (see the module docstring for the names)."""
    q = queries(slo)
    windows = {*slo.windows(), slo_window(slo)}
    # which event burns: only on-sale alerts need it (normal-time requests carry no event)
    longs = {r.long for r in slo.policy["onsale"]}
    rules: list[dict[str, Any]] = []
    for mode in MODES:
        rules.append(
            _rec("slo:objective:ratio", f"vector({exact(slo.objectives[mode])})", slo, mode=mode)
        )
        rules.append(
            _rec(
                "slo:error_budget:ratio",
                f"vector({error_budget(slo.objectives[mode])})",
                slo,
                mode=mode,
            )
        )
    for w in sorted(windows | _helper_windows(windows)):
        n = window_name(w)
        if tiled(w):
            events = _tile_sum("slo:sli_events:increase", slo, w, "mode")
            bad = _tile_sum("slo:sli_bad:increase", slo, w, "mode")
        else:
            events, bad = q.events(n), q.bad(n)
        rules.append(_rec(f"slo:sli_events:increase{n}", events, slo))
        rules.append(_rec(f"slo:sli_bad:increase{n}", bad, slo))
        if w not in windows:
            continue  # a tile only: no ratio or burn rate of its own
        rules.append(
            _rec(
                f"slo:sli_error:ratio_rate{n}",
                f"{_of(f'slo:sli_bad:increase{n}', slo)}\n/\n{_of(f'slo:sli_events:increase{n}', slo)}",
                slo,
            )
        )
        rules.append(
            _rec(
                f"slo:burn_rate:ratio_rate{n}",
                f"{_of(f'slo:sli_error:ratio_rate{n}', slo)}\n/ on (slo, service, mode) group_left ()\n"
                f"{_of('slo:error_budget:ratio', slo)}",
                slo,
            )
        )
    for w in sorted(longs | _helper_windows(longs)):
        n = window_name(w)
        record = "slo:sli_bad_by_event:increase"
        by_event = _tile_sum(record, slo, w, "mode, event") if tiled(w) else q.bad_by_event(n)
        rules.append(_rec(f"{record}{n}", by_event, slo))
    budget_window = window_name(slo_window(slo))
    rules.append(
        _rec(
            "slo:error_budget_remaining:ratio",
            f"1 - {_of(f'slo:burn_rate:ratio_rate{budget_window}', slo)}",
            slo,
        )
    )
    return rules


def _template_query(record: str, slo: SLO, mode: Mode, fmt: str) -> str:
    return f'{{{{ with query "{_of(record, slo, mode)}" }}}}{{{{ . | first | value | {fmt} }}}}{{{{ end }}}}'


def alerting_rule(slo: SLO, mode: Mode, rule: AlertRule, runbook: str) -> dict[str, Any]:
    """The alert of one policy rule: fires when the engine's rule fires, one alert per event."""
    long, short = window_name(rule.long), window_name(rule.short)
    burn = exact(rule.burn_rate)
    condition = (
        f"(\n  {_of(f'slo:burn_rate:ratio_rate{long}', slo, mode)} >= {burn}\n"
        f"  and on (slo, mode)\n  {_of(f'slo:burn_rate:ratio_rate{short}', slo, mode)} >= {burn}\n"
        f"  and on (slo, mode)\n  {_of(f'slo:sli_bad:increase{long}', slo, mode)} >= {rule.min_bad_events}\n)"
    )
    per_event = f"(0 * ({_of(f'slo:sli_bad_by_event:increase{long}', slo, mode)} > 0) + 1)"
    # one alert per burning on-sale event; normal-time requests carry no event label
    expr = (
        condition
        if mode == "normal"
        else f"{condition}\n* on (slo, mode) group_right ()\n{per_event}"
    )
    objective = format((Decimal(repr(slo.objectives[mode])) * 100).normalize(), "f")
    failed = _template_query(f"slo:sli_bad:increase{long}", slo, mode, 'printf "%.0f"')
    left = _template_query("slo:error_budget_remaining:ratio", slo, mode, "humanizePercentage")
    description = (
        f"{{{{ $labels.service }}}} is failing its {slo.name} SLO ({objective}% in "
        f'{_MODE_TEXT[mode]}) {{{{ printf "%.1f" $value }}}}x faster than the error budget '
        f"allows over the last {long} (alert at {burn}x, also over {short}). "
        f"Failed requests in the last {long}: {failed}. "
        f"Error budget left ({window_name(slo_window(slo))}, {_MODE_TEXT[mode]}): "
        f"{left}."
        "{{ if $labels.event }} On-sale event: {{ $labels.event }}.{{ end }}"
    )
    what = "on-sale" if mode == "onsale" else "normal-time"
    return {
        "alert": alert_name(slo, mode, rule.name),
        "expr": expr,
        # onsale_obs="slo": only our alerts carry it, so our Alertmanager routes catch no one else's
        "labels": {"onsale_obs": "slo", "priority": rule.priority, "severity": rule.severity},
        "annotations": {
            "summary": f"{slo.name}: {what} error budget burning ({rule.name}, {rule.priority})",
            "description": description,
            "runbook_url": slo.runbook or runbook.format(slo=slo.name),
        },
    }


def render_rules(spec: SLOSpec, *, runbook: str = DEFAULT_RUNBOOK) -> dict[str, Any]:
    """The rule file (as data): one group per SLO; raises RulesError on duplicate alert names."""
    groups = []
    seen: dict[str, str] = {}
    for slo in spec.slos:
        alerts: list[dict[str, Any]] = []
        for mode in MODES:
            for rule in slo.policy[mode]:
                alert = alerting_rule(slo, mode, rule, runbook)
                other = seen.setdefault(alert["alert"], slo.name)
                if other != slo.name or any(a["alert"] == alert["alert"] for a in alerts):
                    raise RulesError(
                        f"two alerts would be called {alert['alert']!r} (SLOs {other!r} and "
                        f"{slo.name!r}); rename an SLO or a rule so their names differ.",
                        file=spec.source,
                        field=f"slos.{slo.name}",
                    )
                alerts.append(alert)
        groups.append({"name": f"onsale-slo:{slo.name}", "rules": [*recording_rules(slo), *alerts]})
    return {"groups": groups}
