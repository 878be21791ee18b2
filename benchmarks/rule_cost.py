"""What the generated rules cost Prometheus per evaluation, before and after tiles.

Backfills a month of request counters into a real Prometheus (``promtool tsdb
create-blocks-from openmetrics``): ``--services`` services x ``--routes`` routes x 2 status
classes in normal time, plus ``--events`` past on-sales whose ``event``-labelled series stay
exported after the on-sale ends (as a client library keeps them), sampled every ``--step``
seconds. One availability SLO per service. Then, one after the other on copies of that TSDB:

- **before**: the rules of git ``--before`` (``increase(...[30d])`` and ``[3d]`` over the raw
  counters), rendered by that version's ``render_rules``;
- **after**: the rules of this checkout (windows over an hour summed from recorded tiles).
  The tiles the rules would have recorded over the past month are backfilled too, at the
  moments the rules look them up (``offset`` 1h..5h, 6h..18h, 1d..29d from the run), with
  the values the rules compute, so every lookup finds a sample as it would after a month.

For each, Prometheus evaluates every ``--eval-interval`` seconds; the figures are
Prometheus' own: the sum over rule groups of ``prometheus_rule_group_last_duration_seconds``
(median over ``--cycles`` evaluations), the CPU seconds of the Prometheus process per
evaluation, and the samples every rule reads, from the query API with ``stats=all``
(``totalQueryableSamples`` of each rule's expression at its group's last evaluation time).

    .venv/bin/python benchmarks/rule_cost.py                        # 100 x 5 x 3 events, 30 d
    .venv/bin/python benchmarks/rule_cost.py --services 20 --days 7  # a quick run

Target: at least 10x less evaluation time and samples read per evaluation.
Samples are sparser than a real scrape (``--step`` 15 min against 15-60 s) to keep the
backfill small; raw reads grow with the scrape rate and tile reads do not, so a real scrape
makes the ratio larger, not smaller.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import yaml

from onsale_obs.generate._rules import DAY, HOUR, render_rules
from onsale_obs.generate._yaml import dump
from onsale_obs.slo import SLOSpec, spec_from_data
from onsale_obs.testing_prometheus import PrometheusServer, backfill

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
TARGET = 10.0
ONSALE_HOURS = 2
#: (tile, lookup offsets in seconds) the after-rules read from the past
LOOKUPS: tuple[tuple[str, float, list[float]], ...] = (
    ("1h", HOUR, [k * HOUR for k in range(1, 6)]),
    ("6h", 6 * HOUR, [k * 6 * HOUR for k in range(1, 4)]),
    ("1d", DAY, [k * DAY for k in range(1, 30)]),
)


@dataclass
class Data:
    """The synthetic month: every series' samples on one grid."""

    services: int
    routes: int
    events: int
    days: int
    step: int
    end: int  # last sample, seconds
    onsales: list[int] = field(default_factory=list)  # on-sale start times

    @property
    def start(self) -> int:
        return self.end - self.days * 86400

    def grid(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def series(self) -> Iterator[tuple[int, int, str, str, str | None, list[tuple[int, int]]]]:
        """(service, route, code, mode, event, [(time, cumulative)]) for every counter."""
        times = list(self.grid())
        for s in range(self.services):
            for r in range(self.routes):
                for code in ("2xx", "5xx"):
                    total, samples = 0, []
                    for i, t in enumerate(times):
                        if i:
                            total += (
                                600 + (s * 7 + r * 3 + i) % 11
                                if code == "2xx"
                                else int((i + s + r) % 9 == 0)
                            )
                        samples.append((t, total))
                    yield s, r, code, "normal", None, samples
                    for k, begin in enumerate(self.onsales):
                        total, samples = 0, []
                        for i, t in enumerate(times):
                            if t < begin:
                                continue
                            # the counter appears at 0 (the first scrape after the
                            # on-sale opens), as increase() needs to count from there
                            if begin < t < begin + ONSALE_HOURS * 3600:
                                total += 5000 if code == "2xx" else (i + s) % 4
                            samples.append((t, total))
                        yield s, r, code, "onsale", f"e{k}", samples

    def labels(self, s: int, r: int, code: str, mode: str, event: str | None) -> str:
        extra = f',event="{event}"' if event else ""
        return (
            f'service="svc{s:03d}",route="/r{r}",method="POST",code="{code}",mode="{mode}"{extra}'
        )


def make_data(args: argparse.Namespace) -> Data:
    step = args.step
    end = (int(time.time()) // step) * step - step
    data = Data(args.services, args.routes, args.events, args.days, step, end)
    span = args.days * 86400
    data.onsales = [
        data.start + ((k + 1) * span // (args.events + 1)) // step * step
        for k in range(args.events)
    ]
    return data


def write_counters(data: Data, path: Path) -> int:
    """The counters as OpenMetrics; returns the number of samples."""
    count = 0
    with path.open("w") as out:
        out.write("# HELP onsale_requests Requests.\n# TYPE onsale_requests counter\n")
        for s, r, code, mode, event, samples in data.series():
            name = f"onsale_requests_total{{{data.labels(s, r, code, mode, event)}}}"
            out.write("".join(f"{name} {v} {t}\n" for t, v in samples))
            count += len(samples)
        out.write("# EOF\n")
    return count


def spec(data: Data) -> SLOSpec:
    return spec_from_data(
        {
            "slos": [
                {
                    "name": f"svc{s:03d}-availability",
                    "service": f"svc{s:03d}",
                    "sli": {"type": "availability"},
                    "objectives": {"normal": 99.9, "onsale": 99.99},
                }
                for s in range(data.services)
            ]
        }
    )


def write_tiles(data: Data, path: Path, run_start: float, minutes: int) -> int:
    """Past tiles at the moments the after-rules look them up, as the rules compute them."""
    # cumulative (events, bad) per (service, mode) at any grid time: sums of the counters
    cum: dict[tuple[int, str], dict[int, list[int]]] = {}
    for s, _r, code, mode, _event, samples in data.series():
        table = cum.setdefault((s, mode), {})
        for t, v in samples:
            row = table.setdefault(t, [0, 0])
            row[0] += v
            if code == "5xx":
                row[1] += v

    def at(table: dict[int, list[int]], t: float) -> list[int]:
        g = int((t - data.start) // data.step) * data.step + data.start
        g = min(g, data.end)
        return table.get(g, [0, 0]) if g >= data.start else [0, 0]

    count = 0
    with path.open("w") as out:
        for tile, size, offsets in LOOKUPS:
            for record, index in (("sli_events", 0), ("sli_bad", 1)):
                name = f"slo:{record}:increase{tile}"
                for (s, mode), table in sorted(cum.items()):
                    labels = f'slo="svc{s:03d}-availability",service="svc{s:03d}",mode="{mode}"'
                    lines = []
                    for offset in sorted(offsets, reverse=True):
                        first = int(run_start - offset) - 300
                        for t in range(first, first + 300 + minutes * 60, 30):
                            value = at(table, t)[index] - at(table, t - size)[index]
                            lines.append(f"{name}{{{labels}}} {value} {t}\n")
                    out.write("".join(lines))
                    count += len(lines)
        out.write("# EOF\n")
    return count


def old_rules(ref: str, spec_path: Path, scratch: Path) -> str:
    """The rule file as the project at ``ref`` renders it (its render_rules, no promtool)."""
    package = scratch / "before"
    package.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "onsale_obs"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from onsale_obs.generate._rules import render_rules\n"
        "from onsale_obs.generate._yaml import dump\n"
        "from onsale_obs.slo import load_spec\n"
        "print(dump(render_rules(load_spec(sys.argv[2]))), end='')\n"
    )
    done = subprocess.run(
        [str(PYTHON), "-c", code, str(package), str(spec_path)],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus' own /metrics, parsed (name -> [(labels, value)])."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(m: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in m.get(name, []))


@dataclass
class Cost:
    what: str
    rules: int
    groups: int
    eval_s_median: float
    eval_s_all: list[float]
    cpu_s_per_eval: float
    samples_read: int
    failures: float
    events_30d: float
    bad_30d: float


def measure(
    what: str, rules_text: str, tsdb: Path, interval: int, cycles: int, scratch: Path
) -> Cost:
    rules = scratch / f"{what}.rules.yml"
    rules.write_text(rules_text)
    data = yaml.safe_load(rules_text)
    config = f"global:\n  evaluation_interval: {interval}s\nrule_files:\n  - {rules}\n"
    server = PrometheusServer(tsdb_path=tsdb, config=config, extra_args=("--query.timeout=5m",))
    with server as prom:
        groups = len(data["groups"])
        # let every group evaluate twice (the first evaluation also warms the caches)
        deadline = time.monotonic() + 20 * interval + 600
        while True:
            m = metrics(prom.url)
            done = [v for _, v in m.get("prometheus_rule_group_iterations_total", [])]
            if len(done) == groups and min(done) >= 2:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: rule groups did not evaluate\n{prom.log_tail()}")
            time.sleep(2)
        durations: list[float] = []
        cpu0, seen = total(m, "process_cpu_seconds_total"), None
        iterations0 = total(m, "prometheus_rule_group_iterations_total")
        while len(durations) < cycles:
            time.sleep(interval)
            m = metrics(prom.url)
            stamp = total(m, "prometheus_rule_group_last_evaluation_timestamp_seconds")
            if stamp != seen:
                seen = stamp
                durations.append(total(m, "prometheus_rule_group_last_duration_seconds"))
        evaluations = (total(m, "prometheus_rule_group_iterations_total") - iterations0) / groups
        cpu = (total(m, "process_cpu_seconds_total") - cpu0) / max(evaluations, 1)
        failures = total(m, "prometheus_rule_evaluation_failures_total")
        last = {
            labels["rule_group"].rsplit(";", 1)[1]: value
            for labels, value in m["prometheus_rule_group_last_evaluation_timestamp_seconds"]
        }
        read = 0
        with httpx.Client(base_url=prom.url, timeout=300) as client:
            for group in data["groups"]:
                for rule in group["rules"]:
                    answer = client.post(
                        "/api/v1/query",
                        data={"query": rule["expr"], "time": last[group["name"]], "stats": "all"},
                    ).json()
                    if answer.get("status") != "success":
                        raise RuntimeError(f"{what}: {rule['expr'][:80]}: {answer}")
                    read += answer["data"]["stats"]["samples"]["totalQueryableSamples"]
            t = max(last.values())
            sums = []
            for record in ("slo:sli_events:increase30d", "slo:sli_bad:increase30d"):
                result = client.get(
                    "/api/v1/query", params={"query": f"sum({record})", "time": t}
                ).json()["data"]["result"]
                sums.append(float(result[0]["value"][1]) if result else float("nan"))
    rule_count = sum(len(g["rules"]) for g in data["groups"])
    return Cost(
        what, rule_count, groups, round(statistics.median(durations), 4),
        [round(d, 4) for d in durations], round(cpu, 4), read, failures, sums[0], sums[1],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--routes", type=int, default=5)
    parser.add_argument("--events", type=int, default=3, help="past on-sales in the month")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step", type=int, default=900, help="seconds between samples")
    parser.add_argument("--eval-interval", type=int, default=60)
    parser.add_argument("--cycles", type=int, default=3, help="evaluations measured per run")
    parser.add_argument("--before", default="7049bb4", help="git ref of the rules before")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="rule-cost-") as tmp:
        scratch = Path(tmp)
        data = make_data(args)
        counters = scratch / "counters.om"
        say(
            f"writing {args.services}x{args.routes}x2 series + {args.events} on-sales, {args.days} d"
        )
        samples = write_counters(data, counters)
        say(f"{samples:,} samples ({counters.stat().st_size / 1e6:.0f} MB); backfilling")
        base = scratch / "tsdb-before"
        backfill(counters, base, timeout=3600)
        counters.unlink()
        shutil.copytree(base, scratch / "tsdb-after")
        spec_path = scratch / "slo.yaml"
        the_spec = spec(data)
        spec_path.write_text(
            yaml.safe_dump(
                {
                    "slos": [
                        {
                            "name": s.name,
                            "service": s.service,
                            "sli": {"type": "availability"},
                            "objectives": {"normal": 99.9, "onsale": 99.99},
                        }
                        for s in the_spec.slos
                    ]
                }
            )
        )
        say("before: measuring")
        before = measure(
            "before", old_rules(args.before, spec_path, scratch), base, args.eval_interval,
            args.cycles, scratch,
        )  # fmt: skip
        say(f"before: {before}")
        minutes = 20 + (args.cycles + 3) * args.eval_interval // 60
        tiles = scratch / "tiles.om"
        run_start = time.time() + 60
        count = write_tiles(data, tiles, run_start, minutes)
        say(f"after: backfilling {count:,} tile samples")
        backfill(tiles, scratch / "tsdb-after", timeout=3600)
        if time.time() > run_start + 300:
            raise RuntimeError("the tile backfill took too long: its samples miss the run")
        say("after: measuring")
        after = measure(
            "after", dump(render_rules(the_spec)), scratch / "tsdb-after", args.eval_interval,
            args.cycles, scratch,
        )  # fmt: skip
        say(f"after: {after}")
    print(f"{args.services} services x {args.routes} routes x 2 codes, {args.events} past on-sales, "
          f"{args.days} days every {args.step} s ({samples:,} samples), 1 SLO per service, "
          f"evaluation every {args.eval_interval} s")  # fmt: skip
    print("| rules | rules (groups) | evaluation, s (median, sum of groups) | Prometheus CPU s / evaluation | samples read / evaluation | failures |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for c in (before, after):
        print(f"| {c.what} | {c.rules} ({c.groups}) | {c.eval_s_median:.4f} | {c.cpu_s_per_eval:.4f} | {c.samples_read:,} | {c.failures:.0f} |")  # fmt: skip
    speed = before.eval_s_median / after.eval_s_median
    reads = before.samples_read / max(after.samples_read, 1)
    print(f"\nevaluation time {speed:.1f}x less, samples read {reads:.1f}x less "
          f"(target {TARGET:.0f}x: {'met' if min(speed, reads) >= TARGET else 'NOT met'})")  # fmt: skip
    print(f"30-day totals (all SLOs and modes): events {before.events_30d:,.0f} before, "
          f"{after.events_30d:,.0f} after; bad {before.bad_30d:,.0f} before, {after.bad_30d:,.0f} after")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"before": asdict(before), "after": asdict(after)}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
