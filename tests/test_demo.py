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


def test_the_controller_holds_through_the_failure_and_says_why(demo: DemoResult) -> None:
    """Checkout fails fast (errors, latency fine): a software fault, not a lack of capacity.
    Cutting would fail as large a share of checkouts, so the rate holds and says why."""
    onsale_start = demo.start + demo.plan.onsale_start
    during = [
        r
        for r in demo.recommendations
        if onsale_start + (demo.plan.failure_from + 1) * MINUTE
        <= r.time
        <= onsale_start + demo.plan.failure_to * MINUTE
    ]
    assert during
    assert all(r.action != "decrease" for r in during)
    assert all("software fault" in r.reason for r in during), [r.reason for r in during]


def _rate_after_heal(rates: list[tuple[float, float]], failure_from: float, heal: float) -> None:
    """(time, rate) pairs: back at the pre-failure rate within 3 minutes of the heal, then
    rising while users wait (not pinned under a ceiling left by the failure)."""
    pre = [rate for t, rate in rates if t <= failure_from][-1]
    after = [rate for t, rate in rates if heal < t <= heal + 3 * MINUTE]
    assert after
    assert max(after) >= 0.9 * pre
    assert after[-1] > pre  # it went on ramping after the heal


def test_the_rate_recovers_after_the_checkout_failure_heals(demo: DemoResult) -> None:
    """On the demo's own output (recommendations.json): after checkout's failure heals the
    rate is back where it was within 3 minutes and keeps rising, with no reason pointing
    at a ceiling left by the failure."""
    written = json.loads((demo.folder / "recommendations.json").read_text())
    onsale_start = demo.start + demo.plan.onsale_start
    failure_from = onsale_start + demo.plan.failure_from * MINUTE
    heal = onsale_start + demo.plan.failure_to * MINUTE
    _rate_after_heal([(r["time"], r["rate"]) for r in written], failure_from, heal)
    later = [r["reason"] for r in written if r["time"] > heal]
    assert not any("where latency or errors" in reason for reason in later)


def test_the_printed_demo_shows_the_rate_recovering(tmp_path: Path) -> None:
    """The printed exit-rate table: the software-fault rows, then rates back above them."""
    shown = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "demo"), "--quick"], env={"COLUMNS": "220"}
    )
    assert shown.exit_code == 0, shown.output
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in shown.stdout.splitlines()
        if "(on-sa" in line and line.count("│") >= 5
    ]
    assert rows, shown.stdout
    faults = [i for i, row in enumerate(rows) if "software fault" in row[3]]
    assert faults, shown.stdout
    held = float(rows[faults[-1]][1].replace(",", ""))
    after = [float(row[1].replace(",", "")) for row in rows[faults[-1] + 1 :][:3]]
    assert after
    assert after[-1] > held, shown.stdout
    assert "increase" in {row[2] for row in rows[faults[-1] + 1 :][:3]}


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
