"""What must a controller that learns the capacity late leave? A sweep of informed controllers.

The oracle of ``exit_rate_families.py`` knows the backend's true capacity at every moment,
before the first user is admitted and at the very second it changes. No controller that
reads the backend can: a rate shows in the readings only once the users it admitted have
browsed to checkout and a scrape and a rule evaluation have passed (1-3 minutes in these
families). This script measures what that delay costs by itself, family by family, with
controllers that know more than any real one can:

- until ``delay`` seconds after the opening they admit the operator's start rate;
- from then on they know the true capacity *exactly* as it was ``delay`` seconds ago (no
  estimate, no noise) and admit ``post`` x it;
- when the rate they admitted turns out to be over the capacity known (a start over it, or
  a fall they now see) they admit nobody for ``stop`` seconds, letting the users already
  browsing drain, then ``post`` x the capacity known.

Every (delay, stop, post) on a grid runs on each family's held-out seeds, beside ours and the
oracle (no delay, 0.9 of the capacity) on the same seeds. For each family it prints ours and
the oracle, and per delay: the best mean share of good one-minute SLO windows among the
points that drain within the family's target on average; the lowest worst drain among the
points that keep the SLO target on average (99%, or the oracle's share under it); and
whether any point meets both. Where even the informed controllers miss a target at a
realistic delay, no controller that has to read the backend meets it. (A sweep, not a proof: it brackets the choices that matter, when the capacity is
known, how hard to stop and how close to run after. It ignores software faults and signal
outages: capacity is all it knows.)

    .venv/bin/python benchmarks/exit_rate_late_bound.py                     # every family, ~22 min
    .venv/bin/python benchmarks/exit_rate_late_bound.py --families hot-start --seeds 5

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
    OracleRate,
    Recommendation,
    Scenario,
    Signals,
    evaluate,
    physical_limit,
    simulate,
)
from onsale_obs.exitrate._baselines import _direction
from onsale_obs.exitrate._families import FAMILIES, HELD_OUT_SEEDS
from onsale_obs.exitrate._run import ORACLE_UTILISATION, OURS, make_controller
from onsale_obs.exitrate._signals import RateController

DELAY_S = (60.0, 120.0, 180.0, 240.0)
STOP_S = (0.0, 120.0)
POST = (0.8, 0.9, 0.95)
SLO_TARGET = 0.99
OURS_POINT = (-1.0, 0.0, 0.0)
#: no delay, no stop, 0.9 of the capacity: the oracle of ``exit_rate_families.py``
ORACLE_POINT = (0.0, 0.0, ORACLE_UTILISATION)


class Informed:
    """Admits the start rate until ``delay`` seconds, then knows the true capacity as it was
    ``delay`` seconds before."""

    def __init__(
        self, capacity_rate: Callable[[float], float], delay: float, stop: float, post: float
    ) -> None:
        self.capacity_rate = capacity_rate
        self.delay = delay
        self.stop = stop
        self.post = post
        self._opened: float | None = None
        self._start = 0.0
        self._stop_until: float | None = None

    def recommend(self, signals: Signals) -> Recommendation:
        """The rate for this tick, from the clock and the true capacity (not the signals)."""
        now = signals.time
        if self._opened is None:
            self._opened, self._start = now, signals.current_rate
        if now - self._opened < self.delay:
            rate, reason = self._start, "the start rate: nothing known yet"
        else:
            known = self.capacity_rate(now - self.delay)
            admitted = signals.current_rate
            if self._stop_until is None and admitted > known and self.stop > 0:
                self._stop_until = now + self.stop  # an overload just became known
            if self._stop_until is not None and now < self._stop_until:
                rate, reason = 0.0, "draining the users already admitted"
            else:
                self._stop_until = None
                rate, reason = self.post * known, "a share of the capacity known"
        base = signals.current_rate
        return Recommendation(rate, reason, _direction(base, rate), base, now, signals)


_Point = tuple[str, float, float, float]  # family, delay (< 0: ours), stop, post


def _run(args: tuple[str, int, float, float, float]) -> tuple[_Point, float, float]:
    """One seed of one family under one informed controller, the oracle (``delay`` 0) or
    ours (``delay`` < 0)."""
    family, seed, delay, stop, post = args
    scenario = FAMILIES[family].draw(seed)
    assert isinstance(scenario, Scenario)
    controller: RateController
    if delay < 0:
        controller = make_controller(OURS, scenario)
    elif delay == 0:
        controller = OracleRate(scenario.capacity_rate, post)
    else:
        controller = Informed(scenario.capacity_rate, delay, stop, post)
    result = evaluate(simulate(scenario, controller, name="x"), physical_limit(scenario))
    return (family, delay, stop, post), result.drain_ratio, result.slo_share


def _summary(runs: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """Mean drain, mean SLO share, worst drain, worst SLO share."""
    drains = [d for d, _ in runs]
    shares = [s for _, s in runs]
    return statistics.fmean(drains), statistics.fmean(shares), max(drains), min(shares)


def _report(family: str, by_point: dict[_Point, list[tuple[float, float]]]) -> None:
    target = FAMILIES[family].drain_target
    ours = _summary(by_point[(family, *OURS_POINT)])
    oracle = _summary(by_point[(family, *ORACLE_POINT)])
    bar = min(SLO_TARGET, oracle[1])  # the SLO target: 99%, or the oracle's share under it
    print(f"\n{family} (drain target {target}, SLO minutes target {bar:.1%}):")
    for name, s in (("ours", ours), ("oracle", oracle)):
        print(
            f"  {name:>6}: drain {s[0]:.3f} mean / {s[2]:.3f} worst, "
            f"SLO minutes {s[1]:.1%} mean / {s[3]:.1%} worst"
        )
    reached = None
    for delay in DELAY_S:
        points = {p: _summary(r) for p, r in by_point.items() if p[0] == family and p[1] == delay}
        fast = [(p, s) for p, s in points.items() if s[0] <= target]
        line = f"  {delay:3.0f}s late: "
        if fast:
            p, s = max(fast, key=lambda item: item[1][1])
            line += f"best SLO {s[1]:.1%} within the drain target (drain {s[0]:.3f}; {_name(p)})"
            if reached is None and round(ours[1], 4) >= round(s[1], 4):
                reached = delay
        else:
            line += "no point drains within the target on average"
        kept = [(p, s) for p, s in points.items() if s[1] >= bar]
        if kept:
            p, s = min(kept, key=lambda item: item[1][2])
            line += f"; lowest worst drain at the SLO target {s[2]:.3f} ({_name(p)})"
        else:
            line += "; no point reaches the SLO target"
        both = [s for _, s in points.items() if s[0] <= target and s[1] >= bar]
        line += "; both targets: " + ("met by some point" if both else "met by none")
        print(line)
    if reached is None:
        print(f"  ours ({ours[1]:.2%}) keeps fewer good minutes than each delay's best above")
    else:
        print(
            f"  ours keeps as many good minutes as the best that knows {reached:.0f}s late "
            f"(good minutes only: ours drains in {ours[0]:.3f} T* on average)"
        )


def _name(point: _Point) -> str:
    return f"stop {point[2]:.0f}s, post {point[3]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="comma-separated single-room families (default: all of them)",
    )
    parser.add_argument("--seeds", type=int, default=20, help="held-out seeds (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    families = list(dict.fromkeys(f.strip() for f in args.families.split(",") if f.strip()))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        parser.error(
            f"--families: unknown {', '.join(unknown) or '(none given)'}; "
            f"expected some of {', '.join(FAMILIES)}"
        )
    if not 1 <= args.seeds <= len(HELD_OUT_SEEDS):
        parser.error(f"--seeds: expected 1 to {len(HELD_OUT_SEEDS)}, got {args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs: expected at least 1, got {args.jobs}")
    seeds = list(HELD_OUT_SEEDS)[: args.seeds]
    grid = [OURS_POINT, ORACLE_POINT, *itertools.product(DELAY_S, STOP_S, POST)]
    work = [(f, seed, *point) for f in families for point in grid for seed in seeds]
    print(
        f"held-out seeds {seeds[0]}-{seeds[-1]}, {len(families)} families, ours and "
        f"the oracle and {len(grid) - 2} informed controllers each: {len(work)} on-sales",
        flush=True,
    )
    started = time.monotonic()
    by_point: dict[_Point, list[tuple[float, float]]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, (point, drain, share) in enumerate(pool.map(_run, work, chunksize=4), 1):
            by_point.setdefault(point, []).append((drain, share))
            if done % 500 == 0:
                print(f"  {done}/{len(work)} ({time.monotonic() - started:.0f} s)", flush=True)
    for family in families:
        _report(family, by_point)
    print(f"\n{len(work)} on-sales in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
