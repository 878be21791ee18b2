"""The live loop: signals from Prometheus through the SLO engine, a recommendation per on-sale
event every tick, exported as ``onsale_exit_rate_recommended{event}`` and published through the
broadcaster so a waiting room subscribed to the mode store can follow it.

Prometheus down holds the rate (every signal is missing, so the controller never increases;
after ``outage_after`` it decays toward the safe rate). Every signal is the event's own: the
burn rates are one availability SLO's over the short and long windows (1m, 5m) counted on the
requests labelled ``mode="onsale"`` and ``event=<id>``; latency p95 is
``histogram_quantile(0.95)`` of the same requests over the short window, against the latency
SLO's on-sale threshold. One event's failure therefore never cuts another's rate. Where events
share the service, one guard joins them: while another event's requests burn at the alert
threshold, this event's increases are held (its probes could be what the shared backend
cannot take), never cut. The queue length and utilisation come from PromQL the operator gives
(``$event`` is replaced by the event id), since the waiting room is not ours.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale_obs.exceptions import BadInputError, OnsaleObsError, PrometheusUnavailableError
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.exitrate._controller import ExitRateController
from onsale_obs.exitrate._guard import shared_guard
from onsale_obs.exitrate._share import utilisation_by_demand
from onsale_obs.exitrate._signals import Recommendation, Signals
from onsale_obs.generate._promql import matcher, quote, selector
from onsale_obs.modes import Broadcaster, ModeBackend, Verifier
from onsale_obs.modes._history import read_history, windows_from_states
from onsale_obs.modes._model import ModeState, OnSaleWindow
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._prometheus import delta
from onsale_obs.slo._spec import SLO, AvailabilitySLI, LatencySLI, SLOSpec
from onsale_obs.types import Clock

GLOBAL = "global"  # the ``event`` label of a global on-sale's recommendation


@dataclass
class SignalReader:
    """Reads one :class:`Signals` for an event from Prometheus."""

    spec: SLOSpec
    availability: SLO
    client: PrometheusClient
    latency: SLO | None = None
    queue_query: str | None = None
    utilisation_query: str | None = None
    short: float = 60.0
    long: float = 300.0
    #: why the last read got nothing from Prometheus (None: it answered)
    unavailable: str | None = field(default=None, init=False)

    def read(
        self,
        now: float,
        event: str,
        current_rate: float,
        windows: Sequence[OnSaleWindow] = (),
        queue: float | None = None,
    ) -> Signals:
        """The reading at ``now`` for ``event`` (``global``: every on-sale request); anything
        Prometheus cannot answer is None. ``windows`` is not needed: the requests carry
        their mode and event as labels."""
        try:
            burn_short = self.burn(event, self.short, now)
            burn_long = self.burn(event, self.long, now)
        except (PrometheusUnavailableError, BadInputError) as exc:
            # BadInputError here: Prometheus refused a query that worked before (too many
            # samples, a limit): no signal this tick, never a crash of the loop
            self.unavailable = str(exc)
            return Signals(time=now, current_rate=current_rate, queue_length=queue)
        self.unavailable = None
        return Signals(
            time=now,
            current_rate=current_rate,
            burn_short=burn_short,
            burn_long=burn_long,
            latency_p95=self._scalar(self._p95_query(event), now),
            latency_threshold=self._threshold(),
            queue_length=queue
            if queue is not None
            else self._scalar(self._with_event(self.queue_query, event), now),
            utilisation=self._scalar(self._with_event(self.utilisation_query, event), now),
            observed_at=now,
        )

    def burn(self, event: str, window: float, now: float) -> float | None:
        """The on-sale burn rate of ``event``'s requests (``global``: all on-sale requests)
        over ``window`` seconds: their error ratio over the on-sale error budget. ``None``
        without requests in the window."""
        sli = self.availability.sli
        assert isinstance(sli, AvailabilitySLI)
        matchers = self._matchers(event)
        total = selector("onsale_requests_total", matchers)
        codes = sorted(sli.bad_codes)
        bad = selector("onsale_requests_total", [*matchers, matcher("code", codes)])
        # counted like the SLO engine counts (a series born in the window counts from 0,
        # which rate() would miss: an event's series are born when its on-sale starts)
        query = f"(sum({delta(bad, window)}) or vector(0)) / sum({delta(total, window)}) > -1"
        values = [s.value for s in self.client.query(query, now) if math.isfinite(s.value)]
        if not values:
            return None
        budget = 1 - self.availability.objectives["onsale"]
        return max(0.0, values[0]) / budget

    def requests(self, event: str, window: float, now: float) -> float | None:
        """On-sale requests of ``event`` (``global``: every event) over ``window`` seconds,
        counted as :meth:`burn` counts them; ``None`` when Prometheus has none."""
        total = selector("onsale_requests_total", self._matchers(event))
        values = [
            s.value
            for s in self.client.query(f"sum({delta(total, window)})", now)
            if math.isfinite(s.value)
        ]
        return max(0.0, values[0]) if values else None

    def _matchers(self, event: str) -> list[str | None]:
        sli = self.availability.sli
        assert isinstance(sli, AvailabilitySLI)
        return [
            f"service={quote(self.availability.service)}",
            matcher("route", sli.selector.routes),
            matcher("method", sli.selector.methods),
            'mode="onsale"',
            None if event == GLOBAL else f"event={quote(event)}",
        ]

    def _threshold(self) -> float | None:
        sli = None if self.latency is None else self.latency.sli
        return sli.threshold["onsale"] if isinstance(sli, LatencySLI) else None

    def _p95_query(self, event: str) -> str:
        sli = self.availability.sli
        assert isinstance(sli, AvailabilitySLI)
        matchers = [m for m in self._matchers(event) if m is None or not m.startswith("method")]
        buckets = selector("onsale_request_duration_seconds_bucket", matchers)
        return f"histogram_quantile(0.95, sum by (le) ({delta(buckets, self.short)}))"

    @staticmethod
    def _with_event(query: str | None, event: str) -> str | None:
        return None if query is None else query.replace("$event", event)

    def check_queries(self, now: float) -> None:
        """Run the operator's queries once: a query Prometheus rejects is bad input (exit 2),
        not a signal that stays missing for ever (which would hold the rate without a word)."""
        for query in (self.queue_query, self.utilisation_query):
            if query is not None:
                try:
                    self.client.query(query.replace("$event", "check"), now)
                except PrometheusUnavailableError:
                    return  # cannot tell now; the loop holds until Prometheus answers

    def _scalar(self, query: str | None, now: float) -> float | None:
        if query is None:
            return None
        try:
            values = [s.value for s in self.client.query(query, now) if math.isfinite(s.value)]
        except (PrometheusUnavailableError, BadInputError):
            return None
        return max(values) if values else None


class RecommendationGauge(Collector):
    """``onsale_exit_rate_recommended{event}``: the latest recommendation per on-sale event."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}

    def collect(self) -> Any:
        gauge = GaugeMetricFamily(
            "onsale_exit_rate_recommended",
            "Recommended waiting-room exit rate, users per minute.",
            labels=["event"],
        )
        for event, rate in sorted(self.rates.items()):
            gauge.add_metric([event], rate)
        yield gauge

    def describe(self) -> list[Metric]:
        return []


