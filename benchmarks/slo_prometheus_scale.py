"""``slo report --prometheus`` at a large platform's scale, next to google's slo-generator.

Generates ``--days`` days (default 30) of what the middleware and the subscriber export, sampled
every ``--step`` seconds (default 60, a realistic scrape interval), streams it as OpenMetrics into
a temporary folder, backfills it into a real Prometheus (``promtool tsdb create-blocks-from
openmetrics``; the text, several GB at the defaults, is deleted right after) and serves it:

- ``onsale_mode{scope}`` for ``--scopes`` scopes ``event:eNNNN`` (default 2,000), each on sale
  ``--onsales`` times (default 3) for 2-4 hours, 0 otherwise, every step of the month; and
  ``scope="global"``, never on sale;
- ``onsale_requests_total{service,route,method,code,mode,event}`` (the README's metric
  contract): ``--slos`` routes (default 50: 10 services x 5 routes) counting 2xx and 5xx in
  normal time all month; the first route of the first three services also serves every
  on-sale (``mode="onsale"``, ``event`` set), its series exported from the on-sale's first
  scrape to a few scrapes after it ends, from 0 each time.

One availability SLO per route (the spec), and the same SLOs as slo-generator 2.6.0 configs:
one per SLO and mode (``good_bad_ratio`` over ``sum(increase(...[window]))``), so 100 for 50
SLOs. Each round runs, each in a fresh process, ``onsale-obs slo report --prometheus URL --spec
... --at T --format json -o FILE`` (windows found in ``onsale_mode``) and slo-generator's
``compute`` over all its configs, with its queries pinned to T (it asks Prometheus for "now";
tests/test_slo_crosscheck.py does the same). Measured per run: wall time, CPU time and peak RSS
of the process (``os.wait4``'s rusage of that one child), the CPU time Prometheus spent
answering (from ``/proc``), and the queries sent. ``--rounds`` rounds (default 3), in
alternating order; the table shows medians.

"Still exact": the generator knows every request it planted; the report's on-sale counts (per
SLO and per on-sale window) and normal counts are compared with that truth, and the largest
absolute difference is printed (slo-generator's too, for its per-mode counts).

    .venv/bin/python benchmarks/slo_prometheus_scale.py              # 2,000 scopes, 30 days: ~6 min
    .venv/bin/python benchmarks/slo_prometheus_scale.py --quick      # 100 scopes, 3 days, 15 SLOs
    .venv/bin/python benchmarks/slo_prometheus_scale.py --quick --profile 25
    .venv/bin/python benchmarks/slo_prometheus_scale.py --before 46cc6e3   # + the package before
    .venv/bin/python benchmarks/slo_prometheus_scale.py --tsdb /tmp/prom-month   # keep the backfill

At the defaults the OpenMetrics text is 5.2 GB (97.7M samples) and the backfill takes a few
minutes; the report before issue 24 (``--before 46cc6e3``) takes about 5 minutes per run.

``--profile N`` also runs the report in this process under cProfile and prints the N functions
with the most cumulative time. Target (issue 24): faster than slo-generator in wall time, still
exact, memory bounded by on-sale time rather than scopes x window.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from onsale_obs.testing_prometheus import PrometheusServer, backfill

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400
HOUR = 3_600
ROUTES_PER_SERVICE = 5
#: (service index, route index) of the routes every on-sale's traffic goes to
ONSALE_ROUTES = ((0, 0), (1, 0), (2, 0))
#: scrapes an on-sale series stays exported after its on-sale ends (its value unchanged)
TRAILING_SCRAPES = 5
GRACE = 300
CODES = ("2xx", "5xx")

#: slo-generator's side of a round, run in a fresh interpreter that imports only what it needs
SLO_GENERATOR_RUN = r"""
import json, sys, httpx, yaml
from pathlib import Path
from slo_generator.compute import compute

folder, url, at, out = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])

