"""Where Alertmanager would send an alert: the generated routing tree walked in Python.

Follows Alertmanager's rules for the parts the generated configuration uses: children in
order, ``matchers`` (``=``, ``!=``, ``=~``, ``!~``; regexes anchored), the first matching child
wins unless it says ``continue``, an alert no child matches stays with the parent, and a route
inherits its parent's receiver but not its ``active_time_intervals``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import yaml

_MATCHER: Final = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Destination:
    """A receiver, and the time intervals that limit when it is notified (empty: any time)."""

    receiver: str
    active_time_intervals: tuple[str, ...] = ()

    def describe(self) -> str:
        """``pager (any hour)`` or ``ticket (business-hours)``."""
        when = ", ".join(self.active_time_intervals) or "any hour"
        return f"{self.receiver} ({when})"


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    found = _MATCHER.match(matcher)
    if found is None:
        raise ValueError(f"cannot read the matcher {matcher!r}")
    name, op, value = found.groups()
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    hit = re.fullmatch(value, actual) is not None
    return hit if op == "=~" else not hit


def _walk(
    route: dict[str, Any], labels: dict[str, str], inherited: Destination
) -> list[Destination]:
    # the receiver is inherited; time intervals are not (Alertmanager's dispatch/route.go)
    here = Destination(
        route.get("receiver", inherited.receiver),
        tuple(route.get("active_time_intervals", ())),
    )
    found: list[Destination] = []
    for child in route.get("routes", []):
        if all(_matches(m, labels) for m in child.get("matchers", [])):
            found += _walk(child, labels, here)
            if not child.get("continue", False):
                break
    return found or [here]


def routes_for(config: str | dict[str, Any], labels: dict[str, str]) -> list[Destination]:
    """Every destination of an alert with ``labels`` under the configuration ``config``."""
    data: dict[str, Any] = yaml.safe_load(config) if isinstance(config, str) else config
    root = data["route"]
    return _walk(root, labels, Destination(root["receiver"]))
