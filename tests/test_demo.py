"""``onsale-obs demo``: the story happens, is reported, and can be reported again."""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
from html import unescape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.cli._output import fmt_time
from onsale_obs.demo import DemoResult, run_demo
from onsale_obs.demo._plan import MINUTE, DemoPlan
from onsale_obs.plan import sizings_from_profile


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", plan=DemoPlan.quick())


def test_the_onsale_and_its_failure_are_in_the_report(demo: DemoResult) -> None:
    checkout = next(s for s in demo.report.slos if s.slo.name == "checkout-availability")
    past, onsale = checkout.onsales
    assert past.window.scope == "event:semi-final-2026"
    assert past.bad == 0  # the past on-sale went well: the plan learns from it
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


def table_rows(stdout: str, title: str) -> list[list[str]]:
    """The cells of each row of the printed table whose title starts with ``title``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.split("│")[1:-1]])
    return rows


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A quick demo run through the CLI: its folder and what it printed."""
    out = tmp_path_factory.mktemp("printed") / "demo"
    shown = CliRunner().invoke(app, ["demo", "--out", str(out), "--quick"], env={"COLUMNS": "220"})
    assert shown.exit_code == 0, shown.output
    return out, shown.stdout


def test_the_printed_demo_shows_the_rate_recovering(printed: tuple[Path, str]) -> None:
    """The printed exit-rate table of the on-sale: the software-fault rows, then rates back
    above them."""
    rows = table_rows(printed[1], "exit-rate recommendations during the on-sale")
    assert rows, printed[1]
    faults = [i for i, row in enumerate(rows) if "software fault" in row[3]]
    assert faults, printed[1]
    held = float(rows[faults[-1]][1].replace(",", ""))
    after = [float(row[1].replace(",", "")) for row in rows[faults[-1] + 1 :][:3]]
    assert after
    assert after[-1] > held, printed[1]
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


# ----------------------------------------------------------------- the retrospective (issue 23)


def test_the_report_page_carries_each_onsales_retrospective(demo: DemoResult) -> None:
    """report.html has a retrospective of both on-sales; the main one's has the queue and
    exit-rate timeline, the detect / page / resolve times of the page the demo's own alert
    timeline recorded, and the error budget in requests (percentages only secondary)."""
    page = (demo.folder / "report.html").read_text(encoding="utf-8")
    report = json.loads((demo.folder / "report.json").read_text())
    sections = re.findall(r'<section class="retro" id="[^"]+">(.*?)</section>', page, re.S)
    assert len(sections) == 2
    past, main = sections
    assert "event:semi-final-2026" in past
    assert "event:final-2026" in main
    # the waiting room: every decision of the on-sale is a point with its reason
    assert 'data-chart="exit-rate"' in main
    assert "queue (users)" in main
    onsale_start = demo.start + demo.plan.onsale_start
    mine = [r for r in demo.recommendations if onsale_start < r.time <= demo.at]
    assert mine
    titles = [unescape(t) for t in re.findall(r"<title>([^<]*)</title>", main)]
    for r in mine:
        assert any(t.endswith(r.reason) for t in titles), r.reason
    # when we knew: detected, paged and resolved, the page being the first on-sale P1
    row = re.search(
        r'<th scope="row">checkout-availability</th>(.*?)</tr>',
        main[main.index("when we knew") :],
        re.S,
    )
    assert row is not None
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    failing, detected, paged, resolved, to_page = cells
    [p1] = [a for a in demo.alerts if a.slo == "checkout-availability" and a.priority == "P1"]
    assert paged.startswith(fmt_time(p1.start)[11:16] + "Z")
    assert detected.startswith(fmt_time(p1.start)[11:16] + "Z")
    assert re.fullmatch(r"\d\d:\d\dZ", resolved), resolved
    assert failing <= paged[:6]
    assert to_page
    assert to_page != "-"
    # the budget in requests: bad and allowed counts, each the JSON report's
    checkout = next(i for i, s in enumerate(report["slos"]) if s["name"] == "checkout-availability")
    budget = report["slos"][checkout]["modes"]["onsale"]["budget_requests"]
    allowed = re.search(
        rf'data-json="slos\.{checkout}\.modes\.onsale\.budget_requests\.allowed">([^<]+)<', main
    )
    assert allowed is not None
    assert allowed.group(1) == f"{budget['allowed']:,.2f}"
    bad = re.search(rf'data-json="slos\.{checkout}\.onsales\.1\.bad">([^<]+)<', main)
    assert bad is not None
    assert bad.group(1) == f"{report['slos'][checkout]['onsales'][1]['bad']:,.0f}"
    # percentages of the budget only in the secondary, small print
    assert re.search(r'data-format="budget"', main)
    assert all(
        "secondary" in main[max(0, m.start() - 120) : m.start()]
        for m in re.finditer(r'data-format="budget"', main)
    )


