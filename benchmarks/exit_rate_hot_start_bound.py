"""How good can a hot start be without a capacity prior? A sweep of informed controllers.

The ``hot-start`` family opens the room at 0.2-2x the backend's true capacity. The oracle
keeps every minute good because it knows the capacity before the first user is admitted;
ours has to find out. This script measures what *when* the capacity is known is worth: it
runs controllers that know more than any real one can:

- until ``know`` seconds after the opening they admit the operator's start rate (nothing
  can tell them otherwise: no user admitted has reached checkout and been scraped yet);
- at ``know`` they learn the true capacity exactly (no estimate, no lag, no noise);
- if the start was over ``post`` x the capacity they then admit nobody for ``stop``
  seconds, letting the users already browsing drain, and ``post`` x the true capacity
  after that.

Every (know, stop, post) on a grid runs on the family's held-out seeds, beside ours on the
same seeds. It prints each point's mean drain ratio and mean and worst share of good
one-minute SLO windows, the best mean share per ``know`` among points that drain within
the target on average, and the latest ``know`` whose best share ours still reaches. A real
controller can learn of an overload no earlier than a browse time plus a scrape and a
rule evaluation after the opening (the first users must reach checkout): 1-3 minutes in
this family. (A sweep, not a proof: it brackets the choices that matter, when the capacity
is known, how hard to stop and how close to run after.)

    .venv/bin/python benchmarks/exit_rate_hot_start_bound.py            # 20 seeds, ~3 min
    .venv/bin/python benchmarks/exit_rate_hot_start_bound.py --seeds 5 --jobs 1

Exit code 0 (a measurement, not a verdict), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from onsale_obs.exitrate import (
    TARGET_DRAIN_RATIO,
    Recommendation,
    Scenario,
    Signals,
    evaluate,
    physical_limit,
    simulate,
)
from onsale_obs.exitrate._families import HELD_OUT_SEEDS, find_family
from onsale_obs.exitrate._run import OURS, make_controller

KNOW_S = (30.0, 60.0, 120.0, 180.0, 240.0)
STOP_S = (0.0, 60.0, 120.0, 300.0)
POST = (0.8, 0.9)
FAMILY = "hot-start"


class Informed:
    """Admits the start rate until ``know`` seconds, then knows the true capacity."""

    def __init__(
        self,
        capacity_rate: Callable[[float], float],
        know: float,
        stop: float,
        post: float,
    ) -> None:
        self.capacity_rate = capacity_rate
        self.know = know
        self.stop = stop
        self.post = post
        self._opened: float | None = None
        self._start: float | None = None

    def recommend(self, signals: Signals) -> Recommendation:
        """The rate for this tick, from the clock and the true capacity (not the signals)."""
        now = signals.time
        if self._opened is None:
            self._opened, self._start = now, signals.current_rate
        assert self._start is not None
        since = now - self._opened
        target = self.post * self.capacity_rate(now)
        if since < self.know:
            rate, reason = self._start, "the start rate: nothing known yet"
        elif since < self.know + self.stop and self._start > target:
            rate, reason = 0.0, "draining the users already admitted"
        else:
            rate, reason = target, "a share of the true capacity"
        return Recommendation(rate, reason, "hold", signals.current_rate, now, signals)


def _point(args: tuple[int, float, float, float]) -> tuple[float, float, float, float, float]:
    """One seed under one informed controller, or ours (``know`` < 0)."""
    seed, know, stop, post = args
    scenario = find_family(FAMILY).draw(seed)
    assert isinstance(scenario, Scenario)  # a single room, not mixed-events
    controller = (
        make_controller(OURS, scenario)
        if know < 0
        else Informed(scenario.capacity_rate, know, stop, post)
    )
    result = evaluate(simulate(scenario, controller, name="x"), physical_limit(scenario))
    return know, stop, post, result.drain_ratio, result.slo_share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="held-out seeds (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    if not 1 <= args.seeds <= len(HELD_OUT_SEEDS):
        parser.error(f"--seeds: expected 1 to {len(HELD_OUT_SEEDS)}, got {args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs: expected at least 1, got {args.jobs}")
    seeds = list(HELD_OUT_SEEDS)[: args.seeds]
    grid = [(-1.0, 0.0, 0.0), *itertools.product(KNOW_S, STOP_S, POST)]
    work = [(seed, *point) for point in grid for seed in seeds]
    started = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_point, work, chunksize=4))
    print(f"{FAMILY}: held-out seeds {seeds[0]}-{seeds[-1]}, ours and {len(grid) - 1} points")
    print(f"{'know':>6} {'stop':>6} {'post':>5} {'drain mean':>11} {'SLO mean':>9} {'SLO min':>8}")
    rows = []
    for know, stop, post in grid:
        mine = [r for r in results if r[:3] == (know, stop, post)]
        drain = statistics.fmean(r[3] for r in mine)
        slo = statistics.fmean(r[4] for r in mine)
        worst = min(r[4] for r in mine)
        rows.append((know, stop, post, drain, slo))
        head = f"{'ours':>20}" if know < 0 else f"{know:5.0f}s {stop:5.0f}s {post:5.2f}"
        print(f"{head} {drain:11.3f} {slo:9.1%} {worst:8.1%}")
    print(f"\n{len(work)} on-sales in {time.monotonic() - started:.0f} s")
    ours = rows[0]
    fast = [r for r in rows[1:] if r[3] <= TARGET_DRAIN_RATIO]
    print(
        f"best mean SLO share with mean drain <= {TARGET_DRAIN_RATIO}, by when the capacity is known:"
    )
    reached = None
    for know in KNOW_S:
        at = [r for r in fast if r[0] == know]
        if not at:
            print(f"  at {know:.0f}s: no point drains within the target")
            continue
        best = max(at, key=lambda r: r[4])
        print(f"  at {know:.0f}s: {best[4]:.1%} (stop {best[1]:.0f}s, post {best[2]})")
        if ours[4] >= best[4] and reached is None:
            reached = know
    print(f"ours: drain {ours[3]:.3f}, {ours[4]:.1%} of minutes", end="")
    if reached is None:
        print(": under every point of the sweep that drains within the target")
    else:
        print(f": as much as a controller that knows the exact capacity {reached:.0f}s in")
    return 0


if __name__ == "__main__":
    sys.exit(main())
