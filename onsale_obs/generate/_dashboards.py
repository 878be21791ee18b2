"""Grafana dashboards from an SLO spec: an overview and one dashboard per service.

``render_dashboards(spec)`` returns file name -> JSON text, the same bytes for the same spec
(sorted keys, 2-space indent, trailing newline) so CI can diff them against the committed
files. ``panel_queries(json, variables)`` lists every PromQL expression of a dashboard with
Grafana's template variables filled in, for tests that run them against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from onsale_obs.generate._dashboards_overview import OVERVIEW_UID, overview_dashboard
from onsale_obs.generate._dashboards_parts import slug
from onsale_obs.generate._dashboards_service import service_dashboard, service_uid, services
from onsale_obs.slo._spec import SLOSpec

OVERVIEW_FILE: Final = "onsale-overview.json"
SERVICE_FILE_PREFIX: Final = "onsale-service-"
#: ``$name``, ``${name}``, ``${name:format}`` and the deprecated ``[[name]]``.
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
_LABEL_VALUES: Final = re.compile(r"^\s*label_values\((.*)\)\s*$", re.DOTALL)
_QUERY_RESULT: Final = re.compile(r"^\s*query_result\((.*)\)\s*$", re.DOTALL)

__all__ = [
    "OVERVIEW_FILE",
    "OVERVIEW_UID",
    "SERVICE_FILE_PREFIX",
    "dashboard_json",
    "panel_queries",
    "render_dashboards",
    "service_file",
    "service_uid",
]


def service_file(service: str) -> str:
    """The file name of a service's dashboard: ``onsale-service-<service>.json``."""
    return f"{SERVICE_FILE_PREFIX}{slug(service)}.json"


def dashboard_json(board: Dashboard) -> str:
    """A built dashboard as deterministic JSON: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(board, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_dashboards(spec: SLOSpec) -> dict[str, str]:
    """File name -> JSON text of every dashboard of ``spec``: the overview, then each service."""
    files = {OVERVIEW_FILE: dashboard_json(overview_dashboard(spec).build())}
    for service in services(spec):
        files[service_file(service)] = dashboard_json(service_dashboard(spec, service).build())
    return files


def panel_queries(
    dashboard: str | Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> list[str]:
    """Every PromQL expression of a dashboard, in order and without repeats.

    That is each panel target's ``expr`` (rows included), each annotation's ``expr``, and
    the series selector of each ``label_values(selector, label)`` (or the expression of
    ``query_result(expr)``) query variable. With ``variables`` (name -> value, for example
    ``{"__rate_interval": "1m", "service": "checkout", "event": ".*"}``) every Grafana
    variable is replaced by its value, and a variable missing from the mapping raises
    ``ValueError``; without it the expressions are returned as written.
    """
    data: Mapping[str, Any] = json.loads(dashboard) if isinstance(dashboard, str) else dashboard
    found = list(dict.fromkeys(_expressions(data)))
    if variables is None:
        return found
    return [_substitute(expr, variables) for expr in found]


def _expressions(data: Mapping[str, Any]) -> Iterator[str]:
    yield from _panel_expressions(data.get("panels") or [])
    for annotation in (data.get("annotations") or {}).get("list") or []:
        if not annotation.get("builtIn") and annotation.get("expr"):
            yield annotation["expr"]
    for variable in (data.get("templating") or {}).get("list") or []:
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query") if isinstance(query, Mapping) else query
            if isinstance(text, str) and (expr := _variable_expression(text)):
                yield expr


def _panel_expressions(panels: list[Mapping[str, Any]]) -> Iterator[str]:
    for panel in panels:
        for query in panel.get("targets") or []:
            if isinstance(query.get("expr"), str) and query["expr"].strip():
                yield query["expr"]
        yield from _panel_expressions(panel.get("panels") or [])


def _variable_expression(query: str) -> str | None:
    """The PromQL inside a Prometheus variable query, if it has any."""
    if match := _QUERY_RESULT.match(query):
        return match.group(1).strip()
    match = _LABEL_VALUES.match(query)
    if match is None:
        return None
    args = match.group(1)
    depth, quoted, cut = 0, False, -1
    for i, char in enumerate(args):
        if quoted:
            quoted = char != '"' or args[i - 1] == "\\"
        elif char == '"':
            quoted = True
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "," and depth == 0:
            cut = i
    # label_values(label) alone lists a label over every series: no expression to check
    return args[:cut].strip() if cut > 0 else None


def _substitute(expr: str, variables: Mapping[str, str]) -> str:
    missing = sorted(
        {n for m in _VARIABLE.finditer(expr) for n in m.groups() if n and n not in variables}
    )
    if missing:
        raise ValueError(
            f"the query {expr!r} uses the variable(s) {', '.join(missing)}; "
            "give a value for each in the mapping."
        )
    return _VARIABLE.sub(lambda m: variables[next(g for g in m.groups() if g)], expr)
