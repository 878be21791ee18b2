"""Alertmanager routing: pages for on-sale burns, business-hours tickets for normal time.

Checked with the real ``amtool`` (check-config, routes test) and a real Alertmanager.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from onsale_obs.cli._alertmanager import alertmanager_app
from onsale_obs.cli._app import build_app
from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._alertmanager import (
    check_config,
    check_text,
    checkable,
    load_receivers,
    receivers_from_data,
    render_alertmanager,
    render_command,
    render_hold_rules,
    routing_subtree,
    write_alertmanager,
)
from onsale_obs.generate._alertmanager_spec import WEEKDAYS
from onsale_obs.slo import load_spec
from onsale_obs.testing import require_binary
from onsale_obs.testing_alertmanager import AlertmanagerServer, WebhookSink

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/alertmanager/receivers.yaml"
COMMITTED = ROOT / "alert_rules" / "alertmanager.yml"

WITH_PAGERS = """
pager:
  pagerduty:
    routing_key_file: /etc/alertmanager/secrets/pagerduty
    url: https://events.eu.pagerduty.com/v2/enqueue
  opsgenie:
    api_key_file: secrets/opsgenie
    api_url: https://api.eu.opsgenie.com/
  webhook_url: https://chat.example.com/hooks/page
ticket: {webhook_url: "https://tickets.example.com/alertmanager"}
info: {webhook_url: "https://tickets.example.com/info"}
business_hours:
  time_zone: Europe/London
  weekdays: [monday:thursday, Friday]
  times: ["08:30-12:00", "13:00-17:30"]
"""


@pytest.fixture(scope="module")
def amtool() -> str:
    """The real amtool (a test failure under CI=true when it is missing)."""
    return require_binary("amtool", "prometheus-alertmanager")


def rendered(tmp_path: Path, receivers: str | None = None, name: str = "alertmanager.yml") -> Path:
    """Render a receivers YAML text (None: defaults) to a file and return its path."""
    config = None if receivers is None else receivers_from_data(yaml.safe_load(receivers))
    out = tmp_path / name
    out.write_text(render_alertmanager(config if config is not None else load_receivers(None)))
    return out


def parsed(path: Path) -> dict[str, Any]:
    """The generated file as data."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def routed_to(amtool: str, config: Path, **labels: str) -> str:
    """The receiver(s) amtool's route test picks for an alert with these labels."""
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}"]
        + [f"{k}={v}" for k, v in labels.items()],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


# -- valid configurations -----------------------------------------------------------------


def test_the_default_config_passes_amtool_check_config(tmp_path: Path, amtool: str) -> None:
    """No receivers file still gives a configuration Alertmanager accepts (webhooks on localhost)."""
    path = rendered(tmp_path)
    assert check_config(path, amtool).checked
    urls = [w["url"] for r in parsed(path)["receivers"] for w in r.get("webhook_configs", [])]
    assert all(u.startswith("http://127.0.0.1:") for u in urls)


