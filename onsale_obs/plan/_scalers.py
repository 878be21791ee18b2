"""``plan render-scalers``: KEDA ScaledObjects or autoscaling/v2 HPAs, one per service of the
vertical, all reading ``onsale_vertical_desired_replicas`` (the one queue signal ``serve``
exports) through the same query, each for its own ``service`` label.

The query is ``max(onsale_vertical_desired_replicas{service="S"}) or vector(0)``: the most
replicas any event on sale asks for, and 0 outside on-sales, so each service falls back to its
own ``minReplicas`` (the normal-time size) when the on-sale's desired replicas are withdrawn.
With an ``AverageValue`` target of 1 the autoscaler runs exactly that many replicas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._promql import quote
from onsale_obs.plan._vertical import DESIRED_METRIC

ScalerKind = Literal["keda", "hpa"]
#: a Kubernetes object name (RFC 1123 subdomain)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def scaler_query(service: str) -> str:
    """The PromQL every scaler of the vertical reads, for ``service``."""
    return f"max({DESIRED_METRIC}{{service={quote(service)}}}) or vector(0)"


@dataclass(frozen=True, slots=True)
class ScalerTarget:
    """One service of the vertical and the Deployment that runs it."""

    service: str
    deployment: str
    min_replicas: int = 1
    max_replicas: int = 100

    def __post_init__(self) -> None:
        if not _NAME.match(self.deployment) or len(self.deployment) > 253:
            raise BadInputError(
                f"{self.deployment!r} is not a Kubernetes object name (lower-case letters, "
                "digits, '-' and '.').",
                field="--deployment",
            )
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise BadInputError(
                f"{self.service}: expected 0 <= min replicas ({self.min_replicas}) <= max "
                f"replicas ({self.max_replicas}).",
                field="--min-replicas",
            )


def targets(
    services: Sequence[str],
    *,
    deployments: Mapping[str, str] | None = None,
    min_replicas: Mapping[str, int] | None = None,
    max_replicas: int = 100,
    known: Sequence[str] | None = None,
) -> list[ScalerTarget]:
    """One target per service; names in the mappings that are no service of the vertical
    are bad input (a typo would silently leave a Deployment unscaled)."""
    if known is not None:
        missing = [s for s in services if s not in known]
        if missing:
            raise BadInputError(
                f"service {', '.join(map(repr, missing))} is not in the profile; it has "
                f"{', '.join(map(repr, known))}.",
                field="--service",
            )
    for option, mapping in (("--deployment", deployments), ("--min-replicas", min_replicas)):
        extra = sorted(set(mapping or {}) - set(services))
        if extra:
            raise BadInputError(
                f"{', '.join(map(repr, extra))} is no service of the vertical "
                f"({', '.join(services)}).",
                field=option,
            )
    return [
        ScalerTarget(
            s,
            (deployments or {}).get(s, s),
            (min_replicas or {}).get(s, 1),
            max_replicas,
        )
        for s in services
    ]


def keda_scaled_object(
    t: ScalerTarget,
    *,
    prometheus: str,
    namespace: str | None = None,
    cooldown: int = 600,
    polling: int = 15,
) -> dict[str, Any]:
    """A KEDA ``ScaledObject`` (Prometheus scaler) for one service."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(t, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.deployment},
            "minReplicaCount": t.min_replicas,
            "maxReplicaCount": t.max_replicas,
            "pollingInterval": polling,
            "cooldownPeriod": cooldown,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": _behavior(cooldown)},
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus,
                        "query": scaler_query(t.service),
                        "threshold": "1",
                    },
                }
            ],
        },
    }


def hpa(t: ScalerTarget, *, namespace: str | None = None, cooldown: int = 600) -> dict[str, Any]:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler on the External metric (served by
    prometheus-adapter with :func:`adapter_rule`)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(t, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.deployment},
            "minReplicas": max(1, t.min_replicas),
            "maxReplicas": t.max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": DESIRED_METRIC,
                            "selector": {"matchLabels": {"service": t.service}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "1"},
                    },
                }
            ],
            "behavior": _behavior(cooldown),
        },
    }


def adapter_rule() -> dict[str, Any]:
    """The prometheus-adapter ``externalRules`` entry behind the HPAs: the same query, with
    the HPA's ``service`` selector filled in by the adapter."""
    return {
        "externalRules": [
            {
                "seriesQuery": f'{DESIRED_METRIC}{{service!=""}}',
                "resources": {"namespaced": False},
                "name": {"as": DESIRED_METRIC},
                "metricsQuery": "max(<<.Series>>{<<.LabelMatchers>>}) or vector(0)",
            }
        ]
    }


def _metadata(t: ScalerTarget, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"{t.deployment}-onsale",
        "labels": {
            "app.kubernetes.io/managed-by": "onsale-obs",
            "onsale-obs/service": _label_value(t.service),
        },
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _label_value(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")
    return cleaned or "service"


def _behavior(cooldown: int) -> dict[str, Any]:
    # up at once (the queue already says how much), down only after the cool-down
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 15}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": cooldown,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }


def render(
    kind: ScalerKind,
    chosen: Sequence[ScalerTarget],
    *,
    prometheus: str,
    namespace: str | None = None,
    cooldown: int = 600,
) -> list[dict[str, Any]]:
    """Every manifest of the vertical, in service order."""
    if kind == "keda":
        return [
            keda_scaled_object(t, prometheus=prometheus, namespace=namespace, cooldown=cooldown)
            for t in chosen
        ]
    return [hpa(t, namespace=namespace, cooldown=cooldown) for t in chosen]
