"""Grafana dashboards from the SLO spec: content, determinism, drift check, and real PromQL."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from onsale_obs.cli._app import build_app
from onsale_obs.cli._dashboards import dashboards_app
from onsale_obs.generate._dashboards import (
    OVERVIEW_FILE,
    PROVIDER_FILE,
    PROVIDER_PATH,
    panel_queries,
    provider_yaml,
    render_dashboards,
    service_file,
)
from onsale_obs.generate._dashboards_parts import UID_MAX, slug, uid
from onsale_obs.generate._rules import render_rules
from onsale_obs.slo import LatencySLI, SLOSpec, load_spec
from onsale_obs.testing import require_binary
from onsale_obs.testing_prometheus import PrometheusServer, backfill

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "ticketing" / "slo.yaml"
COMMITTED = ROOT / "dashboards"
SERVICES = ("checkout", "gateway", "inventory")
MODES = ("normal", "onsale")
Json = dict[str, Any]


@pytest.fixture(scope="module")
def spec() -> SLOSpec:
    """The example ticketing spec."""
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def rendered(spec: SLOSpec) -> dict[str, str]:
    """Every dashboard of the example spec, as JSON text."""
    return render_dashboards(spec)


@pytest.fixture(scope="module")
def boards(rendered: dict[str, str]) -> dict[str, Json]:
    """Every dashboard of the example spec, parsed."""
    return {name: json.loads(text) for name, text in rendered.items()}


def panels(board: Json) -> list[Json]:
    """The panels of a dashboard that are not rows, rows' children included."""
    out: list[Json] = []
    for panel in board["panels"]:
        if panel["type"] != "row":
            out.append(panel)
        out.extend(panels(panel) if panel.get("panels") else [])
    return out


def by_title(board: Json, title: str) -> Json:
    """The one panel called ``title``."""
    found = [p for p in panels(board) if p["title"] == title]
    assert len(found) == 1, f"{len(found)} panels called {title!r}"
    return found[0]


def exprs(panel: Json) -> list[str]:
    """The PromQL of a panel's targets."""
    return [t["expr"] for t in panel["targets"]]


def variable(board: Json, name: str) -> Json:
    """The template variable called ``name``."""
    found: list[Json] = [v for v in board["templating"]["list"] if v["name"] == name]
    assert len(found) == 1, f"no variable {name!r}"
    return found[0]


def side_by_side(board: Json, left: str, right: str) -> None:
    """``left`` and ``right`` panels share a grid row, ``left`` first."""
    a, b = by_title(board, left)["gridPos"], by_title(board, right)["gridPos"]
    assert a["y"] == b["y"], (left, a, right, b)
    assert a["x"] + a["w"] <= b["x"], (left, a, right, b)


# ---- content ------------------------------------------------------------------------------


def test_files_are_the_overview_and_one_per_service(rendered: dict[str, str]) -> None:
    """One overview and one dashboard per service of the spec, named after the service."""
    assert sorted(rendered) == sorted(
        [OVERVIEW_FILE, *(f"onsale-service-{s}.json" for s in SERVICES)]
    )


def test_render_is_deterministic_and_formatted(spec: SLOSpec, rendered: dict[str, str]) -> None:
    """Rendering twice gives the same text: sorted keys, 2-space indent, trailing newline."""
    assert render_dashboards(spec) == rendered
    for text in rendered.values():
        assert (
            text
            == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        )


def test_committed_dashboards_match_the_spec(rendered: dict[str, str]) -> None:
    """dashboards/ holds exactly what the example spec renders (the CI drift check)."""
    on_disk = {p.name: p.read_text() for p in COMMITTED.glob("onsale-*.json")}
    assert sorted(on_disk) == sorted(rendered), (
        "run: onsale-obs dashboards render --spec examples/ticketing/slo.yaml"
    )
    for name, text in rendered.items():
        assert on_disk[name] == text, f"dashboards/{name} is out of date"


def test_uids_are_stable_unique_and_short(boards: dict[str, Json]) -> None:
    """UIDs come from names, fit Grafana's 40 characters and differ between dashboards."""
    uids = {name: b["uid"] for name, b in boards.items()}
    assert uids[OVERVIEW_FILE] == "onsale-overview"
    for service in SERVICES:
        assert uids[service_file(service)] == f"onsale-service-{service}"
    assert len(set(uids.values())) == len(uids)
    long_name = "a-service-with-a-really-long-name-" * 3
    assert len(uid("onsale-service", long_name)) <= UID_MAX
    assert uid("onsale-service", long_name) == uid("onsale-service", long_name)
    assert slug("Check Out") != slug("check-out")