def test_pagerduty_and_opsgenie_pass_amtool_check_config(tmp_path: Path, amtool: str) -> None:
    """A pager with PagerDuty, Opsgenie and the webhook fallback is valid and keeps all three."""
    path = rendered(tmp_path, WITH_PAGERS)
    assert check_config(path, amtool).checked
    pager = next(r for r in parsed(path)["receivers"] if r["name"] == "pager")
    assert (
        pager["pagerduty_configs"][0]["routing_key_file"] == "/etc/alertmanager/secrets/pagerduty"
    )
    assert pager["pagerduty_configs"][0]["url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    assert pager["opsgenie_configs"][0]["api_key_file"] == "secrets/opsgenie"
    assert pager["opsgenie_configs"][0]["priority"] == "{{ .CommonLabels.priority }}"
    assert pager["webhook_configs"][0]["url"] == "https://chat.example.com/hooks/page"


def test_a_pager_without_webhook_fallback_is_valid(tmp_path: Path, amtool: str) -> None:
    """webhook_url: null drops the fallback when PagerDuty is there to page."""
    path = rendered(tmp_path, "pager: {pagerduty: {routing_key_file: /k}, webhook_url: null}")
    assert check_config(path, amtool).checked
    pager = next(r for r in parsed(path)["receivers"] if r["name"] == "pager")
    assert "webhook_configs" not in pager


def test_an_onsale_p1_reaches_the_pager(tmp_path: Path, amtool: str) -> None:
    """amtool's route test with --verify.receivers accepts pager for an on-sale P1 page."""
    path = rendered(tmp_path, WITH_PAGERS)
    done = subprocess.run(
        [
            amtool, "config", "routes", "test", f"--config.file={path}",
            "--verify.receivers=pager",
            "onsale_obs=slo", "mode=onsale", "priority=P1", "slo=x", "service=y", "severity=page",
            "event=final",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "pager"


@pytest.mark.parametrize(
    ("mode", "priority", "expected"),
    [
        ("onsale", "P1", "pager"),
        ("onsale", "P2", "pager"),
        ("normal", "P3", "ticket"),
        ("normal", "P4", "info"),
        # a spec may override priorities: then the priority decides
        ("normal", "P1", "pager"),
        ("normal", "P2", "pager"),
        ("onsale", "P3", "ticket"),
        ("onsale", "P4", "info"),
        # outside the contract: the default receiver
        ("normal", "P9", "default"),
        ("maintenance", "P1", "default"),
    ],
)
def test_each_mode_and_priority_reaches_its_receiver(
    tmp_path: Path, amtool: str, mode: str, priority: str, expected: str
) -> None:
    """Every mode/priority combination is routed to the intended receiver (amtool routes test)."""
    path = rendered(tmp_path, WITH_PAGERS)
    labels = {"mode": mode, "priority": priority, "slo": "checkout-availability"}
    assert routed_to(amtool, path, onsale_obs="slo", **labels, service="checkout") == expected


def test_without_an_info_receiver_p4_opens_a_ticket(tmp_path: Path, amtool: str) -> None:
    """P4 goes to the ticket receiver when no info receiver is configured."""
    path = rendered(tmp_path)
    assert routed_to(amtool, path, onsale_obs="slo", mode="normal", priority="P4", slo="x") == (
        "ticket"
    )
    assert "info" not in [r["name"] for r in parsed(path)["receivers"]]


def test_alerts_without_the_contract_labels_go_to_default(tmp_path: Path, amtool: str) -> None:
    """An alert that is not ours, or ours without a mode, reaches the default receiver."""
    path = rendered(tmp_path)
    assert routed_to(amtool, path, alertname="Watchdog") == "default"
    assert routed_to(amtool, path, onsale_obs="slo", priority="P1") == "default"


def test_alerts_without_our_label_never_reach_our_receivers(tmp_path: Path, amtool: str) -> None:
    """Another team's on-sale P1 (mode and priority, no onsale_obs) is not paged by our routes."""
    path = rendered(tmp_path)
    assert routed_to(amtool, path, mode="onsale", priority="P1", slo="theirs") == "default"


def test_the_hold_alert_reaches_a_receiver_that_notifies_no_one(
    tmp_path: Path, amtool: str
) -> None:
    """OnsaleObsPageHold only inhibits: its receiver has no integrations."""
    path = rendered(tmp_path)
    labels = {"alertname": "OnsaleObsPageHold", "onsale_obs": "hold", "slo": "x"}
    assert routed_to(amtool, path, **labels) == "hold"
    assert {"name": "hold"} in parsed(path)["receivers"]


# -- structure: time intervals, inhibition, grouping, timing --------------------------------


def _leaves(route: dict[str, Any]) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """(mode matchers + priority matchers, leaf) under our one route below the root."""
    (ours,) = route["routes"]
    assert ours["matchers"] == ['onsale_obs=~"slo|hold"']
    for child in ours["routes"]:
        for leaf in child.get("routes", []):
            yield child["matchers"][1:] + leaf["matchers"], leaf


def test_only_p1_pages_at_any_hour(tmp_path: Path) -> None:
    """P1 routes have no time restriction; P2, P3 and P4 are active in business hours only."""
    config = parsed(rendered(tmp_path))
    assert config["route"]["receiver"] == "default"
    leaves = {tuple(m): leaf for m, leaf in _leaves(config["route"])}
    assert len(leaves) == 8
    for matchers, leaf in leaves.items():
        if 'priority="P1"' in matchers:
            assert "active_time_intervals" not in leaf
            assert "mute_time_intervals" not in leaf
        else:
            assert leaf["active_time_intervals"] == ["business-hours"]
    onsale_p1 = leaves[('mode="onsale"', 'priority="P1"')]
    assert onsale_p1["receiver"] == "pager"
    assert (onsale_p1["group_wait"], onsale_p1["repeat_interval"]) == ("10s", "1h")
    normal_p3 = leaves[('mode="normal"', 'priority="P3"')]
    assert (normal_p3["receiver"], normal_p3["group_wait"], normal_p3["repeat_interval"]) == (
        "ticket",
        "5m",
        "24h",
    )


def test_business_hours_default_to_weekdays_nine_to_five_utc(tmp_path: Path) -> None:
    """The business-hours interval is Monday-Friday 09:00-17:00 UTC unless configured."""
    config = parsed(rendered(tmp_path))
    assert config["time_intervals"] == [
        {
            "name": "business-hours",
            "time_intervals": [
                {
                    "weekdays": ["monday:friday"],
                    "times": [{"start_time": "09:00", "end_time": "17:00"}],
                    "location": "UTC",
                }
            ],
        }
    ]


def test_business_hours_take_zone_days_and_several_ranges(tmp_path: Path) -> None:
    """Configured days (names lower-cased), ranges and the time zone are written as given."""
    interval = parsed(rendered(tmp_path, WITH_PAGERS))["time_intervals"][0]["time_intervals"][0]
    assert interval == {
        "weekdays": ["monday:thursday", "friday"],
        "times": [
            {"start_time": "08:30", "end_time": "12:00"},
            {"start_time": "13:00", "end_time": "17:30"},
        ],
        "location": "Europe/London",
    }


def test_an_onsale_p1_and_its_hold_inhibit_the_same_slos_lower_priorities(
    tmp_path: Path,
) -> None:
    """On-sale P1, and the hold after it, silence P2-P4 of the same SLO (equal: [slo]); both
    sides of both rules match only our alerts."""
    assert parsed(rendered(tmp_path))["inhibit_rules"] == [
        {
            "source_matchers": ['onsale_obs="slo"', 'mode="onsale"', 'priority="P1"'],
            "target_matchers": ['onsale_obs="slo"', 'priority=~"P2|P3|P4"'],
            "equal": ["slo"],
        },
        {
            "source_matchers": ['onsale_obs="hold"', 'alertname="OnsaleObsPageHold"'],
            "target_matchers": ['onsale_obs="slo"', 'priority=~"P2|P3|P4"'],
            "equal": ["slo"],
        },
    ]


def test_alerts_are_grouped_by_slo_and_event_and_no_deprecated_match_is_used(
    tmp_path: Path,
) -> None:
    """group_by is [alertname, slo, event, mode]; routes use matchers, never match/match_re."""
    config = parsed(rendered(tmp_path))
    assert config["route"]["group_by"] == ["alertname", "slo", "event", "mode"]
    assert config["route"]["routes"][0]["group_by"] == ["alertname", "slo", "event", "mode"]
    text = json.dumps(config)
    for deprecated in ('"match"', '"match_re"', '"source_match"', '"target_match"'):
        assert deprecated not in text


def test_timing_given_in_part_keeps_the_other_defaults(tmp_path: Path) -> None:
    """Overriding one timing of a regime keeps that regime's other defaults."""
    config = parsed(rendered(tmp_path, "timing: {page: {repeat_interval: 30m}}"))
    leaves = {tuple(m): leaf for m, leaf in _leaves(config["route"])}
    p1 = leaves[('mode="onsale"', 'priority="P1"')]
    assert (p1["group_wait"], p1["group_interval"], p1["repeat_interval"]) == ("10s", "1m", "30m")


def test_output_is_deterministic_and_says_how_it_was_generated() -> None:
    """The same config renders to the same text, headed by the command that regenerates it."""
    config = load_receivers(ROOT / EXAMPLE)
    first = render_alertmanager(config, source=EXAMPLE)
    assert first == render_alertmanager(load_receivers(ROOT / EXAMPLE), source=EXAMPLE)
    assert first.startswith("# Generated by onsale-obs; do not edit by hand.")
    assert f"onsale-obs alertmanager render --receivers {EXAMPLE}" in first.splitlines()[1]
    assert list(yaml.safe_load(first)) == ["route", "inhibit_rules", "receivers", "time_intervals"]


# -- bad receivers files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("pager: {pagerdutty: {routing_key_file: /k}}", "pager.pagerdutty", "pagerduty, opsgenie"),
        ("colour: blue", "colour", "pager, ticket, info, default"),
        ("ticket: {webhook_url: 'tickets.example.com/x'}", "ticket.webhook_url", "http://"),
        ("ticket: {webhook_url: 'ftp://x/y'}", "ticket.webhook_url", "http://"),
        ("ticket: {}", "ticket.webhook_url", "required"),
        ("business_hours: {weekdays: [funday]}", "business_hours.weekdays.0", "monday"),
        ("business_hours: {weekdays: [friday:monday]}", "business_hours.weekdays.0", "backwards"),
        ("business_hours: {weekdays: [monday:sunday]}", "business_hours.weekdays.0", "Sunday"),
        ("business_hours: {times: ['9-5']}", "business_hours.times.0", "HH:MM-HH:MM"),
        ("business_hours: {times: ['25:00-26:00']}", "business_hours.times.0", "HH:MM-HH:MM"),
        ("business_hours: {times: ['17:00-09:00']}", "business_hours.times.0", "start before"),
        ("business_hours: {times: []}", "business_hours.times", "at least 1"),
        ("business_hours: {time_zone: Mars/Olympus}", "business_hours.time_zone", "IANA"),
        ("pager: 3", "pager", "expected a mapping"),
        ("pager: [pagerduty]", "pager", "expected a mapping"),
        ("pager: {webhook_url: null}", "pager", "somewhere to send pages"),
        ("pager: {pagerduty: {}}", "pager.pagerduty.routing_key_file", "required"),
        ("timing: {page: {group_wait: 1.5h}}", "timing.page.group_wait", "10s"),
        ("timing: {ticket: {group_wait: soon}}", "timing.ticket.group_wait", "duration"),
        ("timing: {page: {repeat_interval: 30s}}", "timing.page", "group_interval (1m)"),
    ],
)
def test_every_mistake_names_the_file_the_field_and_what_was_expected(
    tmp_path: Path, text: str, field: str, expected: str
) -> None:
    """A bad receivers file raises BadInputError with the file, the field and what was expected."""
    path = tmp_path / "receivers.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError) as caught:
        load_receivers(path)
    assert caught.value.file == str(path)
    assert caught.value.field == field
    assert expected in caught.value.detail, caught.value.detail
    assert str(caught.value).startswith(f"{path}, field {field!r}: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- pager\n- ticket\n", "expected a mapping at the top level"),
        ("just text", "expected a mapping at the top level"),
        ("pager: {webhook_url: [unclosed", "is not valid YAML at line 1"),
    ],
)
def test_files_that_are_not_a_mapping_or_not_yaml(tmp_path: Path, text: str, expected: str) -> None:
    """A file that is not a YAML mapping is rejected with the file named."""
    path = tmp_path / "receivers.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=expected) as caught:
        load_receivers(path)
    assert caught.value.file == str(path)


