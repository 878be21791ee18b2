"""Planted traffic: one seeded stream of requests over 32 days, seen three ways.

The same :class:`~tests.slo_oracle.Record` stream becomes (a) OpenMetrics text of the
middleware's metrics as a scraper sees them (for ``promtool`` backfill), (b) access-log JSON
lines (for the log source) and (c) exact truth: counts for any filter, mode and ``(start, end]``
range, and the on-sale windows that were planted.

What is planted (times relative to ``AT``, 2025-07-01T00:00Z):

- normal traffic on three routes of ``checkout`` and ``inventory`` with a daily cycle, 0.2%
  5xx, some 4xx, and a 20-minute inventory incident (50% 5xx) 12 days back;
- on-sales: ``event:cup-final`` 25 days back (with a 3-minute checkout failure), a ``global``
  on-sale 18 days back overlapped by a second ``event:cup-final`` window, ``event:arena-tour``
  9 days back, and ``event:summer-fest`` opened 2 hours before ``AT`` and still on sale;
- latencies around the 0.25 s and 1 s thresholds in both modes;
- process restarts (counters drop to 0): inventory in normal time 21 days back, checkout in the middle of
  the arena-tour on-sale, and both services two hours after each closed on-sale (the deploy
  that waited for the on-sale freeze to end).

Scrapes and restarts
--------------------
Scrapes happen every ``scrape_interval`` seconds on a grid that contains ``AT`` and every whole
minute; a scrape at ``T`` sees every request that finished at or before ``T``. A restart happens
right after a scrape, so no request ever falls between the last scrape of a process and its
restart: Prometheus loses nothing, and counts taken between scrape-grid boundaries are exact.
(Requests in that gap are lost to any scraper by nature; planting none keeps the truth simple.)
The generator also checks that every restart is *visible* as a drop in each series, which
Prometheus needs to see a reset: a series that reappears after a restart at or above its old
value would be miscounted by any Prometheus-based tool, so such a plan is refused.

A series appears at the first scrape after its first request and is scraped until its process
restarts (the middleware exports buckets from creation, and a status class's counter once it
is non-zero). ``event`` is the event id only while that event itself is on sale.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Final, TextIO

import orjson

from onsale_obs.instrument._metrics import DEFAULT_BUCKETS, status_class
from onsale_obs.modes._model import GLOBAL_SCOPE, OnSaleWindow
from onsale_obs.slo._prom_windows import merge_with_grace
from tests.slo_oracle import Record

AT: Final = 1_751_328_000.0  # 2025-07-01T00:00:00Z
DAYS: Final = 32
SEED: Final = 20_250_701
DAY: Final = 86_400.0
HOUR: Final = 3_600.0
MINUTE: Final = 60.0
THRESHOLDS: Final = (0.25, 1.0)
GRACE: Final = 300.0
#: The scrape interval the Prometheus tests backfill with. Every series is written at every
#: scrape, so 32 days of ~47 series cost 9.4 million samples at 15 s: 24 s of promtool and
#: 1.8 GB of memory, measured on 2 cores. At 60 s it is 2.4 million samples, about 6 s. The
#: counting does not depend on the interval (the 15 s data gives the same exact counts).
CI_SCRAPE_INTERVAL: Final = 60.0

#: (service, route template, method, base normal rate in requests per second)
ROUTES: Final = (
    ("checkout", "/events/{event_id}/checkout", "POST", 0.010),
    ("checkout", "/orders/{order_id}", "GET", 0.012),
    ("inventory", "/events/{event_id}/seats", "GET", 0.015),
)
#: events people browse in normal time (the on-sale ones among them)
EVENTS: Final = ("cup-final", "arena-tour", "summer-fest", "jazz-night", "derby", "opera-gala")
#: on-sale rate at the start of an on-sale (requests per second, per route); it decays to 30%
ONSALE_PEAK: Final = {"POST": 1.2, "GET": 2.0}
SCOPES: Final = (GLOBAL_SCOPE, "event:cup-final", "event:arena-tour", "event:summer-fest")
_MODES_JOB: Final = ("onsale-broadcaster", "broadcaster:9464")


@dataclass(frozen=True, slots=True)
class Counts:
    """Planted counts: every request, and the bad ones among them."""

    total: int
    bad: int


@dataclass(frozen=True, slots=True)
class ErrorBurst:
    """Requests of ``service`` (and ``route``, if given) in ``[start, end)`` fail with ``p``."""

    service: str
    route: str | None
    start: float
    end: float
    p: float


def planted_windows(at: float = AT) -> tuple[OnSaleWindow, ...]:
    """The on-sale windows of the plan, oldest first (the last one still open at ``at``)."""
    plan = (
        ("event:cup-final", at - 25 * DAY + 14 * HOUR, 90 * MINUTE),
        (GLOBAL_SCOPE, at - 18 * DAY + 18 * HOUR, 45 * MINUTE),
        ("event:cup-final", at - 18 * DAY + 18 * HOUR + 30 * MINUTE, 60 * MINUTE),
        ("event:arena-tour", at - 9 * DAY + 10 * HOUR, 120 * MINUTE),
        ("event:summer-fest", at - 2 * HOUR, None),
    )
    return tuple(
        OnSaleWindow(
            scope=scope,
            start=start,
            end=None if length is None else start + length,
            source="schedule",
            reason=f"planted on-sale {i + 1}",
            revisions=(2 * i + 1,) if length is None else (2 * i + 1, 2 * i + 2),
        )
        for i, (scope, start, length) in enumerate(plan)
    )


def planted_restarts(windows: Iterable[OnSaleWindow], at: float = AT) -> dict[str, list[float]]:
    """Restart times per service (each right after a scrape on the whole-minute grid).

    Besides the two planted resets, each service is deployed two hours after every on-sale
    period that has ended (overlapping windows are one period), unless it restarted in the
    six hours before: that keeps on-sale series from being scraped for weeks.
    """
    restarts: dict[str, list[float]] = {"checkout": [], "inventory": []}
    restarts["inventory"].append(at - 21 * DAY + 3 * HOUR)  # normal time
    arena = next(w for w in windows if w.scope == "event:arena-tour")
    restarts["checkout"].append(arena.start + 40 * MINUTE)  # inside an on-sale
    for _, end in merge_with_grace(windows, 0.0, at):
        deploy = end + 2 * HOUR
        if deploy >= at:
            continue
        for times in restarts.values():
            if not any(deploy - 6 * HOUR <= t <= deploy for t in times):
                times.append(deploy)
    return {service: sorted(times) for service, times in restarts.items()}


def planted_bursts(at: float = AT) -> tuple[ErrorBurst, ...]:
    """The incidents: one in normal time, one inside the first cup-final on-sale."""
    cup = at - 25 * DAY + 14 * HOUR
    return (
        ErrorBurst("inventory", None, at - 12 * DAY + 9 * HOUR, at - 12 * DAY + 9 * HOUR + 1200, 0.5),
        ErrorBurst("checkout", "/events/{event_id}/checkout", cup + 30 * MINUTE, cup + 33 * MINUTE, 0.4),
    )  # fmt: skip


@dataclass
class Traffic:
    """The planted request stream and what a scraper, a log file and the truth make of it."""

    at: float
    start: float
    scrape_interval: float
    records: list[Record]
    windows: tuple[OnSaleWindow, ...]
    restarts: dict[str, list[float]]
    _ts: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._ts = [r.ts for r in self.records]

    # ---- truth -------------------------------------------------------------------------

    def select(
        self,
        *,
        start: float,
        end: float,
        mode: str | None = None,
        service: str | None = None,
        routes: Iterable[str] = (),
        methods: Iterable[str] = (),
        event: str | None = None,
    ) -> Iterator[Record]:
        """The requests that finished in ``(start, end]`` and match every filter given.

        ``event`` keeps only the requests counted under that event's on-sale (its own
        event on sale), as an ``event:<id>`` window counts them.
        """
        route_set, method_set = frozenset(routes), frozenset(methods)
        lo, hi = bisect_right(self._ts, start), bisect_right(self._ts, end)
        for r in self.records[lo:hi]:
            if (
                (mode is None or r.mode == mode)
                and (service is None or r.service == service)
                and (not route_set or r.route in route_set)
                and (not method_set or r.method in method_set)
                and (event is None or (r.event == event and r.event_onsale))
            ):
                yield r

    def truth(
        self,
        *,
        start: float,
        end: float,
        mode: str | None = None,
        service: str | None = None,
        routes: Iterable[str] = (),
        methods: Iterable[str] = (),
        event: str | None = None,
        threshold: float | None = None,
        bad_codes: frozenset[str] = frozenset({"5xx"}),
    ) -> Counts:
        """Exact ``(total, bad)``: bad is a status class in ``bad_codes``, or, with
        ``threshold``, slower than ``threshold`` seconds."""
        total = bad = 0
        for r in self.select(
            start=start, end=end, mode=mode, service=service, routes=routes,
            methods=methods, event=event,
        ):  # fmt: skip
            total += 1
            if threshold is None:
                bad += status_class(r.status) in bad_codes
            else:
                bad += r.duration_s > threshold
        return Counts(total, bad)

    def window_range(self, window: OnSaleWindow, grace: float = GRACE) -> tuple[float, float]:
        """The ``(start, end]`` a window's on-sale requests are counted in."""
        end = self.at if window.end is None else window.end
        return window.start, min(end + grace, self.at)

    def window_truth(
        self,
        window: OnSaleWindow,
        grace: float = GRACE,
        *,
        service: str | None = None,
        threshold: float | None = None,
    ) -> Counts:
        """Exact counts of one on-sale window (its event's on-sale requests, or all for global)."""
        start, end = self.window_range(window, grace)
        return self.truth(
            start=start, end=end, mode="onsale", event=window.event, service=service,
            threshold=threshold,
        )  # fmt: skip

    # ---- access logs -------------------------------------------------------------------

    def access_log_lines(self, service: str | None = None) -> Iterator[bytes]:
        """The access-log JSON lines (without newlines) of ``service`` (default: all)."""
        for r in self.records:
            if service is None or r.service == service:
                yield orjson.dumps(r.line())

    def write_access_logs(self, directory: Path) -> list[Path]:
        """One access-log file per service (``<service>.jsonl``), as each service writes it."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for service in sorted({r.service for r in self.records}):
            path = directory / f"{service}.jsonl"
            path.write_bytes(b"".join(line + b"\n" for line in self.access_log_lines(service)))
            paths.append(path)
        return paths

    # ---- what a scraper sees -----------------------------------------------------------

    @property
    def scrapes(self) -> int:
        """Index of the last scrape (at ``at``); scrape ``k`` is at ``start + k * interval``."""
        return round((self.at - self.start) / self.scrape_interval)

    def scrape_index(self, ts: float) -> int:
        """The first scrape at or after ``ts`` (the one that sees a request finished at ts)."""
        return math.ceil((ts - self.start) / self.scrape_interval - 1e-9)

    @cached_property
    def series(self) -> dict[tuple[str, ...], list[_Life]]:
        """Every scraped series (metric name and label values) with its process lifetimes."""
        return _Scraper(self).run()

    def write_openmetrics(self, path: Path) -> int:
        """Write the OpenMetrics text of every scrape to ``path``; return the sample count."""
        with path.open("w") as out:
            return _write_openmetrics(self, out)


@dataclass(slots=True)
class _Life:
    """One series within one process lifetime: scraped from ``first`` to ``last`` (scrape
    indices, inclusive), taking value ``steps[i][1]`` from scrape ``steps[i][0]`` on."""

    first: int
    last: int
    steps: list[tuple[int, int]]


def _le_text(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


class _Scraper:
    """Turns the request stream into series values per scrape, per process lifetime."""

    def __init__(self, traffic: Traffic) -> None:
        self.t = traffic
        self.restart_scrapes = {
            s: [traffic.scrape_index(ts) for ts in times] for s, times in traffic.restarts.items()
        }

    def _life_end(self, service: str, epoch: int) -> int:
        restarts = self.restart_scrapes.get(service, [])
        return restarts[epoch] if epoch < len(restarts) else self.t.scrapes

    def run(self) -> dict[tuple[str, ...], list[_Life]]:
        counters: dict[tuple[tuple[str, ...], int], list[int]] = defaultdict(list)
        histograms: dict[tuple[tuple[str, ...], int], list[tuple[int, int]]] = defaultdict(list)
        for r in self.t.records:
            k = self.t.scrape_index(r.ts)
            epoch = bisect_left(self.restart_scrapes.get(r.service, []), k)
            event = r.event if r.event_onsale and r.event else ""
            base = (r.service, r.route, r.method)
            counters[
                (("onsale_requests_total", *base, status_class(r.status), r.mode, event), epoch)
            ].append(k)
            bounds = DEFAULT_BUCKETS["normal" if r.mode == "normal" else "onsale"]
            index = bisect_left(bounds, r.duration_s)
            histograms[(("onsale_request_duration_seconds_bucket", *base, r.mode, event), epoch)].append((k, index))  # fmt: skip
        series: dict[tuple[str, ...], list[_Life]] = defaultdict(list)
        for (key, epoch), ks in counters.items():
            series[key].append(self._life(key[1], epoch, ks))
        for (key, epoch), events in histograms.items():
            bounds = (*DEFAULT_BUCKETS["normal" if key[4] == "normal" else "onsale"], math.inf)
            first = events[0][0]
            for j, bound in enumerate(bounds):
                ks = [k for k, index in events if index <= j]
                series[(*key, _le_text(bound))].append(self._life(key[1], epoch, ks, first))
        for key in series:
            series[key].sort(key=lambda life: life.first)
        series.update(self._mode_gauges())
        self._check_resets(series)
        return dict(series)

    def _life(self, service: str, epoch: int, ks: list[int], first: int | None = None) -> _Life:
        steps: list[tuple[int, int]] = []
        for value, k in enumerate(ks, 1):
            if steps and steps[-1][0] == k:
                steps[-1] = (k, value)
            else:
                steps.append((k, value))
        start = ks[0] if first is None else first
        if not steps or steps[0][0] != start:
            steps.insert(0, (start, 0))
        return _Life(start, self._life_end(service, epoch), steps)

    def _mode_gauges(self) -> dict[tuple[str, ...], list[_Life]]:
        """``onsale_mode{scope}``: 1 at the scrapes that fall inside a window of the scope."""
        gauges: dict[tuple[str, ...], list[_Life]] = {}
        for scope in SCOPES:
            steps: list[tuple[int, int]] = [(0, 0)]
            for w in self.t.windows:
                if w.scope != scope:
                    continue
                steps.append((self._first_after(w.start), 1))
                if w.end is not None:
                    steps.append((self._first_after(w.end), 0))
            gauges[("onsale_mode", scope)] = [_Life(0, self.t.scrapes, sorted(steps))]
        return gauges

    def _first_after(self, ts: float) -> int:
        """The first scrape strictly after ``ts``."""
        k = self.t.scrape_index(ts)
        return k + 1 if self.t.start + k * self.t.scrape_interval <= ts else k

    def _check_resets(self, series: dict[tuple[str, ...], list[_Life]]) -> None:
        """Refuse a plan where a restart would not show as a drop (see the module docstring)."""
        for key, lives in series.items():
            for before, after in pairwise(lives):
                last, first = before.steps[-1][1], after.steps[0][1]
                if last > 0 and first >= last:
                    raise AssertionError(
                        f"series {key} restarts at {last} and reappears at {first}: Prometheus "
                        "cannot see that reset; change the seed or the restart plan."
                    )


_HELP: Final = {
    "onsale_requests_total": ("onsale_requests", "counter"),
    "onsale_request_duration_seconds_bucket": ("onsale_request_duration_seconds", "histogram"),
    "onsale_mode": ("onsale_mode", "gauge"),
}


def _labels(key: tuple[str, ...]) -> str:
    """The label set of one series key, ``instance`` and ``job`` included."""
    name = key[0]
    if name == "onsale_mode":
        names: tuple[str, ...] = ("scope",)
        job, instance = _MODES_JOB
    elif name == "onsale_requests_total":
        names = ("service", "route", "method", "code", "mode", "event")
        job, instance = key[1], f"{key[1]}:8000"
    else:
        names = ("service", "route", "method", "mode", "event", "le")
        job, instance = key[1], f"{key[1]}:8000"
    pairs = [f'{n}="{v}"' for n, v in zip(names, key[1:], strict=True)]
    pairs += [f'instance="{instance}"', f'job="{job}"']
    return "{" + ",".join(pairs) + "}"


def _write_openmetrics(traffic: Traffic, out: TextIO) -> int:
    """Series by series (each in time order), family by family; ``# EOF`` at the end."""
    stamps = [
        str(int(traffic.start + k * traffic.scrape_interval)) for k in range(traffic.scrapes + 1)
    ]
    samples = 0
    by_family: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for key in sorted(traffic.series):
        by_family[key[0]].append(key)
    for name, (family, kind) in _HELP.items():
        out.write(f"# TYPE {family} {kind}\n")
        for key in by_family.get(name, []):
            prefix = name + _labels(key)
            for life in traffic.series[key]:
                samples += _write_life(out, prefix, life, stamps)
    out.write("# EOF\n")
    return samples


