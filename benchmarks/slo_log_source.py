"""Lines per second of ``LogSource.collect`` against two baselines, on one core.

Writes ``--lines`` realistic access-log lines (the schema ``AccessLog`` writes: four services,
their routes and methods, mostly 2xx, some 4xx/5xx, log-normal durations, trace ids, and ~5%
on-sale lines: two on-sales of one event and one of another) to a temporary file, then times,
on the same file and in the same run:

- ``orjson loop``: the cheapest pass that still looks at every line: the same chunked reads,
  then ``orjson.loads`` on each line in a Python loop (no counting at all);
- ``msgspec decode``: the same chunked reads, then ``msgspec`` ``decode_lines`` into the same
  structs ``LogSource`` uses (no counting);
- ``LogSource.collect``: the real thing, with a realistic request: 6 spans (30d, 3d, 1d, 6h, 1h,
  5m), 2 latency thresholds, 3 services and the 3 on-sale windows;
- ``LogSource.collect, windows found``: the same request without windows, so the source finds
  them in the lines (a second, pre-filtered pass over the file; for information).

The column ``collect speed / this`` is this reader's time over ``collect``'s: above 1,
``collect`` is faster. Each reader runs ``--repeat`` times (default 3), in rounds that take the
readers in turn, and its best time is kept: the machine is noisy. The process is pinned to CPU 0
where the OS allows, so every figure is for one core.

    .venv/bin/python benchmarks/slo_log_source.py               # 2,000,000 lines
    .venv/bin/python benchmarks/slo_log_source.py --quick       # 200,000 lines, for a smoke run

Target: ``LogSource.collect`` reads at least 500,000 lines/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import CountRequest, Span
from onsale_obs.slo._logs import DEFAULT_CHUNK_SIZE, LogSource, _FileReader, _Line

TARGET: float = 500_000.0
PRODUCT = "LogSource.collect"
FOUND = "LogSource.collect, windows found"
DAY = 86400.0
#: service -> (route, method, weight)
ROUTES: dict[str, list[tuple[str, str, int]]] = {
    "gateway": [("/", "GET", 5), ("/events/{event_id}", "GET", 8), ("/health", "GET", 1)],
    "checkout": [
        ("/events/{event_id}/checkout", "POST", 4),
        ("/events/{event_id}/cart", "PUT", 3),
        ("/orders/{order_id}", "GET", 2),
    ],
    "inventory": [
        ("/events/{event_id}/seats", "GET", 6),
        ("/events/{event_id}/holds", "POST", 3),
        ("/events/{event_id}/holds/{hold_id}", "DELETE", 1),
    ],
    "catalog": [("/events", "GET", 4), ("/venues/{venue_id}", "GET", 2)],
}
STATUSES = (200, 201, 204, 301, 304, 400, 404, 409, 429, 500, 502, 503)
STATUS_WEIGHTS = (800, 40, 20, 5, 30, 10, 15, 5, 5, 4, 2, 3)
EVENTS = ("final-2026", "comic-con-2026", "arena-tour")


@dataclass(frozen=True)
class Scenario:
    """The file's time range and its on-sale windows."""

    start: float
    end: float
    windows: tuple[OnSaleWindow, ...]


def scenario(days: float = 30.0, end: float = 1_800_000_000.0) -> Scenario:
    """30 days of traffic with two on-sales of one event and one of another."""
    windows = (
        OnSaleWindow("event:final-2026", end - 20 * DAY, end - 20 * DAY + 3600, "manual", ""),
        OnSaleWindow("event:comic-con-2026", end - 9 * DAY, end - 9 * DAY + 7200, "manual", ""),
        OnSaleWindow("event:final-2026", end - 2 * DAY, end - 2 * DAY + 1800, "schedule", ""),
    )
    return Scenario(end - days * DAY, end, windows)


def _line(rng: random.Random, ts: float, onsale_event: str | None) -> bytes:
    service = rng.choice(tuple(ROUTES))
    routes = ROUTES[service]
    route, method, _ = rng.choices(routes, weights=[w for *_, w in routes])[0]
    status = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
    onsale = onsale_event is not None
    event = onsale_event if onsale else rng.choice((None, None, *EVENTS))
    return orjson.dumps(
        {
            "ts": round(ts, 6),
            "service": service,
            "route": route,
            "method": method,
            "status": status,
            "duration_s": round(rng.lognormvariate(-3.0 if not onsale else -1.5, 1.0), 6),
            "mode": "onsale" if onsale else "normal",
            "event": event,
            "event_onsale": onsale,
            "trace_id": f"{rng.getrandbits(128):032x}",
        }
    )


def _stamps(rng: random.Random, sc: Scenario, lines: int) -> Iterator[tuple[float, str | None]]:
    """Sorted (ts, on-sale event) pairs: 95% spread evenly, 5% inside the on-sale windows."""
    onsale = lines // 20
    pairs: list[tuple[float, str | None]] = []
    for _ in range(lines - onsale):
        pairs.append((rng.uniform(sc.start, sc.end), None))
    for i in range(onsale):
        window = sc.windows[i % len(sc.windows)]
        assert window.end is not None
        pairs.append((rng.uniform(window.start, window.end), window.event))
    pairs.sort(key=lambda p: p[0])
    return iter(pairs)


