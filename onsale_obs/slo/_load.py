"""Reading SLO spec files: YAML -> validated model -> the frozen objects of ``_spec``."""

from __future__ import annotations

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
)
from onsale_obs.types import Mode
from onsale_obs.yamlfile import read_yaml


def load_spec(path: str | Path) -> SLOSpec:
    """Read and validate a spec file; every error names the file and the path inside it."""
    data = read_yaml(path, expected="an SLO spec YAML file", error=SpecError)
    return spec_from_data(data, file=str(path))


def spec_from_data(data: Any, *, file: str = "<spec>") -> SLOSpec:
    """Validate parsed YAML (a mapping with ``slos``)."""
    from pydantic import ValidationError  # loaded only when a spec is read

    from onsale_obs.slo._spec_model import SpecModel

    if not isinstance(data, dict):
        raise SpecError(
            "expected a mapping with a list 'slos' at the top level "
            "(see the README, section 'SLO spec').",
            file=file,
        )
    try:
        model = SpecModel.model_validate(data)
    except ValidationError as exc:
        raise SpecError.from_validation(exc, file=file) from None
    slos = tuple(_slo(m, i, file) for i, m in enumerate(model.slos))
    from onsale_obs.slo._spec_model import seconds

    return SLOSpec(slos, source=file, grace=seconds(model.onsale_grace))


def _slo(m: Any, index: int, file: str) -> SLO:
    from onsale_obs.slo._spec_model import LatencyModel, PromQLModel, ThresholdModel, seconds

    sli: SLI
    if isinstance(m.sli, PromQLModel):
        from onsale_obs.generate._promql import is_selector

        for name in ("good", "total"):
            text = getattr(m.sli, name)
            if not is_selector(text):
                raise SpecError(
                    f"{text!r} is not a series selector; expected a counter such as "
                    'payments_total{outcome="ok"} (no functions, no ranges).',
                    file=file,
                    field=f"slos.{index}.sli.{name}",
                )
        sli = PromQLSLI(good=m.sli.good.strip(), total=m.sli.total.strip())
    else:
        selector = Selector(m.service, tuple(m.sli.routes), tuple(m.sli.methods))
        if isinstance(m.sli, LatencyModel):
            t = m.sli.threshold
            both = (t.normal, t.onsale) if isinstance(t, ThresholdModel) else (t, t)
            sli = LatencySLI(selector, {"normal": seconds(both[0]), "onsale": seconds(both[1])})
        else:
            sli = AvailabilitySLI(selector, frozenset(m.sli.bad_codes))
    policy: dict[Mode, tuple[AlertRule, ...]] = {}
    for mode in ("normal", "onsale"):
        overrides: dict[str, Any] = getattr(m.alerting, mode)
        policy[mode] = _rules(mode, overrides, f"slos.{index}.alerting.{mode}", file)
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


def _rules(mode: Mode, overrides: dict[str, Any], where: str, file: str) -> tuple[AlertRule, ...]:
    """The default rules of ``mode`` with a spec's changes: a field changed, a rule added,
    or a rule removed (``name: null``)."""
    from onsale_obs.slo._spec_model import seconds

    rules = {r.name: r for r in DEFAULT_POLICY[mode]}
    for name, change in overrides.items():
        if change is None:
            if rules.pop(name, None) is None:
                raise SpecError(
                    f"there is no default rule {name!r} to remove; defaults are {sorted(rules)}.",
                    file=file,
                    field=f"{where}.{name}",
                )
            continue
        base = rules.get(name)
        fields = {k: v for k, v in change.model_dump().items() if v is not None}
        if base is None:
            missing = [f for f in ("long", "short", "burn_rate", "priority") if f not in fields]
            if missing:
                raise SpecError(
                    f"a new rule needs {', '.join(missing)} (defaults exist only for "
                    f"{sorted(rules)}).",
                    file=file,
                    field=f"{where}.{name}",
                )
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
            raise SpecError(
                "the short window must be shorter than the long one.",
                file=file,
                field=f"{where}.{name}",
            )
        rules[name] = rule
    return tuple(rules.values())
