"""The HTML report (``slo report --format html``): one self-contained file for a retrospective.

No network at all: inline CSS, inline SVG charts, no scripts, no fonts or images to fetch, and
a Content-Security-Policy that forbids loading anything should a resource ever slip in. The
page is one Jinja2 template (``templates/report_page.html.j2``, autoescaped, like the
retrospective's): this module only gathers what it shows, so every piece of user text (SLO
names, scopes, reasons, paths, warnings) is escaped by the template engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from onsale_obs.durations import format_duration
from onsale_obs.slo._html_svg import (
    MODE_TITLE,
    PRIORITY_COLOUR,
    STYLESHEET,
    BurnDown,
    Lane,
    Segment,
    budget_text,
    burn_down_svg,
    pct,
    timeline_svg,
    utc,
)
from onsale_obs.slo._report import ModeResult, OnSaleResult, Report, SLOResult
from onsale_obs.slo._retro_html import ROUTED, template_env
from onsale_obs.slo._spec import MODES, SLO, AvailabilitySLI, LatencySLI, Priority
from onsale_obs.slo._timeline import Firing
from onsale_obs.types import Mode

#: nothing may be fetched: styles are inline, images only ``data:``, scripts not at all
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


@dataclass(frozen=True, slots=True)
class AlertTimeline:
    """The alert rules evaluated at ``times`` (see :func:`timeline_moments`), and what fired."""

    times: tuple[float, ...]
    firings: tuple[Firing, ...]
    #: seconds between evaluated moments inside an on-sale (0: only the report moment)
    step: float = 0.0
    grace: float = 0.0


def timeline_moments(
    report: Report, grace: float, *, step: float = 60.0, cap: int = 360
) -> tuple[tuple[float, ...], float]:
    """Moments at which to evaluate the alert rules, and the step between them.

    Every ``step`` (whole minutes by default) from each on-sale window's start to its end plus
    ``grace``, widened so that at most about ``cap`` moments are evaluated, and the report
    moment itself.
    """
    ranges = sorted(
        {
            (o.window.start, min(o.end + grace, report.at))
            for s in report.slos
            for o in s.onsales
            if o.window.start < report.at
        }
    )
    merged: list[tuple[float, float]] = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    wanted = sum((b - a) / step for a, b in merged)
    if wanted > cap:
        step *= math.ceil(wanted / cap)
    times = {report.at}
    for a, b in merged:
        first = math.floor(a / step) + 1  # the first whole step after the on-sale began
        times.update(k * step for k in range(first, math.floor(b / step) + 1))
    return tuple(sorted(times)), step


def render_html(
    report: Report,
    timeline: AlertTimeline | None = None,
    *,
    modes: Sequence[Mode] = MODES,
    retrospective: str = "",
) -> str:
    """The whole report as one HTML document (``timeline`` None: alerts at the report moment).

    Rendered from ``templates/report_page.html.j2`` (Jinja2, autoescaped). ``retrospective``:
    the per-on-sale sections (:func:`onsale_obs.slo._retro_html.render_sections`, already
    HTML), placed after the on-sales.
    """
    if timeline is None:
        timeline = _now_only(report)
    template = template_env().get_template("report_page.html.j2")
    page = template.render(
        report=report,
        timeline=timeline,
        modes=tuple(modes),
        csp=Markup(CSP),
        stylesheet=Markup(STYLESHEET),
        header=_header(report),
        ordered=[(i, s, _worst(s, modes)) for i, s in _ordered(report, modes)],
        cards=_cards(report, timeline),
        retrospective=Markup(retrospective),
        sections=[_section(i, s, report, timeline, modes) for i, s in _ordered(report, modes)],
        colours=PRIORITY_COLOUR,
        routed=ROUTED,
        mode_title=MODE_TITLE,
        st_class={"ok": "ok", "breached": "breached", "burning": "burning"},
        sli_words=_sli_words,
        bad_words=_bad_words,
    )
    return page if page.endswith("\n") else page + "\n"


# ----------------------------------------------------------------------------- pieces


def _now_only(report: Report) -> AlertTimeline:
    """A timeline of one moment, the report's, from the rules the report evaluated."""
    firings = tuple(
        Firing(report.at, s.slo.name, mode, r.name, r.priority, r.long_burn, r.short_burn)
        for s in report.slos
        for mode, m in s.modes.items()
        for r in m.rules
        if r.firing and r.long_burn is not None and r.short_burn is not None
    )
    return AlertTimeline((report.at,), firings)


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _worst(s: SLOResult, modes: Iterable[Mode]) -> str:
    statuses = {s.modes[m].status for m in modes}
    return next((x for x in ("burning", "breached", "ok") if x in statuses), "no data")


