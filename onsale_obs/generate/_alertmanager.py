"""Alertmanager routing for the generated SLO alerts: pages for on-sales, tickets for the morning.

The routing tree matches the alert-label contract (``mode``, ``priority``)::

    mode=onsale|normal
      priority=P1     -> pager, at any hour
      priority=P2     -> pager, business hours only
      priority=P3     -> ticket, business hours only
      priority=P4     -> info (ticket when none is configured), business hours only
    anything else     -> default

The policy gives on-sale burns P1/P2 and normal-time burns P3/P4; the normal-mode P1/P2
branches only matter when a spec overrides a priority, and then the priority decides. An
on-sale P1 inhibits the same SLO's P2-P4 alerts, so the pager gets one page, not four.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from onsale_obs.exceptions import BadInputError, OnsaleObsError
from onsale_obs.generate._alertmanager_spec import ReceiversConfig, TimingModel
from onsale_obs.yamlfile import read_yaml

GROUP_BY: Final = ("alertname", "slo", "event", "mode")
BUSINESS_HOURS: Final = "business-hours"
PAGER: Final = "pager"
TICKET: Final = "ticket"
INFO: Final = "info"
DEFAULT: Final = "default"
DEFAULT_OUT: Final = "alert_rules/alertmanager.yml"
_AMTOOL_TIMEOUT: Final = 60.0
_CLOCK_TEXT: Final = re.compile(r"\d{1,2}:\d{2}")
#: PagerDuty severity from the priority: P1 is critical, a business-hours P2 an error.
_PAGERDUTY_SEVERITY: Final = (
    '{{ if eq .CommonLabels.priority "P1" }}critical{{ else }}error{{ end }}'
)
#: Opsgenie has the same P1..P5 scale; every group on the pager route shares one priority.
_OPSGENIE_PRIORITY: Final = "{{ .CommonLabels.priority }}"


def load_receivers(path: str | Path | None) -> ReceiversConfig:
    """Read and validate a receivers YAML file; ``None`` gives the defaults.

    Every error is a ``BadInputError`` naming the file, the path inside it and what was
    expected.
    """
    if path is None:
        return ReceiversConfig()
    data = read_yaml(
        path, expected="a receivers YAML file (see examples/alertmanager/receivers.yaml)"
    )
    return receivers_from_data(data, file=str(path))


def receivers_from_data(data: Any, *, file: str = "<receivers>") -> ReceiversConfig:
    """Validate parsed YAML: a mapping (or nothing, for the defaults)."""
    from pydantic import ValidationError

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInputError(
            f"expected a mapping at the top level with any of the keys "
            f"{_keys(ReceiversConfig)}, got {_kind(data)}.",
            file=file,
        )
    try:
        return ReceiversConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or None
        raise BadInputError(_explain(err, loc), file=file, field=where) from None


def _explain(err: Any, loc: tuple[Any, ...]) -> str:
    """Pydantic's message in the words of this file format."""
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = _keys(parent) if parent is not None else "none"
        return f"is not a known key; expected one of {known}."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {_kind(err.get('input'))}."
    if kind == "list_type":
        return f"expected a list, got {_kind(err.get('input'))}."
    if kind == "string_type":
        return f"expected text, got {_kind(err.get('input'))}."
    if kind == "missing":
        return "is required."
    return str(err["msg"]).removeprefix("Value error, ").rstrip(".") + "."


def _model_at(loc: tuple[Any, ...]) -> type[Any] | None:
    """The pydantic model class that holds the keys at ``loc`` (for "expected one of")."""
    import typing

    from pydantic import BaseModel

    model: type[BaseModel] = ReceiversConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        candidates = typing.get_args(field.annotation) or (field.annotation,)
        found = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not found:
            return None
        model = found[0]
    return model