def test_a_missing_file_is_named_and_an_empty_one_gives_defaults(tmp_path: Path) -> None:
    """A missing receivers file is a clear error; an empty one means "all defaults"."""
    with pytest.raises(BadInputError, match="does not exist; expected a receivers YAML file"):
        load_receivers(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert load_receivers(empty) == load_receivers(None)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@given(st.integers(0, 24 * 60), st.integers(0, 24 * 60))
def test_time_ranges_within_a_day_are_accepted_and_kept(start: int, end: int) -> None:
    """HH:MM-HH:MM is accepted exactly when it starts before it ends (00:00..24:00)."""
    text = f"{_clock(start)}-{_clock(end)}"
    data = {"business_hours": {"times": [text]}}
    if start < end:
        assert receivers_from_data(data).business_hours.times == [text]
    else:
        with pytest.raises(BadInputError, match="start before it ends"):
            receivers_from_data(data)


@given(st.sampled_from(WEEKDAYS), st.sampled_from(WEEKDAYS))
def test_weekday_ranges_follow_alertmanagers_week_from_sunday(first: str, last: str) -> None:
    """first:last is accepted when first does not come after last in a Sunday-first week."""
    data = {"business_hours": {"weekdays": [f"{first.upper()}:{last}"]}}
    if WEEKDAYS.index(first) <= WEEKDAYS.index(last):
        assert receivers_from_data(data).business_hours.weekdays == [f"{first}:{last}"]
    else:
        with pytest.raises(BadInputError, match="backwards"):
            receivers_from_data(data)


# -- writing ------------------------------------------------------------------------------


def test_a_config_amtool_rejects_is_never_written(tmp_path: Path, amtool: str) -> None:
    """When amtool rejects the text, the target keeps its old bytes and no temp file is left."""
    out = tmp_path / "alertmanager.yml"
    out.write_text("previous\n")
    broken = "route:\n  receiver: nobody\nreceivers:\n  - name: default\n"
    with pytest.raises(BadInputError, match='undefined receiver "nobody"') as caught:
        write_alertmanager(broken, out, amtool=amtool, file="receivers.yaml")
    assert caught.value.file == "receivers.yaml"
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alertmanager.yml"]


def test_writing_is_checked_and_readable(tmp_path: Path, amtool: str) -> None:
    """A good config is written (folder created), checked by amtool, and readable by others."""
    out = tmp_path / "alert_rules" / "alertmanager.yml"
    text = render_alertmanager(load_receivers(None))
    assert write_alertmanager(text, out, amtool=amtool).checked
    assert out.read_text() == text
    assert out.stat().st_mode & 0o777 == 0o644


# -- the command line ---------------------------------------------------------------------


def cli() -> typer.Typer:
    """The root app with the alertmanager group (registered here until _app lists it)."""
    app = build_app()
    if not any(group.name == "alertmanager" for group in app.registered_groups):
        app.add_typer(alertmanager_app, name="alertmanager")
    return app


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli(), ["alertmanager", "render", *(str(a) for a in args)])


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_render_writes_the_subtree_and_the_hold_then_check_detects_drift(
    tmp_path: Path, amtool: str
) -> None:
    """render --out DIR writes the subtree and the hold rule; --check exits 0 when they match
    and 1, naming the file and the command, when one drifted or is missing."""
    out = tmp_path / "alert_rules"
    receivers = ROOT / EXAMPLE
    written = invoke("--receivers", receivers, "--out", out)
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == [
        "alertmanager-hold.rules.yml",
        "alertmanager-routes.yml",
    ]
    subtree = yaml.safe_load((out / "alertmanager-routes.yml").read_text())
    assert list(subtree) == ["routes", "inhibit_rules", "receivers", "time_intervals"]
    assert invoke("--receivers", receivers, "--out", out, "--check").exit_code == 0
    routes = out / "alertmanager-routes.yml"
    routes.write_text(routes.read_text().replace("repeat_interval: 1h", "repeat_interval: 2h"))
    drift = invoke("--receivers", receivers, "--out", out, "--check")
    assert drift.exit_code == 1
    assert f"out of date: {routes}" in drift.stderr
    assert "onsale-obs alertmanager render --receivers" in drift.stderr
    (out / "alertmanager-hold.rules.yml").unlink()
    assert invoke("--receivers", receivers, "--out", out, "--check").exit_code == 1
    whole = invoke("--receivers", receivers, "--out", out, "--whole-config", "--check")
    assert whole.exit_code == 1  # no alertmanager.yml there
    assert "alertmanager.yml" in whole.stderr


