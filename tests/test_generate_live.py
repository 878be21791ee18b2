"""The generated files working together, for real: the middleware's metrics scraped by a real
Prometheus that loads the generated rules (over backfilled history), alerts delivered by a real
Alertmanager with the generated routing, and every dashboard query answered.

An on-sale checkout outage must page (P1 to the pager webhook); a normal-time gateway outage
must only open a ticket (P3); neither may raise the other mode's alerts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import Gauge

from onsale_obs.generate._alertmanager import receivers_from_data, render_alertmanager
from onsale_obs.generate._dashboards import panel_queries, render_dashboards
from onsale_obs.generate._rules_files import rule_files
from onsale_obs.slo import load_spec
from onsale_obs.testing import require_binary
from onsale_obs.testing_alertmanager import AlertmanagerServer, WebhookSink
from onsale_obs.testing_prometheus import PrometheusServer, backfill
from tests.live_exporter import Exporter

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
CHECKOUT = "/events/{event_id}/checkout"
ENTER = "/events/{event_id}/enter"
#: waiting longer than this is a failure (a bound on the test, not a performance figure)
PATIENCE = 90.0


def history(exporters: list[Exporter], now: float) -> str:
    """Two days of healthy normal traffic (1 request a second) ending ten minutes ago."""
    lines = ["# HELP onsale_requests Requests.", "# TYPE onsale_requests counter"]
    routes = {"checkout": (CHECKOUT, "POST"), "gateway": (ENTER, "POST")}
    for e in exporters:
        route, method = routes[e.service]
        labels = (
            f'job="services",instance="{e.target}",service="{e.service}",route="{route}",'
            f'method="{method}",code="2xx",mode="normal",event=""'
        )
        start = int(now) - 2 * 86_400
        for k in range(0, 2 * 86_400 - 600, 60):
            lines.append(f"onsale_requests_total{{{labels}}} {k} {start + k}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[PrometheusServer, WebhookSink, list[Exporter]]]:
    prometheus = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    spec = load_spec(SPEC)
    for path, text in rule_files(spec, tmp_path).items():
        path.write_text(text)
    exporters = [Exporter.start("checkout"), Exporter.start("gateway")]
    onsale = Gauge("onsale_mode", "On sale.", ["scope"], registry=exporters[0].registry)
    onsale.labels("event:final").set(1)
    rate = Gauge(
        "onsale_exit_rate_recommended", "Users/min.", ["event"], registry=exporters[0].registry
    )
    rate.labels("final").set(600)
    backfill(history(exporters, time.time()), tmp_path / "tsdb", promtool=promtool)
    with WebhookSink() as sink:
        fast = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
        receivers = receivers_from_data(
            {
                "pager": {"webhook_url": f"{sink.url}/page"},
                "ticket": {"webhook_url": f"{sink.url}/ticket"},
                "default": {"webhook_url": f"{sink.url}/default"},
                # the whole week, so the ticket arrives whenever the test runs
                "business_hours": {"weekdays": ["sunday:saturday"], "times": ["00:00-24:00"]},
                "timing": {"page": fast, "business_page": fast, "ticket": fast, "default": fast},
            }
        )
        with AlertmanagerServer(render_alertmanager(receivers), binary=alertmanager) as am:
            config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{tmp_path / "onsale-slo.rules.yml"}"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am.port}"]}}]}}]
scrape_configs:
  - job_name: services
    static_configs: [{{targets: [{", ".join(f'"{e.target}"' for e in exporters)}]}}]
"""
            server = PrometheusServer(binary=prometheus, tsdb_path=tmp_path / "tsdb", config=config)
            with server:
                try:
                    yield server, sink, exporters
                finally:
                    for e in exporters:
                        e.stop()


def drive(exporters: list[Exporter], stop: threading.Event) -> None:
    """Every 50 ms: a failing on-sale checkout, a failing normal-time gateway entry, and
    healthy normal-time checkouts."""
    checkout, gateway = exporters
    while not stop.wait(0.05):
        checkout.metrics.record(CHECKOUT, "POST", 503, "onsale", "final", 0.4)
        checkout.metrics.record(CHECKOUT, "POST", 200, "normal", "", 0.05)
        gateway.metrics.record(ENTER, "POST", 503, "normal", "", 0.02)


