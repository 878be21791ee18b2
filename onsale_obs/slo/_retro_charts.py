"""The retrospective's charts: matplotlib figures written as inline SVG, text kept as text.

matplotlib (the ``plots`` extra) rather than hand-drawn SVG: axes, ticks, legends and time
formatting come for free and stay right at any zoom; SVG keeps the page self-contained and
sharp in print. Each exit-rate decision's reason is a ``<title>`` (a tooltip on hover).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from onsale_obs.slo._retro import MINUTE, Decision, OnSaleMinutes

ONSALE_SHADE = "#7b2cbf"
GRACE_SHADE = "#c9a6e8"
_SERIAL = itertools.count(1)
PALETTE = ("#1f5fbf", "#d1495b", "#2a9d8f", "#e9a03b", "#6c757d", "#8338ec")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "onsale-obs",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e3e6ea",
        }
    )
    return plt


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _frame(o: OnSaleMinutes, title: str, ylabel: str) -> tuple[Any, Any, Any]:
    plt = _plt()
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(7.5, 2.7), layout="constrained")
    span = ax.axvspan(_dt(o.window.start), _dt(o.onsale_end), color=ONSALE_SHADE, alpha=0.12, lw=0)
    span.set_gid("onsale-window")  # a browser test measures how wide the on-sale is drawn
    if o.end > o.onsale_end:
        ax.axvspan(_dt(o.onsale_end), _dt(o.end), color=GRACE_SHADE, alpha=0.15, lw=0)
    ax.set_xlim(_dt(o.start), _dt(o.end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_title(title, loc="left", fontsize=10)
    ax.set_ylabel(ylabel)
    return plt, fig, ax


def _svg(plt: Any, fig: Any, kind: str, label: str, titles: dict[str, str] | None = None) -> Markup:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # responsive: the viewBox stays, the fixed size goes
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    text = text.replace(
        "<svg",
        f'<svg class="chart" data-chart="{escape(kind)}" role="img" aria-label="{escape(label)}"',
        1,
    )
    # one id per chart on the page (several on-sales draw the same kinds)
    text = text.replace(
        '<g id="onsale-window">',
        f'<g id="onsale-window-{next(_SERIAL)}" class="onsale-window">',
        1,
    )
    text = re.sub(
        r'<g id="series">', lambda _: f'<g id="series-{next(_SERIAL)}" class="series">', text
    )
    for gid, tip in (titles or {}).items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return Markup(text)


def _series(values: dict[int, float], minutes: Sequence[int]) -> list[float]:
    return [values.get(m, 0.0) for m in minutes]


def _times(minutes: Sequence[int]) -> list[datetime]:
    return [_dt(m + MINUTE / 2) for m in minutes]


def traffic_chart(o: OnSaleMinutes) -> Markup:
    """Requests per minute per service."""
    plt, fig, ax = _frame(o, "Requests per minute", "requests / min")
    minutes = o.minutes()
    for i, (name, sm) in enumerate(sorted(o.services.items())):
        ax.plot(
            _times(minutes),
            _series(sm.requests, minutes),
            label=name,
            color=PALETTE[i % 6],
            gid="series",
        )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    return _svg(plt, fig, "requests", "requests per minute per service")


def error_chart(o: OnSaleMinutes) -> Markup:
    """5xx errors per minute per service."""
    minutes = o.minutes()
    none = not any(v > 0 for sm in o.services.values() for v in sm.errors.values())
    title = "Errors (5xx) per minute" + (": none" if none else "")
    plt, fig, ax = _frame(o, title, "errors / min")
    for i, (name, sm) in enumerate(sorted(o.services.items())):
        ax.plot(
            _times(minutes),
            _series(sm.errors, minutes),
            label=name,
            color=PALETTE[i % 6],
            marker=".",
            ms=3,
            gid="series",
        )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    return _svg(plt, fig, "errors", "5xx errors per minute per service")


def latency_chart(o: OnSaleMinutes, thresholds: dict[str, float]) -> Markup:
    """p95 latency per minute per service, with the on-sale latency thresholds."""
    plt, fig, ax = _frame(o, "p95 latency per minute", "seconds")
    minutes = o.minutes()
    for i, (name, sm) in enumerate(sorted(o.services.items())):
        points = [
            (t, sm.p95[m]) for t, m in zip(_times(minutes), minutes, strict=True) if m in sm.p95
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=name, color=PALETTE[i % 6], marker=".", ms=3, gid="series")
    for slo, limit in sorted(thresholds.items()):
        ax.axhline(limit, color="#444", ls="--", lw=0.8)
        ax.annotate(
            f"{slo} threshold",
            (0.99, limit),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=7,
            color="#444",
        )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    return _svg(plt, fig, "latency", "p95 latency per minute per service")


def burn_chart(o: OnSaleMinutes, budgets: dict[str, float]) -> Markup:
    """Bad requests so far per SLO through the on-sale, against each SLO's allowance."""
    plt, fig, ax = _frame(o, "Error budget in requests: bad so far vs allowed", "bad requests")
    minutes = o.minutes()
    for i, (name, allowed) in enumerate(sorted(budgets.items())):
        sm = o.slos.get(name)
        if sm is None:
            continue
        so_far, total = [], 0.0
        for m in minutes:
            total += sm.bad.get(m, 0.0)
            so_far.append(total)
        colour = PALETTE[i % 6]
        ax.step(
            _times(minutes), so_far, where="mid", label=f"{name} bad", color=colour, gid="series"
        )
        ax.axhline(allowed, color=colour, ls=":", lw=1, label=f"{name} allowed ({allowed:,.2f})")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    return _svg(plt, fig, "burn", "bad requests so far against the allowed bad requests")


