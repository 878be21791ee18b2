"""A ``promtool test rules`` file that proves, for every SLO, the behaviours that matter:

1. an on-sale burst (every request failing from minute 10) pages: the on-sale rules whose
   windows and guard say so fire, with their labels and annotations, and no normal-time alert;
2. the same burst in normal time raises only the normal-time, lower-priority alerts;
3. at the same moment, one stray on-sale error (1 of 20 requests, in the last minute, so
   both windows of every on-sale rule hold it) fires only what the guard allows: nothing
   with the default ``min_bad_events``.

Every alert of every SLO is checked at minute 15, and nothing else: rules are evaluated only
at minutes 0 and 15 (the alerts have no ``for``, and every window reads the samples, not
earlier evaluations). promtool evaluates *every* rule group at every step of *every* test
group, so the cost is steps x test groups x rules: instead of three groups per SLO, all SLOs
share two groups (on-sale burst; normal burst and stray error), each SLO on its own series.
SLOs whose series could overlap (same service, same metric) go into separate batches.

Series are sampled every minute and start at 0, so Prometheus' ``increase()`` is exact on
them and the expected values (burn rate, failed requests, budget left, in the annotations)
are computed here with the same float arithmetic Prometheus uses. Raw-PromQL SLIs are
skipped: their series are the user's, not ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from onsale_obs.generate._promql import quote
from onsale_obs.generate._rules import (
    BUCKETS,
    REQUESTS,
    alert_name,
    alerting_rule,
    error_budget,
    slo_window,
)
from onsale_obs.slo._spec import MODES, SLO, AlertRule, AvailabilitySLI, LatencySLI, SLOSpec
from onsale_obs.types import Mode

EVAL_MINUTE: Final = 15
OUTAGE_MINUTE: Final = 10
RATE: Final = 100  # requests per minute
STRAY_RATE: Final = 20  # on-sale requests per minute around the stray error
EVENT: Final = "final-2026"
#: a scenario: window in minutes -> (events, bad) in the window ending at EVAL_MINUTE
Counts = Callable[[float], tuple[float, float]]


def _labels(slo: SLO, mode: Mode, **extra: str) -> str:
    sli = slo.sli
    assert isinstance(sli, AvailabilitySLI | LatencySLI)
    pairs = {
        "service": slo.service,
        "route": sli.selector.routes[0] if sli.selector.routes else "/",
        "method": sli.selector.methods[0] if sli.selector.methods else "GET",
        "mode": mode,
        "event": EVENT if mode == "onsale" else "",
        **extra,
    }
    inner = ",".join(f"{k}={quote(v)}" for k, v in pairs.items() if v != "")
    return inner


def _series(slo: SLO, mode: Mode, good: str, bad: str, total: str) -> list[dict[str, str]]:
    """Input series where ``good``/``bad``/``total`` are promtool expansions of the counters."""
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        code = sorted(sli.bad_codes)[0]
        ok = next(c for c in ("2xx", "3xx", "4xx", "1xx", "5xx") if c not in sli.bad_codes)
        return [
            {"series": f"{REQUESTS}{{{_labels(slo, mode, code=ok)}}}", "values": good},
            {"series": f"{REQUESTS}{{{_labels(slo, mode, code=code)}}}", "values": bad},
        ]
    assert isinstance(sli, LatencySLI)
    le = repr(float(sli.threshold[mode]))
    # cumulative buckets: le=threshold counts the fast (good) requests, +Inf all of them
    return [
        {"series": f"{BUCKETS}{{{_labels(slo, mode, le=le)}}}", "values": good},
        {"series": f"{BUCKETS}{{{_labels(slo, mode, le='+Inf')}}}", "values": total},
    ]


def _outage_counts(window_minutes: float) -> tuple[float, float]:
    """(events, bad) in the window ending at the evaluation minute of the outage scenario."""
    start = EVAL_MINUTE - window_minutes
    bad = RATE * (EVAL_MINUTE - max(start, OUTAGE_MINUTE)) if start < EVAL_MINUTE else 0.0
    good = RATE * max(0.0, OUTAGE_MINUTE - max(start, 0.0))
    return good + bad, bad


def _stray_counts(window_minutes: float) -> tuple[float, float]:
    """(events, bad) of the stray scenario: the one error falls in the last minute."""
    return STRAY_RATE * min(window_minutes, EVAL_MINUTE), 1.0


def _humanize_percentage(value: float) -> str:
    return "%.4g%%" % (value * 100)  # Go's %.4g, as Prometheus' humanizePercentage


def _expected(
    slo: SLO, mode: Mode, rule: AlertRule, runbook: str, counts: Counts
) -> dict[str, Any] | None:
    """The alert this rule raises at the evaluation minute of a scenario, or None."""
    budget = float(error_budget(slo.objectives[mode]))

    def burn(window_seconds: float) -> float:
        events, bad = counts(window_seconds / 60)
        return (bad / events) / budget

    long_burn, short_burn = burn(rule.long), burn(rule.short)
    _, long_bad = counts(rule.long / 60)
    if not (
        long_burn >= rule.burn_rate
        and short_burn >= rule.burn_rate
        and long_bad >= rule.min_bad_events
    ):
        return None
    left = 1 - burn(slo_window(slo))
    alert = alerting_rule(slo, mode, rule, runbook)
    description = alert["annotations"]["description"]
    for template, value in (
        ("{{ $labels.service }}", slo.service),
        ('{{ printf "%.1f" $value }}', f"{long_burn:.1f}"),
        (_between(description, "Failed requests", ". Error"), f"{long_bad:.0f}"),
        (_between(description, "Error budget left", "."), _humanize_percentage(left)),
        (
            "{{ if $labels.event }} On-sale event: {{ $labels.event }}.{{ end }}",
            f" On-sale event: {EVENT}." if mode == "onsale" else "",
        ),
    ):
        description = description.replace(template, value)
    labels = {"slo": slo.name, "service": slo.service, "mode": mode, **alert["labels"]}
    if mode == "onsale":
        labels["event"] = EVENT
    return {
        "exp_labels": labels,
        "exp_annotations": {**alert["annotations"], "description": description},
    }


def _between(text: str, after: str, until: str) -> str:
    """The ``{{ with query ... }}...{{ end }}`` template that follows ``after`` in ``text``."""
    start = text.index("{{ with query", text.index(after))
    end = text.index("{{ end }}", start) + len("{{ end }}")
    assert text[end:].startswith(until[0])
    return text[start:end]


def _noun(mode: Mode) -> str:
    return "on-sale" if mode == "onsale" else "normal-time"


def _outage_series(slo: SLO, mode: Mode) -> list[dict[str, str]]:
    """Every ``mode`` request fails from OUTAGE_MINUTE (RATE a minute)."""
    good = f"0+{RATE}x{OUTAGE_MINUTE} {RATE * OUTAGE_MINUTE}x{EVAL_MINUTE - OUTAGE_MINUTE}"
    bad = f"0x{OUTAGE_MINUTE} {RATE}+{RATE}x{EVAL_MINUTE - OUTAGE_MINUTE - 1}"
    total = f"0+{RATE}x{EVAL_MINUTE}"
    return _series(slo, mode, good, bad, total)


def _stray_series(slo: SLO) -> list[dict[str, str]]:
    """STRAY_RATE on-sale requests a minute, one of them failing in the last minute."""
    last = STRAY_RATE * EVAL_MINUTE
    good = f"0+{STRAY_RATE}x{EVAL_MINUTE - 1} {last - 1}"
    bad = f"0x{EVAL_MINUTE - 1} 1"
    return _series(slo, "onsale", good, bad, f"0+{STRAY_RATE}x{EVAL_MINUTE}")


def _alert_tests(
    slo: SLO, runbook: str, scenario: dict[Mode, Counts | None]
) -> list[dict[str, Any]]:
    """One check per alert of ``slo`` at EVAL_MINUTE; a mode without traffic fires nothing."""
    tests = []
    for mode in MODES:
        counts = scenario[mode]
        for rule in slo.policy[mode]:
            expected = None if counts is None else _expected(slo, mode, rule, runbook, counts)
            tests.append(
                {
                    "eval_time": f"{EVAL_MINUTE}m",
                    "alertname": alert_name(slo, mode, rule.name),
                    "exp_alerts": [] if expected is None else [expected],
                }
            )
    return tests


def batches(spec: SLOSpec) -> list[list[SLO]]:
    """The testable SLOs in groups whose input series cannot overlap.

    Two SLOs of one service reading the same metric (say, all routes and one route) would
    count each other's test requests; they go into different batches.
    """
    out: list[list[SLO]] = []
    seen: dict[tuple[str, str], int] = {}
    for slo in spec.slos:
        if not isinstance(slo.sli, AvailabilitySLI | LatencySLI):
            continue
        key = (slo.service, REQUESTS if isinstance(slo.sli, AvailabilitySLI) else BUCKETS)
        index = seen.get(key, 0)
        seen[key] = index + 1
        if index == len(out):
            out.append([])
        out[index].append(slo)
    return out


def _names(slos: list[SLO]) -> str:
    names = [s.name for s in slos]
    return (
        ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
    )


def render_rule_tests(spec: SLOSpec, rule_file: str, *, runbook: str) -> dict[str, Any]:
    """The promtool test file (as data) for the rules ``render_rules`` made from ``spec``."""
    tests: list[dict[str, Any]] = []
    for batch in batches(spec):
        who = _names(batch)
        tests.append(
            {
                "name": f"{who}: every on-sale request fails from minute {OUTAGE_MINUTE}",
                "interval": "1m",
                "input_series": [s for slo in batch for s in _outage_series(slo, "onsale")],
                "alert_rule_test": [
                    t
                    for slo in batch
                    for t in _alert_tests(slo, runbook, {"onsale": _outage_counts, "normal": None})
                ],
            }
        )
        tests.append(
            {
                "name": (
                    f"{who}: every normal-time request fails from minute {OUTAGE_MINUTE}; "
                    f"one stray on-sale error at minute {EVAL_MINUTE} (the guard holds it back)"
                ),
                "interval": "1m",
                "input_series": [
                    s
                    for slo in batch
                    for s in [*_outage_series(slo, "normal"), *_stray_series(slo)]
                ],
                "alert_rule_test": [
                    t
                    for slo in batch
                    for t in _alert_tests(
                        slo, runbook, {"onsale": _stray_counts, "normal": _outage_counts}
                    )
                ],
            }
        )
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{EVAL_MINUTE}m",
        "tests": tests,
    }