def test_whole_config_writes_alertmanager_yml(tmp_path: Path, amtool: str) -> None:
    """--whole-config writes DIR/alertmanager.yml, a config Alertmanager loads as it is."""
    result = invoke("--out", tmp_path, "--whole-config")
    assert result.exit_code == 0, result.output
    assert check_config(tmp_path / "alertmanager.yml", amtool).checked
    assert (tmp_path / "alertmanager.yml").read_text() == render_alertmanager(
        load_receivers(None), out=f"{tmp_path}/", whole=True
    )


def test_the_header_names_the_command_that_wrote_it(
    tmp_path: Path, amtool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header repeats the spec, receivers, folder and form actually given (paths inside
    the working folder relative to it)."""
    monkeypatch.chdir(ROOT)
    spec = "examples/ticketing/slo.yaml"
    result = invoke("--spec", ROOT / spec, "--receivers", EXAMPLE, "--out", tmp_path / "am")
    assert result.exit_code == 0, result.output
    second = (tmp_path / "am" / "alertmanager-routes.yml").read_text().splitlines()[1]
    assert second == (
        f"#   onsale-obs alertmanager render --spec {spec} --receivers {EXAMPLE} "
        f"--out {tmp_path / 'am'}/"
    )
    hold = (tmp_path / "am" / "alertmanager-hold.rules.yml").read_text()
    assert f"--spec {spec}" in hold


def test_config_is_a_deprecated_alias_of_receivers(tmp_path: Path, amtool: str) -> None:
    """--config still works, warns, and writes what --receivers writes."""
    old = invoke("--config", ROOT / EXAMPLE, "--out", tmp_path / "old")
    assert old.exit_code == 0, old.output
    assert "--config is deprecated" in old.stderr
    new = invoke("--receivers", ROOT / EXAMPLE, "--out", tmp_path / "new")
    assert new.exit_code == 0, new.output
    assert "deprecated" not in new.stderr
    for name in ("alertmanager-routes.yml", "alertmanager-hold.rules.yml"):
        old_text = (tmp_path / "old" / name).read_text()
        assert old_text.replace("/old/", "/new/") == (tmp_path / "new" / name).read_text()
    both = invoke("--config", ROOT / EXAMPLE, "--receivers", ROOT / EXAMPLE, "--out", tmp_path)
    assert both.exit_code == 2
    assert "--receivers" in both.stderr


def test_an_existing_file_as_out_still_gets_the_whole_config(tmp_path: Path, amtool: str) -> None:
    """The old --out FILE writes the whole configuration there as before, with a warning;
    --check compares it."""
    out = tmp_path / "alertmanager.yml"
    out.write_text("previous\n")
    result = invoke("--out", out)
    assert result.exit_code == 0, result.output
    assert "--out takes a folder now" in result.stderr
    assert "--whole-config" in result.stderr
    assert check_config(out, amtool).checked
    assert "route" in parsed(out)
    assert invoke("--out", out, "--check").exit_code == 0
    out.write_text("previous\n")
    assert invoke("--out", out, "--check").exit_code == 1
    new = invoke("--out", tmp_path / "new.yml")  # a YAML name that does not exist yet
    assert new.exit_code == 0, new.output
    assert (tmp_path / "new.yml").is_file()


def test_without_amtool_it_writes_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without amtool on PATH the files are still written, with a warning that they were not
    checked."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke("--out", tmp_path / "out", "--whole-config")
    assert result.exit_code == 0, result.output
    assert "amtool not found on PATH" in result.stderr
    assert (tmp_path / "out" / "alertmanager.yml").read_text() == render_alertmanager(
        load_receivers(None), out=f"{tmp_path / 'out'}/", whole=True
    )


def test_render_to_stdout(amtool: str) -> None:
    """--out - prints the subtree and nothing else on stdout; stderr says the hold is missing."""
    result = invoke("--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout == render_alertmanager(load_receivers(None), out="DIR", whole=False)
    assert "hold rule" in result.stderr


def test_bad_input_exits_2_naming_the_file_and_field(tmp_path: Path) -> None:
    """A bad receivers file, a missing one, a bad spec, or --check with stdout exit 2 with a
    message, and nothing is written."""
    bad = tmp_path / "receivers.yaml"
    bad.write_text("business_hours: {weekdays: [funday]}\n")
    result = invoke("--receivers", bad, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {bad}, field 'business_hours.weekdays.0':" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    missing = invoke("--receivers", tmp_path / "nope.yaml")
    assert missing.exit_code == 2
    assert "nope.yaml: does not exist" in missing.stderr
    spec = tmp_path / "slo.yaml"
    spec.write_text("slos: 3\n")
    wrong = invoke("--spec", spec, "--out", tmp_path / "out")
    assert wrong.exit_code == 2
    assert str(spec) in wrong.stderr
    assert "Traceback" not in wrong.output
    assert not (tmp_path / "out").exists()
    assert invoke("--out", "-", "--check").exit_code == 2


def test_the_help_has_examples() -> None:
    """render --help explains the routing and shows examples."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "onsale-obs alertmanager render --spec" in result.stdout
    assert "--config" not in result.stdout  # hidden: deprecated


# -- the committed files ------------------------------------------------------------------


def test_the_committed_files_are_what_the_example_generates(amtool: str) -> None:
    """alert_rules/ holds the subtree, the whole file and the hold rule exactly as the two
    commands of the README write them, and amtool accepts them."""
    spec = "examples/ticketing/slo.yaml"
    receivers = load_receivers(ROOT / EXAMPLE)
    hold = render_hold_rules(load_spec(ROOT / spec), spec_source=spec)
    for whole, name in ((False, "alertmanager-routes.yml"), (True, "alertmanager.yml")):
        expected = render_alertmanager(
            receivers, source=EXAMPLE, spec=spec, out="alert_rules/", whole=whole
        )
        command = render_command(EXAMPLE, spec=spec, out="alert_rules/", whole=whole)
        assert (ROOT / "alert_rules" / name).read_text() == expected, f"run: {command}"
    assert (ROOT / "alert_rules" / "alertmanager-hold.rules.yml").read_text() == hold
    assert check_config(COMMITTED, amtool).checked
    assert check_text(checkable(routing_subtree(receivers)), amtool=amtool).checked


# -- a real Alertmanager ------------------------------------------------------------------


@pytest.fixture
def webhooks() -> Iterator[WebhookSink]:
    """A webhook server on a free loopback port."""
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def alertmanager(tmp_path: Path, webhooks: WebhookSink) -> Iterator[str]:
    """A real prometheus-alertmanager with a generated config; yields its base URL.

    Business hours cover the whole week so the test does not depend on the time it runs;
    timings are a second so notifications arrive during the test.
    """
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    hook = webhooks.url
    fast = "{group_wait: 1s, group_interval: 1s, repeat_interval: 1h}"
    receivers = f"""
pager: {{webhook_url: "{hook}/page"}}
ticket: {{webhook_url: "{hook}/ticket"}}
default: {{webhook_url: "{hook}/default"}}
business_hours: {{weekdays: ["sunday:saturday"], times: ["00:00-24:00"]}}
timing: {{page: {fast}, business_page: {fast}, ticket: {fast}, default: {fast}}}
"""
    config = rendered(tmp_path, receivers).read_text()
    with AlertmanagerServer(config, binary=binary) as server:
        yield server.url


def _alert(**labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": "SLOBurn", "onsale_obs": "slo", **labels},
        "annotations": {"summary": "burning"},
    }


def _poll(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_real_alertmanager_routes_pages_and_tickets(
    alertmanager: str, webhooks: WebhookSink
) -> None:
    """Alertmanager sends an on-sale P1 to the pager and a normal P3 (other SLO) to the ticket."""
    page = _alert(
        mode="onsale", priority="P1", severity="page", slo="checkout-availability",
        service="checkout", event="final",
    )  # fmt: skip
    ticket = _alert(
        mode="normal", priority="P3", severity="ticket", slo="search-latency", service="search"
    )
    posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=[page, ticket], timeout=5)
    assert posted.status_code == 200, posted.text

    def groups() -> dict[str, str]:
        found = httpx.get(f"{alertmanager}/api/v2/alerts/groups", timeout=5).json()
        return {g["labels"]["slo"]: g["receiver"]["name"] for g in found}

    assert _poll(lambda: len(groups()) == 2)
    assert groups() == {"checkout-availability": "pager", "search-latency": "ticket"}
    assert _poll(lambda: len(webhooks.paths()) >= 2)
    assert sorted(webhooks.paths()) == [("/page", "firing"), ("/ticket", "firing")]


def test_a_real_alertmanager_inhibits_below_an_onsale_p1(
    alertmanager: str, webhooks: WebhookSink
) -> None:
    """With an on-sale P1 firing, the same SLO's normal P3 is suppressed and never notified."""
    p1 = _alert(mode="onsale", priority="P1", severity="page", slo="checkout", service="c")
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=[p1], timeout=5).status_code == 200
    assert _poll(lambda: webhooks.paths() == [("/page", "firing")])
    p3 = _alert(mode="normal", priority="P3", severity="ticket", slo="checkout", service="c")
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=[p3], timeout=5).status_code == 200

    def p3_state() -> dict[str, Any]:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        found = [a for a in alerts if a["labels"]["priority"] == "P3"]
        return found[0]["status"] if found else {}

    status = _poll(lambda: p3_state().get("state") == "suppressed" and p3_state())
    assert status["state"] == "suppressed"
    assert status["inhibitedBy"]
    time.sleep(2.5)  # two group intervals: a notification would have gone out by now
    assert ("/ticket", "firing") not in webhooks.paths()
