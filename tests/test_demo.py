"""``onsale-obs demo``: the story happens, is reported, and can be reported again."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.cli._output import fmt_time
from onsale_obs.demo import DemoResult, run_demo
from onsale_obs.demo._plan import MINUTE, DemoPlan


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", plan=DemoPlan.quick())


def test_the_onsale_and_its_failure_are_in_the_report(demo: DemoResult) -> None:
    checkout = next(s for s in demo.report.slos if s.slo.name == "checkout-availability")
    [onsale] = checkout.onsales
    assert onsale.window.scope == "event:final-2026"
    assert onsale.window.start == demo.start + demo.plan.onsale_start
    assert onsale.bad > 0
    assert checkout.modes["onsale"].status in ("breached", "burning")
    # every user the driver sent is one gateway request in the report
    gateway = next(s for s in demo.report.slos if s.slo.name == "gateway-availability")
    assert gateway.modes["normal"].total + gateway.modes["onsale"].total == sum(
        demo.statuses.values()
    )
    failed = sum(n for code, n in demo.statuses.items() if code >= 500)
    assert gateway.modes["normal"].bad + gateway.modes["onsale"].bad == failed


def test_the_failure_pages_p1_and_normal_time_only_tickets(demo: DemoResult) -> None:
    failure_start = demo.start + demo.plan.onsale_start + demo.plan.failure_from * MINUTE
    failure_end = demo.start + demo.plan.onsale_start + demo.plan.failure_to * MINUTE
    [page] = [a for a in demo.alerts if a.slo == "checkout-availability" and a.priority == "P1"]
    assert page.mode == "onsale"
    assert [d.receiver for d in page.routes] == ["pager"]
    assert failure_start <= page.start <= failure_start + 2 * MINUTE  # evaluated every minute
    assert page.end <= failure_end + 2 * MINUTE
    for alert in demo.alerts:
        if alert.mode == "normal":
            assert alert.priority in ("P3", "P4")
            assert all(d.receiver != "pager" for d in alert.routes)


def test_the_controller_cuts_the_rate_during_the_failure_and_says_why(demo: DemoResult) -> None:
    onsale_start = demo.start + demo.plan.onsale_start
    during = [
        r
        for r in demo.recommendations
        if onsale_start + demo.plan.failure_from * MINUTE
        < r.time
        <= onsale_start + (demo.plan.failure_to + 1) * MINUTE
    ]
    cuts = [r for r in during if r.action == "decrease"]
    assert cuts
    assert all("burn" in r.reason for r in cuts)
    before = [
        r for r in demo.recommendations if r.time <= onsale_start + demo.plan.failure_from * MINUTE
    ]
    assert all(r.action != "decrease" for r in before)
    assert min(r.rate for r in cuts) < max(r.rate for r in before)


def test_the_folder_holds_the_data_and_slo_report_reproduces_it(demo: DemoResult) -> None:
    for name in (
        "report.html",
        "report.json",
        "alerts.json",
        "recommendations.json",
        "slo.yaml",
        "modes.db",
    ):
        assert (demo.folder / name).exists(), name
    args = ["slo", "report", "--spec", str(demo.spec_path), "--backend", demo.backend_url]
    args += ["--verify-key", str(demo.verify_key), "--at", fmt_time(demo.at), "--format", "json"]
    for log in demo.logs:
        args += ["--logs", str(log)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # the on-sale SLO was breached
    again = json.loads(result.stdout)
    written = json.loads((demo.folder / "report.json").read_text())
    for a, b in zip(again["slos"], written["slos"], strict=True):
        for mode in ("normal", "onsale"):
            assert (a["modes"][mode]["total"], a["modes"][mode]["bad"]) == (
                b["modes"][mode]["total"],
                b["modes"][mode]["bad"],
            )
        assert [(o["scope"], o["total"], o["bad"]) for o in a["onsales"]] == [
            (o["scope"], o["total"], o["bad"]) for o in b["onsales"]
        ]


def test_a_demo_folder_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("a file")
    result = CliRunner().invoke(app, ["demo", "--out", str(target), "--quick"])
    assert result.exit_code == 2, result.output
    assert "expected a folder" in " ".join(result.output.split())


def test_the_printed_report_command_runs_as_pasted(tmp_path: Path) -> None:
    """The 'Report again with' command is one line (not wrapped at the console width) and runs."""
    shown = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--quick"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    [command] = [line for line in lines if line.strip().startswith("onsale-obs slo report")]
    words = shlex.split(command)
    assert "--at" in words
    assert "--verify-key" in words
    again = CliRunner().invoke(app, [*words[1:], "--format", "json"])
    assert again.exit_code == 1, again.output  # the demo's on-sale breached its SLO
    assert json.loads(again.stdout)["slos"]
