"""No page after the fact: an on-sale P2 whose P1 just resolved (the checkout healed, the
on-sale ended) does not page.

The P1 inhibits the same SLO's P2-P4 only while it fires; the P2's short window remembers the
burn for up to that window after the P1 has forgotten it. The hold rule (Prometheus,
``keep_firing_for``) keeps an inhibiting alert firing for that long after the P1.

Proven on a real Prometheus (the generated SLO rules and hold rule, 1 s scrape and evaluation,
windows of seconds) and a real Alertmanager (the generated routing): with the hold the P2
never pages; without it (the control) the same run pages the P2 as soon as the P1 resolves.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from onsale_obs.generate._alertmanager import (
    HOLD_ALERT,
    HOLD_FILE,
    hold_seconds,
    receivers_from_data,
    render_alertmanager,
    render_hold_rules,
)
from onsale_obs.generate._rules_files import rule_files
from onsale_obs.slo import load_spec
from onsale_obs.testing import require_binary
from onsale_obs.testing_alertmanager import AlertmanagerServer, WebhookSink
from onsale_obs.testing_prometheus import PrometheusServer
from tests.live_exporter import Exporter

ROOT = Path(__file__).resolve().parent.parent
#: One SLO whose on-sale windows are seconds long, so a whole burn fits in a test.
SPEC = """
slos:
  - name: buy
    service: checkout
    sli: {type: availability, routes: ["/buy"]}
    objectives: {normal: 99, onsale: 99}
    alerting:
      onsale:
        fast: {long: 40s, short: 10s, min_bad_events: 5}
        slow: {long: 2m, short: 30s, min_bad_events: 5}
"""
P1 = "BuyOnsaleFastBurn"
P2 = "BuyOnsaleSlowBurn"
#: waiting longer than this for a step is a failure (a bound on the test, not a target)
PATIENCE = 90.0
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = PATIENCE) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


# -- the hold rule on its own ---------------------------------------------------------------


def test_the_hold_outlasts_the_p1_by_the_lower_short_window_plus_its_own() -> None:
    """6m for the default policy (P2's 5m + P1's 1m) and the example spec; 40s for SPEC."""
    assert hold_seconds(None) == 360
    assert hold_seconds(load_spec(ROOT / "examples" / "ticketing" / "slo.yaml")) == 360
    text = render_hold_rules(None)
    (rule,) = yaml.safe_load(text)["groups"][0]["rules"]
    assert rule["alert"] == HOLD_ALERT
    assert rule["keep_firing_for"] == "6m"
    assert rule["labels"] == {"onsale_obs": "hold"}


def test_the_hold_fires_with_the_p1_and_for_its_time_after(tmp_path: Path) -> None:
    """promtool: the hold fires (per SLO) while an on-sale P1 fires and for 6m after it
    resolves; a normal-mode or unlabelled P1, or a P2, never raises it."""
    promtool = require_binary("promtool", "prometheus")
    (tmp_path / HOLD_FILE).write_text(render_hold_rules(None))
    p1 = 'ALERTS{alertname="BuyOnsaleFastBurn",alertstate="firing",onsale_obs="slo",mode="onsale",priority="P1",slo="buy",event="final"}'
    others = [
        'ALERTS{alertname="BuyNormalFastBurn",alertstate="firing",onsale_obs="slo",mode="normal",priority="P1",slo="n"}',
        'ALERTS{alertname="TheirP1",alertstate="firing",mode="onsale",priority="P1",slo="theirs"}',
        'ALERTS{alertname="BuyOnsaleSlowBurn",alertstate="firing",onsale_obs="slo",mode="onsale",priority="P2",slo="p2"}',
    ]
    hold = {
        "exp_labels": {"alertname": HOLD_ALERT, "onsale_obs": "hold", "slo": "buy"},
        "exp_annotations": yaml.safe_load(render_hold_rules(None))["groups"][0]["rules"][0][
            "annotations"
        ],
    }
    hold["exp_annotations"]["summary"] = hold["exp_annotations"]["summary"].replace(
        "{{ $labels.slo }}", "buy"
    )
    suite = {
        "rule_files": [HOLD_FILE],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": p1, "values": "1x4 stale"},
                    *({"series": s, "values": "1x20"} for s in others),
                ],
                "alert_rule_test": [
                    {"eval_time": t, "alertname": HOLD_ALERT, "exp_alerts": [hold]}
                    for t in ("2m", "4m", "6m", "10m")
                ]
                + [
                    {"eval_time": t, "alertname": HOLD_ALERT, "exp_alerts": []}
                    for t in ("12m", "15m")
                ],
            }
        ],
    }
    (tmp_path / "hold.test.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", "hold.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- a real Prometheus and Alertmanager -----------------------------------------------------


@dataclass
class Run:
    """What one burn did: pages (labels, status, arrival) and the P2's state in Prometheus."""

    pages: list[tuple[dict[str, str], str, float]] = field(default_factory=list)
    p2_firing_when_p1_resolved: bool = False
    p1_resolved_at: float = 0.0


