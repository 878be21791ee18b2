"""End to end on the production path (examples/stack): Redis, the three services, Prometheus
with the generated rules, Alertmanager with the generated routing, and a load generator.

One journey, driven through the real ``onsale-obs`` CLI against the Redis mode store, with 1 s
scrape and evaluation intervals:

1. normal traffic; checkout fails in normal time -> a P3 ticket, nobody paged; checkout heals;
2. ``mode set onsale --scope event:final``; checkout fails -> a P1 page (detection time printed);
3. ``mode clear``; traffic stops; ``slo report --prometheus`` and ``--logs`` (on-sale windows
   from the Redis history) are compared, per service at the same ``--at``: its last scrape;
4. the on-sale P1 resolves (its 1 m window empties after the on-sale ended) while its P2 still
   fires: nothing pages after it (the hold rule keeps the P2 inhibited).

The normal-time failure comes first: the generated routing lets an on-sale P1 inhibit the same
SLO's P2-P4 alerts, so a ticket right after the on-sale page would be (rightly) held back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import structlog

from examples.stack import ALWAYS, QUICK, Stack, StackConfig
from onsale_obs.instrument import configure_logging
from onsale_obs.slo import load_spec
from onsale_obs.testing import require_binary

pytestmark = [pytest.mark.redis, pytest.mark.timeout(260)]

SCRAPE = 1.0
#: waiting longer than this for an alert is a failure (a bound on the test, not a target)
PATIENCE = 60.0
ONSALE_EVENT = "final"
T = TypeVar("T")
Labels = dict[str, str]


@dataclass
class Journey:
    """What the stack did during the journey, for the tests to judge."""

    tickets: list[tuple[Labels, float]] = field(default_factory=list)
    pages_in_normal_time: list[tuple[Labels, float]] = field(default_factory=list)
    ticket_after: float | None = None
    page: Labels | None = None
    page_after: float | None = None
    pages: list[tuple[Labels, float]] = field(default_factory=list)
    answers: dict[tuple[str, int], int] = field(default_factory=dict)
    reports: list[Reports] = field(default_factory=list)
    scrape_interval: float = SCRAPE
    #: ``exit-rate recommend --format json`` while checkout burns during the on-sale
    recommendation: dict[str, Any] | None = None
    #: step 4: the SLO whose on-sale P1 resolved first (None: none resolved), whether its P2
    #: still fired in Prometheus then, and every page after it (until all P1s resolved, + 5 s)
    p1_resolved: str | None = None
    p2_firing_at_p1_resolve: bool = False
    paged_after_p1_resolve: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reports:
    """One service's SLOs reported from both sources at the same ``--at``: its last scrape, so
    both count the same requests. ``first_samples`` (the first value of each normal series,
    which ``increase()`` would have lost) is printed to show what the per-series delta saves.
    """

    service: str
    at: str
    from_prometheus: dict[str, Any]
    from_logs: dict[str, Any]
    first_samples: float


def onsale_obs(stack: Stack, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    """Run the installed ``onsale-obs`` console script against ``stack``; its stdout."""
    script = Path(sys.executable).with_name("onsale-obs")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "onsale_obs.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_OBS_")}
    env.update(stack.cli_env())
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=stack.folder,  # no stray schedule file or sqlite store from the repository
        timeout=60,
        check=False,
    )
    assert done.returncode in codes, (args, done.returncode, done.stdout, done.stderr)
    return done.stdout


def wait_for(check: Callable[[], T | None], timeout: float = PATIENCE) -> T | None:
    """Poll ``check`` until it returns something truthy; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    return None


def matching(stack: Stack, path: str, **labels: str) -> list[tuple[Labels, float]]:
    """The alerts posted to the sink's ``path`` whose labels include ``labels``."""
    return [
        (got, at)
        for got, at in stack.sink.alerts(path)
        if all(got.get(k) == v for k, v in labels.items())
    ]


def report(stack: Stack, at: str, slos: list[str], *source: str) -> dict[str, Any]:
    """``slo report --format json`` at ``at``, on-sale windows from the Redis history."""
    out = onsale_obs(
        stack,
        *("slo", "report", "--spec", str(stack.config.spec.resolve()), "--at", at),
        *("--backend", stack.backend_url, "--verify-key", str(stack.keys.verify_key)),
        *("--format", "json", *slos, *source),
        codes=(0, 1),  # 1: an SLO burns, as it should after these failures
    )
    data: dict[str, Any] = json.loads(out)
    return data


