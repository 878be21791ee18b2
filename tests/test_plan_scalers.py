"""``plan render-scalers``: manifests valid against the published schemas, queries run on a real
Prometheus, one per service of the vertical, all reading the same signal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.plan import (
    DESIRED_METRIC,
    OnSaleProfile,
    Profile,
    ScalerTarget,
    ServiceProfile,
    adapter_rule,
    render,
    scaler_query,
    targets,
)
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.testing import require_binary
from onsale_obs.testing_prometheus import PrometheusServer, backfill

SERVICES = ("checkout", "frontend", "payments")
K8S = kubernetes_validate.latest_version()


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _service() -> ServiceProfile:
    return ServiceProfile(10, 1, 1, 2, 1.0, {}, 1.0, 0.5)


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    o = OnSaleProfile("event:e", 1e9, 1e9 + 60, {s: _service() for s in SERVICES})
    path = tmp_path / "profile.json"
    path.write_text(Profile((o,), 1e9 + 3600).dumps())
    return path


def _keda_valid(doc: dict[str, Any]) -> None:
    """KEDA's CRD as models: every field parses, and nothing is dropped as unknown."""
    model = ScaledObject.model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def test_keda_manifests_match_the_keda_crd() -> None:
    """Every ScaledObject of the vertical is valid against the KEDA CRD models."""
    docs = render("keda", targets(SERVICES), prometheus="http://prom:9090", namespace="shop")
    assert len(docs) == 3
    for doc in docs:
        _keda_valid(doc)


def test_the_keda_check_can_fail() -> None:
    """A misspelt field or a wrong type is caught (the check is not a rubber stamp)."""
    doc = render("keda", targets(["checkout"]), prometheus="http://prom:9090")[0]
    doc["spec"]["minReplicaCont"] = doc["spec"].pop("minReplicaCount")
    with pytest.raises(AssertionError):
        _keda_valid(doc)
    doc = render("keda", targets(["checkout"]), prometheus="http://prom:9090")[0]
    doc["spec"]["pollingInterval"] = "often"
    with pytest.raises(ValueError, match="pollingInterval"):
        _keda_valid(doc)


def test_hpa_manifests_match_the_kubernetes_schema() -> None:
    """Every autoscaling/v2 HPA is valid against the strict Kubernetes schema."""
    for doc in render("hpa", targets(SERVICES), prometheus="http://prom:9090", namespace="shop"):
        kubernetes_validate.validate(doc, K8S, strict=True)
    doc = render("hpa", targets(["checkout"]), prometheus="http://p:9090")[0]
    doc["spec"]["metrics"][0]["external"]["target"]["averageValu"] = "1"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_every_service_reads_the_same_query() -> None:
    """One query shape for the vertical; only the service label differs."""
    docs = render("keda", targets(SERVICES), prometheus="http://prom:9090")
    queries = [d["spec"]["triggers"][0]["metadata"]["query"] for d in docs]
    assert queries == [scaler_query(s) for s in SERVICES]
    assert {q.replace(s, "S") for q, s in zip(queries, SERVICES, strict=True)} == {
        scaler_query("S")
    }
    hpas = render("hpa", targets(SERVICES), prometheus="http://prom:9090")
    for doc, s in zip(hpas, SERVICES, strict=True):
        metric = doc["spec"]["metrics"][0]["external"]["metric"]
        assert metric == {"name": DESIRED_METRIC, "selector": {"matchLabels": {"service": s}}}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, int]]:
    """A real Prometheus holding serve's desired replicas for two events of the vertical."""
    binary = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    folder = tmp_path_factory.mktemp("scalers")
    at = int(time.time() // 3600 * 3600) - 2 * 86_400
    lines = [f"# TYPE {DESIRED_METRIC} gauge"]
    wanted = {("cup-final", "checkout"): 7, ("derby", "checkout"): 4, ("cup-final", "frontend"): 5}
    for (event, service), n in wanted.items():
        for t in range(at - 600, at + 1, 15):
            lines.append(f'{DESIRED_METRIC}{{event="{event}",service="{service}"}} {n} {t}')
    text = folder / "desired.om"
    text.write_text("\n".join(lines) + "\n# EOF\n")
    backfill(text, folder / "tsdb", promtool=promtool)
    with PrometheusServer(binary=binary, tsdb_path=folder / "tsdb") as server:
        yield server, at


def test_queries_run_on_a_real_prometheus(prometheus: tuple[PrometheusServer, int]) -> None:
    """Each service's query gives the most replicas any on-sale asks for, 0 without any."""
    server, at = prometheus
    docs = render("keda", targets(SERVICES), prometheus=server.url)
    got = {}
    with PrometheusClient(server.url) as client:
        for doc in docs:
            query = doc["spec"]["triggers"][0]["metadata"]["query"]
            samples = client.query(query, float(at))
            assert len(samples) == 1, query
            got[doc["metadata"]["labels"]["onsale-obs/service"]] = samples[0].value
        # the prometheus-adapter rule behind the HPAs, as the adapter fills it in
        rule = adapter_rule()["externalRules"][0]
        query = (
            rule["metricsQuery"]
            .replace("<<.Series>>", DESIRED_METRIC)
            .replace("<<.LabelMatchers>>", 'service="checkout"')
        )
        assert [s.value for s in client.query(query, float(at))] == [7.0]
        later = client.query(scaler_query("checkout"), float(at + 3600))
    assert got == {"checkout": 7.0, "frontend": 5.0, "payments": 0.0}
    assert [s.value for s in later] == [0.0]  # on-sale over: each service to its minimum


def test_cli_writes_one_file_per_service(profile_file: Path, tmp_path: Path) -> None:
    """--out DIR: one manifest per service; hpa adds the adapter rule."""
    out = tmp_path / "k8s"
    result = invoke("plan", "render-scalers", "--profile", profile_file, "--out", out,
                    "--deployment", "checkout=checkout-api", "--min-replicas", "checkout=3")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "checkout-api-keda.yaml",
        "frontend-keda.yaml",
        "payments-keda.yaml",
    ]
    doc = yaml.safe_load((out / "checkout-api-keda.yaml").read_text())
    assert doc["spec"]["scaleTargetRef"]["name"] == "checkout-api"
    assert doc["spec"]["minReplicaCount"] == 3
    _keda_valid(doc)
    result = invoke("plan", "render-scalers", "--profile", profile_file, "--kind", "hpa")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [d.get("kind") for d in docs] == ["HorizontalPodAutoscaler"] * 3 + [None]
    for d in docs[:3]:
        kubernetes_validate.validate(d, K8S, strict=True)


def test_cli_names_what_is_missing(profile_file: Path) -> None:
    """A service not in the profile, or a mapping for one, is exit 2 naming it."""
    base = ("plan", "render-scalers", "--profile", profile_file)
    result = invoke(*base, "--service", "search")
    assert result.exit_code == 2
    assert "'search'" in result.output
    result = invoke(*base, "--deployment", "serch=search-api")
    assert result.exit_code == 2
    assert "'serch'" in result.output
    result = invoke(*base, "--deployment", "checkout=Checkout_API")
    assert result.exit_code == 2
    assert "Kubernetes object name" in result.output


def test_min_above_max_is_refused() -> None:
    """Min replicas above max is bad input, not a manifest the API server rejects later."""
    with pytest.raises(ValueError, match="min replicas"):
        ScalerTarget("checkout", "checkout", min_replicas=5, max_replicas=2)
