"""The detector's loop: read rates, read the verified states, decide, publish (or only say)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onsale_obs.detect._detector import Action, SurgeDetector
from onsale_obs.detect._sources import RateSource
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.modes import Broadcaster, ModeState


class AutoMode(Collector):
    """``onsale-obs mode auto``: one ``tick`` per interval.

    States are published with ``source="auto"`` through ``broadcaster`` (whose signer is the
    detector's own key). With ``dry_run`` in the detector's config nothing is published: the
    actions are only reported (``emit``) and exported (``onsale_auto_surging{event}``, 1 while
    the detector holds an event on sale, or would). A rate source or store that cannot be read
    means no change at all, said once until it answers again.
    """

    def __init__(
        self,
        detector: SurgeDetector,
        source: RateSource,
        broadcaster: Broadcaster,
        *,
        emit: Callable[[Action, ModeState | None], None] = lambda action, state: None,
        logger: Any = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.detector = detector
        self.source = source
        self.broadcaster = broadcaster
        self.emit = emit
        self.logger = logger
        self._down: set[str] = set()
        if registry is not None:
            registry.register(self)

    def _say_once(self, what: str, message: str) -> None:
        if what not in self._down:
            self._down.add(what)
            if self.logger is not None:
                self.logger.warning(message)

    def _back(self, what: str, message: str) -> None:
        if what in self._down:
            self._down.discard(what)
            if self.logger is not None:
                self.logger.info(message)

    def tick(self) -> list[Action]:
        """Read, decide and publish once; return the actions taken (or that would be)."""
        now = self.broadcaster.clock()
        rates = self.source.read()
        if rates is None:
            problem = getattr(self.source, "problem", None) or "no answer"
            self._say_once(
                "rates", f"request rates unavailable ({problem}); no flips until they are back"
            )
            self.detector.step(now, None, {})
            return []
        self._back("rates", "request rates readable again; detecting")
        try:
            current = self.broadcaster.current()
        except OnsaleObsError as exc:
            self._say_once("store", f"mode store unreadable ({exc}); no flips until it answers")
            self.detector.step(now, None, {})
            return []
        self._back("store", "mode store readable again; detecting")
        actions = self.detector.step(now, rates, current)
        for action in actions:
            state = None
            if not self.detector.config.dry_run and action.kind != "skip":
                held = current.get(action.scope)
                try:
                    state = self.broadcaster.set(
                        action.scope,
                        "normal" if action.kind == "normal" else "onsale",
                        until=action.until if action.kind != "normal" else None,
                        source="auto",
                        reason=action.reason,
                        # an extension keeps the waiting room's exit rate serve published
                        exit_rate=held.exit_rate
                        if action.kind == "extend" and held is not None
                        else None,
                    )
                except OnsaleObsError as exc:
                    self.detector.unpublished(action)
                    if self.logger is not None:
                        self.logger.warning(
                            f"could not publish {action.kind} for {action.scope}: {exc}"
                        )
                    continue
                self.detector.published(action.event, state)
            self.emit(action, state)
        return actions

    def run(self, stop: threading.Event, interval: float) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.tick()
            stop.wait(interval)

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "onsale_auto_surging",
            "1 while the surge detector holds this event on sale (or would, in dry-run).",
            labels=["event"],
        )
        for event in self.detector.surging():
            gauge.add_metric([event], 1.0)
        yield gauge
