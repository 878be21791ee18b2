"""The exit-rate controller's reading, taken from the access logs with the SLO engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from onsale_obs.exitrate import Signals
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo import SLO, LatencySLI, SLOSpec, run_report
from onsale_obs.slo._logs import LogSource


def p95(values: Sequence[float]) -> float | None:
    """95th percentile (nearest rank), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def read_signals(
    spec: SLOSpec,
    availability: SLO,
    latency: SLO | None,
    logs: list[Path],
    now: float,
    *,
    current_rate: float,
    queue: float,
    arrivals: float,
    windows: Sequence[OnSaleWindow],
    latencies: Sequence[float],
) -> Signals:
    """Burn rates over 1 and 5 minutes of the availability SLO's on-sale mode, from the logs;
    p95 of what the waiting room saw in the last minute against the latency SLO's threshold."""
    report = run_report(spec, LogSource(logs), now, slos=[availability], onsale_windows=windows)
    burns = report.slos[0].modes["onsale"].burn_rates
    threshold = (
        latency.sli.threshold["onsale"]
        if latency is not None and isinstance(latency.sli, LatencySLI)
        else None
    )
    return Signals(
        time=now,
        current_rate=current_rate,
        burn_short=burns.get(60.0),
        burn_long=burns.get(300.0),
        latency_p95=p95(latencies),
        latency_threshold=threshold,
        queue_length=queue,
        arrivals=arrivals,
        observed_at=now,
    )