def first_samples(stack: Stack, service: str, at: float) -> float:
    """The sum of the first samples of ``service``'s normal-time request series."""
    answer = httpx.get(
        f"{stack.prometheus.url}/api/v1/query",
        params={
            "query": f'onsale_requests_total{{service="{service}",mode="normal"}}[1h]',
            "time": f"{at:.3f}",
        },
        timeout=5.0,
    ).json()
    return sum(float(series["values"][0][1]) for series in answer["data"]["result"])


@contextmanager
def service_logs_in(path: Path) -> Iterator[None]:
    """Send the services' structlog lines to ``path`` (not the captured stdout), then restore."""
    before = structlog.get_config()
    with path.open("w", encoding="utf-8") as out:
        configure_logging(stream=out)
        try:
            yield
        finally:
            structlog.configure(**before)


def walk(stack: Stack) -> Journey:
    """Drive the journey of the module docstring and record what happened for the tests.

    Only a broken step (a CLI command failing, a mode change never reaching the services)
    stops it; alerts that do not come are recorded as missing, for the tests to report.
    """
    journey = Journey()
    stack.wait_scraped_after(time.time())
    time.sleep(4 * SCRAPE)  # healthy normal traffic first

    # 1. normal time: checkout fails for everyone
    failing = time.monotonic()
    stack.set_fail_rate(1.0)
    tickets = wait_for(
        lambda: matching(stack, "/ticket", slo="checkout-availability", mode="normal")
    )
    if tickets:
        journey.ticket_after = min(at for _, at in tickets) - failing
    time.sleep(3 * SCRAPE)  # room for a wrong page to arrive
    journey.tickets = stack.sink.alerts("/ticket")
    journey.pages_in_normal_time = stack.sink.alerts("/page")
    stack.set_fail_rate(0.0)
    time.sleep(3 * SCRAPE)

    # 2. an on-sale of event:final, set with the real CLI; then checkout fails again
    onsale_obs(stack, "mode", "set", "onsale", "--scope", f"event:{ONSALE_EVENT}", "--for", "15m")
    assert stack.wait_mode(ONSALE_EVENT, "onsale"), "the services never saw the on-sale"
    time.sleep(4 * SCRAPE)
    failing = time.monotonic()
    stack.set_fail_rate(1.0)
    pages = wait_for(
        lambda: matching(stack, "/page", mode="onsale", priority="P1", slo="checkout-availability")
    )
    if pages:
        journey.page, first = min(pages, key=lambda p: p[1])
        journey.page_after = first - failing
    journey.pages = stack.sink.alerts("/page")
    answer = onsale_obs(
        stack,
        *("exit-rate", "recommend", "--prometheus", stack.prometheus.url, "--event", ONSALE_EVENT),
        *("--current-rate", "600", "--queue", "5000", "--format", "json"),
    )
    journey.recommendation = json.loads(answer)["recommendations"][0]
    stack.set_fail_rate(0.0)
    time.sleep(2 * SCRAPE)

    # 3. the on-sale ends; traffic stops; both sources count the same requests
    onsale_obs(stack, "mode", "clear", "--scope", f"event:{ONSALE_EVENT}")
    assert stack.wait_mode(ONSALE_EVENT, "normal"), "the services never saw the on-sale end"
    time.sleep(2 * SCRAPE)
    stack.load.stop()
    journey.answers = dict(stack.load.answers())
    # a request's log line is written just after its answer is sent: wait for the last ones
    answered = sum(n for (_, status), n in journey.answers.items() if status)
    gateway_log = stack.access_logs["gateway"]

    def logged() -> int:
        stack.flush_logs()
        return len(gateway_log.read_bytes().splitlines())

    wait_for(lambda: logged() >= answered or None, timeout=10.0)
    logs = [a for p in stack.access_logs.values() for a in ("--logs", str(p))]
    scrapes = stack.wait_scraped_after(time.time() + 0.1)
    spec = load_spec(stack.config.spec)
    for service, scraped in scrapes.items():
        slos = [a for s in spec.slos if s.service == service for a in ("--slo", s.name)]
        at = datetime.fromtimestamp(scraped, UTC).isoformat(timespec="milliseconds")
        journey.reports.append(
            Reports(
                service=service,
                at=at,
                from_prometheus=report(stack, at, slos, "--prometheus", stack.prometheus.url),
                from_logs=report(stack, at, slos, *logs),
                first_samples=first_samples(stack, service, scraped),
            )
        )

    # 4. the P1s resolve after the on-sale ended; the P2s of the same burn must not page
    def p1s(status: str) -> dict[str, float]:
        return {
            labels["slo"]: at
            for at, got, labels in notifications(stack, "/page")
            if got == status and labels["priority"] == "P1"
        }

    def first_resolved() -> tuple[str, float] | None:
        resolved = p1s("resolved")
        return min(resolved.items(), key=lambda item: item[1]) if resolved else None

    earliest = wait_for(first_resolved, timeout=90.0)
    if earliest is not None:
        journey.p1_resolved, resolved_at = earliest
        alerts = httpx.get(f"{stack.prometheus.url}/api/v1/alerts", timeout=5).json()
        journey.p2_firing_at_p1_resolve = any(
            a["state"] == "firing"
            and a["labels"]["slo"] == journey.p1_resolved
            and (a["labels"].get("mode"), a["labels"].get("priority")) == ("onsale", "P2")
            for a in alerts["data"]["alerts"]
        )
        wait_for(lambda: p1s("resolved").keys() >= p1s("firing").keys() or None)
        time.sleep(5.0)  # the P2 paged in the same second as its P1's resolve
        journey.paged_after_p1_resolve = [
            labels["alertname"]
            for at, status, labels in notifications(stack, "/page")
            if status == "firing" and at >= resolved_at
        ]
    return journey


