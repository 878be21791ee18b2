"""``rules render --format prometheusrule``: prometheus-operator objects that its CRD accepts.

Every object is validated against the ``openAPIV3Schema`` of the PrometheusRule CRD
(prometheus-operator v0.82.2, vendored in tests/data with its source and licence), the
metadata against Kubernetes' naming rules (the API server checks those, not the schema),
and its groups are the plain rule file's, which promtool checks and tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via kubernetes-validate (dev)
import pytest
import yaml
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.generate._rules import render_rules
from onsale_obs.generate._rules_files import object_name, prometheus_rules
from onsale_obs.slo import load_spec, spec_from_data

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "ticketing" / "slo.yaml"
CRD = Path(__file__).resolve().parent / "data" / "prometheusrules.crd.yaml"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["spec"]["names"]["kind"] == "PrometheusRule"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def violations(obj: dict[str, Any]) -> list[str]:
    """What the CRD's schema and Kubernetes' object rules say against ``obj``."""
    validator = jsonschema.Draft7Validator(crd_schema())
    found = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]
    if obj.get("apiVersion") != "monitoring.coreos.com/v1" or obj.get("kind") != "PrometheusRule":
        found.append("not a monitoring.coreos.com/v1 PrometheusRule")
    meta = obj.get("metadata", {})
    if not DNS_LABEL.match(meta.get("name", "")) or len(meta.get("name", "")) > 63:
        found.append(f"metadata.name {meta.get('name')!r} is not a DNS-1123 label")
    if "namespace" in meta and not DNS_LABEL.match(meta["namespace"]):
        found.append(f"metadata.namespace {meta['namespace']!r}")
    names = [g.get("name") for g in obj.get("spec", {}).get("groups", [])]
    if len(names) != len(set(names)):  # x-kubernetes-list-map-keys: [name]
        found.append(f"group names repeat: {names}")
    return found


def render(tmp_path: Path, *args: str) -> tuple[int, str, list[dict[str, Any]]]:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(
        app,
        [
            "rules",
            "render",
            "--spec",
            str(SPEC),
            "--out",
            str(out),
            "--format",
            "prometheusrule",
            *args,
        ],
    )
    path = out / "onsale-slo.prometheusrule.yaml"
    docs = list(yaml.safe_load_all(path.read_text())) if path.exists() else []
    return result.exit_code, result.output, docs


def test_every_object_is_valid_against_the_crd_schema(tmp_path: Path) -> None:
    code, output, docs = render(
        tmp_path,
        "--namespace",
        "monitoring",
        "--label",
        "release=prometheus",
        "--label",
        "team=sre",
    )
    assert code == 0, output
    spec = load_spec(SPEC)
    assert len(docs) == len(spec.slos)
    for doc in docs:
        assert violations(doc) == []
        assert doc["metadata"]["namespace"] == "monitoring"
        assert doc["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "onsale-obs",
            "release": "prometheus",
            "team": "sre",
        }
    # the same groups as the plain rule file that promtool checks and tests
    assert [g for d in docs for g in d["spec"]["groups"]] == render_rules(spec)["groups"]
    assert (tmp_path / "k8s").iterdir().__next__().name == "onsale-slo.prometheusrule.yaml"
    assert len(list((tmp_path / "k8s").iterdir())) == 1


@pytest.mark.parametrize(
    "broken",
    [
        lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr"),
        lambda o: o["spec"]["groups"][0].pop("name"),
        lambda o: o["spec"]["groups"][0]["rules"][-1].update({"for": "5 minutes"}),
        lambda o: o["spec"]["groups"][0]["rules"][-1]["annotations"].update({"n": 1}),
        lambda o: o.pop("spec"),
        lambda o: o["spec"]["groups"].append(dict(o["spec"]["groups"][0])),
        lambda o: o["metadata"].update({"name": "Checkout_SLO"}),
    ],
)
def test_the_schema_check_rejects_broken_objects(broken: Any) -> None:
    obj = prometheus_rules(load_spec(SPEC))[0]
    assert violations(obj) == []
    broken(obj)
    assert violations(obj) != []


def test_object_names_are_dns_labels_and_stay_apart() -> None:
    names = {object_name("onsale-slo", n) for n in ("a.b", "a_b", "A-B", "a-b", "x" * 80)}
    assert len(names) == 5
    assert all(DNS_LABEL.match(n) and len(n) <= 63 for n in names)
    assert object_name("onsale-slo", "checkout-availability") == "onsale-slo-checkout-availability"
    spec = spec_from_data(
        {
            "slos": [
                {
                    "name": n,
                    "service": "s",
                    "sli": {"type": "availability"},
                    "objectives": {"normal": 99, "onsale": 99},
                }
                for n in ("pay.now", "pay_later")
            ]
        }
    )
    for obj in prometheus_rules(spec):
        assert violations(obj) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "release"], "'release' has no '='"),
        (["--label", "bad key=x"], "'bad key' is not a label name"),
        (["--label", "team=" + "x" * 64], "is not a label value"),
        (["--namespace", "Monitoring"], "'Monitoring' is not a namespace name"),
        (["--format", "kustomize"], "'kustomize' is not a format"),
    ],
)
def test_bad_metadata_is_bad_input_and_nothing_is_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output, docs = render(tmp_path, *args)
    assert code == 2, output
    assert message in " ".join(output.split())
    assert docs == []


def test_namespace_without_the_format_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["rules", "render", "--spec", str(SPEC), "--out", str(tmp_path), "--namespace", "m"]
    )
    assert result.exit_code == 2
    assert "--format prometheusrule" in " ".join(result.output.split())


def test_check_reports_drift_of_the_objects(tmp_path: Path) -> None:
    code, output, _ = render(tmp_path, "--namespace", "monitoring")
    assert code == 0, output
    assert render(tmp_path, "--namespace", "monitoring", "--check")[0] == 0
    code, output, _ = render(tmp_path, "--namespace", "other", "--check")
    assert code == 1
    assert "--format prometheusrule" in output
