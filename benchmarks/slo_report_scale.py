"""``slo report`` at a large platform's scale: many SLOs, many on-sales (logs source).

Two cases, each written into a temporary folder (removed afterwards) and timed end to end as a
user runs it (``onsale-obs slo report --spec ... --logs ... --format json -o FILE``, a fresh
process: wall and CPU time), and in this process stage by stage (CPU time) (read the spec; count the logs and evaluate, as
``slo report`` does with straddling on-sales clipped; the report's JSON):

- ``slos``: ``--slos`` SLOs (default 2,000: half availability, half latency) over 200
  services x 10 routes, one access log of ``--lines`` lines (default 300,000) over 30 days with
  a few on-sales. Target (issue 24): 2,000 SLOs in 10 s or less.
- ``onsales``: ``--onsales`` on-sale windows (default 200,000) found in the logs: 2,000 events
  (protected zones), 100 on-sales each over 30 days, ``--per-onsale`` on-sale lines each
  (default 2) beside ``--lines`` normal lines; 4 SLOs. Target: 200,000 windows in 30 s or less.

    .venv/bin/python benchmarks/slo_report_scale.py                     # both cases
    .venv/bin/python benchmarks/slo_report_scale.py --case slos --profile 25
    .venv/bin/python benchmarks/slo_report_scale.py --quick             # a tenth of each

``--profile N`` prints the N functions with the most cumulative time (cProfile) of the
in-process run. The files take about 60 MB (slos) and 90 MB (onsales) at the defaults.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import orjson

from onsale_obs.slo import load_spec
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._retro_clip import run_clipped_report

DAY = 86400.0
AT = 1_800_000_000.0
START = AT - 30 * DAY
THRESHOLDS = ("100ms", "250ms", "500ms", "1s")
STATUSES = (200, 200, 200, 200, 200, 200, 200, 201, 404, 500, 503)
T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    name: str
    spec: Path
    logs: Path
    slos: int
    lines: int
    onsales: int
    target: float


def _line(rng: random.Random, ts: float, service: str, route: str, event: str | None) -> bytes:
    onsale = event is not None
    return orjson.dumps(
        {
            "ts": round(ts, 3),
            "service": service,
            "route": route,
            "method": "POST" if route.endswith("checkout") else "GET",
            "status": rng.choice(STATUSES),
            "duration_s": round(rng.lognormvariate(-2.5 if onsale else -3.0, 1.0), 4),
            "mode": "onsale" if onsale else "normal",
            "event": event,
            "event_onsale": onsale,
        }
    )


def _write(path: Path, rows: Iterator[bytes]) -> None:
    batch: list[bytes] = []
    with path.open("wb") as out:
        for row in rows:
            batch.append(row)
            if len(batch) >= 10_000:
                out.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            out.write(b"\n".join(batch) + b"\n")


def _slo_yaml(name: str, service: str, routes: list[str], latency: str | None) -> str:
    sli = (
        f"{{type: latency, routes: {json.dumps(routes)}, "
        f"threshold: {{normal: {latency}, onsale: 1s}}}}"
        if latency
        else f"{{type: availability, routes: {json.dumps(routes)}}}"
    )
    objectives = "{normal: 99, onsale: 99}" if latency else "{normal: 99.9, onsale: 99.95}"
    return (
        f"  - name: {name}\n    service: {service}\n    sli: {sli}\n    objectives: {objectives}\n"
    )


def many_slos(folder: Path, slos: int, lines: int, seed: int = 1) -> Case:
    """``slos`` SLOs over 200 services x 10 routes; ``lines`` log lines, ~3% on-sale."""
    rng = random.Random(seed)
    services = [f"svc-{i:03d}" for i in range(200)]
    routes = [f"/api/r{j}" for j in range(9)] + ["/events/{event_id}/checkout"]
    text = ["slos:\n"]
    for i in range(slos):
        service = services[i % len(services)]
        route = routes[(i // len(services)) % len(routes)]
        latency = THRESHOLDS[i % len(THRESHOLDS)] if i % 2 else None
        text.append(_slo_yaml(f"slo-{i:04d}", service, [route], latency))
    spec = folder / "slo.yaml"
    spec.write_text("".join(text))
    onsales = [(AT - d * DAY, AT - d * DAY + 3600, f"ev-{d}") for d in (25, 18, 11, 4, 1)]

    def rows() -> Iterator[bytes]:
        stamps = sorted(rng.uniform(START, AT) for _ in range(lines))
        for ts in stamps:
            event = None
            for begin, end, name in onsales:
                if begin < ts <= end and rng.random() < 0.9:
                    event = name
            yield _line(rng, ts, rng.choice(services), rng.choice(routes), event)

    logs = folder / "access.log"
    _write(logs, rows())
    return Case("slos", spec, logs, slos, lines, len(onsales), 10.0)


def many_onsales(folder: Path, onsales: int, per_onsale: int, lines: int, seed: int = 2) -> Case:
    """``onsales`` windows over 2,000 events (protected zones), found in the logs."""
    rng = random.Random(seed)
    events = [f"zone-{i:04d}" for i in range(2000)]
    services = ("gateway", "checkout", "inventory", "catalog")
    routes = {
        "gateway": "/events/{event_id}/enter",
        "checkout": "/events/{event_id}/checkout",
        "inventory": "/seats/reserve",
        "catalog": "/events",
    }
    text = ["slos:\n"]
    for service in services[:2]:
        text.append(_slo_yaml(f"{service}-availability", service, [routes[service]], None))
        text.append(_slo_yaml(f"{service}-latency", service, [routes[service]], "250ms"))
    spec = folder / "slo.yaml"
    spec.write_text("".join(text))
    per_event = max(1, onsales // len(events))
    step = (AT - START) / per_event  # each event's on-sales this far apart (7.2 h at 100)
    stamps: list[tuple[float, str | None]] = []
    for k, event in enumerate(events[: min(len(events), onsales)]):
        offset = (k / len(events)) * step
        for n in range(per_event):
            begin = START + offset + n * step + 60
            stamps.extend((begin + rng.uniform(0, 90), event) for _ in range(per_onsale))
    stamps.extend((rng.uniform(START, AT), None) for _ in range(lines))
    stamps.sort(key=lambda pair: pair[0])

    def rows() -> Iterator[bytes]:
        for ts, event in stamps:
            service = rng.choice(services[:2]) if event else rng.choice(services)
            yield _line(rng, ts, service, routes[service], event)

    logs = folder / "access.log"
    _write(logs, rows())
    count = per_event * min(len(events), onsales)
    return Case("onsales", spec, logs, 4, lines + count * per_onsale, count, 30.0)


def timed(what: Callable[[], T]) -> tuple[T, float]:
    """``what()`` and the CPU seconds it took (the machine is shared: wall time is noisy)."""
    start = time.process_time()
    result = what()
    return result, time.process_time() - start


def in_process(case: Case, profile: int) -> dict[str, float]:
    """The stages ``slo report --format json`` runs, timed (and profiled) in this process."""
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    spec, t_spec = timed(lambda: load_spec(case.spec))
    report, t_report = timed(
        lambda: run_clipped_report(spec, LogSource([case.logs]), AT, onsale_windows=None)
    )
    # as `slo report --format json` writes it (orjson: Python's json with indent is pure Python)
    text, t_json = timed(lambda: orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    windows = sum(len(s.onsales) for s in report.slos) / max(1, len(report.slos))
    return {
        "spec_s": t_spec,
        "count_and_evaluate_s": t_report,
        "json_s": t_json,
        "json_mb": len(text) / 1e6,
        "onsales_per_slo": windows,
    }


def end_to_end(case: Case, folder: Path) -> tuple[float, float, int]:
    """Wall and CPU time of ``onsale-obs slo report`` in a fresh process, and its exit code."""
    out = folder / "report.json"
    argv = [sys.executable, "-c", "from onsale_obs.cli import main; main()", "slo", "report"]
    argv += ["--spec", str(case.spec), "--logs", str(case.logs), "--at", "2027-01-15T08:00:00Z"]
    argv += ["--format", "json", "-o", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr)
    out.unlink(missing_ok=True)
    return took, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("slos", "onsales", "both"), default="both")
    parser.add_argument("--slos", type=int, default=2000)
    parser.add_argument("--onsales", type=int, default=200_000)
    parser.add_argument("--per-onsale", type=int, default=2)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    scale = 10 if options.quick else 1
    figures: dict[str, dict[str, float]] = {}
    for name in ("slos", "onsales") if options.case == "both" else (options.case,):
        with tempfile.TemporaryDirectory(prefix=f"onsale-obs-scale-{name}-") as tmp:
            folder = Path(tmp)
            print(f"[{name}] writing the spec and logs ...", file=sys.stderr)
            if name == "slos":
                case = many_slos(folder, options.slos // scale, options.lines // scale)
            else:
                case = many_onsales(
                    folder, options.onsales // scale, options.per_onsale, options.lines // scale
                )
            size = case.logs.stat().st_size / 1e6
            stages = in_process(case, options.profile)
            wall, cpu, code = (0.0, 0.0, -1) if options.no_cli else end_to_end(case, folder)
            figures[name] = {
                "slos": case.slos,
                "lines": case.lines,
                "onsales": case.onsales,
                "log_mb": size,
                **stages,
                "cli_wall_s": wall,
                "cli_cpu_s": cpu,
                "cli_exit": code,
                "target_s": case.target,
            }
    print(f"slo report at scale, logs source; load average {os.getloadavg()[0]:.2f}")
    for name, f in figures.items():
        print(
            f"{name:>8}: {f['slos']:,.0f} SLOs, {f['onsales']:,.0f} on-sales, "
            f"{f['lines']:,.0f} lines ({f['log_mb']:.0f} MB)\n"
            f"          in process, CPU: spec {f['spec_s']:.2f} s, count+evaluate "
            f"{f['count_and_evaluate_s']:.2f} s, JSON {f['json_s']:.2f} s ({f['json_mb']:.0f} MB, "
            f"{f['onsales_per_slo']:,.0f} on-sales per SLO)\n"
            f"          onsale-obs slo report --format json -o FILE: {f['cli_wall_s']:.2f} s wall, "
            f"{f['cli_cpu_s']:.2f} s CPU (exit {f['cli_exit']:.0f}); target {f['target_s']:.0f} s"
        )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
