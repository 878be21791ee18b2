"""How long ``rules render`` and ``dashboards render`` take for 4, 50 and 200 SLOs.

Writes a spec of N SLOs to a temporary folder (half availability, half latency, two per
service, four objective pairs, one SLO in five with its own on-sale guard), then times, in
the same run and on the same output:

- ``rules render``: the rules, their promtool tests, ``promtool check rules`` and
  ``promtool test rules`` (what the command runs before it writes anything);
- ``dashboards render``: the overview, one dashboard per service and the provider file;
- baseline ``promtool check rules``: promtool only parsing and checking the same rule file,
  the least any render that validates its output must spend.

Each command runs in a fresh process, as a user runs it. Wall time is noisy on 2 shared
cores, so the CPU time of the process and its children (promtool included) is shown beside
it. With ``--before REF`` the same N are rendered by the project at git ``REF`` too (exported
with ``git archive`` to a temporary folder, run with ``--timeout``), for a before/after.

    .venv/bin/python benchmarks/render_scale.py                    # N = 4, 50, 200
    .venv/bin/python benchmarks/render_scale.py --slos 4,10 --before 7049bb4 --timeout 200
    .venv/bin/python benchmarks/render_scale.py --json out.json

Target: 200 SLOs render (rules with their tests run, and dashboards) in under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
TARGET_S = 30.0
OBJECTIVES = [(99.9, 99.99), (99.5, 99.9), (99.0, 99.0), (99.9, 99.95)]


def spec(n: int) -> dict[str, object]:
    """N SLOs over N/2 services: availability and latency, mixed objectives and guards."""
    slos: list[dict[str, object]] = []
    for i in range(n):
        service = f"svc{i // 2:03d}"
        normal, onsale = OBJECTIVES[(i // 2) % len(OBJECTIVES)]
        if i % 2 == 0:
            slo: dict[str, object] = {
                "name": f"{service}-availability",
                "service": service,
                "sli": {
                    "type": "availability",
                    "routes": [f"/r{i % 5}/{{id}}"],
                    "methods": ["POST"],
                },
                "objectives": {"normal": normal, "onsale": onsale},
            }
        else:
            slo = {
                "name": f"{service}-latency",
                "service": service,
                "sli": {
                    "type": "latency",
                    "routes": [f"/r{i % 5}"],
                    "threshold": {"normal": "250ms", "onsale": "1s"},
                },
                "objectives": {"normal": 99.0, "onsale": 99.0},
            }
        if i % 5 == 0:
            slo["alerting"] = {"onsale": {"fast": {"min_bad_events": 10}}}
        slos.append(slo)
    return {"slos": slos}


@dataclass
class Timing:
    what: str
    slos: int
    wall_s: float
    cpu_s: float
    ok: bool
    detail: str = ""


def timed(
    what: str,
    n: int,
    args: list[str],
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
        )
        ok, detail = done.returncode == 0, (done.stderr or done.stdout)[-300:].strip()
    except subprocess.TimeoutExpired:
        ok, detail = False, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(what, n, round(wall, 2), round(cpu, 2), ok, "" if ok else detail)


def export(ref: str, into: Path) -> Path:
    """The project's package at git ``ref``, unpacked into ``into`` (nothing in the tree changes)."""
    archive = subprocess.run(
        ["git", "archive", ref, "onsale_obs"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(
    sizes: list[int], before: str | None, before_sizes: set[int], timeout: float
) -> list[Timing]:
    out: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="render-scale-") as tmp:
        folder = Path(tmp)
        old = export(before, folder / "before") if before else None
        for n in sizes:
            path = folder / f"slo-{n}.yaml"
            path.write_text(yaml.safe_dump(spec(n), sort_keys=False))
            rules, boards = folder / f"rules-{n}", folder / f"boards-{n}"
            # run from the temporary folder: with -c, Python puts the working folder first
            # on sys.path, which would hide the --before package behind this checkout
            cli = [str(PYTHON), "-c", "from onsale_obs.cli import app; app()"]
            render = [*cli, "rules", "render", "--spec", str(path)]
            timings = [
                timed("rules render", n, [*render, "--out", str(rules)], timeout, cwd=folder),
                timed(
                    "dashboards render",
                    n,
                    [*cli, "dashboards", "render", "--spec", str(path), "--out", str(boards)],
                    timeout,
                    cwd=folder,
                ),
            ]
            rule_file = rules / "onsale-slo.rules.yml"
            timings.append(
                timed(
                    "baseline: promtool check rules",
                    n,
                    ["promtool", "check", "rules", str(rule_file)],
                    timeout,
                    cwd=folder,
                )
            )
            if rule_file.exists():
                timings[0].detail = (
                    f"{rule_file.stat().st_size / 1e6:.1f} MB rules, "
                    f"{(rules / 'onsale-slo.rules.test.yml').stat().st_size / 1e6:.2f} MB tests"
                )
            if old is not None and n in before_sizes:
                env = {**os.environ, "PYTHONPATH": str(old)}
                timings.append(
                    timed(
                        f"before ({before}): rules render",
                        n,
                        [*render, "--out", str(folder / f"old-{n}")],
                        timeout,
                        env,
                        cwd=folder,
                    )
                )
            for t in timings:
                print(
                    f"  {t.what:<38} N={n:<4} wall {t.wall_s:7.2f} s  cpu {t.cpu_s:7.2f} s  {'ok' if t.ok else 'FAILED'} {t.detail}",
                    file=sys.stderr,
                )
            out += timings
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", default="4,50,200", help="comma-separated SLO counts")
    parser.add_argument(
        "--before", metavar="REF", help="also render with the project at this git ref"
    )
    parser.add_argument(
        "--before-slos",
        default="4,10,25",
        help="the SLO counts rendered with --before too (the old render takes minutes at 25)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    parser.add_argument("--json", type=Path, help="write the timings here")
    args = parser.parse_args()
    before_sizes = {int(s) for s in args.before_slos.split(",")}
    sizes = sorted(
        {int(s) for s in args.slos.split(",")} | (before_sizes if args.before else set())
    )
    timings = run(sizes, args.before, before_sizes, args.timeout)
    print("| command | SLOs | wall s | CPU s (with promtool) | ok |")
    print("|---|---:|---:|---:|---|")
    for t in timings:
        print(
            f"| {t.what} | {t.slos} | {t.wall_s:.2f} | {t.cpu_s:.2f} | {'yes' if t.ok else 'no: ' + t.detail} |"
        )
    for n in sizes:
        both = [
            t for t in timings if t.slos == n and t.what in ("rules render", "dashboards render")
        ]
        total = sum(t.wall_s for t in both)
        cpu = sum(t.cpu_s for t in both)
        verdict = "met" if total < TARGET_S and all(t.ok for t in both) else "NOT met"
        print(
            f"\nN={n}: rules + dashboards {total:.1f} s wall ({cpu:.1f} s CPU); under {TARGET_S:.0f} s: {verdict}"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(t) for t in timings], indent=2) + "\n")


if __name__ == "__main__":
    main()
