"""The configuration files the stack's servers start with: Prometheus' and Alertmanager's."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._alertmanager import (
    load_receivers,
    receivers_from_data,
    render_alertmanager,
)
from onsale_obs.yamlfile import read_yaml

#: Every day, all day: tickets (P3/P4) are delivered at once instead of "in the morning".
ALWAYS: Final[Mapping[str, Any]] = {
    "time_zone": "UTC",
    "weekdays": ["sunday:saturday"],
    "times": ["00:00-24:00"],
}
#: Notify within a second of an alert, for tests and demos (the routing tree is unchanged).
QUICK: Final[Mapping[str, str]] = {
    "group_wait": "1s",
    "group_interval": "1s",
    "repeat_interval": "1h",
}
_REGIMES: Final = ("page", "business_page", "ticket", "default")
_RECEIVERS: Final = {"ticket": "ticket", "info": "info", "default": "default"}


def prometheus_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: ``5`` -> ``5s``, ``0.5`` -> ``500ms``."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"expected a positive number of seconds, got {seconds!r}.")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def prometheus_yaml(
    *,
    targets: Sequence[str],
    rule_files: Sequence[Path],
    alertmanager: str,
    scrape_interval: float,
    evaluation_interval: float,
) -> str:
    """``prometheus.yml``: scrape ``targets`` (``host:port``), load the rules, alert to ``alertmanager``.

    One job, ``ticketing``, with the three services as targets: their metrics carry their own
    ``service`` label, so the targets get no extra labels (that would rename it
    ``exported_service``).
    """
    import yaml

    interval = prometheus_duration(scrape_interval)
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": prometheus_duration(min(scrape_interval, 10.0)),
            "evaluation_interval": prometheus_duration(evaluation_interval),
        },
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "ticketing", "static_configs": [{"targets": list(targets)}]},
        ],
    }
    return "# Written by examples/stack; regenerated on every start.\n" + yaml.safe_dump(
        config, sort_keys=False
    )


def alertmanager_yaml(
    receivers_file: Path,
    sink_url: str,
    *,
    business_hours: Mapping[str, Any] | None = None,
    timing: Mapping[str, str] | None = None,
) -> str:
    """The generated ``alertmanager.yml`` for ``receivers_file``, delivering to a local sink.

    The routing tree is what ``onsale-obs alertmanager render`` writes; only the receivers
    change: every receiver posts to ``sink_url`` (``/page``, ``/ticket``, ``/info``,
    ``/default``) and PagerDuty/Opsgenie are dropped, so nothing leaves the machine.
    ``business_hours`` (``{time_zone, weekdays, times}``, see :data:`ALWAYS`) and ``timing``
    (``{group_wait, group_interval, repeat_interval}`` for every regime, see :data:`QUICK`)
    replace the file's when given.
    """
    data = read_yaml(
        receivers_file, expected="a receivers YAML file (see examples/alertmanager/receivers.yaml)"
    )
    load_receivers(receivers_file)  # the file's own mistakes are reported against the file
    local: dict[str, Any] = copy.deepcopy(data) if isinstance(data, dict) else {}
    local["pager"] = {"webhook_url": f"{sink_url}/page"}
    for key, path in _RECEIVERS.items():
        if key != "info" or local.get("info") is not None:
            local[key] = {"webhook_url": f"{sink_url}/{path}"}
    if business_hours is not None:
        local["business_hours"] = dict(business_hours)
    if timing is not None:
        local["timing"] = {regime: dict(timing) for regime in _REGIMES}
    try:
        receivers = receivers_from_data(local, file=str(receivers_file))
    except BadInputError as exc:  # the file was fine, so a business-hours or timing override
        raise BadInputError(
            exc.detail, file=f"{receivers_file} with the stack's overrides", field=exc.field
        ) from None
    return render_alertmanager(receivers, source=str(receivers_file))
