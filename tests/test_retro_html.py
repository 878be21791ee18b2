"""The retrospective page: user text escaped (Jinja2 autoescape), nothing fetched, P4 routed as
info, and a trace link template that cannot become a script."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from onsale_obs.slo import Report, render_html
from onsale_obs.slo._retro import Decision, OnSaleMinutes, ServiceMinutes, SLOMinutes
from onsale_obs.slo._retro_html import ROUTED, build_retros, render_retro_page, render_sections
from tests.test_slo_html import HOSTILE, build, parse


@pytest.fixture(scope="module")
def report() -> Report:
    """The report of tests/test_slo_html.py's planted on-sale with its outage."""
    return build()[0]


def hostile_page(report: Report, trace_url: str) -> str:
    """The retrospective of the first on-sale, with hostile text in every user field."""
    first = report.slos[0]
    o = first.onsales[0]
    window = dataclasses.replace(o.window, scope=HOSTILE, reason=HOSTILE)
    slo = dataclasses.replace(first.slo, name=HOSTILE)
    onsales = (dataclasses.replace(o, window=window), *first.onsales[1:])
    report = dataclasses.replace(
        report,
        origin=HOSTILE,
        slos=(dataclasses.replace(first, slo=slo, onsales=onsales), *report.slos[1:]),
    )
    start = window.start
    minutes = OnSaleMinutes(window, start - 300, o.end + 300, o.end, 300, "logs")
    minute = int(start // 60 * 60)
    minutes.services[HOSTILE] = ServiceMinutes(
        {minute: 10, minute + 60: 20, minute + 120: 5},
        {minute + 60: 2},
        {minute: 0.1, minute + 60: 0.4, minute + 120: 0.2},
    )
    minutes.slos[HOSTILE] = SLOMinutes(
        {minute: 10, minute + 60: 20}, {minute + 60: 2}, [(start + 61, f'abc"{HOSTILE}')]
    )
    decisions = [Decision(start + 60, 100, 90, 500, HOSTILE, HOSTILE)]
    retros = build_retros(report, [minutes], decisions=decisions, trace_url=trace_url)
    return render_retro_page(retros, report)


def test_user_text_is_escaped_in_the_retrospective(report: Report) -> None:
    """Scopes, reasons, SLO and service names, decision reasons (chart titles included) and
    trace ids cannot inject HTML or script."""
    page = hostile_page(report, "https://grafana.example.com/explore?traceId={trace_id}")
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # Jinja2's escape
    for tag, attrs in parse(page).tags:
        assert tag not in {"script", "img", "iframe", "object", "embed"}
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript:")


def test_the_page_loads_nothing_and_says_how_p4_is_routed(report: Report) -> None:
    """A Content-Security-Policy that forbids fetching, no src or stylesheet links; P4 is
    routed to info like the generated Alertmanager config."""
    page = hostile_page(report, "https://grafana.example.com/t/{trace_id}")
    tags = parse(page).tags
    csp = [
        a.get("content") or "" for t, a in tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp
    assert csp[0].startswith("default-src 'none'")
    for tag, attrs in tags:
        assert "src" not in attrs, tag
        assert not (tag == "link" and attrs.get("rel") == "stylesheet")
    assert ROUTED["P4"] == "info"
    assert "P3 ticket, P4 info" in page


def test_without_matplotlib_the_retrospective_keeps_its_tables(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the plots extra (matplotlib not importable) the retrospective still renders:
    the budget and alert tables and the decisions, no chart, and a line saying how to
    install the extra. The report page around it renders too."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    first = report.slos[0]
    o = first.onsales[0]
    minutes = OnSaleMinutes(o.window, o.window.start - 300, o.end + 300, o.end, 300, "logs")
    minute = int(o.window.start // 60 * 60)
    minutes.services["checkout"] = ServiceMinutes({minute: 10, minute + 60: 20}, {}, {})
    decisions = [Decision(o.window.start + 60, 100, 90, 500, "hold", "a reason")]
    retros = build_retros(report, [minutes], decisions=decisions)
    assert retros[0].charts == ()
    page = render_retro_page(retros, report)
    assert '<svg class="chart"' not in page
    assert "Error budget, in requests" in page
    assert "Alerts: when we knew" in page
    assert "a reason" in page  # the waiting room's decisions, as a table
    assert "pip install 'onsale-obs[plots]'" in page
    whole = render_html(report, retrospective=render_sections(retros, report))
    assert "pip install 'onsale-obs[plots]'" in whole
    assert whole.count('data-chart="burn-down"') == 2 * len(report.slos)  # its own SVG
