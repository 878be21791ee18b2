"""Drain time with a warm start from a past on-sale versus a cold start, on held-out seeds.

For each family of ``onsale_obs/exitrate/_families.py`` and held-out seed: the *past* on-sale
is the same scenario run by our controller (cold) under another simulation seed (other users,
browse times and errors: the same backend, another night); what it shows becomes a one-on-sale
profile (requests per admitted user, the highest checkout rate in a minute whose SLO held, the
highest exit rate held with the SLO met); ``plan_next`` turns it into the warm start
(``initial_rate`` and ``capacity_prior``) for the backend as it is (``replicas`` fixed: the
simulation cannot scale it). The *next* on-sale then runs twice on the seed's own users: cold
(the operator's start rate the family draws, 0.3-1x the capacity; 0.2-2x in hot-start) and
warm. Only our controller runs; the numbers are its drain ratio (drain time / physical limit)
and share of good SLO minutes.

    .venv/bin/python benchmarks/plan_warm_start.py                 # 10 held-out seeds per family
    .venv/bin/python benchmarks/plan_warm_start.py --seeds 20 --json warm.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from onsale_obs.exitrate._families import FAMILIES, HELD_OUT_SEEDS, family
from onsale_obs.exitrate._report import ControllerResult
from onsale_obs.exitrate._run import OURS, run_scenario
from onsale_obs.exitrate._scenario import Scenario
from onsale_obs.plan import Break, OnSaleProfile, Profile, ServiceProfile, plan_next

#: the past on-sale's simulation seed is the next one's plus this (never a seed reported)
PAST_OFFSET = 500_000


def past_profile(scenario: Scenario, past: ControllerResult) -> Profile:
    """What ``plan learn`` would keep of the past run: one service, the backend as 1 replica."""
    good = [m for m in past.minutes if m.good]
    bad = [m for m in past.minutes if m.good is False]
    good_rps = max((m.requests / 60 for m in good), default=0.0)
    first_bad = min(bad, key=lambda m: m.start) if bad else None
    ticks = past.timeline
    good_starts = {m.start for m in good}
    held = [float(t["rate"]) for t in ticks if int(t["t"] // 60 * 60) in good_starts]
    checkout = ServiceProfile(
        requests=past.requests,
        peak_rps=max((m.requests / 60 for m in past.minutes), default=0.0),
        sustained_rps=statistics.fmean(m.requests / 60 for m in past.minutes)
        if past.minutes
        else 0.0,
        replicas=1,
        requests_per_user=past.requests / past.admitted,
        routes={},
        good_rps=good_rps,
        good_rps_per_replica=good_rps,
        broke=None
        if first_bad is None
        else Break("errors", first_bad.start, first_bad.requests / 60, first_bad.requests / 60),
    )
    onsale = OnSaleProfile(
        scope="event:past",
        start=0.0,
        end=past.drain_time or scenario.horizon,
        services={"checkout": checkout},
        admitted_users=past.admitted,
        max_good_exit_rate=max(held, default=None),
    )
    return Profile((onsale,), learned_at=scenario.horizon)


def run(job: tuple[str, int]) -> dict[str, Any]:
    """One family and seed: past run, plan, cold and warm runs (picklable)."""
    name, seed = job
    scenario = family(name).draw(seed)
    past = run_scenario(scenario, [OURS], seed=seed + PAST_OFFSET).results[0]
    plan = plan_next(
        past_profile(scenario, past),
        demand=scenario.waiting_room.users,
        start=0.0,
        replicas={"checkout": 1},
    )
    warm = dataclasses.replace(
        scenario,
        waiting_room=dataclasses.replace(
            scenario.waiting_room, initial_rate=round(plan.starting_rate, 1)
        ),
        controller={**scenario.controller, "capacity_prior": round(plan.capacity_prior, 1)},
    )
    cold_result = run_scenario(scenario, [OURS], seed=seed).results[0]
    warm_result = run_scenario(warm, [OURS], seed=seed).results[0]
    capacity = scenario.capacity_rate(0.0)
    return {
        "family": name,
        "seed": seed,
        "capacity_rate": round(capacity, 1),
        "cold_start_rate": scenario.waiting_room.initial_rate,
        "warm_start_rate": round(plan.starting_rate, 1),
        "capacity_prior": round(plan.capacity_prior, 1),
        "cold": {"drain_ratio": cold_result.drain_ratio, "slo_share": cold_result.slo_share},
        "warm": {"drain_ratio": warm_result.drain_ratio, "slo_share": warm_result.slo_share},
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.inf


def main(argv: list[str] | None = None) -> int:
    """Print the table; 0 always (a measurement, not a gate), 2 for bad arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated names")
    parser.add_argument("--seeds", type=int, default=10, help="held-out seeds per family")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write every seed's results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; expected {', '.join(FAMILIES)}")
    if not 1 <= args.seeds <= 1000 or not 1 <= args.jobs <= 16:
        parser.error("--seeds 1-1000, --jobs 1-16")
    seeds = list(HELD_OUT_SEEDS)[: args.seeds]
    started = time.perf_counter()
    jobs = [(n, s) for n in names for s in seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, jobs, chunksize=1))
    print(f"# held-out seeds {seeds[0]}-{seeds[-1]}; our controller, cold vs warm start")
    print(
        f"{'family':15} {'start/capacity cold':>20} {'warm':>6} "
        f"{'drain cold':>11} {'warm':>6} {'worst cold':>11} {'warm':>6} "
        f"{'SLO min cold':>13} {'warm':>7}"
    )
    for n in names:
        mine = [r for r in rows if r["family"] == n]
        cs = _mean([r["cold_start_rate"] / r["capacity_rate"] for r in mine])
        ws = _mean([r["warm_start_rate"] / r["capacity_rate"] for r in mine])
        cd = [r["cold"]["drain_ratio"] for r in mine]
        wd = [r["warm"]["drain_ratio"] for r in mine]
        co = _mean([r["cold"]["slo_share"] for r in mine])
        wo = _mean([r["warm"]["slo_share"] for r in mine])
        print(
            f"{n:15} {cs:20.2f} {ws:6.2f} {_mean(cd):11.3f} {_mean(wd):6.3f} "
            f"{max(cd):11.3f} {max(wd):6.3f} {co * 100:12.1f}% {wo * 100:6.1f}%"
        )
    print(f"\n{len(jobs)} on-sales x 3 runs in {time.perf_counter() - started:.0f}s")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