def test_panels_have_ids_positions_and_the_datasource_variable(boards: dict[str, Json]) -> None:
    """Panel ids are unique, panels never overlap, every query reads ``$datasource``."""
    for name, board in boards.items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for p in board["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, p["title"])
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & area, f"{name}: {p['title']} overlaps another panel"
            cells |= area
        source = variable(board, "datasource")
        assert source["type"] == "datasource"
        assert source["query"] == "prometheus"
        for p in panels(board):
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}"
                assert t["refId"], p["title"]


def test_every_dashboard_marks_onsale_windows(boards: dict[str, Json]) -> None:
    """Each dashboard has an annotation of the on-sale windows from ``onsale_mode``."""
    for name, board in boards.items():
        annotations = board["annotations"]["list"]
        assert len(annotations) == 1, name
        onsale = annotations[0]
        assert "onsale_mode" in onsale["expr"], name
        assert onsale["expr"].endswith("== 1"), name
        assert "max by (scope)" in onsale["expr"]
        assert onsale["enable"]
        assert onsale["datasource"]["uid"] == "${datasource}"
        assert onsale["titleFormat"] == "On sale: {{scope}}"


def test_overview_has_budget_and_burn_per_mode_for_every_slo(
    spec: SLOSpec, boards: dict[str, Json]
) -> None:
    """Per SLO of the spec: budget remaining and burn rate, normal time beside on-sale."""
    board = boards[OVERVIEW_FILE]
    service = variable(board, "service")
    assert service["query"] == "label_values(slo:error_budget_remaining:ratio, service)"
    assert service["includeAll"]
    assert service["multi"]
    assert service["allValue"] == ".*"
    rows = [p for p in board["panels"] if p["type"] == "row"]
    body = board["panels"]
    for slo in spec.slos:
        start = next(
            i
            for i, p in enumerate(body)
            if p["type"] == "row" and p["title"].startswith(f"{slo.name} (")
        )
        mine = body[start + 1 : start + 5]
        assert [p["type"] for p in mine] == ["stat"] * 4
        budget = {m: mine[i] for i, m in enumerate(MODES)}
        burn = {m: mine[2 + i] for i, m in enumerate(MODES)}
        for mode in MODES:
            [expr] = exprs(budget[mode])
            assert expr == (
                f'slo:error_budget_remaining:ratio{{slo="{slo.name}",service=~"$service",mode="{mode}"}}'
            )
            assert budget[mode]["fieldConfig"]["defaults"]["unit"] == "percentunit"
            assert all(
                f'slo="{slo.name}"' in e
                and f'mode="{mode}"' in e
                and e.startswith("slo:burn_rate:ratio_rate")
                for e in exprs(burn[mode])
            )
        assert [p["gridPos"]["y"] for p in mine] == [mine[0]["gridPos"]["y"]] * 4
        assert [p["gridPos"]["x"] for p in mine] == [0, 6, 12, 18]
    assert len(rows) == len(spec.slos) + 1


