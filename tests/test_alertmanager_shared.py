"""The default render is a subtree that merges into an Alertmanager configuration other teams
share: their alerts, which carry ``mode`` and ``priority`` labels of their own, still reach
their receivers, ours reach ours, and our inhibit rules never touch theirs.

Checked with the real ``amtool`` (check-config, config routes test) and a real Alertmanager.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from onsale_obs.cli._app import build_app
from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._alertmanager import (
    check_config,
    dump_yaml,
    load_receivers,
    merge_routing,
    receivers_from_data,
    routing_subtree,
)
from onsale_obs.generate._routing import routes_for
from onsale_obs.testing import require_binary
from onsale_obs.testing_alertmanager import AlertmanagerServer, WebhookSink

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "alert_rules" / "alertmanager-routes.yml"

#: Another team's configuration: its alerts carry mode and priority too (a maintenance mode,
#: their own P1..P3), and it has a time interval called business-hours of its own.
THEIRS = """
route:
  receiver: platform-default
  group_by: [alertname, cluster]
  routes:
    - receiver: payments-pager
      matchers: [team="payments", priority="P1"]
    - receiver: growth-onsale
      matchers: [mode="onsale"]
    - receiver: platform-pager
      matchers: [priority=~"P1|P2"]
      mute_time_intervals: [maintenance]
    - receiver: platform-tickets
      matchers: [severity="ticket"]
      active_time_intervals: [business-hours]
inhibit_rules:
  - source_matchers: [alertname="ClusterDown"]
    target_matchers: [severity=~"page|ticket"]
    equal: [cluster]
receivers:
  - name: platform-default
    webhook_configs: [{url: "http://127.0.0.1:9/platform-default"}]
  - name: payments-pager
    webhook_configs: [{url: "http://127.0.0.1:9/payments-pager"}]
  - name: growth-onsale
    webhook_configs: [{url: "http://127.0.0.1:9/growth-onsale"}]
  - name: platform-pager
    webhook_configs: [{url: "http://127.0.0.1:9/platform-pager"}]
  - name: platform-tickets
    webhook_configs: [{url: "http://127.0.0.1:9/platform-tickets"}]
time_intervals:
  - name: business-hours
    time_intervals: [{weekdays: ["monday:friday"], times: [{start_time: "08:00", end_time: "18:00"}]}]
  - name: maintenance
    time_intervals: [{weekdays: [sunday], times: [{start_time: "02:00", end_time: "04:00"}]}]
