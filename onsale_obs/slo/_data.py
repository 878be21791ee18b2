"""What the engine asks a source for, and what a source answers: counts, never ratios.

A source (access logs, the Prometheus HTTP API) reads its data once per report and answers a
:class:`CountRequest` with a :class:`Collected`: for every named time span, request counts
grouped by the labels of the middleware's metrics (``service, route, method, mode, code``),
latency counts per histogram boundary, and the counts of raw-PromQL SLIs; and for every
on-sale window, the on-sale requests of its scope. The engine (``_engine``) turns counts into
SLIs, budgets and burn rates, so every source gets the same arithmetic.

Spans are half-open on the left, ``(start, end]``, like Prometheus' range selectors: a
request counts in a span when it *finished* after ``start`` and at or before ``end``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._spec import PromQLSLI

INF: Final = math.inf
_K = TypeVar("_K")
#: (service, route, method, mode, code) with code a status class, ``2xx`` .. ``5xx``
RequestKey = tuple[str, str, str, str, str]
#: (service, route, method, mode, le): requests that finished within ``le`` seconds (INF: all)
LatencyKey = tuple[str, str, str, str, float]
#: (slo name, "good" | "total", mode)
CustomKey = tuple[str, str, str]
#: (service, route, method)
RouteKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Span:
    """A named time range ``(start, end]`` in epoch seconds."""

    name: str
    start: float
    end: float


@dataclass(slots=True)
class Aggregate:
    """Counts of the requests that finished in one span (floats: Prometheus may estimate)."""

    requests: dict[RequestKey, float] = field(default_factory=dict)
    latency: dict[LatencyKey, float] = field(default_factory=dict)
    custom: dict[CustomKey, float] = field(default_factory=dict)

    def add(self, other: Aggregate) -> None:
        """Add ``other``'s counts to this one."""
        _add_into(self.requests, other.requests)
        _add_into(self.latency, other.latency)
        _add_into(self.custom, other.custom)


def _add_into(into: dict[_K, float], other: dict[_K, float]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0.0) + n


@dataclass(slots=True)
class OnSaleCounts:
    """The on-sale requests of one window: its event's (or, for ``global``, every) request
    with ``mode=onsale`` that finished in ``(start, end + grace]``."""

    window: OnSaleWindow
    counts: Aggregate
    #: requests per minute (key: epoch second the minute starts) per route, for peak rates
    minutes: dict[RouteKey, dict[int, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CountRequest:
    """Everything the engine needs counted, known before a source reads anything."""

    at: float
    spans: tuple[Span, ...]
    #: latency boundaries (seconds) the latency SLIs need, besides INF
    thresholds: frozenset[float] = frozenset()
    #: raw-PromQL SLIs by SLO name (only the Prometheus source can count them)
    custom: tuple[tuple[str, PromQLSLI], ...] = ()
    #: on-sale windows from the broadcaster's history; None: the source finds them itself
    onsale_windows: tuple[OnSaleWindow, ...] | None = None
    #: how long after a window's end its late requests still count
    grace: float = 300.0
    #: services the spec names (a source may skip everything else)
    services: frozenset[str] = frozenset()


@dataclass(slots=True)
class Collected:
    """A source's answer."""

    spans: dict[str, Aggregate]
    onsales: list[OnSaleCounts]
    #: where the counts came from, for the report (``logs: 3 files``, ``prometheus: URL``)
    origin: str = ""
    #: True when on-sale counts are exact (logs; Prometheus raw samples)
    exact_onsale: bool = True
    #: lines or answers that could not be used, by reason
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: latency thresholds that are no histogram boundary in the source (no SLI for them)
    unknown_thresholds: frozenset[float] = frozenset()
    #: True when the source counted the raw-PromQL SLIs (only Prometheus can)
    counts_promql: bool = False


class Progress(Protocol):
    """Told how far a long read has got (bytes or queries done of ``total``)."""

    def __call__(self, done: float, total: float | None) -> None: ...


class Source(Protocol):
    """Anything that can answer a :class:`CountRequest`."""

    def collect(self, request: CountRequest, progress: Progress | None = None) -> Collected:
        """Read the data and count what ``request`` asks for."""
        ...