def test_the_onsale_rows_add_up_to_the_mode_total(demo: DemoResult) -> None:
    """Requests are logged through each step, never at the instant an on-sale begins: the
    on-sale rows add up to the on-sale mode's total, so the card and the panel agree."""
    for s in demo.report.slos:
        assert s.modes["onsale"].total == sum(o.total for o in s.onsales), s.slo.name
        assert s.onsale_outside_windows == 0


def test_the_terminal_states_the_budget_in_requests(printed: tuple[Path, str]) -> None:
    """The summary's budget column and the sentences under the tables are in requests."""
    folder, stdout = printed
    report = json.loads((folder / "report.json").read_text())
    rows = table_rows(stdout, "SLOs at")
    [checkout] = [r for r in rows if r[0] == "checkout-availability"]
    m = next(s for s in report["slos"] if s["name"] == "checkout-availability")["modes"]["onsale"]
    shown = f"{m['bad']:,.0f} / {m['budget_requests']['allowed']:,.2f}"
    assert shown in checkout, checkout
    sentence = (
        f"checkout-availability, on-sale: {m['bad']:,.0f} bad requests against "
        f"{m['budget_requests']['allowed']:,.2f} allowed (overspent by "
    )
    assert sentence in " ".join(stdout.split()), stdout


# ------------------------------------------------------------------- the plan (issue 20)