def notifications(stack: Stack, path: str) -> list[tuple[float, str, Labels]]:
    """(arrival, status, labels) of every alert the sink received at ``path``."""
    with stack.sink.lock:
        return [
            (at, alert["status"], alert["labels"])
            for got, body, at in stack.sink.received
            if got == path
            for alert in body["alerts"]
        ]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    """The whole journey on a freshly started stack, which is stopped afterwards."""
    folder = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        folder=folder,
        scrape_interval=SCRAPE,
        rate=30.0,
        events=(ONSALE_EVENT, "concert"),
        business_hours=ALWAYS,  # tickets arrive whatever the wall clock says
        notify_timing=QUICK,
        redis_binary=require_binary("redis-server", "redis-server"),
        prometheus_binary=require_binary("prometheus", "prometheus"),
        alertmanager_binary=require_binary("prometheus-alertmanager", "prometheus-alertmanager"),
    )
    with service_logs_in(folder / "services.jsonl"), Stack(config) as stack:
        return walk(stack)


def test_a_normal_time_checkout_failure_opens_a_ticket_and_pages_nobody(journey: Journey) -> None:
    """Normal-time burn: a P3 ticket for checkout-availability reaches the ticket receiver only."""
    assert journey.ticket_after is not None, f"no ticket within {PATIENCE:.0f}s"
    checkout = [labels for labels, _ in journey.tickets if labels["slo"] == "checkout-availability"]
    assert checkout
    for labels in checkout:
        assert {k: labels[k] for k in ("mode", "priority", "severity", "service")} == {
            "mode": "normal", "priority": "P3", "severity": "ticket", "service": "checkout",
        }  # fmt: skip
    assert all(labels["mode"] == "normal" for labels, _ in journey.tickets)
    assert journey.pages_in_normal_time == []
    print(f"\nnormal-time failure to ticket: {journey.ticket_after:.1f} s")


def test_an_onsale_checkout_failure_pages_p1(journey: Journey) -> None:
    """On-sale burn of the same failure: a P1 page for event final reaches the pager."""
    assert journey.page is not None, f"no on-sale page within {PATIENCE:.0f}s"
    assert journey.page_after is not None
    page = journey.page
    assert {k: page[k] for k in ("mode", "priority", "severity", "service", "event")} == {
        "mode": "onsale", "priority": "P1", "severity": "page", "service": "checkout",
        "event": ONSALE_EVENT,
    }  # fmt: skip
    assert all(labels["mode"] == "onsale" for labels, _ in journey.pages)
    assert all(labels["priority"] in ("P1", "P2") for labels, _ in journey.pages)
    print(
        f"\non-sale failure to P1 page: {journey.page_after:.1f} s "
        f"(scrape and evaluation every {journey.scrape_interval:g} s)"
    )


