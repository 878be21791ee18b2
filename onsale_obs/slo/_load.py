"""Reading SLO spec files: YAML -> validated model -> the frozen objects of ``_spec``.

A spec file is the native format (README, "SLO spec"), OpenSLO v1 (``SLO``, ``SLI``,
``AlertPolicy`` documents) or Sloth ``prometheus/v1``; the standard formats are converted to
the native one first (:mod:`onsale_obs.slo._standard`), so every check below applies to them.
Every problem is reported at once, each naming the file, the line and column, and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from onsale_obs.exceptions import SpecError
from onsale_obs.slo._policy import DEFAULT_POLICY
from onsale_obs.slo._spec import (
    SLI,
    SLO,
    AlertRule,
    AvailabilitySLI,
    LatencySLI,
    PromQLSLI,
    Selector,
    SLOSpec,
    off_bucket,
)
from onsale_obs.types import Mode
from onsale_obs.yamlfile import Located, read_yaml_documents

Path_ = Sequence[str | int]
#: a native path -> the document it came from and the path inside it (converted specs)
Origin = Callable[[Path_], tuple[Located, list[str | int]]]
EXPECTED = "an SLO spec YAML file (native, OpenSLO v1 or Sloth prometheus/v1)"


def load_spec(path: str | Path) -> SLOSpec:
    """Read and validate a spec file; every error names the file and the path inside it."""
    docs = read_yaml_documents(path, expected=EXPECTED, error=SpecError)
    return spec_from_documents(docs, file=str(path))


def spec_from_documents(docs: Sequence[Located], *, file: str) -> SLOSpec:
    """A spec from a file's YAML documents (several only for OpenSLO)."""
    from onsale_obs.slo._standard import convert, spec_format

    kind = spec_format([d.data for d in docs])
    if kind == "native":
        if len(docs) > 1:
            raise SpecError(
                f"holds {len(docs)} YAML documents; a native spec is one document with a list "
                "'slos' (only OpenSLO files hold several).",
                file=file,
            )
        return spec_from_data(docs[0].data, file=file, located=docs[0])
    native, origin = convert(kind, docs, file=file)
    return spec_from_data(native, file=file, origin=origin)


class _Problems:
    """Collects every problem of a spec, each placed in the file."""

    def __init__(self, file: str, located: Located | None, origin: Origin | None) -> None:
        self.file = file
        self.located = located
        self.origin = origin
        self.items: list[SpecError] = []

    def add(self, message: str, path: Path_, *, key: bool = False) -> None:
        field: str | None = ".".join(str(p) for p in path) or None
        place = None
        if self.origin is not None:
            doc, source = self.origin(path)
            field = ".".join(str(p) for p in source) or None
            place = doc.position(source, key=key)
        elif self.located is not None:
            place = self.located.position(path, key=key)
        line, column = place if place else (None, None)
        self.items.append(SpecError(message, file=self.file, field=field, line=line, column=column))

    def raise_any(self) -> None:
        if self.items:
            first = self.items[0]  # the checks run in order; the file is read top to bottom
            rest = sorted(self.items[1:], key=lambda e: (e.line or 0, e.column or 0))
            raise SpecError.several([first, *rest])


def _split(field: str | None) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in (field or "").split(".") if p]


def spec_from_data(
    data: Any,
    *,
    file: str = "<spec>",
    located: Located | None = None,
    origin: Origin | None = None,
) -> SLOSpec:
    """Validate parsed YAML (a native mapping with ``slos``, or an OpenSLO/Sloth document).

    Raises one ``SpecError`` listing every problem (``.problems``), the first its own.
    """
    from pydantic import ValidationError  # loaded only when a spec is read

    from onsale_obs.slo._spec_model import SpecModel, seconds
    from onsale_obs.slo._standard import spec_format

    if origin is None and spec_format([data]) != "native":
        return spec_from_documents([located or Located(data)], file=file)
    found = _Problems(file, located, origin)
    if not isinstance(data, dict):
        found.add(
            "expected a mapping with a list 'slos' at the top level "
            "(see the README, section 'SLO spec'), or an OpenSLO v1 or Sloth prometheus/v1 spec.",
            [],
        )
        found.raise_any()
    try:
        model = SpecModel.model_validate(data)
    except ValidationError as exc:
        from onsale_obs.validation import problems

        for p in problems(exc, data, file=file, model=SpecModel, error=SpecError):
            found.add(p.detail, _split(p.field), key=p.detail.startswith("is not a known key"))
        _check_valid_slos(data, found)
        found.raise_any()
        raise AssertionError("unreachable") from None  # pragma: no cover
    slos = [_slo(m, i, found) for i, m in enumerate(model.slos)]
    found.raise_any()
    return SLOSpec(
        tuple(s for s in slos if s is not None), source=file, grace=seconds(model.onsale_grace)
    )


