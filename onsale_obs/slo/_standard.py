"""OpenSLO v1 and Sloth ``prometheus/v1`` specs, converted to the native spec.

What is read (README, "Standard specs: OpenSLO and Sloth"):

- **OpenSLO v1**: ``SLO`` documents with a ``ratioMetric`` indicator (inline, or an ``SLI``
  document named by ``indicatorRef``) whose ``good`` (or ``bad``) and ``total`` are
  Prometheus counters: a plain series selector, or ``rate``/``increase`` of one (optionally
  inside ``sum``); one objective (``target`` 0..1 or ``targetPercent``); one ``timeWindow``
  (rolling ``30d``, or a calendar ``1M`` for the calendar month); ``Occurrences`` budgeting;
  ``alertPolicies`` (inline or ``alertPolicyRef``) whose ``burnrate`` conditions become the
  alert rules of both modes. ``Service``, ``DataSource`` and ``AlertNotificationTarget``
  documents are accepted and not used.
- **Sloth** ``version: prometheus/v1`` (and the ``PrometheusServiceLevel`` CRD): ``events``
  SLIs whose ``error_query`` is the ``total_query`` with one more label matcher (good is that
  matcher negated); ``objective`` in percent; a 30-day window.

Per-mode objectives: the file's objective holds for both modes unless the OpenSLO annotation
``onsale-obs/objective-onsale`` (or ``-normal``), or the Sloth SLO label
``onsale_obs_objective_onsale`` (or ``_normal``), gives one in percent (``"99.99"``).

Every series must carry the ``mode`` label (``onsale_requests_total`` does) for the SLO to be
split by mode, as for a native ``promql`` SLI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Literal

from onsale_obs.durations import parse_duration
from onsale_obs.exceptions import SpecError
from onsale_obs.yamlfile import Located

Kind = Literal["native", "openslo", "sloth"]
SrcPath = list[str | int]

OPENSLO_ANNOTATION: Final = "onsale-obs/objective-"
SLOTH_LABEL: Final = "onsale_obs_objective_"
_PAGE: Final = frozenset({"page", "critical", "high", "p1", "urgent", "emergency"})
_WINDOW = r"\[\s*(?:\{\{\s*\.window\s*\}\}|[0-9]+[smhdwy]|\$__\w+)\s*\]"
_RANGE: Final = re.compile(
    r"^\s*(?:sum\s*(?:(?:by|without)\s*\([^()]*\)\s*)?\(\s*)?"
    r"(?:rate|increase|irate)\s*\(\s*(?P<sel>[^()\[\]]+?)\s*" + _WINDOW + r"\s*\)\s*"
    r"(?P<close>\))?\s*(?:(?:by|without)\s*\([^()]*\)\s*)?$"
)
_MATCHER: Final = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?'
)
_NEGATE: Final = {"=": "!=", "!=": "=", "=~": "!~", "!~": "=~"}


def spec_format(documents: Sequence[Any]) -> Kind:
    """Which format a file's documents are in (``native`` when not a standard one)."""
    for data in documents:
        if isinstance(data, dict):
            api = str(data.get("apiVersion", ""))
            if api.startswith("openslo/"):
                return "openslo"
            if data.get("version") == "prometheus/v1" or api.startswith("sloth.slok.dev/"):
                return "sloth"
    return "native"


