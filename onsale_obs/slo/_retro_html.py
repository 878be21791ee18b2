"""The per-on-sale retrospective: Jinja2 templates (autoescaped) around matplotlib charts.

Every figure that also is in the JSON report carries ``data-json="<path>"`` naming it there
(``slos.0.onsales.1.bad``), so a test, or a reader, can trace it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from onsale_obs.durations import format_duration
from onsale_obs.slo._html_svg import budget_text, iso, pct, utc
from onsale_obs.slo._report import OnSaleResult, Report, SLOResult
from onsale_obs.slo._retro import AlertTimes, Decision, OnSaleMinutes, alert_times
from onsale_obs.slo._spec import LatencySLI, Priority
from onsale_obs.slo._timeline import Firing

CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

#: where Alertmanager sends each priority (generate/_alertmanager.py): P4 goes to "info"
ROUTED: Final[dict[Priority, str]] = {"P1": "page", "P2": "page", "P3": "ticket", "P4": "info"}


def count(value: float | None) -> str:
    """Whole counts with separators, estimates and fractions of a request with two decimals."""
    if value is None:
        return "no data"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def template_env() -> Environment:
    """The Jinja2 environment of every HTML page (autoescaped), with the report's filters."""
    env = Environment(
        loader=PackageLoader("onsale_obs.slo", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=count,
        pct=pct,
        budget=budget_text,
        utc=utc,
        iso=iso,
        clock=lambda ts: utc(ts)[11:],
        rate=lambda v: "-" if v is None else f"{v:,.1f}".removesuffix(".0"),
        whole=lambda v: "-" if v is None else f"{v:,.0f}",
        duration=lambda s: format_duration(max(s, 1)) if s >= 1 else "0s",
    )
    return env


@dataclass(frozen=True, slots=True)
class SLORow:
    """One SLO's line in an on-sale's table (indexes locate it in the JSON report)."""

    slo: SLOResult
    onsale: OnSaleResult
    slo_index: int
    onsale_index: int
    missed: bool
    allowed: float | None
    times: AlertTimes
    traces: tuple[tuple[float, str, str | None], ...]

    @property
    def path(self) -> str:
        """The on-sale's JSON path in the report."""
        return f"slos.{self.slo_index}.onsales.{self.onsale_index}"


@dataclass(frozen=True, slots=True)
class Retro:
    """One on-sale's section: its rows, figures and charts."""

    minutes: OnSaleMinutes
    rows: tuple[SLORow, ...]
    charts: tuple[Markup, ...]
    decisions: tuple[Decision, ...]
    outside: tuple[tuple[str, float, int], ...]
    #: the on-sale's dashboard (``--dashboard-url``), None without a template
    dashboard: str | None = None

    @property
    def anchor(self) -> str:
        """The section's id."""
        return f"retro-{int(self.minutes.window.start)}-{self.minutes.window.scope}".replace(
            ":", "-"
        )


def _rows(
    report: Report,
    o: OnSaleMinutes,
    firings: Sequence[Firing],
    times: Sequence[float],
    trace_url: str | None,
) -> list[SLORow]:
    rows = []
    for i, s in enumerate(report.slos):
        for k, r in enumerate(s.onsales):
            if r.window != o.window:
                continue
            objective = s.modes["onsale"].objective
            missed = r.sli is not None and r.sli < objective
            sm = o.slos.get(s.slo.name)
            traces = tuple(
                (ts, t, None if trace_url is None else trace_url.replace("{trace_id}", t))
                for ts, t in (sm.traces if sm is not None else ())
            )
            rows.append(
                SLORow(
                    s,
                    r,
                    i,
                    k,
                    missed,
                    s.modes["onsale"].allowed_bad,
                    alert_times(s, o, firings, times),
                    traces,
                )
            )
    # failing first (most bad requests first), then the healthy ones
    return sorted(rows, key=lambda x: (not x.missed, -x.onsale.bad, x.slo.slo.name))


def build_retros(
    report: Report,
    minutes: Sequence[OnSaleMinutes],
    *,
    firings: Sequence[Firing] = (),
    times: Sequence[float] = (),
    decisions: Sequence[Decision] = (),
    trace_url: str | None = None,
    vertical: Mapping[str, Sequence[tuple[float, Mapping[str, int]]]] | None = None,
    dashboard_url: str | None = None,
) -> list[Retro]:
    """One :class:`Retro` per on-sale, charts drawn.

    ``dashboard_url``: a link template for each on-sale's dashboard (see :func:`dashboard_link`).

    ``vertical``: per on-sale scope, ``(time, {service: desired replicas})`` as the vertical
    scaler exported them (``onsale-obs demo`` records them); drawn when given.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the runtime without the plots extra: figures and tables only
        drawn_ok = False
    else:
        drawn_ok = True
    from onsale_obs.slo import _retro_charts as charts

    out = []
    for o in minutes:
        rows = _rows(report, o, firings, times, trace_url)
        thresholds = {
            r.slo.slo.name: r.slo.slo.sli.threshold["onsale"]
            for r in rows
            if isinstance(r.slo.slo.sli, LatencySLI)
        }
        budgets = {
            r.slo.slo.name: r.allowed for r in rows if r.allowed is not None and r.onsale.bad > 0
        }
        mine = [d for d in decisions if o.start < d.at <= o.end]
        drawn: list[Markup] = []
        if drawn_ok:
            drawn = [
                charts.traffic_chart(o),
                charts.error_chart(o),
                charts.latency_chart(o, thresholds),
            ]
            if budgets:
                drawn.append(charts.burn_chart(o, budgets))
            if mine:
                drawn.append(charts.exit_rate_chart(o, mine))
            replicas = (vertical or {}).get(o.window.scope, ())
            if any(o.start < t <= o.end for t, _ in replicas):
                drawn.append(charts.vertical_chart(o, replicas))
        outside = tuple(
            (r.slo.slo.name, left, r.slo_index)
            for r in rows
            if (left := r.slo.onsale_outside_windows) is not None and left != 0
        )
        link = None if dashboard_url is None else dashboard_link(dashboard_url, o)
        out.append(Retro(o, tuple(rows), tuple(drawn), tuple(mine), outside, link))
    return out


def dashboard_link(template: str, minutes: OnSaleMinutes) -> str:
    """``template`` for one on-sale: ``{from}`` and ``{to}`` become the shown span in epoch
    milliseconds (Grafana's ``from=`` / ``to=``), ``{scope}`` and ``{event}`` the on-sale's
    scope and event id (URL-quoted; ``{event}`` is empty for ``global``)."""
    scope = minutes.window.scope
    event = scope.partition(":")[2] if scope.startswith("event:") else ""
    values = {
        "{from}": str(int(minutes.start * 1000)),
        "{to}": str(int(minutes.end * 1000)),
        "{scope}": quote(scope, safe=""),
        "{event}": quote(event, safe=""),
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


def render_sections(retros: Sequence[Retro], report: Report) -> Markup:
    """The retrospective sections alone, with their styles (to put inside another page)."""
    template = template_env().get_template("retro_sections.html.j2")
    return Markup(template.render(retros=retros, report=report, routed=ROUTED))


def render_retro_page(retros: Sequence[Retro], report: Report) -> str:
    """A whole self-contained page of the retrospectives (``slo onsales --format html``)."""
    template = template_env().get_template("retro_page.html.j2")
    context: dict[str, Any] = {
        "retros": retros,
        "report": report,
        "csp": CSP,
        "sections": render_sections(retros, report),
    }
    return template.render(**context)
