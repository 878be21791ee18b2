"""The alerting math through Prometheus: ``promtool test rules`` on the generated rules.

The burn scenarios of tests/test_slo_alert_math.py become counter samples every minute; the
alerts expected at each evaluation come from the oracle (tests/slo_oracle.py), and the engine
must say the same. Samples sit on the window boundaries, so ``increase()`` is exact and the
three can be held to one answer on every case: burns a hair either side of 1x, 6x and 14.4x,
an outage followed by clean traffic, errors spread thin, and a burst one event short of the
guard.
"""

from __future__ import annotations

import math
import subprocess
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsale_obs.generate._rules import alert_name, render_rules
from onsale_obs.generate._yaml import dump
from onsale_obs.slo import SLOSpec
from onsale_obs.slo._engine import evaluate
from onsale_obs.slo._plan import plan
from onsale_obs.testing import require_binary
from onsale_obs.types import Mode
from tests.slo_oracle import WORKBOOK_POLICY, BurnAlert, Record, burn, fires, oracle, window_counts
from tests.slo_scenarios import (
    BASE,
    METHOD,
    OBJECTIVES,
    ROUTE,
    SERVICE,
    ModeTraffic,
    Scenario,
    scenarios,
    slo_spec,
    steady,
)

MODES: tuple[Mode, ...] = ("onsale", "normal")
SLO_NAME = "buy"


def expanded(values: list[int]) -> str:
    """promtool's series notation for ``values``: runs of one step as ``start+stepxN``."""
    parts, i = [], 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        parts.append(f"{values[i]}+{step}x{j - i}")
        i = j + 1
    return " ".join(parts)


def input_series(scenario: Scenario, minutes: int, every: int) -> list[dict[str, str]]:
    """The middleware's request counter, good and failed, sampled every ``every`` minutes."""
    out = []
    for mode in scenario.modes:
        good, bad = (v[::every] for v in scenario.cumulative(mode, minutes))
        event = ',event="final"' if mode == "onsale" else ""
        for code, values in (("2xx", good), ("5xx", bad)):
            labels = (
                f'service="{SERVICE}",route="{ROUTE}",method="{METHOD}",code="{code}",'
                f'mode="{mode}"{event}'
            )
            out.append({"series": f"onsale_requests_total{{{labels}}}", "values": expanded(values)})
    return out


def expected_alert(
    spec: SLOSpec, scenario: Scenario, records: list[Record], mode: Mode, rule: BurnAlert, at: float
) -> dict[str, Any]:
    """The alert promtool must see: labels from DESIGN.md, the description with its numbers
    computed the way Prometheus computes them (floats from the exact counts)."""
    budget = float(Decimal(1) - Decimal(scenario.objective) / 100)
    total, bad = window_counts(records, mode, at, rule.long_s)
    all_total, all_bad = window_counts(records, mode, at, 30 * 86400)
    rules = render_rules(spec)["groups"][0]["rules"]
    alert = next(r for r in rules if r.get("alert") == alert_name(spec.slos[0], mode, rule.name))
    description: str = alert["annotations"]["description"]
    failed = description.index("{{ with query", description.index("Failed requests"))
    left = description.index("{{ with query", description.index("Error budget left"))
    end = "{{ end }}"
    for template, text in (
        (
            description[left : description.index(end, left) + len(end)],
            "%.4g%%" % ((1 - (all_bad / all_total) / budget) * 100),
        ),
        (description[failed : description.index(end, failed) + len(end)], f"{bad:.0f}"),
        ("{{ $labels.service }}", SERVICE),
        ('{{ printf "%.1f" $value }}', f"{(bad / total) / budget:.1f}"),
        (
            "{{ if $labels.event }} On-sale event: {{ $labels.event }}.{{ end }}",
            " On-sale event: final." if mode == "onsale" else "",
        ),
    ):
        description = description.replace(template, text)
    labels = {
        "onsale_obs": "slo",
        "slo": SLO_NAME,
        "service": SERVICE,
        "mode": mode,
        "priority": rule.priority,
        "severity": "page" if rule.priority in ("P1", "P2") else "ticket",
    }
    if mode == "onsale":
        labels["event"] = "final"
    return {
        "exp_labels": labels,
        "exp_annotations": {**alert["annotations"], "description": description},
    }


def promtool_case(
    name: str, scenario: Scenario, minutes: list[int], every: int = 1
) -> tuple[dict[str, Any], int]:
    """One promtool test of ``scenario`` sampled every ``every`` minutes and evaluated at
    ``minutes``, with the oracle's alerts (only for rules whose windows hold whole sample
    intervals); checks on the way that the engine agrees. Returns the test and how many
    alerts it expects."""
    spec = slo_spec(scenario.objective)
    records = scenario.records()
    tests, firing = [], 0
    minutes = [m for m in minutes if m % every == 0]  # promtool evaluates at those only
    assert minutes
    for minute in minutes:
        at = BASE + 60 * minute
        report = evaluate(spec, oracle(records, plan(spec, at, onsale_windows=())), at)
        for mode in MODES:
            engine = {r.name: r.firing for r in report.slos[0].modes[mode].rules}
            for rule in WORKBOOK_POLICY[mode]:
                windows = (rule.long_s, rule.short_s)
                if rule.short_s % (60 * every):
                    continue
                if any(burn(*window_counts(records, mode, at, w), scenario.objective) == rule.factor for w in windows):  # fmt: skip
                    continue  # an exact tie: see test_slo_alert_math's xfail
                expected = fires(rule, records, mode, at, scenario.objective)
                assert engine[rule.name] == expected, (name, minute, mode, rule.name)
                firing += expected
                tests.append(
                    {
                        "eval_time": f"{minute}m",
                        "alertname": alert_name(spec.slos[0], mode, rule.name),
                        "exp_alerts": [expected_alert(spec, scenario, records, mode, rule, at)]
                        if expected
                        else [],
                    }
                )
    case = {
        "name": name,
        "interval": f"{every}m",
        "input_series": input_series(scenario, max(minutes), every),
        "alert_rule_test": tests,
    }
    return case, firing


