"""The HTML report (``slo report --format html``): one self-contained file for a retrospective.

No network at all: inline CSS, inline SVG charts, no scripts, no fonts or images to fetch, and
a Content-Security-Policy that forbids loading anything should a resource ever slip in. Every
piece of user text (SLO names, scopes, reasons, paths, warnings) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

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
    esc,
    iso,
    pct,
    timeline_svg,
    utc,
)
from onsale_obs.slo._report import ModeResult, OnSaleResult, Report, SLOResult
from onsale_obs.slo._retro_html import ROUTED
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

    ``retrospective``: the per-on-sale sections (:mod:`onsale_obs.slo._retro_html`), placed
    after the on-sales.
    """
    if timeline is None:
        timeline = _now_only(report)
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="onsale-obs">',
        f"<title>SLO report {esc(utc(report.at))}</title>",
        f"<style>{STYLESHEET}</style>",
        "</head>",
        "<body>",
        '<a class="skip" href="#slos">Skip to the SLOs</a>',
        _header(report, timeline),
        "<main>",
        _summary(report, modes),
    ]
    if "onsale" in modes:
        parts.append(_onsales(report, timeline))
        parts.append(retrospective)
    parts.append('<div id="slos">')
    parts += [_slo(i, s, report, timeline, modes) for i, s in _ordered(report, modes)]
    parts += ["</div>", "</main>", _footer(), "</body>", "</html>", ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- pieces


def _routed(priority: Priority) -> str:
    """Where Alertmanager sends a priority (P4 goes to "info", see generate/_alertmanager.py)."""
    return ROUTED[priority]


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


def _time(ts: float, *, seconds: bool = False) -> str:
    return f'<time datetime="{iso(ts)}">{esc(utc(ts, seconds=seconds))}</time>'


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _prio(priority: Priority, tip: str | None = None) -> str:
    """A priority chip in its colour (white on a dark colour: readable)."""
    title = "" if tip is None else f' title="{esc(tip)}"'
    return (
        f'<span class="prio" style="--c:{PRIORITY_COLOUR[priority]}"{title}>{esc(priority)}</span>'
    )


def _status(status: str) -> str:
    css = {"ok": "ok", "breached": "breached", "burning": "burning"}.get(status, "nodata")
    return f'<span class="pill st-{css}">{esc(status)}</span>'


def _worst(s: SLOResult, modes: Iterable[Mode]) -> str:
    statuses = {s.modes[m].status for m in modes}
    return next((x for x in ("burning", "breached", "ok") if x in statuses), "no data")


def _budget_requests(m: ModeResult, path: str) -> str:
    """``3 bad of 0.2 allowed`` with the share left beneath it (percentages secondary)."""
    if not m.has_data:
        return "no data"
    allowed = m.allowed_bad or 0.0
    share = (
        ""
        if not allowed
        else (
            f'<br><span class="secondary"><span data-json="{path}.budget_remaining" '
            f'data-format="budget">{esc(budget_text(m.budget_remaining or 0.0))}</span> left</span>'
        )
    )
    return (
        f'<span data-json="{path}.bad">{_count(m.bad)}</span> bad of '
        f'<span data-json="{path}.budget_requests.allowed">{_count(allowed)}</span> allowed'
        f"{share}"
    )


def _budget_left(m: ModeResult, *, short: bool = False) -> str:
    if m.has_data and not m.allowed_bad:
        return "no budget" if short else "no budget (objective 100%)"
    left = m.budget_remaining
    if left is None:
        return "no data"
    text = budget_text(left)
    return f"{text} (overspent)" if left < 0 and not short else text


def _share(consumed: float | None) -> str:
    return "no data" if consumed is None else budget_text(consumed)


def _bar(left: float | None) -> str:
    if left is None:
        return '<div class="bar nodata" aria-hidden="true"></div>'
    share = min(max(left, 0.0), 1.0) * 100
    tone = "low" if left < 0.25 else "mid" if left < 0.5 else "high"
    return f'<div class="bar" aria-hidden="true"><span class="{tone}" style="width:{share:.1f}%"></span></div>'


def _alert(m: ModeResult, *, short: bool = False) -> str:
    alert = m.alert
    if alert is None:
        none = "none" if short else "none firing"
        return f'<span class="muted">{none}</span>' if m.has_data else "no data"
    if short:
        return f'<span class="nowrap">{_prio(alert.priority)} {esc(alert.name)}</span>'
    return f"{_prio(alert.priority)} {esc(alert.name)} firing ({_routed(alert.priority)})"


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


def _header(report: Report, timeline: AlertTimeline) -> str:
    windows = sorted({(s.window_start, s.window_end) for s in report.slos})
    if len(windows) == 1:
        a, b = windows[0]
        window = f"{_time(a)} to {_time(b)} ({esc(format_duration(b - a))})"
    elif windows:
        window = "differs per SLO (see each SLO)"
    else:
        window = "no SLOs"
    if timeline.step > 0:
        how = (
            f"every {esc(format_duration(timeline.step))} from each on-sale's start to its end "
            f"+ {esc(format_duration(timeline.grace))} grace, and at the report time "
            f"({len(timeline.times):,} moments)"
        )
    else:
        how = "at the report time only"
    notes = [f"warning: {w}" for w in report.warnings]
    if report.skipped:
        detail = ", ".join(f"{n:,} {r}" for r, n in sorted(report.skipped.items()))
        notes.append(f"skipped log lines: {detail}")
    verdict = (
        '<span class="pill st-burning">failing</span>'
        if report.failing
        else '<span class="pill st-ok">within objectives</span>'
    )
    rows = [
        ("Report time", _time(report.at, seconds=True)),
        ("Source", f"<code>{esc(report.origin)}</code>"),
        ("Window", window),
        (
            "On-sale counts",
            "exact" if report.exact_onsale else "estimates (Prometheus increase() extrapolation)",
        ),
        ("Alert rules evaluated", how),
    ]
    items = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in rows)
    note_list = (
        '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
        if notes
        else ""
    )
    return (
        f'<header class="top"><h1>SLO report: on-sales and normal time {verdict}</h1>'
        '<p class="lead">Each mode has its own error budget: a request counts in the budget of '
        "the mode it was served in.</p>"
        f'<dl class="meta">{items}</dl>{note_list}</header>'
    )


