"""The look of the HTML report: its stylesheet and its inline SVG charts (no scripts).

Pure functions from numbers to SVG text. Every chart is a ``<svg class="chart" role="img">``
with a ``<title>`` and a ``<desc>`` that say in words what it shows (read by screen readers
and shown as a tooltip), and every user-supplied string goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from onsale_obs.durations import format_duration
from onsale_obs.slo._spec import Priority
from onsale_obs.slo._timeline import Firing
from onsale_obs.types import Mode

MODE_TITLE: Final[dict[Mode, str]] = {"normal": "normal", "onsale": "on-sale"}
MODE_COLOUR: Final[dict[Mode, str]] = {"normal": "#1d4ed8", "onsale": "#7e22ce"}
PRIORITY_COLOUR: Final[dict[Priority, str]] = {
    "P1": "#b91c1c",
    "P2": "#c2410c",
    "P3": "#a16207",
    "P4": "#64748b",
}
ONSALE_BAND: Final = "#7e22ce"
AXIS: Final = "#6b7280"
GRID: Final = "#e5e7eb"
TEXT: Final = "#1f2937"
EXHAUSTED: Final = "#b91c1c"
#: the lowest budget a burn-down chart draws (-100%: spent twice over)
FLOOR: Final = -1.0

#: the whole stylesheet, inlined (system fonts only: nothing to download)
STYLESHEET: Final = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;
--normal:#1d4ed8;--onsale:#7e22ce}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header.top,main,footer{max-width:1120px;margin:0 auto;padding:0 20px}
header.top{padding-top:20px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px}
h3{font-size:15px;margin:0 0 8px}
.lead,.hint,.facts,.desc,.muted,.empty{color:var(--muted)}.desc{color:var(--ink);margin:0 0 4px}
.facts{margin:0 0 12px}
dl.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(460px,100%),1fr));gap:6px 24px;
margin:12px 0;padding:12px 16px;background:var(--card);border:1px solid var(--line);border-radius:8px}
dl.meta div{display:flex;flex-wrap:wrap;gap:0 10px}dl.meta dt{color:var(--muted);min-width:160px}
dl.meta dd{margin:0;overflow-wrap:anywhere}
ul.notes{margin:8px 0;padding:8px 28px;background:#fffbeb;border:1px solid #fde68a;border-radius:8px}
.pill{display:inline-block;font-size:12px;font-weight:600;padding:1px 9px;border-radius:999px;
vertical-align:middle;border:1px solid transparent}
.st-ok{background:#dcfce7;color:#14532d;border-color:#86efac}
.st-breached{background:#fef3c7;color:#78350f;border-color:#fcd34d}
.st-burning{background:#fee2e2;color:#7f1d1d;border-color:#fca5a5}
.st-nodata{background:#f3f4f6;color:#374151;border-color:#d1d5db}
.prio{display:inline-block;min-width:26px;text-align:center;font-size:11px;font-weight:700;
color:#fff;background:var(--c);border-radius:4px;padding:0 4px}
.scroll{overflow-x:auto}
table.grid{border-collapse:collapse;width:100%;background:var(--card);margin:6px 0 12px}
table.grid th,table.grid td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
table.grid thead th{background:#f1f5f9;font-weight:600;font-size:12px;color:#374151}
table.grid caption{text-align:left;color:var(--muted);font-size:12px;padding:2px 0}
th[scope=row],.nowrap,.pill{white-space:nowrap}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
th.m-normal{color:var(--normal)}th.m-onsale{color:var(--onsale)}
tr.missed th,tr.missed td{background:#fef2f2}tr.firing td{background:#fef2f2}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
margin:0 0 14px}
.card.onsale .scope{color:var(--onsale)}.reason{font-weight:400;color:var(--muted)}
.when{margin:0 0 4px;color:var(--muted)}
section.slo{border-top:2px solid var(--line);margin-top:26px}
.secondary{color:var(--muted);font-size:12px;font-weight:400}
details.healthy>summary{cursor:pointer;font-size:16px;font-weight:600;padding:8px 0}
.modes{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(460px,100%),1fr));gap:14px}
.mode.m-normal{border-top:4px solid var(--normal)}.mode.m-onsale{border-top:4px solid var(--onsale)}
.m-normal h3{color:var(--normal)}.m-onsale h3{color:var(--onsale)}
dl.figures{display:grid;grid-template-columns:repeat(3,1fr);gap:6px 12px;margin:0 0 8px}
dl.figures dt{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
dl.figures dd{margin:0;font-size:16px;font-weight:600;font-variant-numeric:tabular-nums}
dl.figures .wide{grid-column:1/-1}dl.figures .wide dd{font-size:14px;font-weight:400}
.bar{height:8px;background:#e5e7eb;border-radius:4px;overflow:hidden;margin:0 0 8px}
.bar span{display:block;height:100%}.bar .high{background:#16a34a}.bar .mid{background:#d97706}
.bar .low{background:#dc2626}.bar.nodata{background:repeating-linear-gradient(45deg,#e5e7eb 0 6px,#f3f4f6 6px 12px)}
figure{margin:6px 0 10px}figcaption{color:var(--muted);font-size:12px}
svg.chart{display:block;width:100%;height:auto;background:#fff}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:4px}
footer{color:var(--muted);font-size:12px;padding-bottom:30px;margin-top:30px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
a{color:#1d4ed8}
@media print{body{background:#fff}.card,figure,table{break-inside:avoid}.skip{display:none}}
"""

