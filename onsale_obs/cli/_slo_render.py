"""SLO reports for people: rich tables (normal and on-sale side by side) or markdown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from onsale_obs.cli._output import fmt_duration, fmt_time
from onsale_obs.durations import format_duration
from onsale_obs.slo._report import ModeResult, OnSaleResult, Report, SLOResult
from onsale_obs.slo._spec import severity_of
from onsale_obs.types import Mode

_MODE_TITLE = {"normal": "normal", "onsale": "on-sale"}


#: columns that keep their words on one line (times, names, states): they never wrap
_ONE_LINE = frozenset({"SLO", "scope", "mode", "rule", "priority", "status", "time", "firing"})
#: a wrapping column is planned at least this wide (it may shrink to its longest word)
_WRAP_MIN = 12
#: the table's own characters per column (two spaces of padding and a border)
_PER_COLUMN = 3


@dataclass
class Grid:
    """A titled table of strings that renders as a rich table or as markdown.

    ``drop`` names the columns a narrow terminal may hide, the first named first; every other
    column (the status among them) always stays. Long text columns wrap rather than cut.
    """

    title: str
    headers: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)
    drop: Sequence[str] = ()

    def add(self, row: list[str], style: str | None = None) -> None:
        """Append a row (``style`` colours it in the terminal)."""
        self.rows.append(row)
        self.styles.append(style)

    def _wraps(self, index: int) -> bool:
        header = self.headers[index]
        if _numeric(header) or header in _ONE_LINE:
            return False
        return any(" " in row[index] for row in self.rows)

    def _natural(self, index: int) -> int:
        """The width a column needs: whole cells, or a readable slice when it wraps."""
        widest = max([len(self.headers[index]), *(len(r[index]) for r in self.rows)])
        if self._wraps(index):
            longest_word = max(
                [len(w) for r in self.rows for w in r[index].split()] + [len(self.headers[index])]
            )
            return min(widest, max(_WRAP_MIN, longest_word))
        return widest

    def shown(self, width: int | None) -> list[int]:
        """Indexes of the columns that fit in ``width`` characters (None: all of them)."""
        keep = list(range(len(self.headers)))
        if width is None:
            return keep
        need = {i: self._natural(i) + _PER_COLUMN for i in keep}
        # the listed columns first, then any but the first and the status, right to left
        last = [i for i in reversed(keep[1:]) if self.headers[i] != "status"]
        order = [self.headers.index(h) for h in self.drop if h in self.headers]
        for i in [*order, *(i for i in last if i not in order)]:
            if sum(need[k] for k in keep) + 1 <= width:
                break
            keep.remove(i)
        return keep

    def _sizes(self, keep: list[int], width: int | None) -> dict[int, int]:
        """Each column's width: whole cells, wrapping columns sharing what is left."""
        full = {i: max([len(self.headers[i]), *(len(r[i]) for r in self.rows)]) for i in keep}
        wrapping = [i for i in keep if self._wraps(i)]
        if width is None or not wrapping:
            return full
        fixed = sum(full[i] for i in keep if i not in wrapping) + _PER_COLUMN * len(keep) + 1
        room = width - fixed
        if sum(full[i] for i in wrapping) <= room:
            return full
        sizes = dict(full)
        floor = {i: self._longest_word(i) for i in wrapping}
        spare = max(room - sum(floor.values()), 0)
        extra = sum(full[i] - floor[i] for i in wrapping) or 1
        for i in wrapping:
            sizes[i] = floor[i] + (full[i] - floor[i]) * spare // extra
        return sizes

    def _longest_word(self, index: int) -> int:
        return max(
            [len(w) for r in self.rows for w in r[index].split()] + [len(self.headers[index])]
        )

    def rich(self, width: int | None = None) -> Table:
        """The rich table, fitted to ``width`` columns: hidden columns are named below it."""
        keep = self.shown(width)
        hidden = [h for i, h in enumerate(self.headers) if i not in keep]
        caption = (
            f"hidden at {width} columns: {', '.join(hidden)} (widen the terminal, or --format json)"
            if hidden
            else None
        )
        table = Table(
            title=self.title, title_justify="left", caption=caption, caption_justify="left"
        )
        sizes = self._sizes(keep, width)
        for i in keep:
            h = self.headers[i]
            table.add_column(
                h,
                justify="right" if _numeric(h) else "left",
                no_wrap=not self._wraps(i),
                width=sizes[i],
                overflow="fold",
            )
        for row, style in zip(self.rows, self.styles, strict=True):
            table.add_row(*(row[i] for i in keep), style=style)
        return table

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table under a heading."""
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "|".join("---:" if _numeric(h) else "---" for h in self.headers) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _numeric(header: str) -> bool:
    return header.split(" ")[-1] in {
        "SLI",
        "objective",
        "left",
        "requests",
        "bad",
        "used",
        "rps",
        "long",
        "short",
        "threshold",
        "bad/allowed",
    }


def percent(value: float | None, digits: int = 3) -> str:
    """``0.99953`` -> ``99.953%``; None -> ``no data``."""
    return "no data" if value is None else f"{value * 100:,.{digits}f}%"


def count(value: float) -> str:
    """Whole counts with separators; estimates with two decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _alert(m: ModeResult) -> str:
    alert = m.alert
    return "-" if alert is None else f"{alert.priority} {alert.name}"