def run_promtool(folder: Path, objective: str, cases: list[dict[str, Any]], every: int = 1) -> None:
    """``promtool test rules`` on the rules of ``slo_spec(objective)``, evaluated every
    ``every`` minutes (as often as the samples come: fewer steps over days of data)."""
    binary = require_binary("promtool", "prometheus")
    (folder / "rules.yml").write_text(dump(render_rules(slo_spec(objective))))
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": f"{every}m", "tests": cases}
    (folder / "tests.yml").write_text(dump(suite))
    done = subprocess.run(
        [binary, "test", "rules", "tests.yml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "SUCCESS" in done.stdout


# ---- the named cases: each rule near its factor, after an outage, spread thin, at the guard --


def _cases_for(mode: Mode, rule: BurnAlert) -> list[tuple[str, Scenario, list[int]]]:
    tick = rule.short_s
    minutes_per_tick = tick // 60
    ticks_in_long = rule.long_s // tick
    label = f"{mode} {rule.name}"
    out = []
    # a hair above and below the factor (99%: (requests, bad) per tick), an outage just before
    for requests, bad in {14.4: ((34, 5), (35, 5)), 6.0: ((49, 3), (51, 3)), 1.0: ((98, 1), (102, 1))}[float(rule.factor)]:  # fmt: skip
        ticks = ((0, requests),) * 2 + ((requests - bad, bad),) * ticks_in_long
        s = Scenario("99", {mode: ModeTraffic(tick, ticks)})
        out.append((f"{label}: {bad} of {requests} failing", s, [s.seconds // 60]))
    # an outage, then clean traffic: fires during, stops once the short window is clean
    outage = math.ceil(rule.factor * ticks_in_long / 100 * Fraction(11, 10))
    ticks = ((50, 0),) * ticks_in_long + ((0, 50),) * outage + ((50, 0),) * 2
    s = Scenario("99", {mode: ModeTraffic(tick, ticks)})
    end = (ticks_in_long + outage) * minutes_per_tick
    out.append((f"{label}: after an outage", s, sorted({end, end + minutes_per_tick // 2, end + minutes_per_tick})))  # fmt: skip
    # one failure per short window: the long window holds min_bad of them, no short one does
    requests = {14.4: 6, 6.0: 15, 1.0: 90}[float(rule.factor)]
    s = Scenario("99", {mode: steady(tick, ticks_in_long + 1, (requests - 1, 1))})
    out.append((f"{label}: errors spread thin", s, [s.seconds // 60]))
    # a burst in a quiet spell, one failure short of the guard and then enough
    for failures in (rule.min_bad - 1, rule.min_bad):
        ticks = ((1, 0),) * ticks_in_long + ((0, failures),)
        s = Scenario("99", {mode: ModeTraffic(tick, ticks)})
        out.append((f"{label}: a burst of {failures}", s, [s.seconds // 60]))
    return out


#: minutes between samples (and evaluations) for the cases of each rule: every window of the
#: rule holds whole intervals, and the 3-day window needs no 5,000 evaluations
EVERY = {("onsale", "fast"): 1, ("onsale", "slow"): 1, ("normal", "fast"): 5, ("normal", "medium"): 5, ("normal", "slow"): 60}  # fmt: skip


def test_promtool_fires_where_the_definitions_and_the_engine_do(tmp_path: Path) -> None:
    """Every rule of both modes, through Prometheus: near its factor, after an outage, with
    errors spread thin, and at its guard; engine, oracle and promtool agree on each."""
    by_every: dict[int, list[dict[str, Any]]] = {}
    firing = silent = 0
    for mode in MODES:
        for rule in WORKBOOK_POLICY[mode]:
            every = EVERY[(mode, rule.name)]
            for name, scenario, minutes in _cases_for(mode, rule):
                case, n = promtool_case(name, scenario, minutes, every)
                by_every.setdefault(every, []).append(case)
                firing += n
                silent += len(case["alert_rule_test"]) - n
    assert firing >= 20
    assert silent >= 20
    for every, cases in by_every.items():
        run_promtool(tmp_path, "99", cases, every)


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_promtool_agrees_on_generated_traffic(tmp_path: Path, data: st.DataObject) -> None:
    """Hypothesis traffic near the factors: three scenarios per promtool run, a few moments each."""
    objective = data.draw(st.sampled_from(OBJECTIVES))  # one rule file per run
    cases = []
    for i in range(3):
        scenario = data.draw(scenarios(objective))
        last = scenario.seconds // 60
        minutes = sorted(data.draw(st.sets(st.integers(1, last), min_size=1, max_size=4)))
        cases.append(promtool_case(f"generated scenario {i}", scenario, minutes)[0])
    run_promtool(tmp_path, objective, cases)