def firing(prometheus: str) -> set[str]:
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def pages(sink: WebhookSink) -> list[tuple[dict[str, str], str, float]]:
    """Every alert posted to /page, with the status of its notification."""
    with sink.lock:
        return [
            (alert["labels"], alert["status"], at)
            for path, body, at in sink.received
            if path == "/page"
            for alert in body["alerts"]
        ]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[bool], Any]]:
    """Start Prometheus (with or without the hold rule), Alertmanager, the sink and one
    exporter; yields a function that runs the burn and returns the Run."""
    prometheus_bin = require_binary("prometheus", "prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    (tmp_path / "spec.yaml").write_text(SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    for path, text in rule_files(spec, tmp_path).items():
        path.write_text(text)
    (tmp_path / HOLD_FILE).write_text(render_hold_rules(spec))
    with WebhookSink() as sink:
        fast = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
        receivers = receivers_from_data(
            {
                "pager": {"webhook_url": f"{sink.url}/page"},
                "ticket": {"webhook_url": f"{sink.url}/ticket"},
                "default": {"webhook_url": f"{sink.url}/default"},
                "business_hours": {"weekdays": ["sunday:saturday"], "times": ["00:00-24:00"]},
                "timing": {"page": fast, "business_page": fast, "ticket": fast, "default": fast},
            }
        )
        exporter = Exporter.start("checkout")
        try:
            with AlertmanagerServer(render_alertmanager(receivers), binary=alertmanager_bin) as am:

                def run(hold: bool) -> Run:
                    files = [tmp_path / "onsale-slo.rules.yml"]
                    files += [tmp_path / HOLD_FILE] if hold else []
                    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{", ".join(f'"{f}"' for f in files)}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am.port}"]}}]}}]
scrape_configs:
  - job_name: services
    static_configs: [{{targets: ["{exporter.target}"]}}]
"""
                    with PrometheusServer(binary=prometheus_bin, config=config) as prometheus:
                        return burn(prometheus.url, exporter, sink, hold=hold)

                yield run
        finally:
            exporter.stop()


def burn(prometheus: str, exporter: Exporter, sink: WebhookSink, *, hold: bool) -> Run:
    """On-sale checkouts fail half the time until the P1 pages and the P2 fires; then the
    checkout heals and the on-sale ends (traffic goes on in normal time). Wait until the P1
    resolved, then until the P2 and the hold have stopped firing (with the hold), or until the
    P2 pages (without it)."""
    state: dict[str, Any] = {"failing": True, "mode": "onsale"}
    stop = threading.Event()

    def drive() -> None:
        while not stop.wait(0.05):
            mode: str = state["mode"]
            event = "final" if mode == "onsale" else ""
            exporter.metrics.record("/buy", "POST", 200, mode, event, 0.05)
            if state["failing"]:
                exporter.metrics.record("/buy", "POST", 503, mode, event, 0.05)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    run = Run()
    try:
        wait_for(lambda: any(a["alertname"] == P1 for a, s, _ in pages(sink)), "the P1 page")
        wait_for(lambda: P2 in firing(prometheus), "the P2 firing")
        if hold:
            wait_for(lambda: HOLD_ALERT in firing(prometheus), "the hold firing")
        assert [a["alertname"] for a, _, _ in pages(sink)] == [P1]  # the P2 is inhibited
        state["failing"] = False  # the checkout heals ...
        time.sleep(2.0)
        state["mode"] = "normal"  # ... and the on-sale ends
        wait_for(
            lambda: any(a["alertname"] == P1 and s == "resolved" for a, s, _ in pages(sink)),
            "the P1's resolved notification",
        )
        run.p1_resolved_at = time.monotonic()
        run.p2_firing_when_p1_resolved = P2 in firing(prometheus)
        if hold:
            wait_for(lambda: not firing(prometheus) & {P2, HOLD_ALERT}, "the P2 and hold ending")
            time.sleep(3.0)  # a notification of the P2 would have gone out by now
        else:
            wait_for(
                lambda: (
                    any(a["alertname"] == P2 for a, _, _ in pages(sink))
                    or P2 not in firing(prometheus)
                ),
                "the P2 paging or ending",
            )
    finally:
        stop.set()
        driver.join(5)
    run.pages = pages(sink)
    return run


@pytest.mark.timeout(400)
def test_an_onsale_p2_does_not_page_after_its_p1_resolved(
    servers: Callable[[bool], Run],
) -> None:
    """With the hold: the pager gets the P1 and its resolve, never the P2, although the P2
    was still firing in Prometheus when the P1 resolved."""
    run = servers(True)
    assert run.p2_firing_when_p1_resolved, "the P2 ended first: the run proves nothing"
    paged = [(labels["alertname"], status) for labels, status, _ in run.pages]
    assert (P1, "firing") in paged
    assert (P1, "resolved") in paged
    assert all(name == P1 for name, _ in paged), paged


@pytest.mark.timeout(400)
def test_without_the_hold_the_same_p2_pages_when_the_p1_resolves(
    servers: Callable[[bool], Run],
) -> None:
    """The control (the routing as it was): the inhibition ends with the P1, and the P2 of the
    same burn pages right after, for a checkout that healed and an on-sale that ended."""
    run = servers(False)
    assert run.p2_firing_when_p1_resolved
    late = [(labels, at) for labels, status, at in run.pages if labels["alertname"] == P2]
    assert late, "the P2 never paged: the hold test above cannot fail"
    assert all(labels["mode"] == "onsale" for labels, _ in late)
    print(f"\nwithout the hold, the P2 paged {min(at for _, at in late) - run.p1_resolved_at:+.1f} s after the P1 resolve arrived")  # fmt: skip