class _Out:
    """The native spec being built, where each part came from, and the problems found."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.slos: list[dict[str, Any]] = []
        self.origins: list[tuple[Located, dict[str, SrcPath]]] = []
        self.errors: list[SpecError] = []

    def error(self, doc: Located, path: SrcPath, message: str) -> None:
        place = doc.position(path)
        line, column = place if place else (None, None)
        field = ".".join(str(p) for p in path) or None
        self.errors.append(
            SpecError(message, file=self.file, field=field, line=line, column=column)
        )

    def origin(self, path: Sequence[str | int]) -> tuple[Located, SrcPath]:
        if (
            len(path) >= 2
            and path[0] == "slos"
            and isinstance(path[1], int)
            and path[1] < len(self.origins)
        ):
            doc, parts = self.origins[path[1]]
            key = str(path[2]) if len(path) > 2 else ""
            return doc, list(parts.get(key, parts[""]))
        doc = self.origins[0][0] if self.origins else Located(None)
        return doc, []


def convert(kind: Kind, docs: Sequence[Located], *, file: str) -> tuple[dict[str, Any], Any]:
    """The native spec data of an OpenSLO or Sloth file, and where each SLO came from.

    Raises one ``SpecError`` listing every problem, each with its line and column.
    """
    out = _Out(file)
    if kind == "sloth":
        _sloth(docs, out)
    else:
        _openslo(docs, out)
    if out.errors:
        raise SpecError.several(out.errors)
    if not out.slos:
        raise SpecError(
            "holds no SLO; expected at least one OpenSLO 'SLO' document or Sloth 'slos' entry.",
            file=file,
        )
    return {"slos": out.slos}, out.origin


# ----------------------------------------------------------------------------- queries


def selector_of(query: Any) -> str | None:
    """The series selector a counter query reads: the query itself, or the inside of
    ``rate(...[w])``/``increase(...[w])``, optionally summed. None if it is anything else."""
    from onsale_obs.generate._promql import is_selector

    if not isinstance(query, str):
        return None
    text = " ".join(query.split())
    if is_selector(text):
        return text.strip()
    match = _RANGE.match(text)
    if match is None:
        return None
    summed = text.lstrip().startswith("sum")
    if summed != bool(match.group("close")):
        return None
    sel = match.group("sel").strip()
    return sel if is_selector(sel) else None


def _matchers(sel: str) -> tuple[str, list[tuple[str, str, str]]]:
    name, _, rest = sel.partition("{")
    found = [(m[1], m[2], m[3]) for m in _MATCHER.finditer(rest.rstrip("}"))]
    return name.strip(), found


def good_from_bad(bad: str, total: str) -> str | None:
    """The good-events selector when ``bad`` is ``total`` with one more matcher (negated)."""
    bad_name, bad_m = _matchers(bad)
    total_name, total_m = _matchers(total)
    if bad_name != total_name or any(m not in bad_m for m in total_m):
        return None
    extra = [m for m in bad_m if m not in total_m]
    if len(extra) != 1:
        return None
    label, op, value = extra[0]
    parts = [f"{lab}{o}{v}" for lab, o, v in total_m] + [f"{label}{_NEGATE[op]}{value}"]
    return f"{total_name}{{{','.join(parts)}}}"


_CODES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
_PLAIN: Final = re.compile(r"[A-Za-z0-9_/{}:@%~,;=&!'*<>#-]*")


def _values(op: str, literal: str) -> list[str] | None:
    """The values a ``=``/``=~`` matcher matches when it is one value or a plain alternation."""
    text = literal[1:-1].replace('\\"', '"')
    if op == "=":
        return [text] if "\\" not in text else None
    parts = [re.sub(r"\\\\(.)", r"\1", p) for p in text.split("|")]  # RE2 escapes: \. -> .
    raw = [re.sub(r"\\\\.", "", p) for p in text.split("|")]
    return parts if all(_PLAIN.fullmatch(r) for r in raw) else None


def native_sli(good: Any, total: Any, service: Any) -> dict[str, Any]:
    """An ``availability`` SLI when the counters are the middleware's own
    (``onsale_requests_total`` of this service, by route and method, good = a ``code``
    matcher), so that access logs can count it too; else a ``promql`` SLI."""
    promql = {"type": "promql", "good": good, "total": total}
    if not (isinstance(good, str) and isinstance(total, str)):
        return promql
    name, total_m = _matchers(total)
    good_name, good_m = _matchers(good)
    extra = [m for m in good_m if m not in total_m]
    if (
        name != "onsale_requests_total"
        or good_name != name
        or len(extra) != 1
        or len(good_m) != len(total_m) + 1
        or extra[0][0] != "code"
    ):
        return promql
    sli: dict[str, Any] = {"type": "availability"}
    seen_service = False
    for label, op, literal in total_m:
        values = _values(op, literal) if op in ("=", "=~") else None
        if values is None:
            return promql
        if label == "service" and op == "=" and values == [service]:
            seen_service = True
        elif label in ("route", "method") and label + "s" not in sli:
            sli[label + "s"] = values
        else:
            return promql
    _, op, literal = extra[0]
    codes = _values(op.replace("!", "="), literal)
    if not seen_service or codes is None or any(c not in _CODES for c in codes):
        return promql
    bad = sorted(codes) if op.startswith("!") else [c for c in _CODES if c not in codes]
    if not bad:
        return promql
    sli["bad_codes"] = bad
    return sli


def _percent(
    doc: Located, path: SrcPath, value: Any, out: _Out, *, fraction: bool = False
) -> float | None:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    top = 1 if fraction else 100
    if number is None or not 0 < number < top:
        what = "a fraction between 0 and 1, e.g. 0.999" if fraction else "a percent, e.g. 99.9"
        out.error(doc, path, f"expected {what} (above 0, below {top}), got {value!r}.")
        return None
    return round(number * 100, 10) if fraction else number


def _per_mode(
    doc: Located, base: float, extra: dict[str, Any], key: str, path: SrcPath, out: _Out
) -> dict[str, float]:
    objectives = {"normal": base, "onsale": base}
    for mode in ("normal", "onsale"):
        name = f"{key}{mode}"
        if name in extra:
            value = _percent(doc, [*path, name], extra[name], out)
            if value is not None:
                objectives[mode] = value
    return objectives


# ----------------------------------------------------------------------------- Sloth


def _sloth(docs: Sequence[Located], out: _Out) -> None:
    doc = docs[0]
    if len(docs) > 1:
        out.error(doc, [], f"holds {len(docs)} YAML documents; a Sloth spec is one.")
        return
    data = doc.data
    base: SrcPath = []
    if str(data.get("apiVersion", "")).startswith("sloth.slok.dev/"):
        if data.get("kind") != "PrometheusServiceLevel":
            out.error(doc, ["kind"], "expected kind PrometheusServiceLevel.")
            return
        base = ["spec"]
        data = data.get("spec")
    if not isinstance(data, dict):
        out.error(doc, base, "expected a mapping with service and slos.")
        return
    service = data.get("service")
    if not isinstance(service, str) or not service:
        out.error(doc, [*base, "service"], "is required: the service's name.")
    slos = data.get("slos")
    if not isinstance(slos, list) or not slos:
        out.error(doc, [*base, "slos"], "expected a list of at least one SLO.")
        return
    for i, slo in enumerate(slos):
        here: SrcPath = [*base, "slos", i]
        if not isinstance(slo, dict):
            out.error(doc, here, "expected a mapping with name, objective and sli.")
            continue
        native = _sloth_slo(doc, here, slo, str(service or ""), out)
        if native is not None:
            out.slos.append(native)
            out.origins.append(
                (
                    doc,
                    {
                        "": here,
                        "name": [*here, "name"],
                        "objectives": [*here, "objective"],
                        "sli": [*here, "sli"],
                        "description": [*here, "description"],
                    },
                )
            )


def _sloth_slo(
    doc: Located, here: SrcPath, slo: dict[str, Any], service: str, out: _Out
) -> dict[str, Any] | None:
    before = len(out.errors)
    name = slo.get("name")
    if not isinstance(name, str) or not name:
        out.error(doc, [*here, "name"], "is required: the SLO's name.")
    objective = _percent(doc, [*here, "objective"], slo.get("objective"), out)
    labels: dict[str, Any] = slo["labels"] if isinstance(slo.get("labels"), dict) else {}
    sli = slo.get("sli")
    good = total = None
    if not isinstance(sli, dict) or "events" not in sli:
        kinds = ", ".join(sorted(sli)) if isinstance(sli, dict) else kind_word(sli)
        out.error(
            doc,
            [*here, "sli"],
            f"expected an 'events' SLI (error_query and total_query), got {kinds}; raw "
            "ratio queries and plugins cannot be split by mode.",
        )
    else:
        events = sli["events"] if isinstance(sli["events"], dict) else {}
        total = _query(doc, [*here, "sli", "events", "total_query"], events.get("total_query"), out)
        bad = _query(doc, [*here, "sli", "events", "error_query"], events.get("error_query"), out)
        if bad and total:
            good = good_from_bad(bad, total)
            if good is None:
                out.error(
                    doc,
                    [*here, "sli", "events", "error_query"],
                    f"expected the total_query's selector with one more label matcher (such "
                    f'as code=~"5.."), got {bad}; the good events are counted as that '
                    "matcher negated.",
                )
    if len(out.errors) > before or objective is None:
        return None
    native: dict[str, Any] = {
        "name": name,
        "service": service,
        "sli": native_sli(good, total, service),
        "objectives": _per_mode(doc, objective, labels, SLOTH_LABEL, [*here, "labels"], out),
    }
    if isinstance(slo.get("description"), str):
        native["description"] = slo["description"]
    alerting = slo.get("alerting")
    if isinstance(alerting, dict) and isinstance(alerting.get("annotations"), dict):
        runbook = alerting["annotations"].get("runbook")
        if isinstance(runbook, str):
            native["runbook"] = runbook
    return native


def kind_word(value: Any) -> str:
    from onsale_obs.validation import kind_of

    return kind_of(value)


def _query(doc: Located, path: SrcPath, query: Any, out: _Out) -> str | None:
    if query is None:
        out.error(doc, path, "is required: a Prometheus counter query.")
        return None
    sel = selector_of(query)
    if sel is None:
        out.error(
            doc,
            path,
            "expected a counter: a series selector such as "
            'http_requests_total{job="checkout"}, or rate()/increase() of one over '
            "[{{.window}}] (optionally inside sum); got "
            f"{kind_word(query) if not isinstance(query, str) else repr(' '.join(query.split()))}.",
        )
    return sel


# ----------------------------------------------------------------------------- OpenSLO

_IGNORED: Final = frozenset({"Service", "DataSource", "AlertNotificationTarget"})


def _openslo(docs: Sequence[Located], out: _Out) -> None:
    named: dict[tuple[str, str], tuple[Located, SrcPath, dict[str, Any]]] = {}
    slos: list[Located] = []
    for doc in docs:
        data = doc.data
        if data is None:
            continue
        if not isinstance(data, dict):
            out.error(doc, [], f"expected an OpenSLO document (a mapping), got {kind_word(data)}.")
            continue
        if data.get("apiVersion") != "openslo/v1":
            out.error(
                doc,
                ["apiVersion"],
                f"expected openslo/v1, got {data.get('apiVersion')!r} (only v1 is read).",
            )
            continue
        kind = data.get("kind") if isinstance(data.get("kind"), str) else None
        meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
        if kind == "SLO":
            slos.append(doc)
        elif kind in ("SLI", "AlertPolicy", "AlertCondition"):
            name = meta.get("name")
            spec = data.get("spec")
            if isinstance(name, str) and isinstance(spec, dict):
                named[(kind, name)] = (doc, ["spec"], spec)
            else:
                out.error(doc, [], f"a {kind} needs metadata.name and a spec mapping.")
        elif kind not in _IGNORED:
            out.error(
                doc,
                ["kind"],
                f"expected SLO, SLI, AlertPolicy, AlertCondition, Service, DataSource or "
                f"AlertNotificationTarget, got {kind!r}.",
            )
    for doc in slos:
        native = _openslo_slo(doc, named, out)
        if native is not None:
            out.slos.append(native[0])
            out.origins.append((doc, native[1]))


def _ref(
    doc: Located,
    path: SrcPath,
    value: Any,
    kind: str,
    ref_key: str,
    named: dict[tuple[str, str], tuple[Located, SrcPath, dict[str, Any]]],
    out: _Out,
) -> tuple[Located, SrcPath, dict[str, Any]] | None:
    """An inline object (``{metadata, spec}``) or a reference to a named document."""
    if isinstance(value, str) or (isinstance(value, dict) and ref_key in value):
        name = value if isinstance(value, str) else value[ref_key]
        found = named.get((kind, str(name)))
        if found is None:
            where = path if isinstance(value, str) else [*path, ref_key]
            out.error(doc, where, f"no {kind} called {name!r} in this file.")
        return found
    if isinstance(value, dict) and isinstance(value.get("spec"), dict):
        return doc, [*path, "spec"], value["spec"]
    out.error(doc, path, f"expected an inline {kind} (metadata and spec) or {ref_key}.")
    return None


def _openslo_slo(
    doc: Located,
    named: dict[tuple[str, str], tuple[Located, SrcPath, dict[str, Any]]],
    out: _Out,
) -> tuple[dict[str, Any], dict[str, SrcPath]] | None:
    before = len(out.errors)
    data = doc.data
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    spec = data.get("spec")
    if not isinstance(spec, dict):
        out.error(doc, ["spec"], "is required: a mapping with service, indicator and objectives.")
        return None
    origins: dict[str, SrcPath] = {"": [], "name": ["metadata", "name"]}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        out.error(doc, ["metadata", "name"], "is required: the SLO's name.")
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        out.error(doc, ["spec", "service"], "is required: the service's name.")
    # -- the indicator
    sli = None
    if "indicatorRef" in spec:
        sli = _ref(doc, ["spec", "indicatorRef"], spec["indicatorRef"], "SLI", "", named, out)
    elif "indicator" in spec:
        sli = _ref(doc, ["spec", "indicator"], spec["indicator"], "SLI", "indicatorRef", named, out)
    else:
        out.error(doc, ["spec", "indicator"], "is required (or indicatorRef): a ratioMetric SLI.")
    good = total = None
    if sli is not None:
        sdoc, spath, sspec = sli
        origins["sli"] = spath
        ratio = sspec.get("ratioMetric")
        if not isinstance(ratio, dict):
            got = ", ".join(sorted(sspec)) or "nothing"
            sdoc_path = [*spath, "ratioMetric"] if "ratioMetric" in sspec else spath
            out.error(
                sdoc,
                sdoc_path,
                f"expected a ratioMetric (good or bad, and total), got {got}; threshold "
                "metrics cannot be split by mode.",
            )
        else:
            good, total = _ratio(sdoc, [*spath, "ratioMetric"], ratio, out)
    # -- the objective
    objectives = spec.get("objectives")
    target = None
    if (
        not isinstance(objectives, list)
        or len(objectives) != 1
        or not isinstance(objectives[0], dict)
    ):
        out.error(
            doc,
            ["spec", "objectives"],
            "expected a list of exactly one objective with target (0..1) or targetPercent.",
        )
    else:
        o = objectives[0]
        origins["objectives"] = ["spec", "objectives", 0]
        if "targetPercent" in o:
            target = _percent(
                doc, ["spec", "objectives", 0, "targetPercent"], o["targetPercent"], out
            )
        else:
            target = _percent(
                doc, ["spec", "objectives", 0, "target"], o.get("target"), out, fraction=True
            )
    # -- the window and the budgeting method
    window = _window(doc, spec, out)
    origins["window"] = ["spec", "timeWindow"]
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        out.error(
            doc,
            ["spec", "budgetingMethod"],
            f"expected Occurrences (events, as onsale-obs counts them), got {method!r}.",
        )
    alerting = _policies(doc, spec, named, out)
    origins["alerting"] = ["spec", "alertPolicies"]
    if len(out.errors) > before or target is None:
        return None
    annotations: dict[str, Any] = (
        meta["annotations"] if isinstance(meta.get("annotations"), dict) else {}
    )
    native: dict[str, Any] = {
        "name": name,
        "service": service,
        "sli": native_sli(good, total, service),
        "objectives": _per_mode(
            doc, target, annotations, OPENSLO_ANNOTATION, ["metadata", "annotations"], out
        ),
        "window": window,
    }
    description = spec.get("description") or meta.get("displayName")
    if isinstance(description, str):
        native["description"] = description
    if alerting is not None:
        native["alerting"] = alerting
    return native, origins


def _ratio(
    doc: Located, path: SrcPath, ratio: dict[str, Any], out: _Out
) -> tuple[str | None, str | None]:
    def query(key: str) -> str | None:
        part = ratio.get(key)
        source = part.get("metricSource") if isinstance(part, dict) else None
        if not isinstance(source, dict):
            out.error(doc, [*path, key], "expected a metricSource with type Prometheus.")
            return None
        kind = str(source.get("type", "Prometheus"))
        if kind.lower() != "prometheus":
            out.error(
                doc, [*path, key, "metricSource", "type"], f"expected Prometheus, got {kind!r}."
            )
            return None
        spec: dict[str, Any] = source["spec"] if isinstance(source.get("spec"), dict) else {}
        return _query(doc, [*path, key, "metricSource", "spec", "query"], spec.get("query"), out)

    if ("good" in ratio) == ("bad" in ratio):
        out.error(doc, path, "expected exactly one of good and bad, and total.")
        return None, None
    total = query("total")
    if "good" in ratio:
        return query("good"), total
    bad = query("bad")
    if bad is None or total is None:
        return None, total
    good = good_from_bad(bad, total)
    if good is None:
        out.error(
            doc,
            [*path, "bad", "metricSource", "spec", "query"],
            f"expected the total's selector with one more label matcher (such as "
            f'code=~"5.."), got {bad}; the good events are counted as that matcher negated.',
        )
    return good, total


def _window(doc: Located, spec: dict[str, Any], out: _Out) -> str:
    windows = spec.get("timeWindow")
    if windows is None:
        return "30d"
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
        out.error(
            doc, ["spec", "timeWindow"], "expected a list of one window (duration, isRolling)."
        )
        return "30d"
    w = windows[0]
    duration = str(w.get("duration", ""))
    rolling = w.get("isRolling", True)
    path: SrcPath = ["spec", "timeWindow", 0, "duration"]
    if rolling is False:
        if duration == "1M":
            return "month"
        out.error(
            doc, path, f"a calendar window must be 1M (the calendar month), got {duration!r}."
        )
        return "30d"
    try:
        parse_duration(duration)
    except ValueError as exc:
        out.error(doc, path, f"{exc} (months are calendar windows: isRolling: false, 1M).")
        return "30d"
    return duration


def _policies(
    doc: Located,
    spec: dict[str, Any],
    named: dict[tuple[str, str], tuple[Located, SrcPath, dict[str, Any]]],
    out: _Out,
) -> dict[str, Any] | None:
    """``burnrate`` conditions as the rules of both modes (replacing the default rules):
    a paging severity is P1 on sale and P3 in normal time, any other P2 and P4."""
    from onsale_obs.slo._policy import DEFAULT_POLICY

    policies = spec.get("alertPolicies")
    if not policies:
        return None
    if not isinstance(policies, list):
        out.error(doc, ["spec", "alertPolicies"], "expected a list of alert policies.")
        return None
    alerting: dict[str, dict[str, Any]] = {
        mode: dict.fromkeys((r.name for r in DEFAULT_POLICY[mode]), None)
        for mode in ("normal", "onsale")
    }
    for i, item in enumerate(policies):
        policy = _ref(
            doc, ["spec", "alertPolicies", i], item, "AlertPolicy", "alertPolicyRef", named, out
        )
        if policy is None:
            continue
        pdoc, ppath, pspec = policy
        conditions = pspec.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            out.error(pdoc, [*ppath, "conditions"], "expected a list of at least one condition.")
            continue
        for j, cond in enumerate(conditions):
            found = _ref(
                pdoc, [*ppath, "conditions", j], cond, "AlertCondition", "conditionRef", named, out
            )
            if found is None:
                continue
            cdoc, cpath, cspec = found
            meta = cond.get("metadata") if isinstance(cond, dict) else None
            cname: Any = meta.get("name") if isinstance(meta, dict) else None
            if not cname:
                cname = cond.get("conditionRef") if isinstance(cond, dict) else cond
            cname = str(cname)
            rule = _condition(cdoc, cpath, cspec, out)
            if rule is None:
                continue
            key = re.sub(r"[^a-z0-9_.-]", "-", cname.lower()) or f"rule-{i}-{j}"
            paging = str(cspec.get("severity", "")).lower() in _PAGE
            alerting["onsale"][key] = {**rule, "priority": "P1" if paging else "P2"}
            alerting["normal"][key] = {**rule, "priority": "P3" if paging else "P4"}
    return alerting


def _condition(
    doc: Located, path: SrcPath, spec: dict[str, Any], out: _Out
) -> dict[str, Any] | None:
    cond = spec.get("condition")
    if not isinstance(cond, dict) or str(cond.get("kind", "")).lower() != "burnrate":
        out.error(doc, [*path, "condition"], "expected a condition of kind burnrate.")
        return None
    threshold = cond.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        out.error(
            doc,
            [*path, "condition", "threshold"],
            f"expected a burn rate above 0, got {threshold!r}.",
        )
        return None
    lookback = cond.get("lookbackWindow")
    try:
        long = parse_duration(str(lookback))
    except ValueError as exc:
        out.error(doc, [*path, "condition", "lookbackWindow"], f"{exc}.")
        return None
    from onsale_obs.durations import format_duration

    return {
        "long": format_duration(long),
        "short": format_duration(max(long / 12, 1.0)),
        "burn_rate": float(threshold),
    }