def _write_life(out: TextIO, prefix: str, life: _Life, stamps: list[str]) -> int:
    """The samples of one lifetime, one run of equal values at a time."""
    bounds = [k for k, _ in life.steps[1:]] + [life.last + 1]
    for (k, value), stop in zip(life.steps, bounds, strict=True):
        head = f"{prefix} {value} "
        out.write(head + ("\n" + head).join(stamps[k:stop]) + "\n")
    return life.last + 1 - life.first


# ---- the request stream --------------------------------------------------------------------


class _Plan:
    """Decides a request's mode, status and duration from the planted windows and bursts."""

    def __init__(self, rng: random.Random, windows: tuple[OnSaleWindow, ...], at: float) -> None:
        self.rng = rng
        self.windows = windows
        self.at = at
        self.bursts = planted_bursts(at)

    def onsale(self, scope: str, ts: float) -> bool:
        """A request finished at ``ts`` is on sale in a window with ``start < ts <= end``."""
        return any(
            w.scope == scope and w.start < ts and (w.end is None or ts <= w.end)
            for w in self.windows
        )

    def record(self, ts: float, service: str, route: str, method: str, event: str | None) -> Record:
        event_onsale = event is not None and self.onsale(f"event:{event}", ts)
        onsale = event_onsale or self.onsale(GLOBAL_SCOPE, ts)
        mode = "onsale" if onsale else "normal"
        return Record(
            ts=ts, service=service, route=route, method=method,
            status=self.status(ts, service, route, method, onsale),
            duration_s=self.duration(onsale), mode=mode, event=event, event_onsale=event_onsale,
        )  # fmt: skip

    def status(self, ts: float, service: str, route: str, method: str, onsale: bool) -> int:
        p5 = 0.003 if onsale else 0.002
        for b in self.bursts:
            if b.service == service and (b.route in (None, route)) and b.start <= ts < b.end:
                p5 = b.p
        roll = self.rng.random()
        if roll < p5:
            return self.rng.choice((500, 502, 503))
        if method == "POST" and onsale and roll < p5 + 0.05:
            return 409  # sold out: the client's problem, not a failure
        if method == "GET" and route.startswith("/orders") and roll < p5 + 0.01:
            return 404
        return 201 if method == "POST" else 200

    def duration(self, onsale: bool) -> float:
        """Lognormal around 80 ms (normal) or 350 ms (on-sale), to 0.1 ms."""
        median, sigma = (0.35, 0.7) if onsale else (0.08, 0.9)
        return max(0.0005, round(self.rng.lognormvariate(math.log(median), sigma), 4))


