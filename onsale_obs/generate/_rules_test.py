"""A ``promtool test rules`` file that proves, per SLO, the three behaviours that matter:

1. an on-sale burst (every request failing from minute 10) pages: the on-sale rules fire;
2. the same burst in normal time raises only the normal-time, lower-priority alerts;
3. one stray error in a quiet on-sale minute fires nothing.

Series are sampled every minute and start at 0, so Prometheus' ``increase()`` is exact on
them and the expected values (burn rate, failed requests, budget left, in the annotations)
are computed here with the same float arithmetic Prometheus uses. Raw-PromQL SLIs are
skipped: their series are the user's, not ours.
"""

from __future__ import annotations

from typing import Any, Final

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
EVENT: Final = "final-2026"


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
    inner = ",".join(f'{k}="{v}"' for k, v in pairs.items() if v != "")
    return inner


def _series(slo: SLO, mode: Mode, good: str, bad: str) -> list[dict[str, str]]:
    """Input series where ``good``/``bad`` are promtool expansions of the two counters."""
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
        {"series": f"{BUCKETS}{{{_labels(slo, mode, le='+Inf')}}}", "values": f"0+{RATE}x30"},
    ]


def _outage_counts(window_minutes: float) -> tuple[float, float]:
    """(events, bad) in the window ending at the evaluation minute of the outage scenario."""
    start = EVAL_MINUTE - window_minutes
    bad = RATE * (EVAL_MINUTE - max(start, OUTAGE_MINUTE)) if start < EVAL_MINUTE else 0.0
    good = RATE * max(0.0, OUTAGE_MINUTE - max(start, 0.0))
    return good + bad, bad


def _burn(window_seconds: float, budget: float) -> float:
    events, bad = _outage_counts(window_seconds / 60)
    return (bad / events) / budget


def _humanize_percentage(value: float) -> str:
    return "%.4g%%" % (value * 100)  # Go's %.4g, as Prometheus' humanizePercentage


def _expected(slo: SLO, mode: Mode, rule: AlertRule, runbook: str) -> dict[str, Any] | None:
    """The alert this rule raises at the evaluation minute of the outage, or None."""
    budget = float(error_budget(slo.objectives[mode]))
    long_burn, short_burn = _burn(rule.long, budget), _burn(rule.short, budget)
    _, long_bad = _outage_counts(rule.long / 60)
    if not (
        long_burn >= rule.burn_rate
        and short_burn >= rule.burn_rate
        and long_bad >= rule.min_bad_events
    ):
        return None
    left = 1 - _burn(slo_window(slo), budget)
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


def _case(slo: SLO, mode: Mode, runbook: str) -> dict[str, Any]:
    good = f"0+{RATE}x{OUTAGE_MINUTE} {RATE * OUTAGE_MINUTE}x{30 - OUTAGE_MINUTE}"
    bad = f"0x{OUTAGE_MINUTE} {RATE}+{RATE}x{30 - OUTAGE_MINUTE - 1}"
    tests = []
    for m in MODES:
        for rule in slo.policy[m]:
            expected = _expected(slo, m, rule, runbook) if m == mode else None
            tests.append(
                {
                    "eval_time": f"{EVAL_MINUTE}m",
                    "alertname": alert_name(slo, m, rule.name),
                    "exp_alerts": [] if expected is None else [expected],
                }
            )
    return {
        "name": f"{slo.name}: every {_noun(mode)} request fails from minute {OUTAGE_MINUTE}",
        "interval": "1m",
        "input_series": _series(slo, mode, good, bad),
        "alert_rule_test": tests,
    }


def _noun(mode: Mode) -> str:
    return "on-sale" if mode == "onsale" else "normal-time"


def _stray(slo: SLO) -> dict[str, Any]:
    """20 on-sale requests a minute, one of them failing at minute 11: nothing may fire."""
    sli = slo.sli
    good = "0+20x30" if isinstance(sli, AvailabilitySLI) else "0+20x11 219+20x18"
    bad = "0x10 1x20"
    series = _series(slo, "onsale", good, bad)
    if isinstance(sli, LatencySLI):
        series[1]["values"] = "0+20x30"
    return {
        "name": f"{slo.name}: one stray on-sale error at minute 11 pages nobody",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": t, "alertname": alert_name(slo, m, r.name), "exp_alerts": []}
            for t in ("12m", "20m")
            for m in MODES
            for r in slo.policy[m]
        ],
    }


def render_rule_tests(spec: SLOSpec, rule_file: str, *, runbook: str) -> dict[str, Any]:
    """The promtool test file (as data) for the rules ``render_rules`` made from ``spec``."""
    tests: list[dict[str, Any]] = []
    for slo in spec.slos:
        if not isinstance(slo.sli, AvailabilitySLI | LatencySLI):
            continue
        tests += [_case(slo, "onsale", runbook), _case(slo, "normal", runbook), _stray(slo)]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}
