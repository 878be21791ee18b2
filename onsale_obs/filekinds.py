"""The kinds of input file onsale-obs reads, checked all at once (``slo validate``) and
described as JSON Schema (``schema NAME``).

======== ============================================ ==============================
kind     what it is                                   read by
======== ============================================ ==============================
spec     SLO spec (native, OpenSLO v1, Sloth)         every ``--spec``
receivers where pages, tickets and info go           ``alertmanager render --config``
schedule on-sale schedule                             ``--schedule``, ``mode schedule``
scenario waiting-room simulation scenario             ``exit-rate simulate``
======== ============================================ ==============================

:func:`check_file` returns *every* problem of a file, each naming the file, the line and
column, the field and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from onsale_obs.exceptions import BadInputError, ScheduleError, SpecError
from onsale_obs.yamlfile import Located, read_yaml_documents, read_yaml_located

Kind = Literal["spec", "receivers", "schedule", "scenario"]
KINDS: Final[tuple[Kind, ...]] = ("spec", "receivers", "schedule", "scenario")
SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_DESCRIPTIONS: Final[dict[Kind, str]] = {
    "spec": "SLO spec: SLOs per service with an objective per mode (README, 'SLO spec')",
    "receivers": "Alertmanager receivers: where pages, tickets and info go",
    "schedule": "on-sale schedule: the windows each event (or global) is on sale",
    "scenario": "waiting-room simulation scenario (exit-rate simulate)",
}
_EXPECTED: Final[dict[Kind, str]] = {
    "spec": "an SLO spec YAML file (native, OpenSLO v1 or Sloth prometheus/v1)",
    "receivers": "a receivers YAML file (see examples/alertmanager/receivers.yaml)",
    "schedule": "an on-sale schedule YAML file",
    "scenario": "a scenario YAML file (see examples/scenarios/)",
}


@dataclass
class Checked:
    """What ``check_file`` found: the kind, the spec format, and every problem."""

    file: str
    kind: Kind | None
    problems: list[BadInputError] = field(default_factory=list)
    #: for specs: native, openslo or sloth; and the native spec data (converted if need be)
    format: str | None = None
    native: Any = None
    summary: str = ""

    @property
    def valid(self) -> bool:
        return not self.problems


def describe(kind: Kind) -> str:
    """One line saying what a kind of file is."""
    return _DESCRIPTIONS[kind]


def model_of(kind: Kind) -> Any:
    """The pydantic model that validates a kind of file (imported on demand)."""
    if kind == "spec":
        from onsale_obs.slo._spec_model import SpecModel

        return SpecModel
    if kind == "receivers":
        from onsale_obs.generate._alertmanager_spec import ReceiversConfig

        return ReceiversConfig
    if kind == "schedule":
        from onsale_obs.modes._schedule_spec import ScheduleSpec

        return ScheduleSpec
    from onsale_obs.exitrate._scenario_model import ScenarioModel

    return ScenarioModel


def json_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a kind of file, from its pydantic model."""
    schema = model_of(kind).model_json_schema()
    return {
        "$schema": SCHEMA_DIALECT,
        **schema,
        "title": f"onsale-obs {kind}",
        "description": describe(kind),
    }


def json_schema_text(kind: Kind) -> str:
    """:func:`json_schema` as indented JSON, as ``onsale-obs schema NAME`` prints it."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=False) + "\n"


def detect_kind(data: Any) -> Kind | None:
    """Which kind a file's (first) document is, from its top-level keys; None if unclear."""
    from onsale_obs.slo._standard import spec_format

    if spec_format([data]) != "native":
        return "spec"
    if not isinstance(data, dict):
        return None
    keys = set(data)
    if "slos" in keys:
        return "spec"
    if "onsales" in keys:
        return "schedule"
    if keys & {"waiting_room", "backend", "seed", "horizon"}:
        return "scenario"
    receivers = set(model_of("receivers").model_fields)
    if keys and keys <= receivers:
        return "receivers"
    return None


def _split(field_: str | None) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in (field_ or "").split(".") if p]