def _budget_left(m: ModeResult, *, short: bool = False) -> str:
    if m.has_data and not m.allowed_bad:
        return "no budget" if short else "no budget (objective 100%)"
    left = m.budget_remaining
    if left is None:
        return "no data"
    text = budget_text(left)
    return f"{text} (overspent)" if left < 0 and not short else text


def _sli_words(slo: SLO) -> str:
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        what = f"availability (bad = {', '.join(sorted(sli.bad_codes))})"
    elif isinstance(sli, LatencySLI):
        limits = " / ".join(f"{format_duration(sli.threshold[m])} {MODE_TITLE[m]}" for m in MODES)
        what = f"latency (good = finished within {limits})"
    else:
        return "PromQL good / total"
    sel = sli.selector
    scope = " ".join([*sel.methods, *sel.routes]) or "all routes"
    return f"{what} of {sel.service}: {scope}"


def _bad_words(slo: SLO, bad: float, mode: Mode = "onsale") -> str:
    if isinstance(slo.sli, AvailabilitySLI):
        return f"{_count(bad)} {'error' if bad == 1 else 'errors'}"
    if isinstance(slo.sli, LatencySLI):
        return f"{_count(bad)} slower than {format_duration(slo.sli.threshold[mode])}"
    return f"{_count(bad)} bad"


@dataclass(frozen=True, slots=True)
class _Header:
    """The page header's figures: the window (None: several) and the notes."""

    window: tuple[float, float] | None
    window_seconds: float
    window_text: str
    notes: tuple[str, ...]


def _header(report: Report) -> _Header:
    windows = sorted({(s.window_start, s.window_end) for s in report.slos})
    notes = [f"warning: {w}" for w in report.warnings]
    if report.skipped:
        detail = ", ".join(f"{n:,} {r}" for r, n in sorted(report.skipped.items()))
        notes.append(f"skipped log lines: {detail}")
    if len(windows) == 1:
        a, b = windows[0]
        return _Header((a, b), b - a, "", tuple(notes))
    text = "differs per SLO (see each SLO)" if windows else "no SLOs"
    return _Header(None, 0.0, text, tuple(notes))


def _ordered(report: Report, modes: Sequence[Mode]) -> list[tuple[int, SLOResult]]:
    """SLOs failing first (burning, then breached), in spec order within each group."""
    rank = {"burning": 0, "breached": 1, "ok": 2, "no data": 3}
    return sorted(enumerate(report.slos), key=lambda p: (rank[_worst(p[1], modes)], p[0]))


@dataclass(frozen=True, slots=True)
class _CardRow:
    """One SLO's line on an on-sale's card."""

    slo: SLOResult
    onsale: OnSaleResult
    path: str
    objective: float
    missed: bool
    #: the on-sale error budget of the SLO window, in requests, and its JSON path
    allowed: float | None
    mode_path: str
    #: (priority, mode, rule, tooltip) of each rule that fired during the on-sale
    fired: tuple[tuple[Priority, Mode, str, str], ...]


@dataclass(frozen=True, slots=True)
class _Card:
    """One on-sale's card: its rows and the requests outside every on-sale's span."""

    scope: str
    start: float
    first: OnSaleResult
    rows: tuple[_CardRow, ...]
    outside: tuple[tuple[int, str, float], ...]


def _fired(
    timeline: AlertTimeline, slo: str, a: float, b: float
) -> tuple[tuple[Priority, Mode, str, str], ...]:
    """The rules of ``slo`` that fired within ``(a, b]``, with a tooltip saying when."""
    found: dict[tuple[Priority, Mode, str], list[float]] = {}
    for f in timeline.firings:
        if f.slo == slo and a < f.at <= b:
            found.setdefault((f.priority, f.mode, f.rule), []).append(f.at)
    return tuple(
        (
            prio,
            mode,
            rule,
            f"{MODE_TITLE[mode]} {rule} firing between {utc(min(times))} and {utc(max(times))}",
        )
        for (prio, mode, rule), times in sorted(found.items())
    )