def exit_rate_chart(o: OnSaleMinutes, decisions: Sequence[Decision]) -> Markup:
    """The waiting room's exit rate (recommended and applied) and its queue, per decision."""
    plt, fig, ax = _frame(o, "Waiting room: exit rate and queue", "users / min")
    shown = [d for d in decisions if o.start < d.at <= o.end]
    xs = [_dt(d.at) for d in shown]
    ax.step(
        xs,
        [d.recommended for d in shown],
        where="post",
        label="recommended",
        color=PALETTE[0],
        gid="series",
    )
    applied = [(x, d.applied) for x, d in zip(xs, shown, strict=True) if d.applied is not None]
    if applied:
        ax.step(
            [a for a, _ in applied],
            [b for _, b in applied],
            where="post",
            label="applied",
            color=PALETTE[3],
            ls="--",
        )
    titles = {}
    for k, (x, d) in enumerate(zip(xs, shown, strict=True)):
        gid = f"decision-{int(o.window.start)}-{k}"
        (dot,) = ax.plot([x], [d.recommended], "o", ms=4, color=PALETTE[0])
        dot.set_gid(gid)
        titles[gid] = f"{x:%H:%M} {d.action} to {d.recommended:,.0f}/min: {d.reason}"
    queue = [(x, d.queue) for x, d in zip(xs, shown, strict=True) if d.queue is not None]
    if queue:
        twin = ax.twinx()
        twin.plot(
            [a for a, _ in queue],
            [b for _, b in queue],
            color="#6c757d",
            lw=1,
            label="queue (users)",
        )
        twin.set_ylabel("users waiting")
        twin.set_ylim(bottom=0)
        twin.grid(False)
    # one legend for both axes, at the top middle: the queue falls from the top left as
    # the rate climbs to the top right
    handles, labels = ax.get_legend_handles_labels()
    if queue:
        more, names = twin.get_legend_handles_labels()
        handles, labels = handles + more, labels + names
    ax.legend(handles, labels, loc="upper center", fontsize=8, frameon=False, ncols=3)
    ax.set_ylim(bottom=0)
    return _svg(plt, fig, "exit-rate", "exit rate recommended and applied, queue length", titles)


def vertical_chart(o: OnSaleMinutes, points: Sequence[tuple[float, Mapping[str, int]]]) -> Markup:
    """``onsale_vertical_desired_replicas`` of the on-sale's event per service (0: withdrawn,
    each service back to its own minimum)."""
    plt, fig, ax = _frame(o, "Vertical: desired replicas per service", "replicas")
    shown: list[tuple[float, Mapping[str, int]]] = [
        (t, d) for t, d in points if o.start < t <= o.end
    ]
    if shown and shown[0][0] > o.window.start:
        shown.insert(0, (o.window.start, {}))  # nothing asked before the on-sale opened
    services = sorted({s for _, d in shown for s in d})
    xs = [_dt(t) for t, _ in shown]
    for i, name in enumerate(services):
        ax.step(
            xs,
            [d.get(name, 0) for _, d in shown],
            where="post",
            label=name,
            color=PALETTE[i % 6],
            marker=".",
            ms=3,
            gid="series",
        )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _svg(plt, fig, "vertical", "desired replicas of each service of the vertical")