def _keys(model: Any) -> str:
    return ", ".join(model.model_fields)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, bool):
        return f"{value!r}".lower()
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def render_alertmanager(config: ReceiversConfig, *, source: str | None = None) -> str:
    """The ``alertmanager.yml`` text for ``config``: deterministic, keys in a stable order.

    ``source`` is the receivers file as the user named it, for the regenerate command in the
    header comment.
    """
    import yaml

    body = yaml.dump(
        alertmanager_config(config),
        Dumper=_dumper(),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return _header(source) + body


def _dumper() -> type[Any]:
    """A safe YAML dumper in the style of Alertmanager's documentation.

    Lists of strings go on one line (``group_by: [alertname, slo]``), nested lists are
    indented under their key, clock times are always quoted, and repeated values are written
    out again instead of as ``&id001`` anchors, which people cannot read.
    """
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    def strings(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flow = bool(data) and all(isinstance(item, str) for item in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        style = "'" if _CLOCK_TEXT.fullmatch(data) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(list, strings)
    Dumper.add_representer(str, text)
    return Dumper


def _header(source: str | None) -> str:
    command = "onsale-obs alertmanager render"
    if source is not None:
        command += f" --config {source}"
    return (
        "# Generated by onsale-obs; do not edit by hand. Regenerate with:\n"
        f"#   {command} --out {DEFAULT_OUT}\n"
        "# CI fails when this file differs from what that command writes (--check).\n"
        "#\n"
        "# Routes on the SLO alert labels mode and priority:\n"
        "#   P1 -> pager at any hour; P2 -> pager in business hours;\n"
        "#   P3 -> ticket, P4 -> info (or ticket), both in business hours; anything else -> default.\n"
        "# An on-sale P1 inhibits the same SLO's P2-P4 alerts.\n"
    )


def alertmanager_config(config: ReceiversConfig) -> dict[str, Any]:
    """The Alertmanager configuration as plain data, in the order it is written."""
    return {
        "route": _route(config),
        "inhibit_rules": [
            {
                "source_matchers": ['mode="onsale"', 'priority="P1"'],
                "target_matchers": ['priority=~"P2|P3|P4"'],
                "equal": ["slo"],
            }
        ],
        "receivers": _receivers(config),
        "time_intervals": [_business_hours(config)],
    }


def _timing(timing: TimingModel) -> dict[str, str]:
    return {
        "group_wait": timing.group_wait,
        "group_interval": timing.group_interval,
        "repeat_interval": timing.repeat_interval,
    }


def _route(config: ReceiversConfig) -> dict[str, Any]:
    timing = config.timing
    by_priority: list[dict[str, Any]] = [
        {"receiver": PAGER, "matchers": ['priority="P1"'], **_timing(timing.page)},
        {
            "receiver": PAGER,
            "matchers": ['priority="P2"'],
            **_timing(timing.business_page),
            "active_time_intervals": [BUSINESS_HOURS],
        },
        {
            "receiver": TICKET,
            "matchers": ['priority="P3"'],
            **_timing(timing.ticket),
            "active_time_intervals": [BUSINESS_HOURS],
        },
        {
            "receiver": INFO if config.info is not None else TICKET,
            "matchers": ['priority="P4"'],
            **_timing(timing.ticket),
            "active_time_intervals": [BUSINESS_HOURS],
        },
    ]
    return {
        "receiver": DEFAULT,
        "group_by": list(GROUP_BY),
        **_timing(timing.default),
        "routes": [
            {"matchers": [f'mode="{mode}"'], "routes": [dict(r) for r in by_priority]}
            for mode in ("onsale", "normal")
        ],
    }


def _webhooks(url: str | None) -> dict[str, Any]:
    return {"webhook_configs": [{"url": url, "send_resolved": True}]} if url else {}


def _receivers(config: ReceiversConfig) -> list[dict[str, Any]]:
    pager: dict[str, Any] = {"name": PAGER}
    if config.pager.pagerduty is not None:
        pd = config.pager.pagerduty
        pagerduty: dict[str, Any] = {"routing_key_file": pd.routing_key_file}
        if pd.url is not None:
            pagerduty["url"] = pd.url
        pagerduty["severity"] = _PAGERDUTY_SEVERITY
        pagerduty["send_resolved"] = True
        pager["pagerduty_configs"] = [pagerduty]
    if config.pager.opsgenie is not None:
        og = config.pager.opsgenie
        opsgenie: dict[str, Any] = {"api_key_file": og.api_key_file}
        if og.api_url is not None:
            opsgenie["api_url"] = og.api_url
        opsgenie["priority"] = _OPSGENIE_PRIORITY
        opsgenie["send_resolved"] = True
        pager["opsgenie_configs"] = [opsgenie]
    pager.update(_webhooks(config.pager.webhook_url))
    receivers = [pager, {"name": TICKET, **_webhooks(config.ticket.webhook_url)}]
    if config.info is not None:
        receivers.append({"name": INFO, **_webhooks(config.info.webhook_url)})
    receivers.append({"name": DEFAULT, **_webhooks(config.default.webhook_url)})
    return receivers


def _business_hours(config: ReceiversConfig) -> dict[str, Any]:
    hours = config.business_hours
    return {
        "name": BUSINESS_HOURS,
        "time_intervals": [
            {
                "weekdays": list(hours.weekdays),
                "times": [
                    {"start_time": start, "end_time": end}
                    for start, end in (t.split("-") for t in hours.times)
                ],
                "location": hours.time_zone,
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``amtool check-config`` said: ``checked`` is False when amtool was not used."""

    checked: bool
    output: str = ""


def check_config(path: Path, amtool: str | None, *, file: str | None = None) -> CheckResult:
    """Run ``amtool check-config`` on a written configuration.

    Raises ``BadInputError`` (naming ``file``, the receivers file) with amtool's reason when it
    rejects the configuration, and ``OnsaleObsError`` when amtool cannot be run at all.
    """
    if amtool is None:
        return CheckResult(checked=False)
    try:
        done = subprocess.run(
            [amtool, "check-config", str(path)],
            capture_output=True,
            text=True,
            timeout=_AMTOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OnsaleObsError(f"could not run {amtool} check-config: {exc}") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise BadInputError(
            f"amtool check-config rejected the generated configuration: {_reason(output)}",
            file=file,
        )
    return CheckResult(checked=True, output=output)


def _reason(output: str) -> str:
    for line in output.splitlines():
        if "FAILED:" in line:
            return line.split("FAILED:", 1)[1].strip()
    return output.splitlines()[0] if output else "no reason given"


def write_alertmanager(
    text: str, out: Path, *, amtool: str | None, file: str | None = None
) -> CheckResult:
    """Write ``text`` to ``out`` atomically, after ``amtool check-config`` accepted it.

    The configuration goes to a temporary file beside ``out`` (so relative paths inside it
    resolve as they will), is checked, and only then replaces ``out``: a rejected or
    interrupted render leaves the previous file as it was.
    """
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise BadInputError(f"cannot write here ({exc.strerror or exc}).", file=str(out)) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        result = check_config(tmp, amtool, file=file)
        # mkstemp makes the file 0600; Alertmanager usually runs as its own user
        tmp.chmod(0o644)
        os.replace(tmp, out)
    except OSError as exc:
        raise BadInputError(f"cannot write here ({exc.strerror or exc}).", file=str(out)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return result


def check_text(text: str, *, amtool: str | None, file: str | None = None) -> CheckResult:
    """Check a configuration that is not written to a file (``--out -``)."""
    with tempfile.TemporaryDirectory(prefix="onsale-alertmanager-") as folder:
        path = Path(folder) / "alertmanager.yml"
        path.write_text(text, encoding="utf-8")
        return check_config(path, amtool, file=file)