def _check_valid_slos(data: dict[str, Any], found: _Problems) -> None:
    """With the file invalid somewhere, the checks beyond the model still run on every SLI
    and alert policy that is valid on its own, so one run lists every problem."""
    from pydantic import TypeAdapter, ValidationError

    from onsale_obs.slo._spec_model import AlertingModel, SLIModel

    slos = data.get("slos")
    sli_adapter: TypeAdapter[Any] = TypeAdapter(SLIModel)
    for index, item in enumerate(slos if isinstance(slos, list) else ()):
        if not isinstance(item, dict):
            continue
        try:
            sli = sli_adapter.validate_python(item.get("sli"))
        except ValidationError:
            pass
        else:
            _sli(sli, str(item.get("service", "")), index, found)
        try:
            alerting = AlertingModel.model_validate(item.get("alerting", {}))
        except ValidationError:
            continue
        for mode in ("normal", "onsale"):
            _rules(mode, getattr(alerting, mode), ["slos", index, "alerting", mode], found)


def _sli(m: Any, service: str, index: int, found: _Problems) -> SLI:
    """The SLI of a validated model, and the problems the model cannot see."""
    from onsale_obs.slo._spec_model import (
        BucketsModel,
        LatencyModel,
        PromQLModel,
        ThresholdModel,
        seconds,
    )

    if isinstance(m, PromQLModel):
        from onsale_obs.generate._promql import is_selector

        for name in ("good", "total"):
            text = getattr(m, name)
            if not is_selector(text):
                found.add(
                    f"{text!r} is not a series selector; expected a counter such as "
                    'payments_total{outcome="ok"} (no functions, no ranges).',
                    ["slos", index, "sli", name],
                )
        return PromQLSLI(good=m.good.strip(), total=m.total.strip())
    selector = Selector(service, tuple(m.routes), tuple(m.methods))
    if not isinstance(m, LatencyModel):
        return AvailabilitySLI(selector, frozenset(m.bad_codes))
    t = m.threshold
    both = (t.normal, t.onsale) if isinstance(t, ThresholdModel) else (t, t)
    b = m.buckets
    buckets: dict[Mode, tuple[float, ...]] | None = None
    if b is not None:
        lists = (b.normal, b.onsale) if isinstance(b, BucketsModel) else (b, b)
        buckets = {
            "normal": tuple(sorted(seconds(x) for x in lists[0])),
            "onsale": tuple(sorted(seconds(x) for x in lists[1])),
        }
    latency = LatencySLI(
        selector, {"normal": seconds(both[0]), "onsale": seconds(both[1])}, buckets=buckets
    )
    per_mode = isinstance(t, ThresholdModel)
    for mode, why in off_bucket(latency):
        found.add(
            f"{why}. Pick a boundary, or declare the service's boundaries under 'buckets' if "
            "its RequestMetrics has other ones.",
            ["slos", index, "sli", "threshold", *([mode] if per_mode else [])],
        )
    return latency


def _slo(m: Any, index: int, found: _Problems) -> SLO | None:
    from onsale_obs.slo._spec_model import seconds

    before = len(found.items)
    sli = _sli(m.sli, m.service, index, found)
    policy: dict[Mode, tuple[AlertRule, ...]] = {}
    for mode in ("normal", "onsale"):
        overrides: dict[str, Any] = getattr(m.alerting, mode)
        policy[mode] = _rules(mode, overrides, ["slos", index, "alerting", mode], found)
    if len(found.items) > before:
        return None
    window_is_month = m.window == "month"
    return SLO(
        name=m.name,
        service=m.service,
        sli=sli,
        objectives={
            "normal": _fraction(m.objectives.normal),
            "onsale": _fraction(m.objectives.onsale),
        },
        policy=policy,
        description=m.description,
        window=31 * 86400.0 if window_is_month else seconds(m.window),
        calendar_month=window_is_month,
        runbook=m.runbook,
    )


def _fraction(percent: float) -> float:
    """``99.9`` -> ``0.999`` exactly as written (``99.9 / 100`` is ``0.9990000000000001``)."""
    return float(Decimal(str(percent)) / 100)


def _rules(
    mode: Mode, overrides: dict[str, Any], where: list[str | int], found: _Problems
) -> tuple[AlertRule, ...]:
    """The default rules of ``mode`` with a spec's changes: a field changed, a rule added,
    or a rule removed (``name: null``)."""
    from onsale_obs.slo._spec_model import seconds

    rules = {r.name: r for r in DEFAULT_POLICY[mode]}
    for name, change in overrides.items():
        if change is None:
            if rules.pop(name, None) is None:
                found.add(
                    f"there is no default rule {name!r} to remove; defaults are {sorted(rules)}.",
                    [*where, name],
                )
            continue
        base = rules.get(name)
        fields = {k: v for k, v in change.model_dump().items() if v is not None}
        if base is None:
            missing = [f for f in ("long", "short", "burn_rate", "priority") if f not in fields]
            if missing:
                found.add(
                    f"a new rule needs {', '.join(missing)} (defaults exist only for "
                    f"{sorted(rules)}).",
                    [*where, name],
                )
                continue
            base = AlertRule(name, 1.0, 1.0, 1.0, "P4", 10 if mode == "normal" else 5)
        rule = AlertRule(
            name,
            long=seconds(fields["long"]) if "long" in fields else base.long,
            short=seconds(fields["short"]) if "short" in fields else base.short,
            burn_rate=float(fields.get("burn_rate", base.burn_rate)),
            priority=fields.get("priority", base.priority),
            min_bad_events=int(fields.get("min_bad_events", base.min_bad_events)),
        )
        if rule.short >= rule.long:
            found.add("the short window must be shorter than the long one.", [*where, name])
            continue
        rules[name] = rule
    return tuple(rules.values())
