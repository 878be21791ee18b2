"""The demo's on-sale retrospective: figures traceable to the JSON, alert times, exit-rate
decisions, trace links, and the page in headless Chromium at desktop and phone widths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from onsale_obs.slo._html_svg import budget_text, pct
from onsale_obs.slo._retro_html import count
from onsale_obs.testing import require_binary
from tests.test_slo_html import chromium, console_messages, decode_png

TRACE_URL = "https://grafana.example.com/explore?traceId={trace_id}"
DASHBOARD_URL = "https://grafana.example.com/d/onsale?from={from}&to={to}&var-event={event}"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, with no ONSALE_OBS_* settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_OBS_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "onsale-obs"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**env, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quick demo run: logs, mode history, recommendations.json."""
    out = tmp_path_factory.mktemp("demo")
    run = cli("demo", "--out", out, "--quick")
    assert run.returncode in (0, 1), run.stderr[-3000:]
    return out


def source_args(demo: Path) -> list[str | Path]:
    at = json.loads((demo / "report.json").read_text())["at"]
    args: list[str | Path] = ["--spec", demo / "slo.yaml"]
    for log in sorted((demo / "logs").glob("*.access.jsonl")):
        args += ["--logs", log]
    backend = f"sqlite:///{demo / 'modes.db'}"
    verify = demo / "keys" / "onsale-verify.pem"
    return [*args, "--backend", backend, "--verify-key", verify, "--at", at]


@pytest.fixture(scope="module")
def pages(demo: Path) -> dict[str, Any]:
    """The retrospective page, the report page, and the JSON report, from the same data."""
    retro, report = demo / "retro.html", demo / "report-page.html"
    extra: list[str | Path] = ["--recommendations", demo / "recommendations.json"]
    extra += ["--trace-url", TRACE_URL, "--dashboard-url", DASHBOARD_URL]
    run = cli("slo", "onsales", *source_args(demo), "--format", "html", "-o", retro, *extra)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    run = cli("slo", "report", *source_args(demo), "--format", "html", "-o", report, *extra)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    run = cli("slo", "report", *source_args(demo), "--format", "json")
    assert run.returncode in (0, 1), run.stderr[-3000:]
    return {
        "retro": retro,
        "report": report,
        "json": json.loads(run.stdout),
    }


def section(page: str, scope: str) -> str:
    """The retrospective section of one on-sale (the demo has a past one and the main one)."""
    for found in re.findall(r'<section class="retro" id="[^"]+">(.*?)</section>', page, re.S):
        if f'<span class="scope">{scope}</span>' in found:
            return str(found)
    raise AssertionError(f"no retrospective of {scope}")


MAIN = "event:final-2026"