@dataclass
class ExitRateLoop:
    """One controller per on-sale event; :meth:`tick` makes one recommendation for each."""

    reader: SignalReader
    backend: ModeBackend
    verifier: Verifier
    config: ExitRateConfig = field(default_factory=ExitRateConfig)
    initial_rate: float = 1_000.0
    broadcaster: Broadcaster | None = None
    registry: CollectorRegistry | None = None
    clock: Clock = time.time
    logger: Any = None
    controllers: dict[str, ExitRateController] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    gauge: RecommendationGauge = field(default_factory=RecommendationGauge)
    #: the store's latest revision at the last read (publishing is conditional on it)
    _head: int = 0
    #: Prometheus was unreachable at the last tick (logged once per outage)
    _prometheus_down: bool = False

    def __post_init__(self) -> None:
        if self.registry is not None:
            self.registry.register(self.gauge)
        if self.logger is None:
            self.logger = structlog.get_logger("onsale_obs.exitrate")

    def close(self) -> None:
        """Close the connections to Prometheus (the mode store is the caller's)."""
        self.reader.client.close()

    def onsale_now(self, now: float) -> list[tuple[str, list[OnSaleWindow]]]:
        """(event id or ``global``, the windows that matter) for every scope on sale at ``now``."""
        return self._read(now)[0]

    def _read(
        self, now: float
    ) -> tuple[list[tuple[str, list[OnSaleWindow]]], dict[str, ModeState]]:
        """The store read and verified once: who is on sale, and each scope's latest state."""
        read = read_history(self.backend, self.verifier)  # what the signed head vouches for
        self._head = read.top
        states = read.states
        windows = [w for w in windows_from_states(states) if w.end is None or w.end > now - 86_400]
        current = [w for w in windows if w.start <= now and (w.end is None or now < w.end)]
        latest = {s.scope: s for s in states}  # oldest first: the last one wins
        return [(w.event or GLOBAL, windows) for w in current], latest

    def tick(self, queues: dict[str, float] | None = None) -> list[tuple[str, Recommendation]]:
        """(event, recommendation) for each event on sale now; finished on-sales are dropped.

        ``queues`` (event -> users waiting) overrides the reader's queue query.
        """
        now = self.clock()
        made: list[tuple[str, Recommendation]] = []
        try:
            live, latest = self._read(now)
        except OnsaleObsError as exc:  # the mode store is down: nothing to decide this tick
            self.logger.warning("exit rate: mode store unavailable", error=str(exc))
            return made
        shared = self._shared_burn(now) if len(live) > 1 else None
        readings = {}
        for event, windows in live:
            rate = self.rates.get(event, self.initial_rate)
            queue = None if queues is None else queues.get(event)
            readings[event] = replace(
                self.reader.read(now, event, rate, windows, queue), shared_burn=shared
            )
        busy = {event: s.utilisation for event, s in readings.items()}  # as read
        if len(live) > 1:
            readings = self._by_demand(now, readings)
        for event, _ in live:
            controller = self.controllers.setdefault(event, ExitRateController(self.config))
            recommendation = self._guard(controller.recommend(readings[event]), shared, busy[event])
            self._note_prometheus()
            self.rates[event] = recommendation.rate
            try:
                self._publish(event, recommendation, latest)
            except OnsaleObsError as exc:  # the next tick publishes again
                self.logger.warning("exit rate not published", onsale_event=event, error=str(exc))
            self.logger.info(
                "exit rate", onsale_event=event, rate=round(recommendation.rate, 1),
                action=recommendation.action, reason=recommendation.reason,
            )  # fmt: skip
            made.append((event, recommendation))
        on = {event for event, _ in live}
        for gone in [e for e in self.rates if e not in on]:
            del self.rates[gone]
            self.controllers.pop(gone, None)
        # one new dict, swapped in whole: /metrics reads it from another thread
        self.gauge.rates = {event: r.rate for event, r in made}
        return made

    def _by_demand(self, now: float, readings: dict[str, Signals]) -> dict[str, Signals]:
        """Events on one service: each reads the service's utilisation split by demand
        (``_share``), unless the utilisation query is per event already (``$event``)."""
        query = self.reader.utilisation_query
        if query is None or "$event" in query:
            return readings
        try:
            requests = {e: self.reader.requests(e, self.reader.short, now) for e in readings}
            every = self.reader.requests(GLOBAL, self.reader.short, now)
        except (OnsaleObsError, BadInputError):
            return readings  # as read: the whole service's utilisation
        waiting = sum(max(0.0, s.queue_length or 0.0) for s in readings.values())
        return {
            event: replace(
                s,
                utilisation=utilisation_by_demand(
                    s.utilisation, requests[event], every, s.queue_length, waiting
                ),
            )
            for event, s in readings.items()
        }

    def _shared_burn(self, now: float) -> float | None:
        """The short burn of every on-sale request of the service, all events together."""
        try:
            return self.reader.burn(GLOBAL, self.reader.short, now)
        except (OnsaleObsError, BadInputError):
            return None

    def _guard(
        self, recommendation: Recommendation, shared: float | None, busy: float | None
    ) -> Recommendation:
        """No increase while other events on the shared service burn at the alert threshold
        (this event's own burn being under it): never a cut, only a held probe."""
        return shared_guard(
            recommendation,
            shared,
            threshold=self.config.burn_threshold,
            service=self.reader.availability.service,
            window=self.reader.short,
            saturation=self.config.saturation,
            latency_margin=self.config.latency_margin,
            utilisation=busy,
        )

    def _note_prometheus(self) -> None:
        """Log an outage of Prometheus once when it starts and once when it ends."""
        down = self.reader.unavailable
        if down is not None and not self._prometheus_down:
            self.logger.warning(
                "exit rate: Prometheus unreachable; rates hold, then decay to the safe rate",
                error=down,
            )
        elif down is None and self._prometheus_down:
            self.logger.info("exit rate: Prometheus reachable again")
        self._prometheus_down = down is not None

    def _publish(
        self, event: str, recommendation: Recommendation, latest: dict[str, ModeState]
    ) -> None:
        """A copy of the scope's current state carrying the new exit rate (when it changed)."""
        if self.broadcaster is None:
            return
        scope = GLOBAL if event == GLOBAL else f"event:{event}"
        state = latest.get(scope)
        now = self.clock()
        # an on-sale ending within the second is left to end (a copy could outlive a change)
        if state is None or not state.is_onsale_at(now + 1.0):
            return
        if state.exit_rate is not None and abs(state.exit_rate - recommendation.rate) < 1.0:
            return
        # only if nothing was published since the read: an operator's change always wins
        published = self.broadcaster.set(
            scope, "onsale", until=state.until, source=state.source, reason=state.reason,
            exit_rate=round(recommendation.rate, 1), if_latest=self._head,
        )  # fmt: skip
        self._head = published.revision