def _style(statuses: Iterable[str], paging: bool) -> str | None:
    s = set(statuses)
    if paging:
        return "bold red"
    if "burning" in s or "breached" in s:
        return "yellow"
    return None


def summary_grid(report: Report, modes: Sequence[Mode]) -> Grid:
    """One row per SLO: requests, SLI against objective, budget left and alert per mode."""
    headers = ["SLO"]
    for mode in modes:
        t = _MODE_TITLE[mode]
        headers += [f"{t} requests", f"{t} SLI / objective", f"{t} bad/allowed", f"{t} alert"]
    drop = [
        f"{_MODE_TITLE[m]} {what}"
        for what in ("requests", "alert", "SLI / objective")
        for m in ("normal", "onsale")
    ]
    grid = Grid(
        f"SLOs at {fmt_time(report.at)}  ({report.origin})", [*headers, "status"], drop=drop
    )
    for s in report.slos:
        row = [s.slo.name]
        for mode in modes:
            m = s.modes[mode]
            row += [
                count(m.total),
                f"{percent(m.sli)} / {percent(m.objective, 2)}",
                _bad_of_allowed(m),
                _alert(m),
            ]
        statuses = [s.modes[m].status for m in modes]
        worst = next((x for x in ("burning", "breached", "ok") if x in statuses), "no data")
        paging = any(
            (a := s.modes[m].alert) is not None and severity_of(a.priority) == "page" for m in modes
        )
        grid.add([*row, worst], _style(statuses, paging))
    return grid


def _bad_of_allowed(m: ModeResult) -> str:
    """The error budget in requests: ``331 / 0.28`` (bad requests / the bad ones allowed)."""
    if not m.has_data or m.allowed_bad is None:
        return "no data"
    return f"{count(m.bad)} / {count(m.allowed_bad)}"


def budget_lines(report: Report, mode: Mode) -> list[str]:
    """One sentence per SLO that spent budget in ``mode``, in requests (percent after):
    ``checkout-availability, on-sale: 331 bad requests against 0.28 allowed (overspent by
    330.72; -117,736% of the budget left)``. Failing SLOs first."""
    spent = [
        (s, m)
        for s in report.slos
        if (m := s.modes[mode]).has_data and m.allowed_bad is not None and m.bad > 0
    ]
    spent.sort(key=lambda p: (p[1].bad <= (p[1].allowed_bad or 0.0), -p[1].bad))
    lines = []
    for s, m in spent:
        allowed = m.allowed_bad or 0.0
        left = allowed - m.bad
        share = percent(m.budget_remaining, 1)
        words = (f"overspent by {count(-left)}" if left < 0 else f"{count(left)} left") + (
            "" if m.budget_remaining is None else f"; {share} of the budget left"
        )
        noun = "bad request" if m.bad == 1 else "bad requests"
        lines.append(
            f"{s.slo.name}, {_MODE_TITLE[mode]}: {count(m.bad)} {noun} against "
            f"{count(allowed)} allowed ({words})"
        )
    return lines


