"""Simulation results as rows of text, for the CLI's tables and the benchmark."""

from __future__ import annotations

from onsale_obs.exitrate._mixed_run import MixedReport
from onsale_obs.exitrate._report import ControllerResult
from onsale_obs.exitrate._run import OURS, ScenarioReport

HEADERS: tuple[str, ...] = (
    "controller",
    "drain",
    "drain ratio",
    "SLO minutes",
    "SLO share",
    "failed checkouts",
    "peak overshoot",
    "direction changes",
    "rate variation",
    "mean wait",
)


def row(result: ControllerResult) -> list[str]:
    """One controller's line: the columns of :data:`HEADERS`."""
    drain = "not drained" if result.drain_time is None else f"{result.drain_time / 60:.1f} min"
    ratio = "-" if result.drain_time is None else f"{result.drain_ratio:.3f}"
    return [
        result.controller,
        drain,
        ratio,
        f"{result.slo_good_minutes}/{result.slo_minutes}",
        f"{result.slo_share:.1%}",
        f"{result.failed:,.0f}",
        f"{max(0.0, result.peak_overshoot):.0%}",
        str(result.direction_changes),
        f"{result.rate_variation:.2f}",
        f"{result.mean_wait / 60:.1f} min",
    ]


def verdict(report: ScenarioReport) -> str:
    """Whether our controller met the target on this scenario, in one line."""
    if report.ours is None:
        return "our controller did not run"
    target = f"(drain ratio <= {report.drain_target}, SLO minutes >= {report.slo_bar:.1%}, "
    target += "not dominated by a fixed rate or AIMD)"
    if report.meets_target:
        return f"{OURS}: meets the target {target}"
    return f"{OURS}: MISSES the target {target}: {'; '.join(report.misses)}"


def title(report: ScenarioReport) -> str:
    """The scenario's heading: name, physical limit, users, seed."""
    s = report.scenario
    return (
        f"{s.name}: {s.waiting_room.users:,} users, physical limit "
        f"{report.physical_limit / 60:.1f} min, seed {report.seed}"
    )


def innocent_lines(report: ScenarioReport) -> list[str]:
    """Mixed events: per innocent event and adaptive controller, what it kept while another
    event's fault showed (nothing for a single-room scenario)."""
    if not isinstance(report, MixedReport):
        return []
    lines = []
    for i in report.innocent:
        start, end = i.window
        line = (
            f"{i.controller}: innocent {i.event} kept {i.kept:.1%} of its no-fault admissions "
            f"while the other event's fault showed ({start / 60:.1f}-{end / 60:.1f} min), "
            f"{i.worst:.1%} of its no-fault rate at the worst tick"
        )
        if i.cuts:
            line += f"; its cuts: {' / '.join(i.cuts)}"
        lines.append(line)
    return lines