class Figures(HTMLParser):
    """Every element with a ``data-json`` path: (path, format, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []
        self._open: list[tuple[str, str, list[str]] | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        path = a.get("data-json")
        self._open.append(None if path is None else (path, a.get("data-format") or "", []))

    def handle_endtag(self, tag: str) -> None:
        item = self._open.pop()
        if item is not None:
            path, fmt, text = item
            self.found.append((path, fmt, "".join(text).strip()))
            if self._open and self._open[-1] is not None:
                self._open[-1][2].extend(text)

    def handle_data(self, data: str) -> None:
        for item in self._open:
            if item is not None:
                item[2].append(data)


def figures(page: str) -> list[tuple[str, str, str]]:
    # void elements never close: drop them so the parser's stack stays balanced
    parser = Figures()
    parser.feed(re.sub(r"<(meta|br|img|input|link|hr)\b[^>]*>", "", page))
    return parser.found


def resolve(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def shown(value: Any, fmt: str) -> str:
    if fmt == "pct":
        return pct(value)
    if fmt == "pct2":
        return pct(value, 2)
    if fmt == "budget":
        return budget_text(value)
    return count(value)


@pytest.mark.parametrize("which", ["retro", "report"])
def test_every_marked_figure_is_the_json_reports(pages: dict[str, Any], which: str) -> None:
    """Each figure that names its JSON path shows exactly that JSON value, formatted."""
    found = figures(pages[which].read_text(encoding="utf-8"))
    assert len(found) > 20
    for path, fmt, text in found:
        value = resolve(pages["json"], path)
        assert text.startswith(shown(value, fmt)), (path, text, value)


def test_the_onsale_rows_add_up_to_the_mode_total(pages: dict[str, Any], demo: Path) -> None:
    """The on-sale mode's requests are the sum of its on-sale rows (onsale_outside_windows
    0: the demo logs requests through each step, never at an on-sale's first instant), so
    the pages have no difference to explain."""
    data = pages["json"]
    for s in data["slos"]:
        rows = sum(o["total"] for o in s["onsales"])
        assert s["modes"]["onsale"]["total"] == rows
        assert s["onsale_outside_windows"] == 0
    for which in ("retro", "report"):
        page = pages[which].read_text(encoding="utf-8")
        assert "onsale_outside_windows" not in page


def test_failing_slos_come_first_and_p4_is_info(pages: dict[str, Any]) -> None:
    """In the budget table the SLOs that missed come before the healthy ones; the report
    labels P4 as routed: info."""
    page = section(pages["retro"].read_text(encoding="utf-8"), MAIN)
    table = page[page.index("Error budget, in requests") :]
    table = table[: table.index("</table>")]
    classes = re.findall(r'<tr class="(missed|healthy)">', table)
    assert classes[0] == "missed"
    assert classes == sorted(classes, key=lambda c: c != "missed")
    report = pages["report"].read_text(encoding="utf-8")
    assert re.search(r">P4</span> info<", report)
    assert not re.search(r">P4</span> ticket<", report)


def test_page_time_is_the_first_p1_of_the_alert_timeline(pages: dict[str, Any], demo: Path) -> None:
    """The paged time of checkout-availability is the first on-sale P1 the demo's alert
    timeline recorded, and the failing minute comes no later."""
    alerts = json.loads((demo / "alerts.json").read_text())["timeline"]
    first_p1 = min(
        a["at"] for a in alerts if a["slo"] == "checkout-availability" and a["priority"] == "P1"
    )
    page = section(pages["retro"].read_text(encoding="utf-8"), MAIN)
    row = re.search(
        r"<th scope=\"row\">checkout-availability</th>(.*?)</tr>",
        page[page.index("when we knew") :],
        re.S,
    )
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    failing, _, paged = cells[0], cells[1], cells[2]
    assert paged.startswith(first_p1[11:16] + "Z")
    assert failing <= paged[:6]


def test_each_exit_rate_decision_has_its_reason_on_hover(pages: dict[str, Any], demo: Path) -> None:
    """Every recorded decision of the on-sale is a point whose <title> is its reason."""
    page = pages["retro"].read_text(encoding="utf-8")
    svgs = re.findall(r'<svg class="chart" data-chart="exit-rate".*?</svg>', page, re.S)
    assert len(svgs) == 2  # the past on-sale's and the main one's
    titles = [t for svg in svgs for t in re.findall(r"<title>([^<]*)</title>", svg)]
    decisions = json.loads((demo / "recommendations.json").read_text())
    from html import unescape

    shown_titles = [unescape(t) for t in titles]
    for d in decisions:
        assert any(t.endswith(d["reason"]) for t in shown_titles), d["reason"]


def test_trace_links_use_the_template_and_name_bad_requests(
    pages: dict[str, Any], demo: Path
) -> None:
    """Trace ids on the page are 5xx lines of the logs, linked through --trace-url."""
    page = pages["retro"].read_text(encoding="utf-8")
    ids = re.findall(r'href="https://grafana\.example\.com/explore\?traceId=([0-9a-f]+)"', page)
    assert ids
    bad = set()
    for log in (demo / "logs").glob("*.access.jsonl"):
        for line in log.read_text().splitlines():
            d = json.loads(line)
            if d.get("status", 0) >= 500:
                bad.add(d.get("trace_id"))
    assert set(ids) <= bad


def test_each_onsale_links_its_dashboard_over_its_own_span(pages: dict[str, Any]) -> None:
    """--dashboard-url: {from}/{to} are the section's span in epoch ms, {event} its event id."""
    page = pages["retro"].read_text(encoding="utf-8")
    body = section(page, MAIN)
    [(start, end, event)] = re.findall(
        r'href="https://grafana\.example\.com/d/onsale\?from=(\d+)&amp;to=(\d+)&amp;'
        r'var-event=([^"]+)"',
        body,
    )
    assert event == MAIN.removeprefix("event:")
    [window] = [o for s in pages["json"]["slos"] for o in s["onsales"] if o["scope"] == MAIN][:1]
    started = datetime.fromisoformat(window["start"].replace("Z", "+00:00")).timestamp()
    assert int(start) <= started * 1000 < int(end)


# ------------------------------------------------------------------------------- browser