class FixedTimeClient:
    # what slo-generator's Prometheus backend calls, evaluated at the report time
    def __init__(self):
        self.http = httpx.Client(timeout=600)
        self.sent = 0
    def query(self, metric, **_):
        self.sent += 1
        answer = self.http.get(f"{url}/api/v1/query", params={"query": metric, "time": at})
        answer.raise_for_status()
        return answer.text

config = yaml.safe_load((folder / "config.yaml").read_text())
client = FixedTimeClient()
reports = {}
for path in sorted(folder.glob("slo-*.yaml")):
    slo = yaml.safe_load(path.read_text())
    [report] = compute(slo, config, timestamp=at, client=client)
    reports[slo["metadata"]["name"]] = {
        "valid": report["valid"], "good": report.get("good_events_count"),
        "bad": report.get("bad_events_count"), "sli": report.get("sli_measurement"),
    }
out.write_text(json.dumps({"queries": client.sent, "reports": reports}))
"""


@dataclass(frozen=True)
class OnSale:
    scope: int  # event index
    begin: int  # first scrape with onsale_mode 1
    end: int  # first scrape with onsale_mode 0 again (and the last that counts requests)


@dataclass
class Plan:
    """The synthetic month: scopes, their on-sales, the routes; and the truth it plants."""

    scopes: int
    slos: int
    days: int
    step: int
    onsales_per_scope: int
    seed: int
    at: int
    onsales: list[OnSale] = field(default_factory=list)
    #: (service, route, mode) -> [total, bad] over the SLO window (at - days, at]
    truth: dict[tuple[int, int, str], list[int]] = field(default_factory=dict)
    #: (event, begin, service, route) -> [total, bad]
    truth_onsales: dict[tuple[int, int, int, int], list[int]] = field(default_factory=dict)
    samples: int = 0

    @property
    def window_start(self) -> int:
        return self.at - self.days * DAY

    @property
    def first(self) -> int:
        """The first scrape: two hours before the SLO window, so every baseline exists."""
        return self.window_start - 2 * HOUR

    def grid(self) -> range:
        return range(self.first, self.at + 1, self.step)

    def routes(self) -> list[tuple[int, int]]:
        return [divmod(i, ROUTES_PER_SERVICE) for i in range(self.slos)]


def make_plan(args: argparse.Namespace) -> Plan:
    step = args.step
    at = (int(time.time()) // DAY - 1) * DAY  # midnight UTC a day ago: the data is history
    plan = Plan(args.scopes, args.slos, args.days, step, args.onsales, args.seed, at)
    rng = random.Random(args.seed)
    margin = 2 * HOUR
    slot = (args.days * DAY - 2 * margin) // max(1, args.onsales)
    if slot < 6 * HOUR:
        raise SystemExit(
            f"--days {args.days} is too short for --onsales {args.onsales} of 2-4 hours each "
            "(each needs a 6-hour slot); give more days or fewer on-sales."
        )
    for scope in range(args.scopes):
        for k in range(args.onsales):
            length = rng.randint(2 * HOUR // step, 4 * HOUR // step) * step
            lo = plan.window_start + margin + k * slot
            begin = lo + rng.randrange(0, slot - length - HOUR) // step * step
            begin = plan.first + math.ceil((begin - plan.first) / step) * step
            plan.onsales.append(OnSale(scope, begin, begin + length))
    return plan


def _scope(event: int) -> str:
    return f"event:e{event:04d}"


def _labels(service: int, route: int, code: str, mode: str, event: int | None) -> str:
    extra = f',event="e{event:04d}"' if event is not None else ""
    return (
        f'service="svc{service:02d}",route="/r{route}",method="GET",code="{code}",'
        f'mode="{mode}"{extra}'
    )


def _normal_increment(i: int, service: int, route: int, code: str) -> int:
    k = service * ROUTES_PER_SERVICE + route
    if code == "2xx":
        return 20 + (i * 7 + k * 3) % 11
    return 1 if (i + k * 13) % 97 == 0 else 0


def _onsale_increment(i: int, event: int, route_index: int, code: str) -> int:
    if code == "2xx":
        return 300 + (i * 13 + event * 7 + route_index) % 50
    return 1 if (i * 7 + event + route_index) % 23 == 0 else 0


def write_openmetrics(plan: Plan, out: TextIO | None) -> None:
    """Stream every series, each in time order, family by family; count the truth meanwhile.

    ``out`` None only counts the truth (a TSDB kept from an earlier run holds the data).
    """
    writing = out is not None
    out = out or _Discard()
    stamps = [f"{t}\n" for t in plan.grid()] if writing else []
    first = plan.first
    on_by_scope: dict[int, list[OnSale]] = {}
    for o in plan.onsales:
        on_by_scope.setdefault(o.scope, []).append(o)
    out.write("# HELP onsale_mode 1 while the scope is on sale.\n# TYPE onsale_mode gauge\n")
    for scope in range(-1, plan.scopes):
        name = (
            'onsale_mode{scope="global"}'
            if scope < 0
            else f'onsale_mode{{scope="{_scope(scope)}"}}'
        )
        off, on = f"{name} 0 ", f"{name} 1 "
        cursor = 0
        plan.samples += len(plan.grid())
        if not writing:
            continue
        for o in sorted(on_by_scope.get(scope, []), key=lambda o: o.begin):
            a, b = (o.begin - first) // plan.step, (o.end - first) // plan.step
            if a > cursor:
                out.write(off + off.join(stamps[cursor:a]))
            out.write(on + on.join(stamps[a:b]))
            cursor = b
        if cursor < len(stamps):
            out.write(off + off.join(stamps[cursor:]))
    out.write("# HELP onsale_requests Requests.\n# TYPE onsale_requests counter\n")
    window_start = plan.window_start
    for service, route in plan.routes():
        for code in CODES:
            name = f"onsale_requests_total{{{_labels(service, route, code, 'normal', None)}}} "
            total, lines, counted = 0, [], 0
            for i, t in enumerate(plan.grid()):
                n = _normal_increment(i, service, route, code) if i else 0
                total += n
                if t > window_start:
                    counted += n
                if writing:
                    lines.append(f"{name}{total} {t}\n")
            out.write("".join(lines))
            plan.samples += len(plan.grid()) - len(lines)
            plan.samples += len(lines)
            _add_truth(plan.truth, (service, route, "normal"), code, counted)
    for event in range(plan.scopes):
        mine = sorted(on_by_scope.get(event, []), key=lambda o: o.begin)
        for r, (service, route) in enumerate(ONSALE_ROUTES):
            if (service, route) not in plan.routes():
                continue
            for code in CODES:
                name = f"onsale_requests_total{{{_labels(service, route, code, 'onsale', event)}}} "
                lines = []
                for o in mine:
                    total = counted = 0  # each on-sale's series starts from 0
                    for t in range(
                        o.begin + plan.step, o.end + TRAILING_SCRAPES * plan.step + 1, plan.step
                    ):
                        if t > plan.at:
                            break
                        if t <= o.end:
                            n = _onsale_increment((t - first) // plan.step, event, r, code)
                            total += n
                            if t > window_start:
                                counted += n
                        lines.append(f"{name}{total} {t}\n" if writing else "")
                    _add_truth(plan.truth, (service, route, "onsale"), code, counted)
                    _add_truth(plan.truth_onsales, (event, o.begin, service, route), code, counted)
                out.write("".join(lines))
                plan.samples += len(lines)
    out.write("# EOF\n")


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


def _add_truth(table: dict[Any, list[int]], key: Any, code: str, n: int) -> None:
    row = table.setdefault(key, [0, 0])
    row[0] += n
    if code == "5xx":
        row[1] += n


def _slo_name(service: int, route: int) -> str:
    return f"svc{service:02d}-r{route}-availability"


def write_spec(plan: Plan, path: Path) -> None:
    slos = [
        {
            "name": _slo_name(service, route),
            "service": f"svc{service:02d}",
            "sli": {"type": "availability", "routes": [f"/r{route}"], "methods": ["GET"]},
            "objectives": {"normal": 99.9, "onsale": 99.95},
            "window": f"{plan.days}d",
        }
        for service, route in plan.routes()
    ]
    path.write_text(yaml.safe_dump({"onsale_grace": f"{GRACE}s", "slos": slos}, sort_keys=False))


def write_slo_generator(plan: Plan, folder: Path, url: str) -> int:
    """slo-generator's shared config and one SLO config per SLO and mode; returns how many."""
    folder.mkdir()
    window = plan.days * DAY
    step = {"name": f"{plan.days} days", "window": window, "burn_rate_threshold": 1,
            "alert": False, "message_alert": "burning", "message_ok": "ok"}  # fmt: skip
    config = {
        "backends": {"prometheus": {"url": url}},
        "exporters": {},
        "error_budget_policies": {"default": {"steps": [step]}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    count = 0
    for service, route in plan.routes():
        for mode, goal in (("normal", 0.999), ("onsale", 0.9995)):
            selector = (
                f'onsale_requests_total{{service="svc{service:02d}",route="/r{route}",'
                f'method="GET",mode="{mode}"%s}}'
            )
            slo = {
                "apiVersion": "sre.google.com/v2",
                "kind": "ServiceLevelObjective",
                "metadata": {
                    "name": f"{_slo_name(service, route)}-{mode}",
                    "labels": {"service_name": f"svc{service:02d}"},
                },
                "spec": {
                    "description": f"{_slo_name(service, route)}, {mode}",
                    "backend": "prometheus",
                    "method": "good_bad_ratio",
                    "exporters": [],
                    "service_level_indicator": {
                        "filter_good": selector % ',code!="5xx"',
                        "filter_valid": selector % "",
                    },
                    "goal": goal,
                },
            }
            (folder / f"slo-{count:04d}.yaml").write_text(yaml.safe_dump(slo, sort_keys=False))
            count += 1
    return count


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    prometheus_cpu_s: float
    queries: int
    exit: int


def _prometheus_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(argv: list[str], prometheus_pid: int) -> tuple[Run, str]:
    """Run ``argv`` in a fresh process: its wall and CPU time, its own peak RSS (wait4)."""
    cpu0 = _prometheus_cpu(prometheus_pid)
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stderr is not None
    stderr = child.stderr.read().decode(errors="replace")
    child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    run = Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        prometheus_cpu_s=_prometheus_cpu(prometheus_pid) - cpu0,
        queries=0,
        exit=child.returncode,
    )
    return run, stderr


def run_ours(
    url: str,
    spec: Path,
    plan: Plan,
    out: Path,
    pid: int,
    timeout: float,
    package: Path | None = None,
) -> tuple[Run, dict[str, Any]]:
    """``onsale-obs slo report`` (of the package under ``package``, if given) in a fresh process."""
    at = datetime.fromtimestamp(plan.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = "" if package is None else f"import sys; sys.path.insert(0, {str(package)!r}); "
    code = f"{path}from onsale_obs.cli import main; main()"
    argv = [sys.executable, "-c", code, "slo", "report"]
    argv += ["--spec", str(spec), "--prometheus", url, "--at", at, "--timeout", f"{timeout:g}"]
    argv += ["--format", "json", "-o", str(out)]
    run, stderr = measured(argv, pid)
    if run.exit not in (0, 1):
        raise RuntimeError(f"slo report failed (exit {run.exit}):\n{stderr[-3000:]}")
    report = json.loads(out.read_text())
    out.unlink()
    source = report["source"]
    run.queries = int(source.rsplit("(", 1)[1].split()[0])
    return run, report


def run_theirs(
    url: str, folder: Path, plan: Plan, out: Path, pid: int
) -> tuple[Run, dict[str, Any]]:
    argv = [sys.executable, "-c", SLO_GENERATOR_RUN, str(folder), url, str(plan.at), str(out)]
    run, stderr = measured(argv, pid)
    if run.exit != 0:
        raise RuntimeError(f"slo-generator failed (exit {run.exit}):\n{stderr[-3000:]}")
    answer = json.loads(out.read_text())
    out.unlink()
    run.queries = answer["queries"]
    return run, answer["reports"]


def _iso_seconds(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def check_ours(plan: Plan, report: dict[str, Any]) -> dict[str, float]:
    """Largest absolute differences between the report and the planted truth."""
    by_name = {s["name"]: s for s in report["slos"]}
    onsale_diff = normal_diff = window_diff = 0.0
    rows = 0
    for service, route in plan.routes():
        slo = by_name[_slo_name(service, route)]
        for mode in ("normal", "onsale"):
            total, bad = plan.truth.get((service, route, mode), [0, 0])
            got = slo["modes"][mode]
            diff = max(abs((got["total"] or 0) - total), abs((got["bad"] or 0) - bad))
            if mode == "onsale":
                onsale_diff = max(onsale_diff, diff)
            else:
                normal_diff = max(normal_diff, diff)
        for row in slo["onsales"]:
            event = int(row["event"].lstrip("e"))
            begin = _iso_seconds(row["start"]) + plan.step  # found windows open a step early
            total, bad = plan.truth_onsales.get((event, begin, service, route), [0, 0])
            window_diff = max(window_diff, abs(row["total"] - total), abs(row["bad"] - bad))
            rows += 1
    planted = sum(1 for (_, _, s, r) in plan.truth_onsales if (s, r) in plan.routes())
    return {
        "onsale_max_abs_diff": onsale_diff,
        "normal_max_abs_diff": normal_diff,
        "window_rows": rows,
        "window_rows_planted": planted,
        "window_max_abs_diff": window_diff,
    }


def check_theirs(plan: Plan, reports: dict[str, Any]) -> dict[str, float]:
    diffs = {"normal": 0.0, "onsale": 0.0}
    for service, route in plan.routes():
        for mode in diffs:
            total, bad = plan.truth.get((service, route, mode), [0, 0])
            got = reports[f"{_slo_name(service, route)}-{mode}"]
            if not got["valid"]:
                continue  # no on-sale traffic on this route: slo-generator has no SLI
            diff = max(abs(got["good"] + got["bad"] - total), abs(got["bad"] - bad))
            diffs[mode] = max(diffs[mode], diff)
    return {"onsale_max_abs_diff": diffs["onsale"], "normal_max_abs_diff": diffs["normal"]}


def profile_in_process(url: str, spec: Path, plan: Plan, top: int, timeout: float) -> None:
    from onsale_obs.slo import load_spec
    from onsale_obs.slo._prom_client import PrometheusClient
    from onsale_obs.slo._prometheus import PrometheusSource
    from onsale_obs.slo._retro_clip import run_clipped_report

    profiler = cProfile.Profile()
    loaded = load_spec(spec)
    source = PrometheusSource(PrometheusClient(url, timeout=timeout))
    profiler.enable()
    run_clipped_report(loaded, source, float(plan.at), onsale_windows=None)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scopes",
        type=int,
        default=2000,
        help="event scopes with an onsale_mode gauge (default 2,000)",
    )
    parser.add_argument(
        "--slos",
        type=int,
        default=50,
        help="availability SLOs, one per route (default 50; at least 11)",
    )
    parser.add_argument(
        "--days", type=int, default=30, help="days of history, the SLO window (default 30)"
    )
    parser.add_argument("--step", type=int, default=60, help="seconds between scrapes (default 60)")
    parser.add_argument(
        "--onsales", type=int, default=3, help="on-sales per scope, 2-4 h each (default 3)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every tool, medians shown (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="slo report --timeout in seconds (default 300: the pre-issue-24 package needs minutes)",
    )
    parser.add_argument("--quick", action="store_true", help="100 scopes, 3 days, 15 SLOs, 1 round")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile the report in process, print the top N functions")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--tsdb", type=Path, help="keep the backfilled TSDB here, and reuse it when it holds the "
        "same data (default: a temporary folder, deleted afterwards)",
    )  # fmt: skip
    parser.add_argument(
        "--before", metavar="GIT_REF", help="also run slo report of this git ref (its onsale_obs "
        "package, extracted with git archive) in every round",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.scopes, args.days, args.slos, args.rounds = 100, 3, 15, 1
    if args.slos < 11:
        parser.error("--slos must be at least 11, so the on-sale routes have SLOs")

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    plan = make_plan(args)
    with tempfile.TemporaryDirectory(prefix="onsale-obs-prom-scale-") as tmp:
        folder = Path(tmp)
        tsdb = args.tsdb or folder / "tsdb"
        size, backfill_s = build(plan, tsdb, folder, say)
        spec = folder / "slo.yaml"
        write_spec(plan, spec)
        before = None
        if args.before:
            before = folder / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.before, "onsale_obs"], cwd=ROOT, capture_output=True,
                check=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        server = PrometheusServer(tsdb_path=tsdb, extra_args=("--query.timeout=10m",))
        runs: dict[str, list[Run]] = {"ours": [], "slo_generator": [], "before": []}
        reports: dict[str, Any] = {}
        with server as prom:
            assert prom.process is not None
            pid = prom.process.pid
            configs = write_slo_generator(plan, folder / "slo-generator", prom.url)
            out = folder / "report.json"
            # warm the page cache and the TSDB's indexes once for every tool
            say("warming up")
            run_ours(prom.url, spec, plan, out, pid, args.timeout)
            who_all = ["ours", "slo_generator"] + (["before"] if before else [])
            for k in range(args.rounds):
                order = who_all if k % 2 == 0 else who_all[::-1]
                for who in order:
                    if who == "slo_generator":
                        run, reports[who] = run_theirs(
                            prom.url, folder / "slo-generator", plan, out, pid
                        )
                    else:
                        package = before if who == "before" else None
                        run, reports[who] = run_ours(
                            prom.url, spec, plan, out, pid, args.timeout, package
                        )
                    runs[who].append(run)
                    say(f"round {k + 1}: {who}: {run}")
            if args.profile:
                profile_in_process(prom.url, spec, plan, args.profile, args.timeout)
    figures: dict[str, Any] = {
        "scopes": args.scopes, "slos": args.slos, "days": args.days, "step_s": args.step,
        "onsales": len(plan.onsales), "samples": plan.samples, "openmetrics_gb": size / 1e9,
        "backfill_s": backfill_s, "slo_generator_configs": configs, "rounds": args.rounds,
        "load_average": os.getloadavg()[0],
        "ours": {**_median(runs["ours"]), "runs": [r.__dict__ for r in runs["ours"]],
                 **check_ours(plan, reports["ours"])},
        "slo_generator": {**_median(runs["slo_generator"]),
                          "runs": [r.__dict__ for r in runs["slo_generator"]],
                          **check_theirs(plan, reports["slo_generator"])},
    }  # fmt: skip
    if before:
        figures["before"] = {
            "ref": args.before,
            **_median(runs["before"]),
            "runs": [r.__dict__ for r in runs["before"]],
            **check_ours(plan, reports["before"]),
        }
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def build(plan: Plan, tsdb: Path, folder: Path, say: Callable[[str], None]) -> tuple[int, float]:
    """Backfill the plan's data into ``tsdb`` (or reuse it if it holds this very plan).

    Returns the OpenMetrics size in bytes and the seconds the backfill took (when it was made).
    """
    key = json.dumps({k: getattr(plan, k) for k in ("scopes", "slos", "days", "step",
                      "onsales_per_scope", "seed", "at")})  # fmt: skip
    stamp = tsdb / "onsale-obs-plan.json"
    kept = json.loads(stamp.read_text()) if stamp.exists() else {}
    if kept.get("plan") == key:
        say(
            f"reusing the TSDB in {tsdb} (backfilled in {kept['backfill_s']:.0f} s); counting the truth"
        )
        write_openmetrics(plan, None)
        return int(kept["size"]), float(kept["backfill_s"])
    if tsdb.exists():
        shutil.rmtree(tsdb)
    data = folder / "data.om"
    say(f"writing {plan.scopes} scopes x {plan.days} d every {plan.step} s, "
        f"{len(plan.onsales)} on-sales")  # fmt: skip
    started = time.perf_counter()
    with data.open("w", buffering=1 << 20) as out:
        write_openmetrics(plan, out)
    size = data.stat().st_size
    say(f"{plan.samples:,} samples ({size / 1e9:.2f} GB) in "
        f"{time.perf_counter() - started:.0f} s; backfilling")  # fmt: skip
    started = time.perf_counter()
    backfill(data, tsdb, timeout=6 * 3600)
    data.unlink()
    took = time.perf_counter() - started
    stamp.write_text(json.dumps({"plan": key, "size": size, "backfill_s": took}))
    say(f"backfilled in {took:.0f} s")
    return size, took


def _median(runs: list[Run]) -> dict[str, float]:
    keys = ("wall_s", "cpu_s", "peak_rss_mb", "prometheus_cpu_s", "queries")
    return {k: statistics.median(getattr(r, k) for r in runs) for k in keys}


def _print(f: dict[str, Any]) -> None:
    ours, theirs = f["ours"], f["slo_generator"]
    print(
        f"{f['scopes']:,} scopes x {f['days']} days every {f['step_s']} s, {f['onsales']:,} on-sales, "
        f"{f['samples']:,} samples ({f['openmetrics_gb']:.1f} GB of OpenMetrics, backfilled in "
        f"{f['backfill_s']:.0f} s); {f['slos']} SLOs ({f['slo_generator_configs']} slo-generator "
        f"configs: one per mode); median of {f['rounds']} round(s); load average {f['load_average']:.2f}"
    )
    print("| tool | wall, s | CPU, s | peak RSS, MB | Prometheus CPU, s | queries |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("onsale-obs slo report --prometheus", ours), ("slo-generator 2.6.0", theirs)]
    if "before" in f:
        rows.append(
            (f"onsale-obs slo report --prometheus, before ({f['before']['ref']})", f["before"])
        )
    for name, r in rows:
        print(
            f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['prometheus_cpu_s']:.2f} | {r['queries']:.0f} |"
        )
    verdict = "met" if ours["wall_s"] < theirs["wall_s"] else "NOT met"
    print(
        f"\nwall time: {theirs['wall_s'] / ours['wall_s']:.2f}x slo-generator's (faster: {verdict})"
    )
    print(
        f"exact: on-sale counts per SLO max |ours - truth| = {ours['onsale_max_abs_diff']:g}, "
        f"per on-sale window {ours['window_max_abs_diff']:g} over {ours['window_rows']:,} rows "
        f"({ours['window_rows_planted']:,} planted); normal time {ours['normal_max_abs_diff']:g}. "
        f"slo-generator: on-sale {theirs['onsale_max_abs_diff']:g}, normal {theirs['normal_max_abs_diff']:g}"
    )
    if "before" in f:
        b = f["before"]
        print(
            f"before: on-sale {b['onsale_max_abs_diff']:g}, per window {b['window_max_abs_diff']:g} "
            f"over {b['window_rows']:,} rows, normal {b['normal_max_abs_diff']:g}"
        )


if __name__ == "__main__":
    main()