def _ordered(report: Report, modes: Sequence[Mode]) -> list[tuple[int, SLOResult]]:
    """SLOs failing first (burning, then breached), in spec order within each group."""
    rank = {"burning": 0, "breached": 1, "ok": 2, "no data": 3}
    return sorted(enumerate(report.slos), key=lambda p: (rank[_worst(p[1], modes)], p[0]))


def _summary(report: Report, modes: Sequence[Mode]) -> str:
    head = "".join(f'<th scope="col" colspan="3" class="m-{m}">{MODE_TITLE[m]}</th>' for m in modes)
    sub = "".join(
        '<th scope="col" class="num">SLI / objective</th><th scope="col" class="num">error '
        'budget (requests)</th><th scope="col">alert</th>'
        for _ in modes
    )
    rows = []
    for i, s in _ordered(report, modes):
        cells = "".join(
            f'<td class="num"><span data-json="slos.{i}.modes.{x}.sli" data-format="pct">'
            f"{esc(pct(m.sli))}</span> / {esc(pct(m.objective, 2))}</td>"
            f'<td class="num">{_budget_requests(m, f"slos.{i}.modes.{x}")}</td>'
            f"<td>{_alert(m, short=True)}</td>"
            for x, m in ((x, s.modes[x]) for x in modes)
        )
        rows.append(
            f'<tr><th scope="row"><a href="#slo-{i}">{esc(s.slo.name)}</a></th>'
            f"<td>{_status(_worst(s, modes))}</td>{cells}</tr>"
        )
    body = "".join(rows) or f'<tr><td colspan="{2 + 3 * len(modes)}">no SLOs</td></tr>'
    return (
        '<section id="summary"><h2>Summary</h2><div class="scroll"><table class="grid">'
        f'<thead><tr><th rowspan="2" scope="col">SLO</th><th rowspan="2" scope="col">status</th>'
        f"{head}</tr><tr>{sub}</tr></thead>"
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _during(timeline: AlertTimeline, slo: str, a: float, b: float) -> str:
    """The rules of ``slo`` that fired within ``(a, b]``, as priority chips."""
    found: dict[tuple[Priority, Mode, str], list[float]] = {}
    for f in timeline.firings:
        if f.slo == slo and a < f.at <= b:
            found.setdefault((f.priority, f.mode, f.rule), []).append(f.at)
    if not found:
        return '<span class="muted">none</span>'
    chips = []
    for (prio, mode, rule), times in sorted(found.items()):
        tip = f"{MODE_TITLE[mode]} {rule} firing between {utc(min(times))} and {utc(max(times))}"
        chips.append(f"{_prio(prio, tip)} {esc(MODE_TITLE[mode])} {esc(rule)}")
    return "<br>".join(chips)


def _onsales(report: Report, timeline: AlertTimeline) -> str:
    windows: dict[tuple[str, float], list[tuple[SLOResult, OnSaleResult]]] = {}
    for s in report.slos:
        for o in s.onsales:
            windows.setdefault((o.window.scope, o.window.start), []).append((s, o))
    if not windows:
        return (
            '<section id="onsales"><h2>On-sales</h2><p class="empty">No on-sale in the '
            "window: no data for on-sale windows.</p></section>"
        )
    cards = []
    for (scope, start), pairs in sorted(windows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        first = pairs[0][1]
        ongoing = first.window.end is None
        reach = first.end + timeline.grace
        rows = []
        for s, o in pairs:
            index = report.slos.index(s)
            path = f"slos.{index}.onsales.{s.onsales.index(o)}"
            clip = (
                ""
                if o.whole is None
                else f'<br><span class="secondary">clipped to the window; whole on-sale from '
                f"{esc(utc(o.whole.window.start))}: {_count(o.whole.total)} requests, "
                f"{_count(o.whole.bad)} bad</span>"
            )
            objective = s.modes["onsale"].objective
            missed = o.sli is not None and o.sli < objective
            rows.append(
                f'<tr class="{"missed" if missed else ""}"><th scope="row">{esc(s.slo.name)}</th>'
                f'<td class="num" data-json="{path}.total">{_count(o.total)}</td>'
                f'<td class="num" data-json="{path}.bad">{esc(_bad_words(s.slo, o.bad))}</td>'
                f'<td class="num" data-json="{path}.sli" data-format="pct">{esc(pct(o.sli))}</td>'
                f'<td class="num">{esc(pct(objective, 2))}</td>'
                f'<td class="num"><span data-json="{path}.budget_consumed" data-format="budget">'
                f"{esc(_share(o.budget_consumed))}</span>{clip}</td>"
                f'<td class="num">{"-" if o.peak_rps is None else f"{o.peak_rps:,.1f}"}</td>'
                f"<td>{_during(timeline, s.slo.name, start, reach)}</td></tr>"
            )
        reason = (
            f' <span class="reason">{esc(first.window.reason)}</span>'
            if first.window.reason
            else ""
        )
        badge = ' <span class="pill st-burning">ongoing</span>' if ongoing else ""
        if first.window.source == "auto":  # put on sale by the surge detector (mode auto)
            badge += ' <span class="pill source-auto">auto</span>'
        cards.append(
            f'<article class="card onsale"><h3><span class="scope">{esc(scope)}</span>{reason}{badge}</h3>'
            f'<p class="when">{_time(start)} to {_time(first.end)} '
            f"({esc(format_duration(max(first.end - start, 1)))})</p>"
            '<div class="scroll"><table class="grid"><thead><tr><th scope="col">SLO</th>'
            '<th scope="col" class="num">requests</th><th scope="col" class="num">bad</th>'
            '<th scope="col" class="num">SLI</th><th scope="col" class="num">objective</th>'
            '<th scope="col" class="num">budget share</th><th scope="col" class="num">peak rps'
            '</th><th scope="col">alerts fired</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{_outside(report, pairs)}</article>"
        )
    return (
        '<section id="onsales"><h2>On-sales</h2><p class="hint">Budget share: the part of the '
        "SLO window's whole on-sale error budget this on-sale spent. Requests that finished "
        "within the spec's grace (onsale_grace"
        f"{f', {esc(format_duration(timeline.grace))}' if timeline.grace else ''}) after an "
        f"on-sale ended still count in it.</p>{''.join(cards)}</section>"
    )


def _outside(report: Report, pairs: list[tuple[SLOResult, OnSaleResult]]) -> str:
    """Why the on-sale mode's requests differ from the on-sale rows (see the JSON's
    ``onsale_outside_windows``), said once per card."""
    found = [
        (report.slos.index(s), s.slo.name, n)
        for s, _ in pairs
        if (n := s.onsale_outside_windows) is not None and n != 0
    ]
    if not found:
        return ""
    listed = ", ".join(
        f'{esc(name)} <span data-json="slos.{i}.onsale_outside_windows">{_count(n)}</span>'
        for i, name, n in found
    )
    return (
        '<p class="hint">Why the on-sale panels below count more requests than this card: '
        f"{listed} requests served in on-sale mode fall outside every on-sale's counting span. "
        "A panel counts every request served in on-sale mode inside the SLO window; this card "
        "counts the requests that finished after the on-sale's first instant, up to its end + "
        "grace (spans are half-open, (start, end], like Prometheus range selectors). Requests "
        "logged at the very instant the on-sale began, or after the grace, are in the panel "
        "and not the card.</p>"
    )


def _burn_chart(i: int, s: SLOResult, mode: Mode) -> str:
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
    if missing is None and allowed:
        for end, total, good in m.burn_down:
            points.append((end, 1 - (total - good) / allowed))
            bad.append(total - good)
    bands = tuple((o.window.start, o.end) for o in s.onsales)
    chart = BurnDown(
        mode, s.slo.name, s.window_start, s.window_end, tuple(points), tuple(bad), bands, missing
    )
    return burn_down_svg(chart, f"slo{i}-{mode}-burn")


def _rules(m: ModeResult) -> str:
    if m.note is not None:
        return f'<p class="muted">{esc(m.note)}</p>'
    rows = []
    for r in m.rules:
        long = "-" if r.long_burn is None else f"{r.long_burn:,.2f}x"
        short = "-" if r.short_burn is None else f"{r.short_burn:,.2f}x"
        rows.append(
            f'<tr class="{"firing" if r.firing else ""}"><td>{esc(r.name)}</td>'
            f"<td>{_prio(r.priority)} {_routed(r.priority)}</td>"
            f"<td>{esc(format_duration(r.long))} / {esc(format_duration(r.short))}</td>"
            f'<td class="num">{long}</td><td class="num">{short}</td>'
            f'<td class="num">{r.burn_rate:g}x</td>'
            f"<td>{'<strong>firing</strong>' if r.firing else 'no'}</td></tr>"
        )
    return (
        '<table class="grid rules"><caption>Burn rates now (fires when long and short reach '
        "the threshold with enough bad events)</caption><thead><tr>"
        '<th scope="col">rule</th><th scope="col">priority</th><th scope="col">windows</th>'
        '<th scope="col" class="num">long</th><th scope="col" class="num">short</th>'
        '<th scope="col" class="num">threshold</th><th scope="col">firing</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _mode_card(i: int, s: SLOResult, mode: Mode) -> str:
    m = s.modes[mode]
    path = f"slos.{i}.modes.{mode}"
    left = None if m.allowed_bad is None else m.allowed_bad - m.bad
    figures = [
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
    ]
    items = "".join(
        f"<div><dt>{k}</dt><dd"
        + (f' data-json="{path}.{key}"' if key else "")
        + (f' data-format="{fmt}"' if fmt else "")
        + f">{esc(v)}</dd></div>"
        for k, v, key, fmt in figures
    )
    items += (
        f'<div class="wide"><dt>budget left</dt><dd class="secondary">{esc(_budget_left(m))}'
        "</dd></div>"
    )
    return (
        f'<article class="card mode m-{mode}"><h3>{MODE_TITLE[mode]} time {_status(m.status)}</h3>'
        f'<dl class="figures">{items}<div class="wide"><dt>alert</dt><dd>{_alert(m)}</dd></div>'
        f"</dl>{_bar(m.budget_remaining)}"
        f"<figure>{_burn_chart(i, s, mode)}<figcaption>Error budget left over the window"
        f"{' (on-sales shaded)' if s.onsales else ''}.</figcaption></figure>"
        f"{_rules(m)}</article>"
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


def _timeline(
    i: int, s: SLOResult, report: Report, timeline: AlertTimeline, modes: Sequence[Mode]
) -> str:
    lanes = [Lane(m, r.name, r.priority) for m in reversed(modes) for r in s.slo.policy[m]]
    firing = {(f.mode, f.rule, f.at): f for f in timeline.firings if f.slo == s.slo.name}
    svg = timeline_svg(f"slo{i}-timeline", s.slo.name, lanes, _segments(timeline, report), firing)
    legend = "".join(f"<span>{_prio(p)} {_routed(p)}</span>" for p in PRIORITY_COLOUR)
    rows = []
    for first, last, run in _episodes(s, timeline, modes):
        rows.append(
            f"<tr><td>{MODE_TITLE[first.mode]}</td><td>{esc(first.rule)}</td>"
            f"<td>{_prio(first.priority)} {_routed(first.priority)}</td>"
            f"<td>{_time(first.at)}</td><td>{_time(last.at)}</td>"
            f'<td class="num">{len(run):,}</td>'
            f'<td class="num">{max(f.long_burn for f in run):,.1f}x</td>'
            f'<td class="num">{max(f.short_burn for f in run):,.1f}x</td></tr>'
        )
    table = (
        '<table class="grid"><caption>Firing episodes (consecutive evaluated moments)</caption>'
        '<thead><tr><th scope="col">mode</th><th scope="col">rule</th><th scope="col">priority'
        '</th><th scope="col">first firing</th><th scope="col">last firing</th>'
        '<th scope="col" class="num">moments</th><th scope="col" class="num">peak long burn</th>'
        '<th scope="col" class="num">peak short burn</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">No rule fired at any evaluated moment.</p>'
    )
    return (
        f'<h3>Alert timeline</h3><figure class="wide">{svg}<figcaption class="legend">'
        f"{legend}<span>Only evaluated moments are drawn; gaps separate on-sales.</span>"
        f"</figcaption></figure>{table}"
    )


def _slo(
    i: int, s: SLOResult, report: Report, timeline: AlertTimeline, modes: Sequence[Mode]
) -> str:
    slo = s.slo
    facts = [
        f"service <strong>{esc(slo.service)}</strong>",
        esc(_sli_words(slo)),
        f"window {_time(s.window_start)} to {_time(s.window_end)}"
        + (" (calendar month)" if slo.calendar_month else ""),
    ]
    if slo.runbook:
        if slo.runbook.startswith(("https://", "http://")):
            facts.append(
                f'runbook <a href="{esc(slo.runbook)}" rel="noreferrer">{esc(slo.runbook)}</a>'
            )
        else:
            facts.append(f"runbook {esc(slo.runbook)}")
    desc = f'<p class="desc">{esc(slo.description)}</p>' if slo.description else ""
    cards = "".join(_mode_card(i, s, m) for m in modes)
    worst = _worst(s, modes)
    if worst in ("ok", "no data"):  # healthy: one line, the detail a click away
        return (
            f'<section class="slo" id="slo-{i}" aria-labelledby="slo-{i}-h">'
            f'<details class="healthy"><summary id="slo-{i}-h">{esc(slo.name)} {_status(worst)}'
            f' <span class="secondary">{esc(_healthy_line(s, modes))}</span></summary>{desc}'
            f'<p class="facts">{" · ".join(facts)}</p><div class="modes">{cards}</div>'
            f"{_timeline(i, s, report, timeline, modes)}</details></section>"
        )
    return (
        f'<section class="slo" id="slo-{i}" aria-labelledby="slo-{i}-h">'
        f'<h2 id="slo-{i}-h">{esc(slo.name)} {_status(_worst(s, modes))}</h2>{desc}'
        f'<p class="facts">{" · ".join(facts)}</p>'
        f'<div class="modes">{cards}</div>{_timeline(i, s, report, timeline, modes)}</section>'
    )


def _healthy_line(s: SLOResult, modes: Sequence[Mode]) -> str:
    parts = []
    for mode in modes:
        m = s.modes[mode]
        if m.has_data:
            parts.append(f"{MODE_TITLE[mode]} {_count(m.bad)} bad of {_count(m.allowed_bad or 0)}")
    return "; ".join(parts) or "no requests"


def _footer() -> str:
    return (
        "<footer><p>Generated by onsale-obs (<code>onsale-obs slo report --format html</code>). "
        "SLI = good / total over the window; budget left = 1 - bad / (total x (1 - objective)); "
        "a burn rate of 1x spends the budget exactly over the window. <em>no data</em> means "
        "the mode saw no requests, never 100%. The same numbers as JSON: "
        "<code>--format json</code>.</p></footer>"
    )