def _placed(err: BadInputError, located: Located) -> BadInputError:
    """``err`` with the line and column of its field (when the loader did not know them)."""
    if err.line is not None:
        return err
    place = located.position(_split(err.field)) if err.field else None
    line, column = place if place else (None, None)
    return type(err)(err.detail, file=err.file, field=err.field, line=line, column=column)


def check_file(path: str | Path, kind: Kind | None = None) -> Checked:
    """Every problem of one file; ``kind`` None detects it from the content."""
    file = str(path)
    if kind is None:
        try:
            docs = read_yaml_documents(path, expected="an onsale-obs YAML file")
        except BadInputError as exc:
            return Checked(file, None, [exc])
        kind = detect_kind(docs[0].data)
        if kind is None:
            return Checked(
                file,
                None,
                [
                    BadInputError(
                        "cannot tell which kind of file this is (a spec has 'slos' or an "
                        "OpenSLO/Sloth header, a schedule 'onsales', a scenario "
                        "'waiting_room' and 'backend', receivers 'pager', 'ticket', ...); "
                        f"pass --kind ({', '.join(KINDS)}).",
                        file=file,
                    )
                ],
            )
    checker: Callable[[str], Checked] = {
        "spec": _check_spec,
        "receivers": _check_receivers,
        "schedule": _check_schedule,
        "scenario": _check_scenario,
    }[kind]
    return checker(file)


def _check_spec(file: str) -> Checked:
    from onsale_obs.slo._load import spec_from_documents
    from onsale_obs.slo._standard import convert, spec_format

    out = Checked(file, "spec")
    try:
        docs = read_yaml_documents(file, expected=_EXPECTED["spec"], error=SpecError)
        kind_ = spec_format([d.data for d in docs])
        out.format = kind_
        spec = spec_from_documents(docs, file=file)
    except SpecError as exc:
        out.problems = list(exc.problems)
        return out
    if out.format == "native":
        out.native = docs[0].data
    else:
        out.native = convert(kind_, docs, file=file)[0]
    out.summary = f"{len(spec.slos)} SLO{'s' if len(spec.slos) != 1 else ''}"
    return out


def _check_model(
    file: str,
    kind: Kind,
    error: type[BadInputError],
    then: Callable[[Any], Any],
    empty_ok: bool,
) -> tuple[Checked, Any]:
    from pydantic import ValidationError

    from onsale_obs.validation import kind_of, problems

    out = Checked(file, kind)
    try:
        located = read_yaml_located(file, expected=_EXPECTED[kind], error=error)
    except BadInputError as exc:
        out.problems = [exc]
        return out, None
    data = located.data
    if data is None and empty_ok:
        data = {}
    model = model_of(kind)
    if not isinstance(data, dict):
        out.problems = [
            error(
                f"expected a mapping at the top level with the keys "
                f"{', '.join(model.model_fields)}, got {kind_of(data)}.",
                file=file,
            )
        ]
        return out, None
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out.problems = list(
            problems(exc, data, file=file, model=model, located=located, error=error)
        )
        return out, None
    try:
        result = then(data)
    except BadInputError as exc:
        out.problems = [_placed(p, located) for p in exc.problems]
        return out, None
    return out, result


def _check_receivers(file: str) -> Checked:
    from onsale_obs.generate._alertmanager import receivers_from_data

    out, _ = _check_model(
        file, "receivers", BadInputError, lambda d: receivers_from_data(d, file=file), True
    )
    return out


def _check_schedule(file: str) -> Checked:
    from onsale_obs.modes._schedule import Schedule

    out, schedule = _check_model(
        file, "schedule", ScheduleError, lambda d: Schedule.from_data(d, file=file), True
    )
    if schedule is not None:
        n = len(schedule.windows)
        out.summary = f"{n} on-sale window{'s' if n != 1 else ''}"
    return out


def _check_scenario(file: str) -> Checked:
    from onsale_obs.exitrate._scenario import scenario_from_data

    out, _ = _check_model(
        file, "scenario", BadInputError, lambda d: scenario_from_data(d, file=file), False
    )
    return out