def _poisson_times(rng: random.Random, start: float, end: float, rate: float) -> Iterator[float]:
    t = start
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return
        yield t


def _daily(ts: float) -> float:
    """Busy afternoons, quiet nights: a factor between 0.3 and 1."""
    hour = (ts % DAY) / HOUR
    return 0.3 + 0.7 * math.sin(math.pi * ((hour - 4) % 24) / 24) ** 2


def _normal_traffic(plan: _Plan, start: float, end: float) -> Iterator[Record]:
    for service, route, method, rate in ROUTES:
        for ts in _poisson_times(plan.rng, start, end, rate):
            if plan.rng.random() < _daily(ts):
                event = plan.rng.choice(EVENTS) if "{event_id}" in route else None
                yield plan.record(_ms(ts), service, route, method, event)


def _onsale_traffic(plan: _Plan, w: OnSaleWindow, at: float) -> Iterator[Record]:
    """The surge of one window: its event (or, for global, any event) on the event routes."""
    end = at if w.end is None else w.end
    for service, route, method, _ in ROUTES:
        if "{event_id}" not in route:
            continue
        peak = ONSALE_PEAK[method]
        for ts in _poisson_times(plan.rng, w.start, end, peak):
            if plan.rng.random() < 0.3 + 0.7 * math.exp(-(ts - w.start) / 900):
                event = w.event or plan.rng.choice(EVENTS)
                yield plan.record(_ms(ts), service, route, method, event)


def _ms(ts: float) -> float:
    """Millisecond timestamps, never exactly on a whole second (so never on a boundary)."""
    value = round(ts, 3)
    return value + 0.001 if value == int(value) else value


def generate(
    *, at: float = AT, days: int = DAYS, seed: int = SEED, scrape_interval: float = 15.0
) -> Traffic:
    """The planted stream ending at ``at`` (deterministic for a given seed)."""
    if MINUTE % scrape_interval:
        raise ValueError("scrape_interval must divide a minute, so the grid holds whole minutes")
    rng = random.Random(seed)
    start = at - days * DAY
    windows = planted_windows(at)
    plan = _Plan(rng, windows, at)
    records = list(_normal_traffic(plan, start, at))
    for w in windows:
        records.extend(_onsale_traffic(plan, w, at))
    records = sorted((r for r in records if r.ts <= at), key=lambda r: r.ts)
    return Traffic(at, start, scrape_interval, records, windows, planted_restarts(windows, at))
