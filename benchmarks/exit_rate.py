"""Our exit-rate controller against fixed rates, AIMD and an oracle, on every shipped scenario.

Runs each scenario in ``examples/scenarios/`` under every controller in the same run with
the same seed (the same users, arrivals and browse times), then prints per scenario each
controller's drain ratio (drain time / physical limit) and share of good SLO minutes, with
ours compared to each baseline (``ours/base`` drain ratio, ``ours-base`` SLO share), and
whether ours met the target:

- drain ratio <= 1.15 and >= 99% of 1-minute windows meeting the on-sale SLO;
- not dominated by any fixed rate or AIMD (no baseline at least as good on both and better
  on one). The oracle knows the true capacity, which no controller can; being dominated by
  it is reported, not failed.

    .venv/bin/python benchmarks/exit_rate.py                 # the shipped seeds
    .venv/bin/python benchmarks/exit_rate.py --seeds 1,2,3   # robustness across seeds
    .venv/bin/python benchmarks/exit_rate.py --json out.json

Exit code 1 when ours misses the target on any scenario and seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from onsale_obs.exitrate import (
    TARGET_DRAIN_RATIO,
    TARGET_SLO_SHARE,
    ScenarioReport,
    controller_names,
    load_scenario,
    run_scenario,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def _scenario_table(report: ScenarioReport) -> list[str]:
    ours = report.ours
    assert ours is not None
    s = report.scenario
    lines = [
        f"## {s.name} (seed {report.seed}): {s.waiting_room.users:,} users, "
        f"physical limit {report.physical_limit / 60:.1f} min",
        f"{'controller':12} {'drain':>7} {'SLO min':>8} {'failed':>9} {'overshoot':>9} "
        f"{'dir chg':>7} {'ours/base':>9} {'ours-base':>9}  dominates ours?",
    ]
    for r in report.results:
        same = r.controller == "ours"
        ratio = "" if same else f"{ours.drain_ratio / r.drain_ratio:.3f}"
        delta = "" if same else f"{(ours.slo_share - r.slo_share) * 100:+.1f}pt"
        dominates = "" if same else ("yes" if r.dominates(ours) else "no")
        lines.append(
            f"{r.controller:12} {r.drain_ratio:7.3f} {r.slo_share:8.1%} {r.failed:9,.0f} "
            f"{max(0.0, r.peak_overshoot):9.0%} {r.direction_changes:7d} {ratio:>9} "
            f"{delta:>9}  {dominates}"
        )
    verdict = "MET" if report.meets_target else "MISSED: " + "; ".join(report.misses)
    lines.append(f"target: {verdict}")
    if "oracle" in report.dominating(include_oracle=True):
        lines.append("(the oracle, which knows the true capacity, dominates ours)")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when ours met the target everywhere, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", type=Path, default=SCENARIOS, help="folder of scenario YAML files"
    )
    parser.add_argument(
        "--seeds", default="", help="comma-separated seeds (default: each scenario's own)"
    )
    parser.add_argument("--json", type=Path, help="also write the results (no timelines) here")
    args = parser.parse_args(argv)
    seeds: list[int | None] = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    files = sorted(args.scenarios.glob("*.yaml"))
    if not files:
        print(f"no scenario files in {args.scenarios}", file=sys.stderr)
        return 2
    names = controller_names(["ours", "aimd", "fixed", "oracle"])
    reports: list[ScenarioReport] = []
    started = time.perf_counter()
    for path in files:
        scenario = load_scenario(path)
        for seed in seeds:
            report = run_scenario(scenario, names, seed=seed)
            reports.append(report)
            print("\n".join(_scenario_table(report)) + "\n", flush=True)
    elapsed = time.perf_counter() - started
    print(
        f"# summary: target drain ratio <= {TARGET_DRAIN_RATIO}, SLO minutes >= "
        f"{TARGET_SLO_SHARE:.0%}, not dominated by a fixed rate or AIMD"
    )
    print(f"{'scenario':16} {'seed':>4} {'drain':>7} {'SLO min':>8} {'oracle':>15}  target")
    for report in reports:
        ours, oracle = report.ours, report.result("oracle")
        assert ours is not None
        assert oracle is not None
        print(
            f"{report.scenario.name:16} {report.seed:4d} {ours.drain_ratio:7.3f} "
            f"{ours.slo_share:8.1%} {oracle.drain_ratio:6.3f}/{oracle.slo_share:7.1%}  "
            f"{'met' if report.meets_target else 'MISSED: ' + '; '.join(report.misses)}"
        )
    runs = len(reports) * len(names)
    print(f"\n{runs} simulated on-sales in {elapsed:.1f}s")
    if args.json is not None:
        data: dict[str, Any] = {"scenarios": [r.to_json(timeline=False) for r in reports]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if all(r.meets_target for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
