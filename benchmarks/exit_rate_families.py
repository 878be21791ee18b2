"""Our exit-rate controller on randomized scenario families, against baselines in the same run.

Each family (``onsale_obs/exitrate/_families.py``) is a distribution over on-sales; every
seed draws one. For each seed, ours, AIMD, the oracle (0.9 of the true capacity, no lag) and
fixed rates (0.6-1x of the true capacity at the start) run on the same users. The table
gives per family the mean and worst drain ratio (drain time / physical limit T*) and share
of good one-minute SLO windows for ours, the best fixed rate, AIMD and the oracle, and the
verdict against the targets (see ``_family_run.py``). ``mixed-events`` (2-3 events on one
shared backend, a fault in one) runs each controller once per event and is judged as a
whole; its extra line says what the innocent events kept of their no-fault rate while the
fault showed (``_mixed_run.py``).

By default it reports the **held-out** seeds 10001-10020, which the controller was never
tuned on; ``--tuning`` runs the tuning seeds 1-N instead.

    .venv/bin/python benchmarks/exit_rate_families.py                      # held-out, 20 per family
    .venv/bin/python benchmarks/exit_rate_families.py --tuning --seeds 8   # tuning seeds 1-8
    .venv/bin/python benchmarks/exit_rate_families.py --families capacity-drop --json out.json

Exit code 1 when ours misses a target on any family, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._families import FAMILY_NAMES, HELD_OUT_SEEDS, TUNING_SEEDS, find_family
from onsale_obs.exitrate._family_run import FamilySummary, SeedResult, run_seed, summarise


def _cell(drain: float, slo: float) -> str:
    d = "  -  " if math.isinf(drain) else f"{drain:5.3f}"
    return f"{d} {slo * 100:5.1f}%"


def table(summaries: Sequence[FamilySummary]) -> list[str]:
    """The held-out table: per family, mean and worst (drain ratio, SLO share) per controller."""
    head = (
        f"{'family':15} {'':5} {'ours':>13} {'best fixed':>24} {'AIMD':>13} {'oracle':>13}  target"
    )
    lines = [head]
    for s in summaries:
        for kind in ("mean", "worst"):
            cells = []
            for name in ("ours", s.best_fixed, "aimd", "oracle"):
                d = getattr(s.drain[name], kind)
                o = getattr(s.slo[name], kind)
                cells.append(_cell(d, o))
            fixed = f"({s.best_fixed.removeprefix('fixed-')}) {cells[1]}"
            verdict = ""
            if kind == "mean":
                verdict = "met" if s.met else "MISSED: " + "; ".join(s.misses)
            name = s.family.name if kind == "mean" else ""
            lines.append(
                f"{name:15} {kind:5} {cells[0]:>13} {fixed:>24} {cells[2]:>13} {cells[3]:>13}"
                f"  {verdict}"
            )
        if s.recovery is not None:
            worst = "never" if math.isinf(s.recovery.worst) else f"{s.recovery.worst:.0f}s"
            lines.append(
                f"{'':15} after the fault healed, ours back at 90% of the pre-fault rate in "
                f"{s.recovery.mean:.0f}s on average, {worst} at worst (target 180s)"
            )
        if s.innocent is not None:
            rules = f" ({', '.join(s.innocent_cut_rules)})" if s.innocent_cut_rules else ""
            lines.append(
                f"{'':15} while one event's fault showed, ours kept the innocent events "
                f"{s.innocent.mean:.1%} of their no-fault admissions on average, "
                f"{s.innocent.worst:.1%} of the no-fault rate at the worst tick (target 90%); "
                f"it decreased an innocent event's rate on {s.innocent_cut_seeds} of "
                f"{len(s.seeds)} seeds{rules}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the families; 0 when every target is met, else 1."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Families: " + ", ".join(FAMILY_NAMES),
    )
    parser.add_argument("--families", default=",".join(FAMILY_NAMES), help="comma-separated names")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per family (default 20)")
    parser.add_argument(
        "--tuning", action="store_true", help="use the tuning seeds (1-N), not the held-out ones"
    )
    parser.add_argument(
        "--cadence",
        type=int,
        default=None,
        metavar="SECONDS",
        help="seconds between the controller's ticks and between Prometheus' scrapes and "
        "rule evaluations (default: the families' 15 s), e.g. 60 for serve --interval 60 "
        "against a 60 s scrape",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write every seed's results here")
    args = parser.parse_args(argv)
    try:
        families = [find_family(n.strip()) for n in args.families.split(",") if n.strip()]
    except BadInputError as exc:
        parser.error(f"--families: {exc.detail}")
    if not 1 <= args.seeds <= 1000:
        parser.error("--seeds: expected a count from 1 to 1000")
    if not 1 <= args.jobs <= 16:
        parser.error("--jobs: expected 1 to 16")
    if args.cadence is not None and not 1 <= args.cadence <= 300:
        parser.error("--cadence: expected seconds from 1 to 300")
    pool = TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS
    seeds = list(pool)[: args.seeds]
    which = "tuning" if args.tuning else "held-out"
    every = "" if args.cadence is None else f", ticks and scrapes every {args.cadence}s"
    print(f"# {which} seeds {seeds[0]}-{seeds[-1]}, {len(families)} families{every}", flush=True)
    started = time.perf_counter()
    jobs = [(f.name, seed, args.cadence) for f in families for seed in seeds]
    with ProcessPoolExecutor(args.jobs) as executor:
        done = list(executor.map(_run, jobs, chunksize=1))
    by_family: dict[str, list[SeedResult]] = {}
    for result in done:
        by_family.setdefault(result.family, []).append(result)
    summaries = [summarise(f, by_family[f.name]) for f in families]
    print("\n".join(table(summaries)))
    print(
        f"\n{len(jobs)} on-sales x {len(done[0].drain)} controllers in "
        f"{time.perf_counter() - started:.0f}s"
    )
    if args.json is not None:
        data = {
            "seeds": which,
            "cadence_s": args.cadence or 15,
            "families": [s.to_json() for s in summaries],
            "runs": [r.to_json() for r in done],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if all(s.met for s in summaries) else 1


def _run(job: tuple[str, int, int | None]) -> SeedResult:
    family, seed, cadence = job
    return run_seed(family, seed, cadence=cadence)


if __name__ == "__main__":
    sys.exit(main())