def write_log(path: Path, sc: Scenario, lines: int, seed: int = 7) -> int:
    """Write ``lines`` access-log lines to ``path``; return the file size in bytes."""
    rng = random.Random(seed)
    batch: list[bytes] = []
    with path.open("wb") as out:
        for ts, event in _stamps(rng, sc, lines):
            batch.append(_line(rng, ts, event))
            if len(batch) >= 10_000:
                out.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            out.write(b"\n".join(batch) + b"\n")
    return path.stat().st_size


def request_for(sc: Scenario) -> CountRequest:
    """What a report of 4 SLOs would ask: 6 spans, 2 thresholds, the 3 windows."""
    at = sc.end
    spans = tuple(
        Span(f"last:{name}", at - seconds, at)
        for name, seconds in (
            ("30d", 30 * DAY),
            ("3d", 3 * DAY),
            ("1d", DAY),
            ("6h", 6 * 3600.0),
            ("1h", 3600.0),
            ("5m", 300.0),
        )
    )
    return CountRequest(
        at=at,
        spans=spans,
        thresholds=frozenset({0.25, 1.0}),
        onsale_windows=sc.windows,
        services=frozenset({"checkout", "inventory", "gateway"}),
    )


def orjson_loop(path: Path) -> int:
    """Baseline (a): the same chunked reads, ``orjson.loads`` per line in a Python loop."""
    count = 0
    loads = orjson.loads
    for buffer, start, end in _FileReader(path, DEFAULT_CHUNK_SIZE):
        with memoryview(buffer) as view:
            data = bytes(view[start:end])
        for line in data.split(b"\n"):
            if line:
                loads(line)
                count += 1
    return count


def msgspec_decode(path: Path) -> int:
    """Baseline (b): the same chunked reads, msgspec ``decode_lines`` into the same structs."""
    decoder = msgspec.json.Decoder(_Line)
    count = 0
    for buffer, start, end in _FileReader(path, DEFAULT_CHUNK_SIZE):
        with memoryview(buffer) as view:
            count += len(decoder.decode_lines(view[start:end]))
    return count


def log_source(path: Path, request: CountRequest) -> int:
    """The product: ``LogSource.collect`` with a realistic request."""
    collected = LogSource([path]).collect(request)
    return sum(int(n) for agg in collected.spans.values() for n in agg.requests.values())


def best_times(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """The shortest wall time of each run over ``repeat`` rounds; a round runs each once, in
    turn, so a noisy moment of the machine hits every reader alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def pin_to_one_core() -> str:
    """Run on CPU 0 only (where the OS allows), so the figures are for one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        return "pinned to CPU 0"
    return "not pinned (no sched_setaffinity here)"


def main(argv: list[str] | None = None) -> None:
    """Write the file, time the three readers, print lines/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines to write")
    parser.add_argument("--quick", action="store_true", help="200,000 lines, 1 repetition")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (best is kept)")
    args = parser.parse_args(argv)
    lines = 200_000 if args.quick else args.lines
    repeat = 1 if args.quick else args.repeat
    pinned = pin_to_one_core()
    sc = scenario()
    request = request_for(sc)
    with tempfile.TemporaryDirectory(prefix="onsale-obs-bench-") as tmp:
        path = Path(tmp) / "access.log"
        size = write_log(path, sc, lines)
        print(f"{lines:,} lines, {size / lines:.0f} bytes each, {size / 1e6:.0f} MB; {pinned}")
        print(
            f"request: {len(request.spans)} spans, {len(request.thresholds)} thresholds, "
            f"{len(sc.windows)} on-sale windows; best of {repeat}"
        )
        if not orjson_loop(path) == msgspec_decode(path) == lines:
            raise SystemExit("the baselines did not read every line: the benchmark is broken")
        found = dataclasses.replace(request, onsale_windows=None)
        timings = best_times(
            repeat,
            {
                "orjson loop (a)": lambda: orjson_loop(path),
                "msgspec decode (b)": lambda: msgspec_decode(path),
                PRODUCT: lambda: log_source(path, request),
                FOUND: lambda: log_source(path, found),
            },
        )
    report(lines, timings)


def report(lines: int, timings: dict[str, float]) -> None:
    """Print lines/s per reader, how ``collect`` compares, and whether the target is met."""
    product = timings[PRODUCT]
    print(f"{'reader':<34} {'seconds':>8} {'lines/s':>11} {'collect speed / this':>21}")
    for name, seconds in timings.items():
        ratio = f"{seconds / product:.2f}"
        print(f"{name:<34} {seconds:>8.3f} {lines / seconds:>11,.0f} {ratio:>21}")
    rate = lines / product
    verdict = "met" if rate >= TARGET else "NOT met"
    print(
        f"target: {PRODUCT} >= {TARGET:,.0f} lines/s on one core: {verdict} ({rate:,.0f} lines/s)"
    )


if __name__ == "__main__":
    main()
