"""Where the detector reads per-event request rates: the in-process summary, or Prometheus."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final, Protocol

from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.instrument._heavy_hitters import EventHeavyHitters
from onsale_obs.slo._prom_client import PrometheusClient

#: Per event, summed over services and instances: the rate between the last two scrapes (the
#: counter family onsale_event_requests_top, whose samples Prometheus names with _total).
DEFAULT_QUERY: Final = "sum by (event) (irate(onsale_event_requests_top_total[1m]))"

#: How often to read the in-process summaries (seconds): each reading is the exact count of the
#: last second, so the detector's evidence rules see a surge's shape at that grain (p95 detection
#: 2-3 s sooner than with 2 s readings in benchmarks/surge_detection.py). A tick costs a pass
#: over the top-K events and one detector step (~0.15 ms for 20 events), plus the growth test
#: (~8 ms over 30 readings) only for an event above its threshold and not yet confirmed.
IN_PROCESS_INTERVAL: Final = 1.0


class RateSource(Protocol):
    """Requests per second per event now, or None when they cannot be read."""

    def read(self) -> dict[str, float] | None: ...


class SketchRates:
    """Rates from the in-process summaries (``RequestMetrics.heavy_hitters``) of one or more
    services, summed per event: the change of each event's exact count since the last read."""

    def __init__(self, summaries: Sequence[EventHeavyHitters]) -> None:
        self.summaries = list(summaries)
        # per summary: event -> (entered, requests, read at)
        self._previous: list[dict[str, tuple[float, int, float]]] = [{} for _ in self.summaries]
        self._read = False

    def read(self) -> dict[str, float]:
        rates: dict[str, float] = {}
        for summary, previous in zip(self.summaries, self._previous, strict=True):
            now = summary.clock()
            seen: dict[str, tuple[float, int, float]] = {}
            for tracked in summary.tracked():
                seen[tracked.event] = (tracked.entered, tracked.requests, now)
                before = previous.get(tracked.event)
                if before is not None and before[0] == tracked.entered:
                    counted, since = tracked.requests - before[1], before[2]
                else:  # (re-)entered since the last read: counted from when it entered
                    counted = tracked.requests
                    since = max(tracked.entered, before[2]) if before else tracked.entered
                    if not self._read:  # the first read: no interval to speak of yet
                        continue
                if now > since:
                    rates[tracked.event] = rates.get(tracked.event, 0.0) + counted / (now - since)
            previous.clear()
            previous.update(seen)
        self._read = True
        return rates


class PrometheusRates:
    """Rates from Prometheus (``onsale_event_requests_top``, scraped from every service)."""

    def __init__(self, client: PrometheusClient, query: str = DEFAULT_QUERY) -> None:
        self.client = client
        self.query = query
        #: the last failure, for the detector's log (None after a good read)
        self.problem: str | None = None

    def read(self) -> dict[str, float] | None:
        try:
            samples = self.client.query(self.query, time.time())
        except OnsaleObsError as exc:
            self.problem = str(exc)
            return None
        self.problem = None
        rates: dict[str, float] = {}
        for sample in samples:
            event = sample.labels.get("event")
            if event:
                rates[event] = rates.get(event, 0.0) + sample.value
        return rates