def firing(url: str) -> dict[str, dict[str, str]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["labels"] for a in alerts if a["state"] == "firing"}


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {PATIENCE:.0f}s")


def test_an_onsale_outage_pages_and_a_normal_one_opens_a_ticket(
    stack: tuple[PrometheusServer, WebhookSink, list[Exporter]],
) -> None:
    prometheus, sink, exporters = stack
    stop = threading.Event()
    driver = threading.Thread(target=drive, args=(exporters, stop), daemon=True)
    started = time.monotonic()
    driver.start()
    try:
        alerts = wait_for(
            lambda: (
                (f := firing(prometheus.url)).get("CheckoutAvailabilityOnsaleFastBurn")
                and f.get("GatewayAvailabilityNormalFastBurn")
                and f
            ),
            "both fast-burn alerts firing",
        )
        pages = wait_for(lambda: sink.alerts("/page"), "a page")
        tickets = wait_for(lambda: sink.alerts("/ticket"), "a ticket")
    finally:
        stop.set()
        driver.join(5)
    page = alerts["CheckoutAvailabilityOnsaleFastBurn"]
    assert {k: page[k] for k in ("mode", "priority", "severity", "slo", "service", "event")} == {
        "mode": "onsale", "priority": "P1", "severity": "page",
        "slo": "checkout-availability", "service": "checkout", "event": "final",
    }  # fmt: skip
    ticket = alerts["GatewayAvailabilityNormalFastBurn"]
    assert {k: ticket[k] for k in ("mode", "priority", "severity", "slo", "service")} == {
        "mode": "normal", "priority": "P3", "severity": "ticket",
        "slo": "gateway-availability", "service": "gateway",
    }  # fmt: skip
    # each outage raises only its own mode's alerts
    assert not [a for a in alerts if a.startswith("CheckoutAvailabilityNormal")]
    assert not [a for a in alerts if a.startswith("GatewayAvailabilityOnsale")]
    assert {labels["alertname"] for labels, _ in pages} == {
        "CheckoutAvailabilityOnsaleFastBurn",
        "CheckoutAvailabilityOnsaleSlowBurn",
    } or {labels["alertname"] for labels, _ in pages} == {"CheckoutAvailabilityOnsaleFastBurn"}
    assert all(labels["mode"] == "onsale" for labels, _ in pages)
    assert all(labels["slo"] == "gateway-availability" for labels, _ in tickets)
    first_page = min(at for _, at in pages) - started
    print(f"\non-sale outage to page: {first_page:.1f} s (scrape and evaluation every 1 s)")


def test_every_dashboard_query_answers_from_the_generated_rules(
    stack: tuple[PrometheusServer, WebhookSink, list[Exporter]],
) -> None:
    prometheus, _, exporters = stack
    stop = threading.Event()
    driver = threading.Thread(target=drive, args=(exporters, stop), daemon=True)
    driver.start()
    try:
        wait_for(
            lambda: firing(prometheus.url).get("CheckoutAvailabilityOnsaleFastBurn"),
            "rules evaluated",
        )
    finally:
        stop.set()
        driver.join(5)
    failures, empty = [], []
    with httpx.Client(base_url=prometheus.url, timeout=10.0) as http:
        for name, text in render_dashboards(load_spec(SPEC)).items():
            service = "checkout" if name != "onsale-overview.json" else ".*"
            values = {"__rate_interval": "1m", "service": service, "event": ".*", "datasource": "x"}
            for expr in panel_queries(text, values):
                answer = http.get("/api/v1/query", params={"query": expr}).json()
                if answer["status"] != "success":
                    failures.append(f"{name}: {expr}: {answer.get('error')}")
                elif not answer["data"]["result"] and "checkout" in name:
                    empty.append(f"{name}: {expr}")
    assert not failures, "\n".join(failures)
    assert not empty, "no data for:\n" + "\n".join(empty)