def test_the_onsale_starts_from_the_plan_learnt_from_the_past_one(demo: DemoResult) -> None:
    """plan learn on the past on-sale, plan next for this one: the controller's first rate
    is the plan's starting rate (above the past on-sale's cold start), and the profile's
    fan-out is the requests per admitted user the logs hold."""
    planning = demo.planning
    assert planning is not None, demo.planning_error
    written = json.loads((demo.folder / "plan.json").read_text())
    starting = written["warm_start"]["starting_rate"]
    assert starting == pytest.approx(planning.starting_rate, abs=1e-3)
    onsale_start = demo.start + demo.plan.onsale_start
    past_start = demo.start + demo.plan.past_start
    [first_past] = [r for r in demo.recommendations if past_start < r.time][:1]
    [first] = [r for r in demo.recommendations if onsale_start < r.time][:1]
    assert first_past.signals.current_rate == demo.plan.initial_rate  # cold
    assert first.signals.current_rate == pytest.approx(starting, abs=1e-3)  # warm
    assert starting > demo.plan.initial_rate
    # learnt from the past on-sale only (the plan was made before this one opened)
    profile = json.loads((demo.folder / "onsale-profile.json").read_text())
    [onsale] = profile["onsales"]
    assert onsale["scope"] == "event:semi-final-2026"
    assert planning.learned_at < onsale_start
    users = planning.admitted["semi-final-2026"]
    assert onsale["admitted"]["users"] == users
    gateway = 0
    for line in (demo.folder / "logs" / "gateway.access.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d.get("event") == "semi-final-2026" and d.get("mode") == "onsale":
            gateway += 1
    fan_out = onsale["services"]["gateway"]["requests_per_user"]
    assert fan_out == pytest.approx(gateway / users, rel=1e-3)
    # a limit never reached is a lower bound: not fed to the controller as a prior
    assert written["warm_start"]["capacity_prior_is_lower_bound"] is True
    assert planning.capacity_prior is None
    assert (
        first.capacity_estimate is None
        or first.capacity_estimate != written["warm_start"]["capacity_prior"]
    )


def test_the_vertical_rises_with_the_queue_and_falls_after(demo: DemoResult) -> None:
    """onsale_vertical_desired_replicas (vertical.json): nothing before the on-sale; at its
    first tick every service is sized from the queue with the profile's numbers; it never
    falls while the event is on sale; it is withdrawn after the on-sale's end + cool-down."""
    planning = demo.planning
    assert planning is not None
    ticks = json.loads((demo.folder / "vertical.json").read_text())
    onsale_start = demo.start + demo.plan.onsale_start
    onsale_end = demo.start + demo.plan.onsale_end
    assert ticks
    assert all(t["time"] > onsale_start for t in ticks)
    first = ticks[0]
    sizings = {s.name: s for s in sizings_from_profile(planning.profile)}
    need = max(first["rate"], first["queue"] / (demo.plan.vertical_drain / 60.0))
    assert first["queue"] / (demo.plan.vertical_drain / 60.0) > first["rate"]  # the queue drives it
    for service, n in first["desired"].items():
        assert n == math.ceil(need / (sizings[service].users_per_replica * 0.92) - 1e-9)
    assert set(first["desired"]) == {"gateway", "checkout", "inventory"}
    assert min(first["desired"].values()) >= 2
    during = [t for t in ticks if t["time"] <= onsale_end]
    for a, b in itertools.pairwise(during):
        for service in a["desired"]:
            assert b["desired"][service] >= a["desired"][service]
    last = ticks[-1]
    assert last["desired"] == {}
    assert last["time"] >= onsale_end + demo.plan.vertical_cooldown
    held = [t for t in ticks if onsale_end < t["time"] < onsale_end + demo.plan.vertical_cooldown]
    assert all(t["desired"] for t in held)


def test_the_printed_plan_commands_reproduce_the_plan(printed: tuple[Path, str]) -> None:
    """The printed 'plan learn' and 'plan next' commands run as pasted and give the same
    warm start as the demo's plan.json."""
    folder, stdout = printed
    lines = stdout.splitlines()
    [learn] = [line for line in lines if line.strip().startswith("onsale-obs plan learn")]
    [nxt] = [line for line in lines if line.strip().startswith("onsale-obs plan next")]
    written = json.loads((folder / "plan.json").read_text())
    (folder / "onsale-profile.json").unlink()
    run = CliRunner().invoke(app, [*shlex.split(learn)[1:], "--format", "json"])
    assert run.exit_code == 0, run.output
    assert (folder / "onsale-profile.json").exists()
    again = CliRunner().invoke(app, [*shlex.split(nxt)[1:], "--format", "json"])
    assert again.exit_code == 0, again.output
    planned = json.loads(again.stdout)
    assert planned["warm_start"] == written["warm_start"]
    assert [s["replicas"] for s in planned["services"]] == [
        s["replicas"] for s in written["services"]
    ]
    assert "plan next for final-2026" in stdout
    assert table_rows(stdout, "onsale_vertical_desired_replicas")


def test_every_figure_of_the_report_page_is_the_json_reports(demo: DemoResult) -> None:
    """Each figure of the demo's report.html that names its JSON path (report, on-sale
    cards, retrospectives) shows exactly that value of the demo's report.json."""
    from tests.test_retro_demo import figures, resolve, shown

    data = json.loads((demo.folder / "report.json").read_text())
    found = figures((demo.folder / "report.html").read_text(encoding="utf-8"))
    assert len(found) > 40
    assert any(path.endswith("budget_requests.allowed") for path, _, _ in found)
    for path, fmt, text in found:
        value = resolve(data, path)
        assert text.startswith(shown(value, fmt)), (path, text, value)


def test_the_retrospective_draws_the_vertical_rising_and_withdrawn(demo: DemoResult) -> None:
    """The main on-sale's retrospective in report.html draws onsale_vertical_desired_replicas
    per service: up from the first tick, down to 0 (withdrawn) after the cool-down; the past
    on-sale, planned by nobody, has no such chart."""
    from tests.test_retro_demo import section, series_points

    page = (demo.folder / "report.html").read_text(encoding="utf-8")
    assert 'data-chart="vertical"' not in section(page, "event:semi-final-2026")
    main = section(page, "event:final-2026")
    [svg] = re.findall(r'<svg class="chart" data-chart="vertical".*?</svg>', main, re.S)
    lines = series_points(svg)
    assert len(lines) == 3  # gateway, checkout, inventory
    for ys in lines:
        # SVG y grows downwards: 0 replicas (before the on-sale, withdrawn) is the lowest
        assert ys[0] == ys[-1] == max(ys)
        assert min(ys) < ys[-1]
    # withdrawn inside the chart, not at its edge: the cool-down ended before the page's end
    withdrawn = next(t.time for t in demo.vertical if not t.desired)
    assert withdrawn < demo.at
