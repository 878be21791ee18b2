"""The Python walk of the routing tree agrees with amtool on the committed configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from onsale_obs.generate._routing import routes_for
from onsale_obs.testing import require_binary

COMMITTED = Path(__file__).resolve().parent.parent / "alert_rules" / "alertmanager.yml"


@pytest.mark.parametrize("owner", ["slo", "hold", None])
@pytest.mark.parametrize("mode", ["onsale", "normal", "other"])
@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4", "P9"])
def test_routes_for_matches_amtool(owner: str | None, mode: str, priority: str) -> None:
    """Ours (onsale_obs=slo), the hold (onsale_obs=hold) and alerts that are not ours."""
    amtool = require_binary("amtool", "prometheus-alertmanager")
    labels = {
        "mode": mode,
        "priority": priority,
        "slo": "checkout-availability",
        "service": "checkout",
    }
    if owner is not None:
        labels["onsale_obs"] = owner
    found = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={COMMITTED}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    theirs = found.stdout.strip().split(",")
    ours = [d.receiver for d in routes_for(COMMITTED.read_text(), labels)]
    assert ours == theirs


def test_time_intervals_are_not_inherited_but_the_receiver_is() -> None:
    """As in Alertmanager (dispatch/route.go sets a route's active_time_intervals from its own
    config only): a child without intervals is active at any hour, with its parent's receiver."""
    config = {
        "route": {
            "receiver": "root",
            "routes": [
                {
                    "receiver": "pager",
                    "matchers": ['team="a"'],
                    "active_time_intervals": ["business-hours"],
                    "routes": [{"matchers": ['priority="P1"']}],
                }
            ],
        }
    }
    assert [d.describe() for d in routes_for(config, {"team": "a", "priority": "P1"})] == [
        "pager (any hour)"
    ]
    assert [d.describe() for d in routes_for(config, {"team": "a", "priority": "P2"})] == [
        "pager (business-hours)"
    ]
