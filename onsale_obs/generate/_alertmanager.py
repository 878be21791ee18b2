"""Alertmanager routing for the generated SLO alerts: pages for on-sales, tickets for the morning.

Two forms. By default a **subtree to merge** into a configuration other teams share: one route
(to put first under the shared root's ``routes``), its receivers, inhibit rules and time
interval, every name prefixed ``onsale-obs-``. ``--whole-config`` gives a complete
``alertmanager.yml`` with the same subtree under a root whose receiver is ``default``.

The subtree matches only alerts that carry ``onsale_obs`` (the generated SLO alerts carry
``onsale_obs="slo"``, the hold alerts ``onsale_obs="hold"``), then the alert-label contract
(``mode``, ``priority``)::

    onsale_obs=~"slo|hold"
      onsale_obs="hold"             -> hold (no integrations: it only inhibits)
      onsale_obs="slo", mode=onsale|normal
        priority=P1                 -> pager, at any hour
        priority=P2                 -> pager, business hours only
        priority=P3                 -> ticket, business hours only
        priority=P4                 -> info (ticket when none is configured), business hours only
      anything else of ours         -> default

The policy gives on-sale burns P1/P2 and normal-time burns P3/P4; the normal-mode P1/P2
branches only matter when a spec overrides a priority, and then the priority decides. An
on-sale P1 inhibits the same SLO's P2-P4 alerts, so the pager gets one page, not four.

**No page after the fact.** Inhibition holds only while its source fires: when the P1 resolves,
a P2 raised by the same burn (its short window remembers the burn for up to that window) would
page in the same second, after the checkout healed or the on-sale ended. The hold rule
(``alertmanager-hold.rules.yml``, for Prometheus) raises ``OnsaleObsPageHold{slo}`` while an
on-sale P1 of the SLO fires and keeps it firing (``keep_firing_for``) for the longest short
window of the on-sale's lower-priority rules plus the P1's own short window; the hold inhibits
what the P1 inhibits. The SLO alerts themselves are unchanged, so they still fire exactly where
the engine's rules fire, and the P1's own resolve notification is not delayed.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from onsale_obs.exceptions import BadInputError, OnsaleObsError
from onsale_obs.generate._alertmanager_spec import ReceiversConfig, TimingModel
from onsale_obs.validation import kind_of
from onsale_obs.yamlfile import read_yaml

if TYPE_CHECKING:
    from onsale_obs.slo import SLOSpec

GROUP_BY: Final = ("alertname", "slo", "event", "mode")
BUSINESS_HOURS: Final = "business-hours"
PAGER: Final = "pager"
TICKET: Final = "ticket"
INFO: Final = "info"
DEFAULT: Final = "default"
HOLD: Final = "hold"
#: The label only onsale-obs' generated alerts carry; every generated route matches it.
OWNER: Final = "onsale_obs"
#: Its value on the SLO burn alerts (the alert rules) and on the hold alert.
SLO_ALERTS: Final = "slo"
HOLD_ALERTS: Final = "hold"
#: Prefix of receiver and time-interval names in the subtree (a shared config has its own).
PREFIX: Final = "onsale-obs-"
HOLD_ALERT: Final = "OnsaleObsPageHold"
DEFAULT_OUT: Final = "alert_rules"
ROUTES_FILE: Final = "alertmanager-routes.yml"
WHOLE_FILE: Final = "alertmanager.yml"
HOLD_FILE: Final = "alertmanager-hold.rules.yml"
_LOWER: Final = 'priority=~"P2|P3|P4"'
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
            f"{_keys(ReceiversConfig)}, got {kind_of(data)}.",
            file=file,
        )
    try:
        return ReceiversConfig.model_validate(data)
    except ValidationError as exc:
        raise BadInputError.from_validation(
            exc, file=file, data=data, model=ReceiversConfig
        ) from None


def _keys(model: Any) -> str:
    return ", ".join(model.model_fields)


@dataclass(frozen=True, slots=True)
class Names:
    """Receiver and time-interval names: bare in the whole file, prefixed in the subtree."""

    pager: str
    ticket: str
    info: str
    default: str
    hold: str
    business_hours: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Names:
        """Every name with ``prefix`` in front (``onsale-obs-pager``)."""
        return cls(*(prefix + n for n in (PAGER, TICKET, INFO, DEFAULT, HOLD, BUSINESS_HOURS)))


def render_alertmanager(
    config: ReceiversConfig,
    *,
    source: str | None = None,
    whole: bool = True,
    spec: str | None = None,
    out: str | None = None,
) -> str:
    """The routing as YAML text: deterministic, keys in a stable order.

    ``whole`` gives a complete ``alertmanager.yml`` (:func:`alertmanager_config`), otherwise
    the subtree to merge (:func:`routing_subtree`). ``source``, ``spec`` and ``out`` are the
    receivers file, SLO spec and output folder as the user named them, for the regenerate
    command in the header comment.
    """
    data = alertmanager_config(config) if whole else routing_subtree(config)
    return _header(source, spec=spec, out=out, whole=whole) + dump_yaml(data)


def dump_yaml(data: Any) -> str:
    """YAML in the style of Alertmanager's documentation (see :func:`_dumper`)."""
    import yaml

    text: str = yaml.dump(
        data,
        Dumper=_dumper(),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return text


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


def render_command(source: str | None, *, spec: str | None, out: str | None, whole: bool) -> str:
    """The ``onsale-obs alertmanager render`` command line that writes these files."""
    command = "onsale-obs alertmanager render"
    if spec is not None:
        command += f" --spec {spec}"
    if source is not None:
        command += f" --receivers {source}"
    command += f" --out {out if out is not None else DEFAULT_OUT + '/'}"
    return command + (" --whole-config" if whole else "")


def _header(source: str | None, *, spec: str | None, out: str | None, whole: bool) -> str:
    command = render_command(source, spec=spec, out=out, whole=whole)
    common = (
        "# Routes only alerts labelled onsale_obs (the generated SLO alerts and their hold), then\n"
        "# on mode and priority: P1 -> pager at any hour; P2 -> pager in business hours;\n"
        "#   P3 -> ticket, P4 -> info (or ticket), both in business hours; other -> default.\n"
        "# An on-sale P1 inhibits the same SLO's P2-P4 alerts, and so does its hold\n"
        f"# ({HOLD_ALERT}, from {HOLD_FILE}: load it into Prometheus),\n"
        "# which outlasts the P1 until the lower alerts of the same burn have cleared.\n"
    )
    head = (
        "# Generated by onsale-obs; do not edit by hand. Regenerate with:\n"
        f"#   {command}\n"
        "# CI fails when this file differs from what that command writes (--check).\n"
        "#\n"
    )
    if whole:
        return head + common
    return (
        head + "# A subtree to merge into an Alertmanager configuration other teams share:\n"
        "#   routes:          put first in your route.routes (it matches only our alerts, and\n"
        "#                    nothing before it should catch them);\n"
        "#   inhibit_rules, receivers, time_intervals: append to yours (names start with\n"
        f"#                    {PREFIX}; source and target match only our alerts).\n"
        "# amtool check-config was run on it merged under a bare root route.\n"
        "#\n" + common
    )


def alertmanager_config(config: ReceiversConfig) -> dict[str, Any]:
    """The whole Alertmanager configuration as plain data, in the order it is written.

    The root route sends what is not ours to ``default``; the subtree (bare names) sits under
    it as its only child.
    """
    subtree = routing_subtree(config, prefix="")
    return {
        "route": {
            "receiver": DEFAULT,
            "group_by": list(GROUP_BY),
            **_timing(config.timing.default),
            "routes": subtree["routes"],
        },
        "inhibit_rules": subtree["inhibit_rules"],
        "receivers": subtree["receivers"],
        "time_intervals": subtree["time_intervals"],
    }


def routing_subtree(config: ReceiversConfig, *, prefix: str = PREFIX) -> dict[str, Any]:
    """The part to merge into a shared configuration: ``routes`` (one route, to put first in
    the shared ``route.routes``), ``inhibit_rules``, ``receivers``, ``time_intervals``."""
    names = Names.with_prefix(prefix)
    return {
        "routes": [_route(config, names)],
        "inhibit_rules": inhibit_rules(),
        "receivers": _receivers(config, names),
        "time_intervals": [_business_hours(config, names)],
    }


def inhibit_rules() -> list[dict[str, Any]]:
    """An on-sale P1, and its hold after it, inhibit the same SLO's P2-P4; both sides match
    only our alerts, so another team's alerts with the same labels are never touched."""
    ours = f'{OWNER}="{SLO_ALERTS}"'
    return [
        {
            "source_matchers": [ours, 'mode="onsale"', 'priority="P1"'],
            "target_matchers": [ours, _LOWER],
            "equal": ["slo"],
        },
        {
            "source_matchers": [f'{OWNER}="{HOLD_ALERTS}"', f'alertname="{HOLD_ALERT}"'],
            "target_matchers": [ours, _LOWER],
            "equal": ["slo"],
        },
    ]


def _timing(timing: TimingModel) -> dict[str, str]:
    return {
        "group_wait": timing.group_wait,
        "group_interval": timing.group_interval,
        "repeat_interval": timing.repeat_interval,
    }


def _route(config: ReceiversConfig, names: Names) -> dict[str, Any]:
    timing = config.timing
    business = [names.business_hours]
    by_priority: list[dict[str, Any]] = [
        {"receiver": names.pager, "matchers": ['priority="P1"'], **_timing(timing.page)},
        {
            "receiver": names.pager,
            "matchers": ['priority="P2"'],
            **_timing(timing.business_page),
            "active_time_intervals": business,
        },
        {
            "receiver": names.ticket,
            "matchers": ['priority="P3"'],
            **_timing(timing.ticket),
            "active_time_intervals": business,
        },
        {
            "receiver": names.info if config.info is not None else names.ticket,
            "matchers": ['priority="P4"'],
            **_timing(timing.ticket),
            "active_time_intervals": business,
        },
    ]
    return {
        "receiver": names.default,
        "matchers": [f'{OWNER}=~"{SLO_ALERTS}|{HOLD_ALERTS}"'],
        "group_by": list(GROUP_BY),
        **_timing(timing.default),
        "routes": [
            {"receiver": names.hold, "matchers": [f'{OWNER}="{HOLD_ALERTS}"']},
            *(
                {
                    "matchers": [f'{OWNER}="{SLO_ALERTS}"', f'mode="{mode}"'],
                    "routes": [dict(r) for r in by_priority],
                }
                for mode in ("onsale", "normal")
            ),
        ],
    }


def _webhooks(url: str | None) -> dict[str, Any]:
    return {"webhook_configs": [{"url": url, "send_resolved": True}]} if url else {}


def _receivers(config: ReceiversConfig, names: Names) -> list[dict[str, Any]]:
    pager: dict[str, Any] = {"name": names.pager}
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
    receivers = [pager, {"name": names.ticket, **_webhooks(config.ticket.webhook_url)}]
    if config.info is not None:
        receivers.append({"name": names.info, **_webhooks(config.info.webhook_url)})
    receivers.append({"name": names.default, **_webhooks(config.default.webhook_url)})
    # no integrations: the hold alert only inhibits, it never notifies anyone
    receivers.append({"name": names.hold})
    return receivers


def _business_hours(config: ReceiversConfig, names: Names) -> dict[str, Any]:
    hours = config.business_hours
    return {
        "name": names.business_hours,
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


# -- merging into a shared configuration ----------------------------------------------------


def merge_routing(base: Any, subtree: dict[str, Any], *, file: str = "<config>") -> dict[str, Any]:
    """``base`` (a parsed Alertmanager configuration) with ``subtree`` merged in.

    Our route goes first in ``route.routes``; receivers, inhibit rules and time intervals are
    appended. A name the base already uses is bad input naming ``file`` and the field: the
    merge would otherwise change where someone else's alerts go.
    """
    import copy

    if not isinstance(base, dict):
        raise BadInputError(
            f"expected an Alertmanager configuration (a mapping with route and receivers), "
            f"got {_what(base)}.",
            file=file,
        )
    merged = copy.deepcopy(base)
    route = merged.get("route")
    if not isinstance(route, dict):
        raise BadInputError(
            f"expected the root route (a mapping with a receiver), got {_what(route)}.",
            file=file,
            field="route",
        )
    theirs = route.get("routes") or []
    if not isinstance(theirs, list):
        raise BadInputError(
            f"expected a list, got {_what(theirs)}.", file=file, field="route.routes"
        )
    route["routes"] = [*copy.deepcopy(subtree["routes"]), *theirs]
    for key, others in (
        ("receivers", ("receivers",)),
        ("time_intervals", ("time_intervals", "mute_time_intervals")),
    ):
        taken = {
            item.get("name")
            for other in others
            for item in _list(merged, other, file)
            if isinstance(item, dict)
        }
        for item in subtree[key]:
            if item["name"] in taken:
                raise BadInputError(
                    f"already has one named {item['name']!r}; onsale-obs needs that name for "
                    "its own. Rename yours, or render with another receivers file.",
                    file=file,
                    field=key,
                )
        merged[key] = [*_list(merged, key, file), *copy.deepcopy(subtree[key])]
    merged["inhibit_rules"] = [
        *_list(merged, "inhibit_rules", file),
        *copy.deepcopy(subtree["inhibit_rules"]),
    ]
    return merged


def _list(data: dict[str, Any], key: str, file: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise BadInputError(f"expected a list, got {_what(value)}.", file=file, field=key)
    return value


def _what(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"a {type(value).__name__}"


def without_ours(config: Any) -> Any:
    """``config`` without what a previous merge added (our route, ``onsale-obs-*`` receivers
    and time intervals, inhibit rules whose source matches ``onsale_obs``), so merging again
    replaces it. Anything else, also malformed, is left for :func:`merge_routing` to judge."""
    import copy

    if not isinstance(config, dict):
        return config
    out = copy.deepcopy(config)

    def ours(matchers: Any) -> bool:
        return isinstance(matchers, list) and any(
            isinstance(m, str) and m.replace(" ", "").startswith(OWNER) for m in matchers
        )

    route = out.get("route")
    if isinstance(route, dict) and isinstance(route.get("routes"), list):
        route["routes"] = [
            r for r in route["routes"] if not (isinstance(r, dict) and ours(r.get("matchers")))
        ]
    for key in ("receivers", "time_intervals"):
        if isinstance(out.get(key), list):
            out[key] = [
                item
                for item in out[key]
                if not (isinstance(item, dict) and str(item.get("name", "")).startswith(PREFIX))
            ]
    if isinstance(out.get("inhibit_rules"), list):
        out["inhibit_rules"] = [
            rule
            for rule in out["inhibit_rules"]
            if not (isinstance(rule, dict) and ours(rule.get("source_matchers")))
        ]
    return out


def render_merged(
    base: Any,
    config: ReceiversConfig,
    *,
    file: str,
    source: str | None = None,
    spec: str | None = None,
    out: str | None = None,
) -> str:
    """``file``'s configuration (``base``, parsed) with the subtree merged in (a previous
    merge replaced), headed by the command that writes it."""
    merged = merge_routing(without_ours(base), routing_subtree(config), file=file)
    command = render_command(source, spec=spec, out=out, whole=False).replace(
        " --out", f" --merge-into {file} --out"
    )
    header = (
        f"# {file} with the onsale-obs routing merged in (written by onsale-obs; the routes,\n"
        "# receivers, inhibit rules and time intervals named onsale-obs are replaced each time).\n"
        f"#   {command}\n"
        "# Comments of the original are not kept; edit the original, not this file.\n"
    )
    return header + dump_yaml(merged)


def checkable(subtree: dict[str, Any]) -> str:
    """The subtree merged under a bare root route, for ``amtool check-config``."""
    base = {"route": {"receiver": "root"}, "receivers": [{"name": "root"}]}
    return dump_yaml(merge_routing(base, subtree))


# -- the hold: Prometheus keeps the P1's inhibition for a while after it resolves -----------


def hold_seconds(spec: SLOSpec | None) -> float:
    """How long the hold outlasts an on-sale P1: the longest short window of the on-sale's
    lower-priority rules (they forget the burn within it) plus the P1's own short window (the
    P1 clears at the earliest one such window before they do, margin for scrape and
    evaluation lag). Without a spec, the default policy's: 5m + 1m."""
    from onsale_obs.slo import DEFAULT_POLICY

    policies = [s.policy["onsale"] for s in spec.slos] if spec is not None else []
    if not policies:
        policies = [DEFAULT_POLICY["onsale"]]
    lower = max((r.short for p in policies for r in p if r.priority != "P1"), default=0.0)
    first = max((r.short for p in policies for r in p if r.priority == "P1"), default=0.0)
    return lower + first


def hold_rules(spec: SLOSpec | None) -> dict[str, Any]:
    """The Prometheus rule group of the hold alert (see the module docstring)."""
    from onsale_obs.durations import format_duration

    hold = format_duration(hold_seconds(spec))
    p1 = f'ALERTS{{{OWNER}="{SLO_ALERTS}", mode="onsale", priority="P1", alertstate="firing"}}'
    return {
        "groups": [
            {
                "name": "onsale-obs:alertmanager-hold",
                "rules": [
                    {
                        "alert": HOLD_ALERT,
                        "expr": f"max by (slo) ({p1})",
                        "keep_firing_for": hold,
                        "labels": {OWNER: HOLD_ALERTS},
                        "annotations": {
                            "summary": (
                                "{{ $labels.slo }}: on-sale P1 fired; its P2-P4 alerts are "
                                f"held for {hold} after it resolves (never notified)"
                            ),
                            "description": (
                                "Alertmanager inhibits the SLO's P2-P4 alerts while this "
                                "fires, so a lower alert raised by the same burn does not "
                                "page once the P1 resolves (the checkout healed, the on-sale "
                                "ended). A burn that goes on pages when the hold ends."
                            ),
                        },
                    }
                ],
            }
        ]
    }


def render_hold_rules(spec: SLOSpec | None, *, spec_source: str | None = None) -> str:
    """``alertmanager-hold.rules.yml``: the hold rule, for Prometheus to load."""
    from onsale_obs.generate._yaml import dump

    sized = f"--spec {spec_source}" if spec_source is not None else "the default policy"
    header = (
        "Generated by onsale-obs alertmanager render; do not edit by hand.\n"
        "Load it into Prometheus beside the SLO rules: the Alertmanager routing inhibits an\n"
        f"SLO's P2-P4 alerts while {HOLD_ALERT} fires (sized from {sized})."
    )
    return dump(hold_rules(spec), header)


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