def test_overview_burn_rates_use_each_modes_fast_windows(boards: dict[str, Json]) -> None:
    """On-sale burn is over 5m and 1m, normal over 1h and 5m (the fastest alerts' windows)."""
    body = boards[OVERVIEW_FILE]["panels"]
    start = next(i for i, p in enumerate(body) if p["title"].startswith("checkout-availability ("))
    normal, onsale = body[start + 3], body[start + 4]
    assert [t["legendFormat"] for t in normal["targets"]] == ["1h", "5m"]
    assert [t["legendFormat"] for t in onsale["targets"]] == ["5m", "1m"]
    steps = [s["value"] for s in onsale["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 6.0, 14.4]


def test_service_dashboard_variables(boards: dict[str, Json]) -> None:
    """Service (defaulting to the dashboard's own) and event variables from label_values."""
    for service in SERVICES:
        board = boards[service_file(service)]
        svc = variable(board, "service")
        assert svc["query"] == "label_values(onsale_requests_total, service)"
        assert svc["current"]["value"] == service
        assert not svc["multi"]
        event = variable(board, "event")
        assert event["query"] == 'label_values(onsale_requests_total{service="$service"}, event)'
        assert event["multi"]
        assert event["includeAll"]
        assert event["allValue"] == ".*"
        assert event["current"]["value"] == "$__all"


def test_service_dashboard_splits_traffic_by_mode(boards: dict[str, Json]) -> None:
    """Request rate, error ratio and p50/p95/p99 latency: normal beside on-sale, per mode."""
    for service in SERVICES:
        board = boards[service_file(service)]
        for what in (
            "Request rate",
            "Error ratio",
            "Latency",
            "Budget remaining",
            "Budget burn-down",
            "Burn rate",
        ):
            side_by_side(board, f"{what}: normal time", f"{what}: on-sale")
        for mode, title in (("normal", "normal time"), ("onsale", "on-sale")):
            [rate] = exprs(by_title(board, f"Request rate: {title}"))
            assert rate == (
                "sum by (mode, code) (rate(onsale_requests_total"
                f'{{service="$service",mode="{mode}",event=~"$event"}}[$__rate_interval]))'
            )
            [ratio] = exprs(by_title(board, f"Error ratio: {title}"))
            assert 'code=~"5xx"' in ratio
            assert (
                ratio.count("[$__rate_interval]") == 3
            )  # errors, or 0 x all (no errors yet), over all
            latency = exprs(by_title(board, f"Latency: {title}"))
            assert [e.split(",")[0] for e in latency] == [
                "histogram_quantile(0.5",
                "histogram_quantile(0.95",
                "histogram_quantile(0.99",
            ]
            assert all(
                "sum by (le, mode) (rate(onsale_request_duration_seconds_bucket{" in e
                and f'mode="{mode}"' in e
                for e in latency
            )
            [down] = exprs(by_title(board, f"Budget burn-down: {title}"))
            assert down == f'slo:error_budget_remaining:ratio{{service="$service",mode="{mode}"}}'
            assert (
                by_title(board, f"Budget burn-down: {title}")["targets"][0]["legendFormat"]
                == "{{slo}}"
            )
        exit_rate = by_title(board, "Exit rate recommended")
        assert exprs(exit_rate) == ['onsale_exit_rate_recommended{event=~"$event"}']


def test_every_rate_uses_rate_interval(boards: dict[str, Json]) -> None:
    """Every range vector in a panel is ``[$__rate_interval]``: Grafana picks it from the scrape interval."""
    for name, board in boards.items():
        for expr in panel_queries(board):
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", (name, expr)


def test_objective_lines_come_from_the_spec(spec: SLOSpec, boards: dict[str, Json]) -> None:
    """Checkout's error-ratio and latency panels draw each mode's own budget and threshold."""
    board = boards[service_file("checkout")]
    latency_sli = spec.get("checkout-latency").sli
    assert isinstance(latency_sli, LatencySLI)

    def line(title: str) -> float:
        return float(
            by_title(board, title)["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
        )

    assert line("Error ratio: normal time") == 0.001
    assert line("Error ratio: on-sale") == 0.0001
    assert line("Latency: normal time") == latency_sli.threshold["normal"] == 0.25
    assert line("Latency: on-sale") == latency_sli.threshold["onsale"] == 1.0
    gateway = boards[service_file("gateway")]
    assert "thresholds" not in by_title(gateway, "Latency: on-sale")["fieldConfig"]["defaults"]


def test_recording_rules_used_are_the_ones_generated(
    spec: SLOSpec, boards: dict[str, Json]
) -> None:
    """Every ``slo:*`` series a dashboard reads is a recording rule ``rules render`` writes."""
    recorded = {
        r["record"] for g in render_rules(spec)["groups"] for r in g["rules"] if "record" in r
    }
    used = {
        m
        for b in boards.values()
        for e in panel_queries(b)
        for m in re.findall(r"slo:[a-z_]+:[a-z_0-9]+", e)
    }
    assert used, "the dashboards read no recording rule"
    assert used <= recorded, sorted(used - recorded)


# ---- panel_queries ------------------------------------------------------------------------


def test_panel_queries_substitutes_variables() -> None:
    """``$x``, ``${x}``, ``${x:regex}`` and ``[[x]]`` are replaced; label_values yields its selector."""
    board = {
        "panels": [
            {"type": "row", "panels": [{"targets": [{"expr": 'up{a="$a"}[${w}]'}]}]},
            {"targets": [{"expr": 'x{b=~"${b:regex}",c="[[c]]"}'}, {"expr": 'up{a="$a"}[${w}]'}]},
        ],
        "annotations": {"list": [{"builtIn": 1, "expr": "ignored"}, {"expr": "m == 1"}]},
        "templating": {
            "list": [
                {"type": "query", "query": 'label_values(up{job="a,b"}, instance)'},
                {"type": "query", "query": {"query": "query_result(topk(3, up))"}},
                {"type": "query", "query": "label_values(job)"},
                {"type": "datasource", "query": "prometheus"},
            ]
        },
    }
    assert panel_queries(board) == [
        'up{a="$a"}[${w}]',
        'x{b=~"${b:regex}",c="[[c]]"}',
        "m == 1",
        'up{job="a,b"}',
        "topk(3, up)",
    ]
    values = {"a": "1", "b": ".*", "c": "z", "w": "1m"}
    assert panel_queries(json.dumps(board), values)[:2] == ['up{a="1"}[1m]', 'x{b=~".*",c="z"}']
    with pytest.raises(ValueError, match="w"):
        panel_queries(board, {"a": "1", "b": ".*", "c": "z"})


# ---- the CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    """The root command with the dashboards group (added here until _app registers it)."""
    app = build_app()
    if "dashboards" not in {g.name for g in app.registered_groups}:
        app.add_typer(dashboards_app, name="dashboards")
    return app


def run(cli: typer.Typer, *args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["dashboards", "render", *(str(a) for a in args)])


def test_cli_writes_then_check_passes(
    cli: typer.Typer, tmp_path: Path, rendered: dict[str, str]
) -> None:
    """``render`` writes every file; ``--check`` right after finds no drift."""
    out = tmp_path / "boards"
    result = run(cli, "--spec", SPEC, "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        **rendered,
        PROVIDER_FILE: provider_yaml(),
    }
    assert run(cli, "--spec", SPEC, "--out", out, "--check").exit_code == 0


def test_cli_check_reports_drift_and_stale_files(cli: typer.Typer, tmp_path: Path) -> None:
    """A changed, missing or stale dashboard makes ``--check`` exit 1 and say which; render fixes it."""
    assert run(cli, "--spec", SPEC, "--out", tmp_path).exit_code == 0
    edited = tmp_path / "onsale-service-checkout.json"
    edited.write_text(edited.read_text().replace("Request rate", "Requests"))
    (tmp_path / OVERVIEW_FILE).unlink()
    stale = tmp_path / "onsale-service-retired.json"
    stale.write_text("{}\n")
    result = run(cli, "--spec", SPEC, "--out", tmp_path, "--check")
    assert result.exit_code == 1
    assert f"out of date: {edited}" in result.output
    assert f"out of date: {tmp_path / OVERVIEW_FILE}" in result.output
    assert '-      "title": "Requests: normal time",' in result.output
    assert '+      "title": "Request rate: normal time",' in result.output
    assert f"stale: {stale}" in result.output
    fixed = run(cli, "--spec", SPEC, "--out", tmp_path)
    assert fixed.exit_code == 0
    assert f"removed {stale}" in fixed.output
    assert not stale.exists()
    assert run(cli, "--spec", SPEC, "--out", tmp_path, "--check").exit_code == 0


def test_cli_bad_input_exits_2(cli: typer.Typer, tmp_path: Path) -> None:
    """A missing or invalid spec, or --out naming a file, is exit code 2 with the file named."""
    missing = run(cli, "--spec", tmp_path / "nope.yaml", "--out", tmp_path)
    assert missing.exit_code == 2
    assert "nope.yaml: does not exist" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("slos:\n  - name: x\n")
    invalid = run(cli, "--spec", broken, "--out", tmp_path)
    assert invalid.exit_code == 2
    assert "broken.yaml" in invalid.output
    a_file = tmp_path / "file.json"
    a_file.write_text("")
    not_dir = run(cli, "--spec", SPEC, "--out", a_file)
    assert not_dir.exit_code == 2
    assert "is not a folder" in not_dir.output
    assert "Traceback" not in missing.output + invalid.output + not_dir.output


def test_cli_help_has_examples(cli: typer.Typer) -> None:
    """``--help`` shows how to render and how to check in CI."""
    result = CliRunner().invoke(cli, ["dashboards", "render", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Examples" in result.output
    assert "--check" in result.output


# ---- every query on a real Prometheus -----------------------------------------------------

STEP = 15
SPAN = 1800


def _openmetrics(spec: SLOSpec, start: int) -> str:
    """Half an hour of every metric the dashboards read, scraped every 15 s, on-sale throughout.

    The recording-rule series are the names and labels ``rules render`` writes, so a
    dashboard that reads a window the rules lack finds nothing and fails the test.
    """
    stamps = range(start, start + SPAN + 1, STEP)
    lines: list[str] = []

    def series(name: str, labels: str, value: Any) -> None:
        lines.extend(f"{name}{{{labels}}} {value(i)} {t}" for i, t in enumerate(stamps))

    lines.append("# TYPE onsale_requests counter")
    for service in SERVICES:
        for mode in MODES:
            event = "final" if mode == "onsale" else ""
            for code, per in (("2xx", 100), ("5xx", 1)):
                labels = f'service="{service}",route="/r",method="POST",code="{code}",mode="{mode}",event="{event}"'
                series("onsale_requests_total", labels, lambda i, per=per: i * per)
    lines.append("# TYPE onsale_request_duration_seconds histogram")
    for service in SERVICES:
        for mode in MODES:
            event = "final" if mode == "onsale" else ""
            for le, share in (("0.1", 50), ("0.25", 80), ("1.0", 99), ("+Inf", 100)):
                labels = f'service="{service}",route="/r",method="POST",mode="{mode}",event="{event}",le="{le}"'
                series("onsale_request_duration_seconds_bucket", labels, lambda i, s=share: i * s)
    lines.append("# TYPE onsale_mode gauge")
    series("onsale_mode", 'scope="global"', lambda i: 0)
    series("onsale_mode", 'scope="event:final"', lambda i: 1)
    lines.append("# TYPE onsale_exit_rate_recommended gauge")
    series("onsale_exit_rate_recommended", 'event="final"', lambda i: 300 + i)
    by_name: dict[str, list[str]] = {}
    for group in render_rules(spec)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                slo, service = rule["labels"]["slo"], rule["labels"]["service"]
                for mode in MODES:
                    by_name.setdefault(rule["record"], []).append(
                        f'slo="{slo}",service="{service}",mode="{mode}"'
                    )
    for name, label_sets in sorted(by_name.items()):
        lines.append(f"# TYPE {name} gauge")
        for labels in dict.fromkeys(label_sets):
            series(name, labels, lambda i: 0.5)
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(
    spec: SLOSpec, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """A real Prometheus over a TSDB backfilled with :func:`_openmetrics`; yields (url, query time)."""
    require_binary("prometheus", "prometheus")
    require_binary("promtool", "prometheus")
    start = int(time.time()) // 3600 * 3600 - 3 * 3600
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(_openmetrics(spec, start), tsdb)
    with PrometheusServer(tsdb_path=tsdb) as server:
        yield server.url, start + SPAN - 60


@pytest.mark.parametrize("event", [".*", "final"])
def test_every_query_runs_on_prometheus(
    prometheus: tuple[str, int], rendered: dict[str, str], event: str
) -> None:
    """Each query of each dashboard is valid PromQL and, for all events, returns data."""
    url, at = prometheus
    failures: list[str] = []
    with httpx.Client(base_url=url, timeout=10.0) as http:
        for name, text in rendered.items():
            # the overview's service variable is multi-valued: "All" is .*
            service = next((s for s in SERVICES if name == service_file(s)), ".*")
            values = {
                "__rate_interval": "1m",
                "service": service,
                "event": event,
                "datasource": "x",
            }
            for expr in panel_queries(text, values):
                answer = http.get("/api/v1/query", params={"query": expr, "time": at}).json()
                if answer["status"] != "success":
                    failures.append(f"{name}: {expr}: {answer.get('error')}")
                elif event == ".*" and not answer["data"]["result"]:
                    failures.append(f"{name}: {expr}: no data")
    assert not failures, "\n".join(failures)


def test_out_dash_is_refused_not_a_folder_called_dash(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'--out -' cannot mean standard output for several files: exit 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    result = run(cli, "--spec", SPEC, "--out", "-")
    assert result.exit_code == 2, result.output
    assert "give a folder" in " ".join(result.output.split())
    assert not (tmp_path / "-").exists()


# ---- Grafana provisioning and the SDK's dashboard model -----------------------------------


def test_committed_provider_file_matches() -> None:
    assert (COMMITTED / PROVIDER_FILE).read_text() == provider_yaml(), (
        "run: onsale-obs dashboards render --spec examples/ticketing/slo.yaml"
    )


def test_the_provider_file_provisions_the_folder_of_dashboards(
    cli: typer.Typer, tmp_path: Path
) -> None:
    """Grafana's file provider (apiVersion 1) pointed at --provider-path; --check covers it."""
    result = run(cli, "--spec", SPEC, "--out", tmp_path, "--provider-path", "/srv/boards")
    assert result.exit_code == 0, result.output
    provider = yaml.safe_load((tmp_path / PROVIDER_FILE).read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"] == {"path": "/srv/boards", "foldersFromFilesStructure": False}
    assert entry["allowUiUpdates"] is False  # the spec is the source: no edits in the UI
    assert entry["disableDeletion"] is False  # a service's removed file removes its board
    assert isinstance(entry["orgId"], int)
    assert isinstance(entry["updateIntervalSeconds"], int)
    assert run(cli, "--spec", SPEC, "--out", tmp_path, "--check").exit_code == 1  # other path
    assert PROVIDER_PATH in provider_yaml()
    (tmp_path / PROVIDER_FILE).unlink()
    result = run(
        cli, "--spec", SPEC, "--out", tmp_path, "--check", "--provider-path", "/srv/boards"
    )
    assert result.exit_code == 1
    assert f"out of date: {tmp_path / PROVIDER_FILE}" in result.output


#: keys the SDK's AnnotationQuery does not model: Prometheus' own annotation options, which
#: Grafana reads from the annotation's JSON (see _dashboards_parts._PrometheusAnnotationQuery)
PROMETHEUS_ANNOTATION_KEYS = {"tagKeys", "titleFormat", "useValueForTime"}


def sdk_round_trip(board: Json) -> tuple[Any, Json]:
    """The dashboard decoded by grafana-foundation-sdk's model (panel and datasource plugins
    registered, so options and queries decode to their typed models), and encoded back."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    model = Dashboard.from_json(board)
    back: Json = json.loads(json.dumps(model, cls=JSONEncoder))
    return model, back


def without_annotation_extras(board: Json) -> Json:
    copy: Json = json.loads(json.dumps(board))
    for annotation in copy.get("annotations", {}).get("list", []):
        for key in PROMETHEUS_ANNOTATION_KEYS:
            annotation.pop(key, None)
    return copy


def test_dashboards_load_in_the_sdk_model(boards: dict[str, Json]) -> None:
    """Every dashboard decodes into the SDK's typed model and encodes back to the same JSON:
    no key the model does not know (it would be dropped), no value of the wrong shape."""
    from grafana_foundation_sdk.models import dashboard as model
    from grafana_foundation_sdk.models import prometheus, stat, timeseries

    typed_options = {"timeseries": timeseries.Options, "stat": stat.Options}
    for name, board in boards.items():
        decoded, back = sdk_round_trip(board)
        assert back == without_annotation_extras(board), name
        assert decoded.uid == board["uid"]

        def walk(items: list[Any]) -> Iterator[Any]:
            for item in items:
                yield item
                yield from walk(getattr(item, "panels", None) or [])

        seen = list(walk(decoded.panels or []))
        assert seen, name
        for panel in seen:
            assert isinstance(panel, model.Panel | model.RowPanel), (name, type(panel))
            if isinstance(panel, model.Panel):
                assert isinstance(panel.options, typed_options[panel.type_val]), panel.title
                assert panel.targets
                assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets)
        assert all(isinstance(v, model.VariableModel) for v in decoded.templating.list_val)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b["panels"][0].update({"gridpos": b["panels"][0].pop("gridPos")}),
        lambda b: b.update({"templates": b.pop("templating")}),
        lambda b: b["annotations"]["list"][0].update({"expression": "up"}),
    ],
)
def test_the_sdk_round_trip_catches_keys_grafana_would_not_read(
    boards: dict[str, Json], damage: Any
) -> None:
    board = json.loads(json.dumps(boards[OVERVIEW_FILE]))
    damage(board)
    _, back = sdk_round_trip(board)
    assert back != without_annotation_extras(board)