def _cards(report: Report, timeline: AlertTimeline) -> list[_Card]:
    windows: dict[tuple[str, float], list[tuple[SLOResult, OnSaleResult]]] = {}
    for s in report.slos:
        for o in s.onsales:
            windows.setdefault((o.window.scope, o.window.start), []).append((s, o))
    cards = []
    for (scope, start), pairs in sorted(windows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        first = pairs[0][1]
        reach = first.end + timeline.grace
        rows = []
        for s, o in pairs:
            index = report.slos.index(s)
            objective = s.modes["onsale"].objective
            rows.append(
                _CardRow(
                    s,
                    o,
                    f"slos.{index}.onsales.{s.onsales.index(o)}",
                    objective,
                    o.sli is not None and o.sli < objective,
                    s.modes["onsale"].allowed_bad,
                    f"slos.{index}.modes.onsale",
                    _fired(timeline, s.slo.name, start, reach),
                )
            )
        # why the on-sale mode's requests differ from the on-sale rows (the JSON's
        # onsale_outside_windows), said once per card
        outside = tuple(
            (report.slos.index(s), s.slo.name, n)
            for s, _ in pairs
            if (n := s.onsale_outside_windows) is not None and n != 0
        )
        cards.append(_Card(scope, start, first, tuple(rows), outside))
    return cards


def _burn_chart(i: int, s: SLOResult, mode: Mode, grace: float) -> Markup:
    m = s.modes[mode]
    allowed = m.allowed_bad
    missing = None
    if m.note is not None:
        missing = m.note
    elif not m.has_data:
        missing = f"no {MODE_TITLE[mode]} requests in the window"
    elif not allowed:
        missing = "objective 100%: there is no error budget to burn"
    elif not m.burn_down:
        missing = "no burn-down was computed for this report"
    points: list[tuple[float, float]] = [(s.window_start, 1.0)]
    bad: list[float] = [0.0]
    bands = tuple((o.window.start, o.end) for o in s.onsales)
    if missing is None and allowed:
        for end, total, good in m.burn_down:
            v = 1 - (total - good) / allowed
            if mode == "onsale":
                # on-sale requests are only served in on-sale windows: a part of the
                # window (a day of 30) holding one on-sale spent its budget during that
                # on-sale, so the line steps there instead of sloping over the whole part
                prev = points[-1][0]
                overlap = [(a, b) for a, b in bands if a < end and b + grace > prev]
                if len(overlap) == 1 and prev <= overlap[0][0] and v != points[-1][1]:
                    a, b = overlap[0]
                    if prev < a:
                        points.append((a, points[-1][1]))
                        bad.append(bad[-1])
                    points.append((min(b + grace, end), v))
                    bad.append(total - good)
            points.append((end, v))
            bad.append(total - good)
    chart = BurnDown(
        mode, s.slo.name, s.window_start, s.window_end, tuple(points), tuple(bad), bands, missing
    )
    # the SVG escapes every text it holds (_html_svg.esc)
    return Markup(burn_down_svg(chart, f"slo{i}-{mode}-burn"))


@dataclass(frozen=True, slots=True)
class _ModeCard:
    """One mode's panel of an SLO."""

    mode: Mode
    result: ModeResult
    path: str
    #: (label, text, JSON key, data-format) of each figure
    figures: tuple[tuple[str, str, str, str], ...]
    left_words: str
    chart: Markup


def _mode_card(i: int, s: SLOResult, mode: Mode, grace: float) -> _ModeCard:
    m = s.modes[mode]
    left = None if m.allowed_bad is None else m.allowed_bad - m.bad
    figures = (
        ("objective", pct(m.objective, 2), "objective", "pct2"),
        ("requests", _count(m.total), "total", ""),
        ("SLI", pct(m.sli), "sli", "pct"),
        (
            "bad (budget spent)",
            _bad_words(s.slo, m.bad, mode) if m.has_data else "no data",
            "bad",
            "",
        ),
        (
            "allowed bad",
            "no data" if m.allowed_bad is None else _count(m.allowed_bad),
            "budget_requests.allowed",
            "",
        ),
        (
            "left (requests)",
            "no data" if left is None else _count(left),
            "budget_requests.left",
            "",
        ),
    )
    return _ModeCard(
        mode, m, f"slos.{i}.modes.{mode}", figures, _budget_left(m), _burn_chart(i, s, mode, grace)
    )


def _segments(timeline: AlertTimeline, report: Report) -> list[Segment]:
    """Runs of evaluated moments one step apart, labelled with the on-sales they cover."""
    runs: list[list[float]] = []
    for t in timeline.times:
        if runs and timeline.step > 0 and t - runs[-1][-1] <= 1.5 * timeline.step:
            runs[-1].append(t)
        else:
            runs.append([t])
    ranges = {
        (o.window.scope, o.window.start, o.end + timeline.grace)
        for s in report.slos
        for o in s.onsales
    }
    out = []
    for run in runs:
        a, b = run[0] - timeline.step, run[-1]
        scopes = sorted({sc for sc, x, y in ranges if x < b and y > a})
        if len(run) == 1 and not scopes:
            out.append(Segment(f"report time {utc(run[0])}", tuple(run), "now"))
        else:
            names = ", ".join(scopes) or "on-sale"
            out.append(Segment(f"{names} {utc(run[0])}", tuple(run), names))
    return out


def _next(timeline: AlertTimeline, index: dict[float, int], before: float, at: float) -> bool:
    """True when ``at`` is the evaluated moment right after ``before``, in the same on-sale."""
    adjacent = index.get(at, -2) - index.get(before, -9) == 1
    return adjacent and timeline.step > 0 and at - before <= 1.5 * timeline.step


def _episodes(
    s: SLOResult, timeline: AlertTimeline, modes: Sequence[Mode]
) -> list[tuple[Firing, Firing, list[Firing]]]:
    """Runs of consecutive evaluated moments at which the same rule fired."""
    index = {t: k for k, t in enumerate(timeline.times)}
    runs: dict[tuple[Mode, str], list[list[Firing]]] = {}
    for f in sorted(timeline.firings, key=lambda f: f.at):
        if f.slo != s.slo.name or f.mode not in modes:
            continue
        lists = runs.setdefault((f.mode, f.rule), [])
        if lists and _next(timeline, index, lists[-1][-1].at, f.at):
            lists[-1].append(f)
        else:
            lists.append([f])
    flat = [(r[0], r[-1], r) for lists in runs.values() for r in lists]
    return sorted(flat, key=lambda e: (e[0].at, e[0].priority))


@dataclass(frozen=True, slots=True)
class _Episode:
    """A run of consecutive evaluated moments at which one rule fired."""

    first: Firing
    last: Firing
    moments: int
    long: float
    short: float


@dataclass(frozen=True, slots=True)
class _Section:
    """One SLO's section: its mode panels, alert timeline and firing episodes."""

    index: int
    slo: SLOResult
    worst: str
    healthy_line: str
    cards: tuple[_ModeCard, ...]
    timeline: Markup
    episodes: tuple[_Episode, ...]


def _section(
    i: int, s: SLOResult, report: Report, timeline: AlertTimeline, modes: Sequence[Mode]
) -> _Section:
    lanes = [Lane(m, r.name, r.priority) for m in reversed(modes) for r in s.slo.policy[m]]
    firing = {(f.mode, f.rule, f.at): f for f in timeline.firings if f.slo == s.slo.name}
    svg = timeline_svg(f"slo{i}-timeline", s.slo.name, lanes, _segments(timeline, report), firing)
    episodes = tuple(
        _Episode(
            first, last, len(run), max(f.long_burn for f in run), max(f.short_burn for f in run)
        )
        for first, last, run in _episodes(s, timeline, modes)
    )
    return _Section(
        i,
        s,
        _worst(s, modes),
        _healthy_line(s, modes),
        tuple(_mode_card(i, s, m, timeline.grace) for m in modes),
        Markup(svg),  # the SVG escapes every text it holds (_html_svg.esc)
        episodes,
    )


def _healthy_line(s: SLOResult, modes: Sequence[Mode]) -> str:
    parts = []
    for mode in modes:
        m = s.modes[mode]
        if m.has_data:
            parts.append(f"{MODE_TITLE[mode]} {_count(m.bad)} bad of {_count(m.allowed_bad or 0)}")
    return "; ".join(parts) or "no requests"
