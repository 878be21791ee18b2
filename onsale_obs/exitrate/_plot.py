"""One PNG per scenario: exit rate against capacity (ours' bad SLO minutes shaded red), failed
checkouts and the queue, per controller. Needs matplotlib (``pip install 'onsale-obs[plots]'``),
imported only here."""

from __future__ import annotations

from pathlib import Path

from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._run import OURS, ScenarioReport

#: Lines drawn for every controller but ours are thinner, so ours stands out.
_OURS_WIDTH = 2.2
_OTHER_WIDTH = 1.0


def plot_report(report: ScenarioReport, path: Path) -> Path:
    """Write ``report`` as a PNG at ``path`` (its folder must exist); returns the path."""
    try:
        import matplotlib
    except ImportError:
        raise BadInputError(
            "plots need matplotlib; install it with pip install 'onsale-obs[plots]'.",
            field="--plot",
        ) from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    scenario = report.scenario
    fig, (rate_ax, error_ax, queue_ax) = plt.subplots(
        3, 1, figsize=(11, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.4]}
    )
    try:
        first = report.results[0] if report.results else None
        if first is not None:
            minutes = [t["t"] / 60 for t in first.timeline]
            capacity = [t["capacity_rate"] for t in first.timeline]
            rate_ax.plot(minutes, capacity, color="black", linestyle="--", label="capacity")
        for result in report.results:
            ours = result.controller == OURS
            width = _OURS_WIDTH if ours else _OTHER_WIDTH
            times = [t["t"] / 60 for t in result.timeline]
            rate_ax.plot(times, [t["rate"] for t in result.timeline], lw=width,
                         label=f"{result.controller} ({result.drain_ratio:.2f}x, "
                         f"{result.slo_share:.0%} SLO min)")  # fmt: skip
            error_ax.plot([m.start / 60 for m in result.minutes],
                          [m.errors for m in result.minutes], lw=width)  # fmt: skip
            if ours:  # ours' bad SLO minutes, shaded behind the rates
                for m in result.minutes:
                    if m.good is False:
                        rate_ax.axvspan(m.start / 60, m.start / 60 + 1, color="red", alpha=0.12,
                                        lw=0)  # fmt: skip
            queue_ax.plot(times, [t["queue"] for t in result.timeline], lw=width)
        rate_ax.set_ylabel("exit rate (users/min)\nred: ours' bad SLO minutes")
        rate_ax.set_title(
            f"{scenario.name}: physical limit {report.physical_limit / 60:.1f} min, "
            f"seed {report.seed}"
        )
        rate_ax.legend(fontsize="small", loc="best")
        error_ax.set_ylabel("failed checkouts/min")
        error_ax.set_yscale("symlog", linthresh=10)  # a few failures and thousands, both visible
        queue_ax.set_ylabel("waiting users")
        queue_ax.set_xlabel("minutes since the on-sale started")
        for ax in (rate_ax, error_ax, queue_ax):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
