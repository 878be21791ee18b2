"""Generated Prometheus rules: valid, tested by promtool, in step with the engine, never stale."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.generate._files import drifted
from onsale_obs.generate._rules import RulesError, alert_name, render_rules
from onsale_obs.generate._rules_files import rule_files
from onsale_obs.generate._rules_test import EVAL_MINUTE, OUTAGE_MINUTE, RATE, render_rule_tests
from onsale_obs.generate._yaml import dump
from onsale_obs.slo import PromQLSLI, SLOSpec, evaluate, load_spec, plan, spec_from_data
from onsale_obs.slo._spec import MODES
from onsale_obs.testing import require_binary
from tests.slo_oracle import Record, oracle

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "ticketing" / "slo.yaml"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "prometheus")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def write(spec: SLOSpec, folder: Path) -> tuple[Path, Path]:
    files = rule_files(spec, folder)
    for path, text in files.items():
        path.write_text(text)
    rules, tests = files
    return rules, tests


def test_generated_rules_pass_promtool_check_and_their_own_unit_tests(tmp_path: Path) -> None:
    rules, tests = write(load_spec(SPEC), tmp_path)
    checked = promtool("check", "rules", rules.name, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", tests.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_catch_a_missing_minimum_events_guard(tmp_path: Path) -> None:
    rules, tests = write(load_spec(SPEC), tmp_path)
    unguarded = spec_from_data(
        {
            "slos": [
                {
                    "name": "checkout-availability",
                    "service": "checkout",
                    "sli": {
                        "type": "availability",
                        "routes": ["/events/{event_id}/checkout"],
                        "methods": ["POST"],
                    },
                    "objectives": {"normal": 99.9, "onsale": 99.99},
                    "runbook": "https://runbooks.example.com/checkout-availability",
                    "alerting": {
                        "onsale": {"fast": {"min_bad_events": 0}, "slow": {"min_bad_events": 0}}
                    },
                }
            ]
        }
    )
    # without the guard, one stray error among 20 requests is a 500x burn: the generated
    # tests of the guarded spec (nothing fires) fail on the unguarded rules
    guarded = SLOSpec((load_spec(SPEC).get("checkout-availability"),))
    rules.write_text(dump(render_rules(unguarded)))
    suite = render_rule_tests(guarded, rules.name, runbook="x")
    suite["tests"] = [t for t in suite["tests"] if "stray" in t["name"]]
    assert suite["tests"]
    tests.write_text(dump(suite))
    tested = promtool("test", "rules", tests.name, cwd=tmp_path)
    assert tested.returncode != 0
    output = tested.stdout + tested.stderr
    assert "one stray on-sale error" in output
    assert "CheckoutAvailabilityOnsaleFastBurn" in output


def test_the_generated_tests_expect_what_a_spec_without_the_guard_fires(tmp_path: Path) -> None:
    """Expectations are computed, not assumed: with min_bad_events 0 the stray error fires
    the on-sale rules, and the generated tests (which say so) pass."""
    spec = spec_from_data(
        {
            "slos": [
                {
                    "name": "pay",
                    "service": "pay",
                    "sli": {"type": "availability"},
                    "objectives": {"normal": 99.9, "onsale": 99.99},
                    "alerting": {
                        "onsale": {"fast": {"min_bad_events": 0}, "slow": {"min_bad_events": 1}}
                    },
                }
            ]
        }
    )
    _, tests = write(spec, tmp_path)
    suite = yaml.safe_load(tests.read_text())
    stray = next(t for t in suite["tests"] if "stray" in t["name"])
    firing = {t["alertname"] for t in stray["alert_rule_test"] if t["exp_alerts"]}
    assert firing == {
        "PayOnsaleFastBurn",
        "PayOnsaleSlowBurn",
        "PayNormalFastBurn",
        "PayNormalMediumBurn",
        "PayNormalSlowBurn",
    }
    tested = promtool("test", "rules", tests.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def outage_records(mode: str) -> list[Record]:
    """The promtool scenario as requests: RATE a minute, all failing from OUTAGE_MINUTE."""
    onsale = mode == "onsale"
    out = []
    for minute in range(EVAL_MINUTE):
        status = 503 if minute >= OUTAGE_MINUTE else 200
        out += [
            Record(
                minute * 60 + (i + 1) * 60 / RATE,
                "checkout",
                "/events/{event_id}/checkout",
                "POST",
                status,
                0.05,
                mode,
                "final-2026" if onsale else None,
                onsale,
            )
            for i in range(RATE)
        ]
    return out


@pytest.mark.parametrize("mode", ["onsale", "normal"])
def test_alerts_fire_exactly_where_the_engine_says_they_fire(mode: str) -> None:
    spec = load_spec(SPEC)
    slo = spec.get("checkout-availability")
    at = EVAL_MINUTE * 60.0
    report = evaluate(
        spec,
        oracle(outage_records(mode), plan(spec, at, slos=[slo], onsale_windows=())),
        at,
        slos=[slo],
    )
    engine = {
        alert_name(slo, m, r.name) for m in MODES for r in report.slos[0].modes[m].rules if r.firing
    }
    generated = render_rule_tests(spec, "x", runbook="x")["tests"]
    case = next(
        t
        for t in generated
        if ("every " + ("on-sale" if mode == "onsale" else "normal-time")) in t["name"]
    )
    # the case holds every SLO of the spec: keep this SLO's on-sale or normal-time checks
    mine = {alert_name(slo, m, r.name) for m in MODES for r in slo.policy[m]}
    case = {
        **case,
        "alert_rule_test": [t for t in case["alert_rule_test"] if t["alertname"] in mine],
    }
    assert len(case["alert_rule_test"]) == len(mine)
    promtool_says = {t["alertname"] for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert promtool_says == engine
    assert engine  # the burst fires something in both modes
    priorities = {
        a["exp_labels"]["priority"] for t in case["alert_rule_test"] for a in t["exp_alerts"]
    }
    assert priorities == ({"P1", "P2"} if mode == "onsale" else {"P3", "P4"})


def test_every_alert_carries_the_routing_labels(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(
        rule_files(load_spec(SPEC), tmp_path)[tmp_path / "onsale-slo.rules.yml"]
    )
    alerts = [r for g in data["groups"] for r in g["rules"] if "alert" in r]
    assert len({a["alert"] for a in alerts}) == len(alerts)
    for a in alerts:
        assert set(a["labels"]) == {
            "onsale_obs",  # "slo": what our Alertmanager routes match on
            "priority",
            "severity",
        }  # mode, slo, service, event come from the series
        assert a["labels"]["onsale_obs"] == "slo"
        assert "slo=" in a["expr"]
        assert "mode=" in a["expr"]
        assert {"summary", "description", "runbook_url"} <= a["annotations"].keys()
    records = {r["record"] for g in data["groups"] for r in g["rules"] if "record" in r}
    assert {
        "slo:error_budget_remaining:ratio",
        "slo:burn_rate:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
    } <= records


def test_committed_alert_rules_match_what_the_cli_generates() -> None:
    stale = drifted(
        rule_files(load_spec(Path("examples/ticketing/slo.yaml")), ROOT / "alert_rules")
    )
    assert stale == [], (
        "run: onsale-obs rules render --spec examples/ticketing/slo.yaml --out alert_rules/"
    )


def test_render_check_reports_drift_and_render_rewrites(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "rules"
    result = runner.invoke(
        app, ["rules", "render", "--spec", str(SPEC), "--out", str(out), "--check"]
    )
    assert result.exit_code == 1
    assert "out of date" in result.output
    result = runner.invoke(app, ["rules", "render", "--spec", str(SPEC), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "onsale-slo.rules.yml").exists()
    result = runner.invoke(
        app, ["rules", "render", "--spec", str(SPEC), "--out", str(out), "--check"]
    )
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("slos", "message"),
    [
        (
            [
                {
                    "name": "a-b",
                    "service": "s",
                    "sli": {"type": "availability"},
                    "objectives": {"normal": 99, "onsale": 99},
                },
                {
                    "name": "a.b",
                    "service": "s",
                    "sli": {"type": "availability"},
                    "objectives": {"normal": 99, "onsale": 99},
                },
            ],
            "two alerts would be called 'ABNormalFastBurn'",
        ),
    ],
)
def test_specs_that_would_make_bad_rules_are_refused_and_nothing_is_written(
    tmp_path: Path, slos: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(RulesError, match=message):
        render_rules(spec_from_data({"slos": slos}))
    spec = tmp_path / "slo.yaml"
    spec.write_text(yaml.safe_dump({"slos": slos}))
    result = CliRunner().invoke(
        app, ["rules", "render", "--spec", str(spec), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        app, ["rules", "render", "--spec", str(SPEC), "--out", str(blocker / "sub")]
    )
    assert result.exit_code == 2, result.output
    assert "afile" in result.output


def test_a_runbook_template_with_unknown_braces_is_bad_input(tmp_path: Path) -> None:
    args = ["rules", "render", "--spec", str(SPEC), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--runbook-url", "https://wiki/{nope}"])
    assert result.exit_code == 2, result.output
    assert "--runbook-url" in result.output
    assert not (tmp_path / "out").exists()


def test_a_threshold_off_the_bucket_boundaries_is_bad_input(tmp_path: Path) -> None:
    """123ms has no 'le' bucket: every request would count as slow. Exit 2 naming the field."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "slos:\n  - name: lat\n    service: s\n"
        "    sli: {type: latency, threshold: {normal: 123ms, onsale: 1s}}\n"
        "    objectives: {normal: 99.5, onsale: 99.9}\n"
    )
    result = CliRunner().invoke(
        app, ["rules", "render", "--spec", str(spec), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists()
    warning = " ".join(result.stderr.split())
    assert "'slos.0.sli.threshold.normal': 123ms is not a bucket boundary" in warning, warning
    assert "threshold.onsale" not in warning  # 1s is a boundary in both modes


def test_an_slo_built_in_python_with_a_bad_selector_is_refused() -> None:
    """Spec files are checked when loaded; SLOs made in code are checked when rendered."""
    good = spec_from_data(
        {
            "slos": [
                {
                    "name": "pay",
                    "service": "p",
                    "objectives": {"normal": 99, "onsale": 99},
                    "sli": {"type": "promql", "good": "x", "total": "y"},
                }
            ]
        }
    )
    bad = dataclasses.replace(good.slos[0], sli=PromQLSLI(good="rate(x[5m])", total="y"))
    with pytest.raises(RulesError, match="not a series selector"):
        render_rules(SLOSpec((bad,)))