#: candidate distances between time ticks, shortest first
_TICK_STEPS: Final = (
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
)


def esc(text: object) -> str:
    """``text`` made safe for HTML and SVG text and attributes (quotes included)."""
    return html.escape(str(text), quote=True)


def utc(ts: float, *, seconds: bool = False) -> str:
    """``2027-01-15 08:00Z`` (or with seconds): short enough for tables, still unambiguous."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def iso(ts: float) -> str:
    """ISO-8601 UTC for ``<time datetime=...>``."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def pct(value: float | None, digits: int = 3) -> str:
    """``0.99953`` -> ``99.953%``; None -> ``no data`` (never 100%)."""
    return "no data" if value is None else f"{value * 100:.{digits}f}%"


def budget_text(left: float) -> str:
    """``0.421`` -> ``42.1%``; large overspends without decimals: ``-40,033%``."""
    return f"{left * 100:.1f}%" if abs(left) < 10 else f"{left * 100:,.0f}%"


def _n(value: float) -> str:
    """A coordinate: one decimal is plenty at screen resolution."""
    return f"{value:.1f}"


def _tick_label(ts: float, step: float, span: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    if step >= 86400:
        return moment.strftime("%b %d")
    if span > 86400:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%H:%M")


def time_ticks(start: float, end: float, most: int = 6) -> list[tuple[float, str]]:
    """Round moments (whole minutes, hours, UTC days) between ``start`` and ``end``, labelled."""
    span = end - start
    if span <= 0:
        return [(start, _tick_label(start, 60, 0))]
    step = next((s for s in _TICK_STEPS if span / s <= most), _TICK_STEPS[-1])
    first = math.ceil(start / step) * step
    return [
        (t, _tick_label(t, step, span))
        for t in (first + i * step for i in range(int((end - first) // step) + 1))
        if start <= t <= end
    ]


def _open(ident: str, width: int, height: int, title: str, desc: str, kind: str) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{esc(kind)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11">',
        f'<title id="{ident}-title">{esc(title)}</title>',
        f'<desc id="{ident}-desc">{esc(desc)}</desc>',
    ]


def _no_data(parts: list[str], width: int, height: int, message: str) -> str:
    parts += [
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="6" '
        f'fill="#f9fafb" stroke="{GRID}"/>',
        f'<text x="{width / 2}" y="{height / 2 - 6}" text-anchor="middle" font-size="15" '
        f'font-weight="600" fill="{AXIS}">no data</text>',
        f'<text x="{width / 2}" y="{height / 2 + 14}" text-anchor="middle" fill="{AXIS}">'
        f"{esc(message)}</text>",
        "</svg>",
    ]
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class BurnDown:
    """What a burn-down chart draws: budget left (1.0 = all of it) at moments of the window."""

    mode: Mode
    slo: str
    start: float
    end: float
    #: (moment, budget remaining); the first is the window's start at 1.0
    points: tuple[tuple[float, float], ...]
    #: (moment, bad events so far) for the tooltips, aligned with ``points``
    bad: tuple[float, ...]
    #: on-sale windows to shade, (start, end)
    bands: tuple[tuple[float, float], ...] = ()
    #: why there is no line, when there is none
    missing: str | None = None


def burn_down_svg(chart: BurnDown, ident: str) -> str:
    """Budget remaining over the SLO window as a line (0% dashed: the budget is spent)."""
    width, height = 520, 240
    left, right, top, bottom = 50, 16, 26, 30
    mode = MODE_TITLE[chart.mode]
    title = f"Error budget burn-down, {mode} time, {chart.slo}"
    if chart.missing is not None or len(chart.points) < 2:
        reason = chart.missing or "no burn-down was computed for this report"
        return _no_data(
            _open(ident, width, height, title, f"no data: {reason}", "burn-down"),
            width,
            height,
            reason,
        )
    last = chart.points[-1][1]
    desc = (
        f"Budget left went from 100% at {utc(chart.start)} to {budget_text(last)} at "
        f"{utc(chart.end)} ({format_duration(chart.end - chart.start)} window)."
    )
    parts = _open(ident, width, height, title, desc, "burn-down")
    lowest = min(v for _, v in chart.points)
    # below -100% the line leaves the chart: 100%..0%, what matters, stays readable
    low = 0.0 if lowest >= 0 else max(FLOOR, math.floor(lowest * 4) / 4)
    high = 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(chart.end - chart.start, 1e-9)

    def x(t: float) -> float:
        return left + (min(max(t, chart.start), chart.end) - chart.start) / span * plot_w

    def y(v: float) -> float:
        return top + (high - max(v, low)) / (high - low) * plot_h

    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#ffffff"/>')
    for a, b in chart.bands:
        if b <= chart.start or a >= chart.end:
            continue
        x0, x1 = x(a), x(b)
        parts.append(
            f'<rect class="onsale-band" x="{_n(x0)}" y="{top}" width="{_n(max(x1 - x0, 4.0))}" '
            f'height="{plot_h}" fill="{ONSALE_BAND}" fill-opacity="0.13">'
            f"<title>on-sale {esc(utc(a))} to {esc(utc(b))}</title></rect>"
        )
    levels = [1.0, 0.75, 0.5, 0.25, 0.0]
    levels += [low] if low >= -0.25 else [-0.5, low]
    for v in sorted(set(levels), reverse=True):
        if low <= v <= high:
            parts.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{_n(y(v))}" y2="{_n(y(v))}" '
                f'stroke="{EXHAUSTED if v == 0 else GRID}" '
                f'stroke-dasharray="{"5 3" if v == 0 else "none"}"/>'
                f'<text x="{left - 6}" y="{_n(y(v) + 4)}" text-anchor="end" fill="{AXIS}">'
                f"{v * 100:.0f}%</text>"
            )
    for t, label in time_ticks(chart.start, chart.end):
        parts.append(
            f'<line x1="{_n(x(t))}" x2="{_n(x(t))}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
            f'stroke="{AXIS}"/><text x="{_n(x(t))}" y="{top + plot_h + 16}" '
            f'text-anchor="middle" fill="{AXIS}">{esc(label)}</text>'
        )
    colour = MODE_COLOUR[chart.mode]
    line = " ".join(f"{_n(x(t))},{_n(y(v))}" for t, v in chart.points)
    base = _n(y(max(low, 0.0)) if low < 0 else y(0.0))
    first_x, last_x = _n(x(chart.points[0][0])), _n(x(chart.points[-1][0]))
    parts += [
        f'<polygon points="{first_x},{base} {line} {last_x},{base}" fill="{colour}" '
        f'fill-opacity="0.10"/>',
        f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2.2" '
        f'stroke-linejoin="round"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>',
    ]
    for (t, v), bad in zip(chart.points[1:], chart.bad[1:], strict=True):
        tip = f"{utc(t)}: {budget_text(v)} of the budget left, {bad:,.0f} bad so far"
        parts.append(
            f'<circle cx="{_n(x(t))}" cy="{_n(y(v))}" r="2.6" fill="{colour}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    off = " (off scale)" if last < low else ""
    parts.append(
        f'<text x="{left + plot_w}" y="{top - 9}" text-anchor="end" font-size="12" '
        f'font-weight="600" fill="{EXHAUSTED if last < 0 else colour}">'
        f"now {esc(budget_text(last))} left{off}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Lane:
    """One row of the alert timeline: a rule of a mode's policy."""

    mode: Mode
    rule: str
    priority: Priority

    @property
    def label(self) -> str:
        """``on-sale · fast · P1``."""
        return f"{MODE_TITLE[self.mode]} · {self.rule} · {self.priority}"


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of evaluated moments one step apart (an on-sale window, or the report moment)."""

    label: str
    times: tuple[float, ...]
    #: shown instead of ``label`` when the segment is too narrow for it
    short: str = ""


def segment_widths(counts: Sequence[int], room: float, least: float = 40.0) -> list[float]:
    """Widths in proportion to the moments of each segment, none narrower than ``least``."""
    fixed: set[int] = set()
    col = 0.0
    while len(fixed) < len(counts):
        left = sum(c for i, c in enumerate(counts) if i not in fixed)
        col = (room - least * len(fixed)) / left
        narrow = {i for i, c in enumerate(counts) if i not in fixed and c * col < least}
        if not narrow:
            break
        fixed |= narrow
    widths = [least if i in fixed else c * col for i, c in enumerate(counts)]
    total = sum(widths)
    return [w * room / total for w in widths] if total > room else widths


def _fits(text: str, width: float) -> bool:
    return width >= 6.2 * len(text) + 6


def timeline_svg(
    ident: str,
    slo: str,
    lanes: Sequence[Lane],
    segments: Sequence[Segment],
    firing: Mapping[tuple[Mode, str, float], Firing],
) -> str:
    """Which rule fired at which evaluated moment: one lane per rule, one column per moment.

    Only evaluated moments are drawn (on-sales are days apart in a 30-day window), so the
    time axis is broken between segments; each segment is labelled with what it covers.
    """
    width, label_w, right, top, lane_h, bottom, gap = 980, 170, 10, 36, 22, 24, 20
    height = top + max(len(lanes), 1) * lane_h + bottom
    moments = sum(len(s.times) for s in segments)
    fired = sorted({(f.mode, f.rule) for f in firing.values()})
    title = f"Alert timeline, {slo}"
    if fired:
        names = ", ".join(f"{MODE_TITLE[m]} {r}" for m, r in fired)
        desc = f"Rules that fired at some of the {moments} evaluated moments: {names}."
    else:
        desc = f"No rule fired at any of the {moments} evaluated moments."
    parts = _open(ident, width, height, title, desc, "alert-timeline")
    plot_w = width - label_w - right
    for i, lane in enumerate(lanes):
        ly = top + i * lane_h
        parts.append(
            f'<rect x="{label_w}" y="{ly}" width="{plot_w}" height="{lane_h}" '
            f'fill="{"#f3f4f6" if i % 2 == 0 else "#ffffff"}"/>'
            f'<text x="{label_w - 8}" y="{ly + lane_h / 2 + 4}" text-anchor="end" '
            f'fill="{MODE_COLOUR[lane.mode]}">{esc(lane.label)}</text>'
        )
    if not lanes:
        parts.append(
            f'<text x="{label_w}" y="{top + 15}" fill="{AXIS}">this SLO has no alert rules</text>'
        )
    room = plot_w - gap * max(len(segments) - 1, 0)
    widths = segment_widths([len(s.times) for s in segments], room)
    x0 = float(label_w)
    for seg, seg_w in zip(segments, widths, strict=True):
        col = seg_w / len(seg.times)
        label = (
            seg.label if _fits(seg.label, seg_w) else seg.short if _fits(seg.short, seg_w) else ""
        )
        parts.append(
            f'<line x1="{_n(x0)}" x2="{_n(x0)}" y1="{top - 4}" y2="{height - bottom + 4}" '
            f'stroke="{AXIS}"/><text x="{_n(x0 + 3)}" y="{top - 10}" fill="{TEXT}">'
            f"{esc(label)}<title>{esc(seg.label)}</title></text>"
        )
        if seg_w >= 90 and len(seg.times) > 1:
            first, last = (_hhmm(t) for t in (seg.times[0], seg.times[-1]))
            parts.append(
                f'<text x="{_n(x0 + 2)}" y="{height - 8}" fill="{AXIS}">{first}</text>'
                f'<text x="{_n(x0 + seg_w - 2)}" y="{height - 8}" text-anchor="end" '
                f'fill="{AXIS}">{last}</text>'
            )
        for i, lane in enumerate(lanes):
            y = top + i * lane_h + 3
            for a, b in _runs([firing.get((lane.mode, lane.rule, t)) for t in seg.times]):
                hits = [
                    f for f in (firing.get((lane.mode, lane.rule, t)) for t in seg.times[a:b]) if f
                ]
                tip = (
                    f"{lane.label} firing {utc(seg.times[a])} to {utc(seg.times[b - 1])}; "
                    f"peak burn rate {max(f.long_burn for f in hits):,.1f}x long, "
                    f"{max(f.short_burn for f in hits):,.1f}x short"
                )
                parts.append(
                    f'<rect class="firing" x="{_n(x0 + a * col)}" y="{y}" '
                    f'width="{_n(max((b - a) * col, 2.0))}" height="{lane_h - 6}" rx="2" '
                    f'fill="{PRIORITY_COLOUR[lane.priority]}"><title>{esc(tip)}</title></rect>'
                )
        x0 += seg_w + gap
    parts.append("</svg>")
    return "\n".join(parts)


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _runs(cells: Sequence[Firing | None]) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of consecutive cells that are not None."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for j, cell in enumerate([*cells, None]):
        if cell is not None and start is None:
            start = j
        elif cell is None and start is not None:
            out.append((start, j))
            start = None
    return out