def test_prometheus_and_log_reports_agree(journey: Journey) -> None:
    """``slo report --prometheus`` and ``--logs`` agree on every count, in both modes."""
    assert {r.service for r in journey.reports} == {"gateway", "checkout", "inventory"}
    for reports in journey.reports:
        prom, logs = reports.from_prometheus, reports.from_logs
        assert prom["exact_onsale_counts"]
        assert logs["exact_onsale_counts"]
        assert logs["skipped"] == {}
        assert [s["name"] for s in prom["slos"]] == [s["name"] for s in logs["slos"]]
        for p, g in zip(prom["slos"], logs["slos"], strict=True):
            name = p["name"]
            counts = ("total", "good", "bad")
            on_p, on_g = p["modes"]["onsale"], g["modes"]["onsale"]
            assert {k: on_p[k] for k in counts} == {k: on_g[k] for k in counts}, name
            assert isinstance(on_p["total"], int), name  # exact, not an increase() estimate
            assert on_p["sli"] == on_g["sli"], name
            assert on_g["total"] > 0, name
            windows_p = [
                (o["scope"], o["start"], o["end"], o["total"], o["bad"]) for o in p["onsales"]
            ]
            windows_g = [
                (o["scope"], o["start"], o["end"], o["total"], o["bad"]) for o in g["onsales"]
            ]
            assert windows_p == windows_g, name
            assert [w[0] for w in windows_g] == [f"event:{ONSALE_EVENT}"], name
            # normal time too: each series' last value minus its value at the window's start
            normal_p, normal_g = p["modes"]["normal"], g["modes"]["normal"]
            assert {k: normal_p[k] for k in counts} == {k: normal_g[k] for k in counts}, name
            print(
                f"\n{name} at {reports.at}: on-sale {on_g['total']} ({on_g['bad']} bad) from "
                f"both; normal {normal_g['total']} ({normal_g['bad']} bad) from the logs, "
                f"{normal_p['total']:.2f} ({normal_p['bad']:.2f} bad) from Prometheus "
                f"(first samples: {reports.first_samples:g})"
            )
    slos = {s["name"]: s for r in journey.reports for s in r.from_logs["slos"]}
    checkout = slos["checkout-availability"]["modes"]
    assert checkout["onsale"]["bad"] > 0
    assert checkout["normal"]["bad"] > 0
    # every answer the load generator got is one gateway request in the logs
    gateway = slos["gateway-availability"]["modes"]
    answered = sum(n for (_, status), n in journey.answers.items() if status)
    assert gateway["normal"]["total"] + gateway["onsale"]["total"] == answered


def test_exit_rate_recommend_never_raises_the_rate_while_checkout_burns(journey: Journey) -> None:
    """One tick of the live loop during the on-sale failure: never more users, and the burn says
    why. Seconds into the failure the one-minute window shows under 80% failing with latency
    fine, which the controller reads as a software fault and holds (issue 18: holding through a
    fault, back to the pre-fault rate when it clears); a capacity loss or an outage of checkout
    (80% or more failing) cuts."""
    recommendation = journey.recommendation
    assert recommendation is not None
    assert recommendation["event"] == ONSALE_EVENT
    assert recommendation["action"] in ("hold", "decrease"), recommendation["reason"]
    assert recommendation["rate"] <= 600
    assert "burn" in recommendation["reason"]
    if recommendation["action"] == "hold":
        assert "software fault" in recommendation["reason"]


def test_no_page_after_the_onsale_p1_resolved(journey: Journey) -> None:
    """Once the on-sale ended, the P1 resolves while the P2 of the same burn still fires; the
    pager gets the P1's resolve and no page after it (issue 22)."""
    assert journey.p1_resolved is not None, "no on-sale P1 resolved"
    # else the check below proves nothing: the P2 would have nothing left to page about
    assert journey.p2_firing_at_p1_resolve, f"{journey.p1_resolved}'s P2 ended before its P1"
    assert journey.paged_after_p1_resolve == []