"""

#: (labels, the receiver amtool must pick): theirs first, then ours.
CASES: list[tuple[dict[str, str], str]] = [
    # theirs, with our contract's labels and values but without onsale_obs
    ({"team": "payments", "priority": "P1", "mode": "onsale", "slo": "checkout"}, "payments-pager"),
    ({"alertname": "Promo", "mode": "onsale", "priority": "P1", "slo": "x"}, "growth-onsale"),
    ({"alertname": "DiskFull", "mode": "normal", "priority": "P2"}, "platform-pager"),
    ({"alertname": "CertExpiry", "mode": "normal", "severity": "ticket"}, "platform-tickets"),
    ({"alertname": "Watchdog"}, "platform-default"),
    ({"alertname": "X", "onsale_obs": "someone-else"}, "platform-default"),
    # ours
    ({"onsale_obs": "slo", "mode": "onsale", "priority": "P1", "team": "payments"}, "onsale-obs-pager"),
    ({"onsale_obs": "slo", "mode": "onsale", "priority": "P2"}, "onsale-obs-pager"),
    ({"onsale_obs": "slo", "mode": "normal", "priority": "P3", "severity": "ticket"}, "onsale-obs-ticket"),
    ({"onsale_obs": "slo", "mode": "normal", "priority": "P4"}, "onsale-obs-info"),
    ({"onsale_obs": "slo", "mode": "maintenance", "priority": "P1"}, "onsale-obs-default"),
    ({"onsale_obs": "hold", "alertname": "OnsaleObsPageHold", "slo": "x"}, "onsale-obs-hold"),
]  # fmt: skip


@pytest.fixture(scope="module")
def amtool() -> str:
    """The real amtool (a test failure under CI=true when it is missing)."""
    return require_binary("amtool", "prometheus-alertmanager")


def committed_subtree() -> dict[str, Any]:
    """The committed subtree (examples/alertmanager/receivers.yaml, with an info receiver)."""
    data: dict[str, Any] = yaml.safe_load(COMMITTED.read_text())
    return data


def shared(tmp_path: Path, subtree: dict[str, Any] | None = None) -> Path:
    """THEIRS with ``subtree`` (default: the committed one) merged in, written to a file."""
    merged = merge_routing(yaml.safe_load(THEIRS), subtree or committed_subtree(), file="theirs")
    path = tmp_path / "alertmanager.yml"
    path.write_text(dump_yaml(merged))
    return path


def routed_to(amtool: str, config: Path, labels: dict[str, str]) -> str:
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}"]
        + [f"{k}={v}" for k, v in labels.items()],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_the_shared_config_passes_amtool_check_config(tmp_path: Path, amtool: str) -> None:
    """Their config with our subtree merged in is valid; our route comes first, theirs follow
    unchanged, and both business-hours intervals exist side by side."""
    path = shared(tmp_path)
    assert check_config(path, amtool).checked
    merged = yaml.safe_load(path.read_text())
    theirs = yaml.safe_load(THEIRS)
    assert merged["route"]["routes"][1:] == theirs["route"]["routes"]
    assert merged["route"]["routes"][0]["matchers"] == ['onsale_obs=~"slo|hold"']
    assert [t["name"] for t in merged["time_intervals"]] == [
        "business-hours",
        "maintenance",
        "onsale-obs-business-hours",
    ]
    assert merged["inhibit_rules"][0] == theirs["inhibit_rules"][0]


@pytest.mark.parametrize(("labels", "expected"), CASES)
def test_their_alerts_reach_their_receivers_and_ours_reach_ours(
    tmp_path: Path, amtool: str, labels: dict[str, str], expected: str
) -> None:
    """amtool config routes test on the shared config, and the Python walk agrees."""
    path = shared(tmp_path)
    assert routed_to(amtool, path, labels) == expected
    assert [d.receiver for d in routes_for(path.read_text(), labels)] == [expected]


def test_without_our_label_on_the_route_their_alerts_would_be_caught(
    tmp_path: Path, amtool: str
) -> None:
    """The control: with the onsale_obs matcher removed from our route (the old routing), the
    other team's on-sale P1 is paged by our pager, not theirs. The label is what prevents it."""
    subtree = committed_subtree()
    del subtree["routes"][0]["matchers"]
    for child in subtree["routes"][0]["routes"]:
        child["matchers"] = [m for m in child["matchers"] if not m.startswith("onsale_obs")]
    subtree["routes"][0]["routes"] = [r for r in subtree["routes"][0]["routes"] if r["matchers"]]
    path = shared(tmp_path, subtree)
    theirs = {"team": "payments", "priority": "P1", "mode": "onsale", "slo": "checkout"}
    assert routed_to(amtool, path, theirs) == "onsale-obs-pager"


def test_the_default_receivers_merge_too(tmp_path: Path, amtool: str) -> None:
    """No receivers file: the subtree still merges and checks (P4 goes to the ticket receiver)."""
    path = shared(tmp_path, routing_subtree(load_receivers(None)))
    assert check_config(path, amtool).checked
    labels = {"onsale_obs": "slo", "mode": "normal", "priority": "P4"}
    assert routed_to(amtool, path, labels) == "onsale-obs-ticket"


@pytest.mark.parametrize(
    ("base", "field", "expected"),
    [
        ("- a list", None, "expected an Alertmanager configuration"),
        ("receivers: []", "route", "expected the root route"),
        ("route: {receiver: r, routes: {a: 1}}\nreceivers: [{name: r}]", "route.routes", "a list"),
        ("route: {receiver: r}\nreceivers: {name: r}", "receivers", "expected a list"),
        (
            "route: {receiver: onsale-obs-pager}\nreceivers: [{name: onsale-obs-pager}]",
            "receivers",
            "already has one named 'onsale-obs-pager'",
        ),
        (
            "route: {receiver: r}\nreceivers: [{name: r}]\n"
            "mute_time_intervals: [{name: onsale-obs-business-hours}]",
            "time_intervals",
            "already has one named 'onsale-obs-business-hours'",
        ),
    ],
)
def test_a_merge_that_would_change_their_routing_is_refused(
    base: str, field: str | None, expected: str
) -> None:
    """A base that is not a configuration, or already uses one of our names, is bad input
    naming the file and the field."""
    with pytest.raises(BadInputError, match=expected) as caught:
        merge_routing(yaml.safe_load(base), committed_subtree(), file="shared.yml")
    assert caught.value.file == "shared.yml"
    assert caught.value.field == field


# -- a real Alertmanager with the shared config ---------------------------------------------


@pytest.fixture
def webhooks() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def alertmanager(tmp_path: Path, webhooks: WebhookSink) -> Iterator[str]:
    """A real Alertmanager on the shared config; every receiver posts to the sink, by name."""
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    fast = "{group_wait: 1s, group_interval: 1s, repeat_interval: 1h}"
    hook = webhooks.url
    ours = receivers_from_data(
        yaml.safe_load(f"""
pager: {{webhook_url: "{hook}/onsale-obs-pager"}}
ticket: {{webhook_url: "{hook}/onsale-obs-ticket"}}
default: {{webhook_url: "{hook}/onsale-obs-default"}}
business_hours: {{weekdays: ["sunday:saturday"], times: ["00:00-24:00"]}}
timing: {{page: {fast}, business_page: {fast}, ticket: {fast}, default: {fast}}}
""")
    )
    base = yaml.safe_load(THEIRS.replace("http://127.0.0.1:9", hook))
    base["route"].update(group_wait="1s", group_interval="1s")
    merged = merge_routing(base, routing_subtree(ours), file="theirs")
    with AlertmanagerServer(dump_yaml(merged), binary=binary) as server:
        yield server.url


