"""Back-test errors of ``plan`` on planted on-sales with a known fan-out and capacity, both sources.

Six on-sales, six hours apart, are planted (``onsale_obs.plan.testing``): a front end, checkout
and payments with fixed capacities per replica (8, 2 and 3 requests/s); each on-sale has its
own replicas, ramp (users/min), a fan-out that drifts by up to +-10% between on-sales (a release
that changed the pages) and per-minute noise. The same requests become access logs and, through
the tests' scraper (``tests/slo_traffic.py``), a real Prometheus backfilled with promtool,
with the waiting room's admitted users/min and a replicas gauge beside them. ``learn`` reads
both; ``backtest`` predicts each on-sale from the ones before it only.

    .venv/bin/python benchmarks/plan_backtest.py            # about 30 s
    .venv/bin/python benchmarks/plan_backtest.py --json backtest.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' planted-traffic scraper (tests/slo_traffic.py)

from onsale_obs.plan import BacktestRow, Profile, PrometheusTimeline, backtest, learn  # noqa: E402
from onsale_obs.plan.testing import DEFAULT_SERVICES, Planted, PlantedOnSale, plant  # noqa: E402
from onsale_obs.slo import spec_from_data  # noqa: E402
from onsale_obs.slo._prom_client import PrometheusClient  # noqa: E402
from onsale_obs.slo._prometheus import PrometheusSource  # noqa: E402
from onsale_obs.slo._run import open_source  # noqa: E402
from onsale_obs.testing import find_binary  # noqa: E402
from onsale_obs.testing_prometheus import PrometheusServer, backfill  # noqa: E402
from tests.slo_oracle import Record  # noqa: E402
from tests.slo_traffic import Traffic  # noqa: E402

HOUR = 3600.0
T0 = 1_750_413_600.0  # 2025-06-20T10:00:00Z
#: the events tests/slo_traffic.py writes an onsale_mode gauge for (each on sale twice)
EVENTS = ("cup-final", "arena-tour", "summer-fest")
SPEC = {
    "slos": [
        {
            "name": f"{s.name}-availability",
            "service": s.name,
            "sli": {"type": "availability"},
            "objectives": {"normal": 99.9, "onsale": 99.9},
        }
        for s in DEFAULT_SERVICES
    ]
}


def planted_onsales(seed: int) -> list[PlantedOnSale]:
    """Six on-sales with their own replicas, ramps and fan-out drift."""
    rng = random.Random(seed)
    out = []
    for i in range(6):
        out.append(
            PlantedOnSale(
                EVENTS[i % 3],
                T0 + i * 6 * HOUR,
                minutes=rng.randint(25, 40),
                rate_from=rng.uniform(80, 150),
                rate_to=rng.uniform(450, 800),
                replicas={
                    "frontend": rng.randint(4, 8),
                    "checkout": rng.randint(3, 7),
                    "payments": rng.randint(2, 5),
                },
                fanout_scale=rng.uniform(0.9, 1.1),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class PlantedAdmissions:
    """The room's admitted users/min, as it recorded them (events repeat, so by time)."""

    planted: Planted

    def per_minute(self, name: str, start: float, end: float, event: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for o in self.planted.onsales:
            if o.event == event and o.start < end and o.end > start:
                out.update(
                    {m: r for m, r in self.planted.admissions_of(o).items() if start <= m < end}
                )
        return out

    @property
    def description(self) -> str:
        return "planted admissions"


@dataclass(frozen=True, slots=True)
class PlantedReplicas:
    """Replicas per service during each on-sale."""

    planted: Planted

    def per_minute(self, name: str, start: float, end: float, event: str) -> dict[int, float]:
        for o in self.planted.onsales:
            if o.event == event and o.start < end and o.end > start:
                first = int(start // 60 * 60)
                return {m: float(o.replicas[name]) for m in range(first, int(end) + 60, 60)}
        return {}

    @property
    def description(self) -> str:
        return "planted replicas"


def openmetrics(planted: Planted, at: float, folder: Path) -> Path:
    """The middleware's metrics as scraped every 60 s, plus the two gauges."""
    records = [
        Record(r.ts, r.service, r.route, r.method, r.status, r.duration_s, r.mode, r.event, True)
        for r in planted.records
    ]
    start = planted.onsales[0].start - HOUR
    traffic = Traffic(at, start, 60.0, records, tuple(o.window() for o in planted.onsales), {})
    path = folder / "planted.om"
    traffic.write_openmetrics(path)
    lines = ["# TYPE onsale_exit_rate_recommended gauge"]
    for event in EVENTS:
        for o in (o for o in planted.onsales if o.event == event):
            for minute, rate in sorted(planted.admissions_of(o).items()):
                lines.append(f'onsale_exit_rate_recommended{{event="{event}"}} {rate} {minute}')
            # serve drops the series at the end; Prometheus marks it stale (a 0 stands for it)
            lines.append(f'onsale_exit_rate_recommended{{event="{event}"}} 0 {int(o.end)}')
    lines.append("# TYPE kube_deployment_status_replicas gauge")
    for s in DEFAULT_SERVICES:
        for o in planted.onsales:
            for t in range(int(o.start - 600), int(o.end + 1200), 60):
                lines.append(
                    f'kube_deployment_status_replicas{{deployment="{s.name}"}} {o.replicas[s.name]} {t}'
                )
    body = path.read_text().removesuffix("# EOF\n")
    path.write_text(body + "\n".join(lines) + "\n# EOF\n")
    return path


def summary(rows: list[BacktestRow]) -> dict[str, dict[str, float | int | None]]:
    """Per service: mean and worst |error| of the peak rps and of the sustainable rate."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name in sorted({r.service for r in rows}):
        mine = [r for r in rows if r.service == name]
        peaks = [abs(e) for r in mine if (e := r.peak_error) is not None]
        sus = [
            abs(e)
            for r in mine
            if (e := r.sustainable_error) is not None and not r.actual_is_lower_bound
        ]
        out[name] = {
            "peak_mean": statistics.fmean(peaks) if peaks else None,
            "peak_worst": max(peaks) if peaks else None,
            "sustainable_mean": statistics.fmean(sus) if sus else None,
            "sustainable_worst": max(sus) if sus else None,
            "sustainable_compared": len(sus),
            "predictions": len(mine),
        }
    return out


def _pct(x: float | int | None) -> str:
    return "   -  " if x is None else f"{x * 100:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    """Print the back-test table per source; 0, or 2 for bad arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2026, help="planting seed")
    parser.add_argument("--json", type=Path, help="also write the rows and summaries here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    onsales = planted_onsales(args.seed)
    planted = plant(onsales, seed=args.seed, noise=True)
    at = onsales[-1].end + 2 * HOUR
    spec = spec_from_data(SPEC)
    window = at - T0 + HOUR
    results: dict[str, Profile] = {}
    with tempfile.TemporaryDirectory(prefix="plan-backtest-") as scratch:
        folder = Path(scratch)
        log = folder / "access.jsonl"
        log.write_bytes(b"".join(orjson.dumps(r.line()) + b"\n" for r in planted.records))
        results["logs"] = learn(
            spec, open_source(logs=[log]), at, window=window,
            admitted=PlantedAdmissions(planted), replicas=PlantedReplicas(planted),
        )  # fmt: skip
        prometheus, promtool = find_binary("prometheus"), find_binary("promtool")
        if prometheus is None or promtool is None:
            print("prometheus/promtool not found: the Prometheus source is skipped")
        else:
            backfill(openmetrics(planted, at, folder), folder / "tsdb", promtool=promtool)
            server = PrometheusServer(binary=prometheus, tsdb_path=folder / "tsdb")
            with server, PrometheusClient(server.url) as client:

                def points(q: str, a: float, b: float, s: float) -> list[tuple[float, float]]:
                    return [p for x in client.query_range(q, a, b, s) for p in x.points]

                results["prometheus"] = learn(
                    spec, PrometheusSource(client), at, window=window,
                    admitted=PrometheusTimeline(points, 'sum(onsale_exit_rate_recommended{event="$event"})', "$event"),
                    replicas=PrometheusTimeline(points, 'sum(kube_deployment_status_replicas{deployment="$service"})', "$service"),
                )  # fmt: skip
    truth = {s.name: s.capacity_per_replica for s in DEFAULT_SERVICES}
    report: dict[str, Any] = {"seed": args.seed, "truth_rps_per_replica": truth, "sources": {}}
    print(
        f"# {len(onsales)} planted on-sales (seed {args.seed}), {len(planted.records):,} requests"
    )
    print(
        f"{'source':11} {'service':9} {'peak rps |err| mean':>20} {'worst':>7} "
        f"{'sustainable |err| mean':>23} {'worst':>7} {'compared':>9}"
    )
    for source, profile in results.items():
        rows = backtest(profile)
        s = summary(rows)
        for name, v in s.items():
            print(
                f"{source:11} {name:9} {_pct(v['peak_mean']):>20} {_pct(v['peak_worst']):>7} "
                f"{_pct(v['sustainable_mean']):>23} {_pct(v['sustainable_worst']):>7} "
                f"{v['sustainable_compared']!s:>5}/{v['predictions']}"
            )
        # where the limit was reached (elsewhere the number is only a lower bound)
        learnt = {
            name: [
                o.services[name].good_rps_per_replica
                for o in profile.onsales
                if o.services[name].limit_reached
            ]
            for name in truth
        }
        report["sources"][source] = {
            "summary": s,
            "rows": [r.to_json() for r in rows],
            "learnt_rps_per_replica": learnt,
        }
    print(f"\n{time.perf_counter() - started:.0f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