MEASURE = """<script>
addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const charts = [...document.querySelectorAll('.retro svg.chart')].map(svg => {
    const r = svg.getBoundingClientRect();
    const w = svg.querySelector('.onsale-window');
    return {kind: svg.dataset.chart, left: r.left, right: r.right, width: r.width,
            window: w ? w.getBoundingClientRect().width : 0};
  });
  const scrolled = [...document.querySelectorAll('.retro .scroll')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).length;
  const outside = [];
  for (const section of document.querySelectorAll('.retro')) {
    const edge = section.getBoundingClientRect().right;
    for (const e of section.querySelectorAll('*')) {
      if (e.closest('svg')) continue;
      if (e.getBoundingClientRect().right > edge + 1) outside.push(e.tagName + ' ' + e.textContent.slice(0, 40));
    }
  }
  // measured inside a frame of the wanted width: Chromium's window is never under 500 px
  parent.document.body.setAttribute('data-measured', JSON.stringify(
    {vw, sw: document.documentElement.scrollWidth, charts, scrolled, outside}));
});
</script>"""


def series_points(svg: str) -> list[list[float]]:
    """The y coordinates of each data series (``class="series"``) drawn in a chart."""
    out = []
    for group in re.findall(r'<g id="series-\d+" class="series">\s*<path d="([^"]+)"', svg):
        out.append([float(y) for y in re.findall(r"[ML] [-\d.]+ ([-\d.]+)", group)])
    return out


def test_every_chart_has_data(pages: dict[str, Any]) -> None:
    """Each chart draws at least one series of several points (a line, not an empty frame),
    and every chart of the main on-sale's retrospective moves (the past on-sale had no
    error: its error chart is a line at zero, titled so)."""
    page = pages["retro"].read_text(encoding="utf-8")
    for where in (page, section(page, MAIN)):
        charts = re.findall(r'<svg class="chart" data-chart="([^"]+)".*?</svg>', where, re.S)
        assert set(charts) == {"requests", "errors", "latency", "burn", "exit-rate"}
        for kind, svg in zip(
            charts, re.findall(r'<svg class="chart".*?</svg>', where, re.S), strict=True
        ):
            lines = series_points(svg)
            assert lines, f"{kind}: no series"
            assert any(len(ys) >= 3 for ys in lines), f"{kind}: no line"
            if where is not page:
                assert any(len(set(ys)) > 1 for ys in lines), f"{kind}: flat"
            elif not any(len(set(ys)) > 1 for ys in lines):
                assert kind == "errors", kind
                assert "per minute: none" in svg


@pytest.fixture
def browser() -> str:
    return require_binary("chromium", "chromium")


@pytest.mark.parametrize("width", [1400, 390])
@pytest.mark.parametrize("which", ["retro", "demo"])
def test_the_retrospective_in_a_real_browser(
    pages: dict[str, Any], demo: Path, tmp_path: Path, browser: str, width: int, which: str
) -> None:
    """At 1400 px and at a phone's 390 px, the retrospective page (slo onsales) and the
    demo's own report.html that carries it: no console message, no horizontal overflow
    (page or retrospective table), every chart inside the page, and the on-sale drawn at
    least a fifth of each chart's width."""
    retro: Path = pages["retro"] if which == "retro" else demo / "report.html"
    shot = tmp_path / "shot.png"
    painted = chromium(
        browser,
        tmp_path / "p1",
        f"--window-size={width},2400",
        f"--screenshot={shot}",
        retro.as_uri(),
    )
    assert shot.exists(), painted.stderr[-2000:]
    assert console_messages(painted.stderr) == []
    w, _, _, _ = decode_png(shot.read_bytes())
    assert w == width

    page = retro.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"  # the page without its CSP, plus a measuring script
    probe.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace(
            "</body>", MEASURE + "</body>"
        ),
        encoding="utf-8",
    )
    frame = tmp_path / "frame.html"
    frame.write_text(
        f'<!doctype html><body style="margin:0"><iframe src="{probe.as_uri()}" '
        f'style="border:0;width:{width}px;height:2400px"></iframe></body>',
        encoding="utf-8",
    )
    dom = chromium(
        browser,
        tmp_path / "p2",
        "--window-size=1600,2400",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        frame.as_uri(),
    )
    assert console_messages(dom.stderr) == [], dom.stderr[-2000:]
    found = re.search(r"data-measured=\"([^\"]+)\"", dom.stdout)
    assert found is not None, dom.stdout[:2000]
    from html import unescape

    m = json.loads(unescape(found.group(1)))
    assert m["vw"] == width, m
    assert m["sw"] <= m["vw"], m
    assert m["scrolled"] == 0, m
    assert m["outside"] == [], m["outside"][:5]
    # 4 of the past on-sale, 5 of the main one (+ its vertical's replicas in the demo's page)
    assert len(m["charts"]) == (9 if which == "retro" else 10)
    if which == "retro":
        assert page.count('<svg class="chart"') == 9
    for c in m["charts"]:
        assert c["left"] >= 0
        assert c["right"] <= m["vw"]
        assert c["window"] >= c["width"] / 5, c