def burn_grid(report: Report, modes: Sequence[Mode]) -> Grid:
    """Every alert rule of every SLO and mode: both windows' burn rates against the threshold."""
    grid = Grid(
        "burn rates (fires when long and short reach the threshold with enough bad events)",
        [
            "SLO",
            "mode",
            "rule",
            "windows",
            "priority",
            "long",
            "short",
            "threshold",
            "bad",
            "firing",
        ],
        drop=["windows", "bad", "threshold", "priority"],
    )
    for s in report.slos:
        for mode in modes:
            m = s.modes[mode]
            if m.note is not None:
                grid.add([s.slo.name, _MODE_TITLE[mode], "-", "-", "-", "-", "-", "-", "-", m.note])
            for r in m.rules:
                if r.long_burn is None and r.short_burn is None:
                    continue  # no traffic in either window: nothing to show
                grid.add(
                    [
                        s.slo.name,
                        _MODE_TITLE[mode],
                        r.name,
                        f"{format_duration(r.long)}/{format_duration(r.short)}",
                        r.priority,
                        _burn(r.long_burn),
                        _burn(r.short_burn),
                        f"{r.burn_rate:g}x",
                        f"{count(r.long_bad)} (min {r.min_bad_events})",
                        "FIRING" if r.firing else "no",
                    ],
                    "bold red" if r.firing else None,
                )
    return grid


def onsales_grid(results: Iterable[tuple[SLOResult, OnSaleResult]]) -> Grid:
    """One row per SLO and on-sale window: how that on-sale went."""
    grid = Grid(
        "on-sales",
        [
            "SLO",
            "scope",
            "start",
            "end",
            "duration",
            "requests",
            "bad",
            "SLI",
            "budget used",
            "peak rps",
            "whole on-sale",
            "status",
        ],
        drop=["peak rps", "duration", "end", "whole on-sale", "start", "budget used", "scope"],
    )
    for s, o in results:
        objective = s.modes["onsale"].objective
        sli = o.sli
        grid.add(
            [
                s.slo.name,
                o.window.scope + (" (auto)" if o.window.source == "auto" else ""),
                fmt_time(o.window.start),
                "ongoing" if o.window.end is None else fmt_time(o.end),
                fmt_duration(o.end - o.window.start),
                count(o.total),
                count(o.bad),
                percent(sli),
                percent(o.budget_consumed, 1),
                "-" if o.peak_rps is None else f"{o.peak_rps:,.1f}",
                _whole(o),
                "no data" if sli is None else "missed" if sli < objective else "ok",
            ],
            "bold red" if sli is not None and sli < objective else None,
        )
    return grid


def _whole(o: OnSaleResult) -> str:
    """For an on-sale clipped to the window: where it really began and its whole counts."""
    w = o.whole
    if w is None:
        return "-"
    return f"clipped: began {fmt_time(w.window.start)}, {count(w.total)} req, {count(w.bad)} bad"


def all_onsales(report: Report) -> list[tuple[SLOResult, OnSaleResult]]:
    """Every (SLO, on-sale) pair, oldest on-sale first."""
    pairs = [(s, o) for s in report.slos for o in s.onsales]
    return sorted(pairs, key=lambda p: (p[1].window.start, p[1].window.scope, p[0].slo.name))


def print_grids(
    console: Console, grids: Sequence[Grid], markdown: bool, notes: Sequence[str]
) -> None:
    """Render grids (skipping empty ones) and notes, as rich tables or markdown."""
    shown = [g for g in grids if g.rows]
    if markdown:
        text = "\n\n".join(g.markdown() for g in shown)
        if notes:
            text += "\n\n" + "\n".join(f"> {n}" for n in notes)
        console.print(text, soft_wrap=True)
        return
    for g in shown:
        console.print(g.rich(console.width))
    for n in notes:
        console.print(n, style="dim")