def _poll(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_our_inhibition_never_silences_their_alerts(
    alertmanager: str, webhooks: WebhookSink
) -> None:
    """Our on-sale P1 firing silences our P2 of the same SLO, but not their alert with the
    same slo, mode and priority labels: it reaches their receiver."""
    common = {"slo": "checkout", "mode": "onsale", "service": "checkout"}
    ours_p1 = {"alertname": "CheckoutOnsaleFastBurn", "onsale_obs": "slo", "priority": "P1"}
    ours_p2 = {"alertname": "CheckoutOnsaleSlowBurn", "onsale_obs": "slo", "priority": "P2"}
    theirs_p2 = {"alertname": "CheckoutQueueSlow", "team": "payments", "priority": "P2"}
    first = [{"labels": {**common, **ours_p1}}]
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=first, timeout=5).status_code == 200
    assert _poll(lambda: webhooks.alerts("/onsale-obs-pager"))
    then = [{"labels": {**common, **ours_p2}}, {"labels": {**common, **theirs_p2}}]
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=then, timeout=5).status_code == 200

    def states() -> dict[str, str]:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        return {a["labels"]["alertname"]: a["status"]["state"] for a in alerts}

    assert _poll(lambda: len(states()) == 3)
    assert _poll(lambda: states()["CheckoutOnsaleSlowBurn"] == "suppressed")
    assert states()["CheckoutQueueSlow"] == "active"
    assert _poll(lambda: webhooks.alerts("/growth-onsale"))
    assert [labels["alertname"] for labels, _ in webhooks.alerts("/growth-onsale")] == [
        "CheckoutQueueSlow"
    ]
    time.sleep(2.5)  # two group intervals: a notification of our P2 would have gone out
    paged = [labels["alertname"] for labels, _ in webhooks.alerts("/onsale-obs-pager")]
    assert "CheckoutOnsaleSlowBurn" not in paged


# -- onsale-obs alertmanager render --merge-into ---------------------------------------------


def render(*args: str | Path) -> Result:
    return CliRunner().invoke(build_app(), ["alertmanager", "render", *(str(a) for a in args)])


def test_merge_into_writes_their_config_with_ours_and_again_replaces_it(
    tmp_path: Path, amtool: str
) -> None:
    """--merge-into FILE writes DIR/alertmanager.yml: their config with our subtree first; it
    passes amtool, routes both teams' alerts right, and merging the result again replaces our
    part instead of adding a second copy."""
    theirs = tmp_path / "theirs.yml"
    theirs.write_text(THEIRS)
    first = render("--merge-into", theirs, "--out", tmp_path / "one")
    assert first.exit_code == 0, first.output
    merged = tmp_path / "one" / "alertmanager.yml"
    assert check_config(merged, amtool).checked
    for labels, expected in (CASES[0], CASES[6], CASES[-1]):
        assert routed_to(amtool, merged, labels) == expected
    assert render("--merge-into", theirs, "--out", tmp_path / "one", "--check").exit_code == 0
    again = render("--merge-into", merged, "--out", tmp_path / "two")
    assert again.exit_code == 0, again.output
    data = [yaml.safe_load(p.read_text()) for p in (merged, tmp_path / "two" / "alertmanager.yml")]
    assert data[0] == data[1]
    assert yaml.safe_load(THEIRS)["route"]["routes"] == data[0]["route"]["routes"][1:]


@pytest.mark.parametrize(
    ("base", "args", "expected"),
    [
        ("route: {receiver: r}\nreceivers: [{name: r}]\n", ("--whole-config",), "Give one of them"),
        ("- not a config\n", (), "expected an Alertmanager configuration"),
        (
            "route: {receiver: nobody}\nreceivers: [{name: r}]\n",
            (),
            'theirs.yml: amtool check-config rejected the generated configuration: undefined receiver "nobody"',
        ),
    ],
)
def test_merge_into_bad_input_exits_2(
    tmp_path: Path, base: str, args: tuple[str, ...], expected: str, amtool: str
) -> None:
    """--merge-into with --whole-config, a file that is not a configuration, or one amtool
    rejects once merged: exit 2 naming it, nothing written."""
    path = tmp_path / "theirs.yml"
    path.write_text(base)
    result = render("--merge-into", path, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
