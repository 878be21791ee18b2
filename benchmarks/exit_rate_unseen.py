"""Our exit-rate controller on on-sales unlike any it was tuned on, against baselines in the
same run.

The families (``benchmarks/exit_rate_families.py``) draw every on-sale from the ranges the
controller was tuned on. An outside harness draws its own. This benchmark takes the held-out
on-sales of one family (``steady`` by default) and moves one thing outside those ranges:

- ``objective-1.5x``: the latency objective 1.5x the service's p95 at rest (the families:
  4x, or 1.2-2x in ``tight-objective``);
- ``objective-under``: the objective at 0.8x the p95 at rest: the service is over it at any
  load (a slow dependency, or an objective set too tight); nothing can meet it, and the
  question is whether the room still drains;
- ``slow-browse``: browse times 5x longer (medians 100-600 s; the families: 20-120 s, and
  the lags the controller fits go to 300 s);
- ``wide-browse``: browse times' log sigma 0.6 wider (1.1-1.8; the families: 0.5-1.2);
- ``stray-errors``: 0.01% of checkouts fail at rest (1x burn at the default 99.99%
  objective; the families: 0.001%);
- ``cadence-30``: the controller, the scrape and the rule evaluation every 30 s;
- ``no-utilisation``: a deployment that exports no utilisation of the backend (the
  contract makes it optional): the controller has burn, latency and the queue alone;
- ``under-reading``: the exported utilisation reads 0.7 when the backend is full (it
  measures the service's CPU while a database behind it fills; the families: 1.0).

Each on-sale runs under ours, AIMD, the oracle (0.9 of the true capacity) and fixed rates at
0.8x and 0.9x, on the same users. The table gives the mean and worst drain ratio and share of
good one-minute SLO windows per variant. Nothing was tuned on these variants; read the
figures as how the controller generalises, with the oracle as the bar.

    .venv/bin/python benchmarks/exit_rate_unseen.py                       # 20 held-out seeds
    .venv/bin/python benchmarks/exit_rate_unseen.py --variants slow-browse --seeds 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from onsale_obs.exitrate._families import FAMILIES, HELD_OUT_SEEDS, objective_at
from onsale_obs.exitrate._family_run import _at
from onsale_obs.exitrate._run import run_scenario
from onsale_obs.exitrate._scenario import LogNormal, Scenario

CONTROLLERS = ("ours", "aimd", "oracle", "fixed-0.8x", "fixed-0.9x")


def _objective(factor: float) -> Callable[[Scenario], Scenario]:
    def apply(s: Scenario) -> Scenario:
        threshold = objective_at(s.backend.service_time, factor)
        return replace(s, slo=replace(s.slo, latency_threshold=threshold))

    return apply


def _browse(median: float, sigma: float) -> Callable[[Scenario], Scenario]:
    def apply(s: Scenario) -> Scenario:
        b = s.waiting_room.browse_time
        browse = LogNormal(b.median * median, b.sigma + sigma, b.min, max(b.max, 3600.0))
        return replace(s, waiting_room=replace(s.waiting_room, browse_time=browse))

    return apply


def _stray_errors(s: Scenario) -> Scenario:
    return replace(s, backend=replace(s.backend, base_error_rate=0.0001))


VARIANTS: dict[str, Callable[[Scenario], Scenario]] = {
    "objective-1.5x": _objective(1.5),
    "objective-under": _objective(0.8),
    "slow-browse": _browse(5.0, 0.0),
    "wide-browse": _browse(1.0, 0.6),
    "stray-errors": _stray_errors,
    "cadence-30": lambda s: _at(s, 30.0),
    "no-utilisation": lambda s: replace(s, telemetry=replace(s.telemetry, utilisation=False)),
    "under-reading": lambda s: replace(s, telemetry=replace(s.telemetry, utilisation_scale=0.7)),
}


def run_one(job: tuple[str, str, int]) -> tuple[str, int, dict[str, float], dict[str, float]]:
    """Every controller on ``family``'s on-sale of ``seed`` with ``variant`` applied."""
    variant, family, seed = job
    scenario = VARIANTS[variant](FAMILIES[family].draw(seed))
    report = run_scenario(scenario, list(CONTROLLERS), seed=seed)
    drain = {r.controller: r.drain_ratio for r in report.results}
    slo = {r.controller: r.slo_share for r in report.results}
    return variant, seed, drain, slo


def _stats(values: list[float]) -> tuple[str, str]:
    finite = [v for v in values if math.isfinite(v)]
    mean = f"{statistics.mean(finite):5.3f}" if finite else "  -  "
    never = len(values) - len(finite)
    worst = "never" if never else f"{max(values):5.3f}"
    return mean + (f" ({never} never)" if never else ""), worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=f"Variants: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument(
        "--family", default="steady", help="the single-room family whose on-sales are moved"
    )
    parser.add_argument("--seeds", type=int, default=20, help="held-out seeds (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        parser.error(f"--variants: unknown {', '.join(unknown)}; expected {', '.join(VARIANTS)}")
    if args.family not in FAMILIES:
        parser.error(f"--family: unknown {args.family}; expected one of {', '.join(FAMILIES)}")
    if not 1 <= args.seeds <= len(HELD_OUT_SEEDS):
        parser.error(f"--seeds: expected 1-{len(HELD_OUT_SEEDS)}, got {args.seeds}")
    seeds = list(HELD_OUT_SEEDS)[: args.seeds]
    jobs = [(v, args.family, s) for v in names for s in seeds]
    started = time.monotonic()
    rows: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {n: [] for n in names}
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for done, (variant, _, drain, slo) in enumerate(pool.map(run_one, jobs), 1):
            rows[variant].append((drain, slo))
            print(f"\r{done}/{len(jobs)} on-sales", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{'variant':16} {'controller':11} {'drain mean':>16} {'worst':>6} {'SLO min':>8}")
    for variant in names:
        for name in CONTROLLERS:
            mean, worst = _stats([d[name] for d, _ in rows[variant]])
            good = statistics.mean(s[name] for _, s in rows[variant])
            label = variant if name == "ours" else ""
            print(f"{label:16} {name:11} {mean:>16} {worst:>6} {good * 100:7.1f}%")
    print(
        f"\n{len(seeds)} held-out on-sales of {args.family} x {len(names)} variants x "
        f"{len(CONTROLLERS)} controllers in {time.monotonic() - started:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
