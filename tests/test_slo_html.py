"""The HTML report: every chart there, user text escaped, nothing fetched, and a real browser."""

from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.modes import OnSaleWindow
from onsale_obs.slo import Report, evaluate, load_spec, plan
from onsale_obs.slo._html import AlertTimeline, render_html, timeline_moments
from onsale_obs.slo._html_svg import MODE_COLOUR, iso, segment_widths
from onsale_obs.slo._timeline import Firing, firings, timeline_request
from onsale_obs.testing import require_binary
from onsale_obs.testing_prometheus import PrometheusServer
from tests.slo_oracle import Record, oracle
from tests.slo_traffic import AT as PLANTED_AT
from tests.slo_traffic import Traffic, planted_bursts

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z
AT_ISO = "2027-01-15T08:00:00Z"
DAY = 86_400.0
CHECKOUT = "/events/{event_id}/checkout"
RESERVE = "/seats/reserve"
ONSALE_START = AT - 3 * DAY
ONSALE_END = ONSALE_START + 3600
OUTAGE = (ONSALE_START + 1200, ONSALE_START + 1560)  # six minutes of failed checkouts
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'


def records() -> list[Record]:
    """Quiet normal checkout and inventory traffic, and one on-sale with a 6-minute outage.

    The gateway sees no traffic at all: its SLO has no data in either mode, and inventory
    none during the on-sale.
    """
    out = [
        Record(AT - 20 * DAY + i * 600, "checkout", CHECKOUT, "POST", 200, 0.05, "normal", "f")
        for i in range(2880)
    ]
    out += [
        Record(AT - 20 * DAY + i * 900 + 7, "inventory", RESERVE, "POST", 200, 0.02, "normal")
        for i in range(1900)
    ]
    for i in range(1, 6001):
        ts = ONSALE_START + 0.6 * i
        status = 503 if OUTAGE[0] <= ts < OUTAGE[1] else 200
        out.append(Record(ts, "checkout", CHECKOUT, "POST", status, 0.4, "onsale", "final", True))
    return sorted(out, key=lambda r: r.ts)


WINDOWS = [OnSaleWindow("event:final", ONSALE_START, ONSALE_END, "manual", "general sale")]


def build() -> tuple[Report, AlertTimeline]:
    """The report and alert timeline of :func:`records`, counted by the test oracle."""
    spec = load_spec(SPEC)
    recs = records()
    request = plan(spec, AT, onsale_windows=WINDOWS, bins=30)
    report = evaluate(spec, oracle(recs, request), AT, bins=30)
    times, step = timeline_moments(report, spec.grace)
    collected = oracle(recs, timeline_request(spec, times, onsale_windows=WINDOWS))
    timeline = AlertTimeline(times, tuple(firings(spec, collected, times)), step, spec.grace)
    return report, timeline


@pytest.fixture(scope="module")
def built() -> tuple[Report, AlertTimeline]:
    """The report of :func:`records` (counted once: the oracle is slow on purpose)."""
    return build()


class Elements(HTMLParser):
    """Every start tag with its attributes, and the charts with their titles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.charts: list[dict[str, str | None]] = []
        self.titled: list[bool] = []
        self._in_chart = False
        self._last_tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "svg" and "chart" in (attributes.get("class") or "").split():
            self.charts.append(attributes)
            self.titled.append(False)
            self._in_chart = True
        elif tag == "title" and self._in_chart and self._last_tag == "svg":
            self.titled[-1] = True
        self._last_tag = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_chart = False


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def section(page: str, slo_index: int) -> str:
    """The HTML of one SLO's section."""
    start = page.index(f'<section class="slo" id="slo-{slo_index}"')
    return page[start : page.index("</section>", start)]


def episodes(part: str) -> list[tuple[str, str, str, str]]:
    """(mode, rule, first firing, last firing) of each row of a firing-episodes table."""
    return re.findall(
        r'<tr><td>(on-sale|normal)</td><td>([^<]*)</td><td>.*?</td><td><time datetime="([^"]+)">'
        r'.*?</time></td><td><time datetime="([^"]+)">',
        part,
    )


def mode_card(page: str, slo_index: int, mode: str) -> str:
    part = section(page, slo_index)
    start = part.index(f'<article class="card mode m-{mode}">')
    return part[start : part.index("</article>", start)]


# ------------------------------------------------------------------------------- content


def test_every_slo_has_a_burn_down_per_mode_and_an_alert_timeline(
    built: tuple[Report, AlertTimeline],
) -> None:
    """One burn-down chart per SLO and mode, one alert timeline per SLO, each titled."""
    report, timeline = built
    elements = parse(render_html(report, timeline))
    kinds = [c.get("data-chart") for c in elements.charts]
    assert kinds.count("burn-down") == 2 * len(report.slos)
    assert kinds.count("alert-timeline") == len(report.slos)
    assert all(elements.titled)
    assert all(c.get("role") == "img" and c.get("aria-labelledby") for c in elements.charts)


def test_both_modes_sit_side_by_side_with_their_numbers(
    built: tuple[Report, AlertTimeline],
) -> None:
    """Each SLO shows normal and on-sale: objective, requests, bad, SLI, budget, burn rates."""
    report, timeline = built
    page = render_html(report, timeline)
    normal, onsale = mode_card(page, 0, "normal"), mode_card(page, 0, "onsale")
    assert "99.90%" in normal
    assert "99.99%" in onsale
    assert "6,000" in onsale  # on-sale checkout requests
    assert "600 errors" in onsale  # the six-minute outage
    assert "90.000%" in onsale  # SLI
    assert "(overspent)" in onsale
    assert "14.4x" in onsale  # the fast rule's threshold in the burn-rate table
    assert "2,880" in normal


def test_each_onsale_window_has_its_numbers_and_the_alerts_that_fired(
    built: tuple[Report, AlertTimeline],
) -> None:
    """The on-sale card: requests, errors, SLI, allowed bad (share spent), peak rps, alerts, latency SLI."""
    report, timeline = built
    page = render_html(report, timeline)
    card = page[page.index('<section id="onsales">') : page.index('<div id="slos">')]
    assert "event:final" in card
    assert "general sale" in card
    assert "600 errors" in card
    assert "0 slower than 1s" in card  # the latency SLO: within the on-sale threshold
    assert "1.7" in card  # peak rps: one request every 0.6 s
    assert ">P1</span> on-sale fast" in card


def test_the_alert_timeline_shows_when_the_p1_fired(built: tuple[Report, AlertTimeline]) -> None:
    """The outage fires the on-sale fast rule (P1) from the first minute after it began."""
    report, timeline = built
    page = render_html(report, timeline)
    part = section(page, 0)
    assert 'class="firing"' in part
    assert "2027-01-12 08:21Z" in part  # first evaluated minute after the outage began
    rows = [r for r in part.split("<tr>") if ">P1</span> page" in r]
    assert rows, "no P1 episode in the table"
    assert not any('class="firing"' in section(page, i) for i in (1, 2, 3))


def test_a_mode_without_requests_shows_no_data_never_100(
    built: tuple[Report, AlertTimeline],
) -> None:
    """The gateway had no traffic: no data everywhere, never 100%."""
    report, timeline = built
    page = render_html(report, timeline)
    gateway = section(page, 2)
    assert "gateway-availability" in gateway
    for mode in ("normal", "onsale"):
        card = mode_card(page, 2, mode)
        assert card.count("no data") >= 4  # status, SLI, budget left, chart
        assert "100.0" not in card
        assert "100%" not in card
    inventory_onsale = mode_card(page, 3, "onsale")
    assert "no data" in inventory_onsale
    assert "no on-sale requests in the window" in inventory_onsale


def test_user_text_is_escaped_everywhere(built: tuple[Report, AlertTimeline]) -> None:
    """SLO names, services, scopes, reasons, paths, warnings and runbooks cannot inject HTML."""
    report, _ = built
    first = report.slos[0]
    slo = dataclasses.replace(
        first.slo,
        name=HOSTILE,
        service=HOSTILE,
        description=HOSTILE,
        runbook="javascript:alert(1)",
    )
    onsales = tuple(
        dataclasses.replace(o, window=dataclasses.replace(o.window, scope=HOSTILE, reason=HOSTILE))
        for o in first.onsales
    )
    hostile = dataclasses.replace(
        report,
        origin=HOSTILE,
        warnings=(HOSTILE,),
        skipped={HOSTILE: 3},
        slos=(dataclasses.replace(first, slo=slo, onsales=onsales), *report.slos[1:]),
    )
    page = render_html(hostile)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # the template (Jinja2)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # the charts' SVG text
    elements = parse(page)
    for tag, attrs in elements.tags:
        assert tag not in {"script", "img", "iframe", "object", "embed"}
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not (attrs.get("href") or "").startswith("javascript:")


def test_a_card_panel_difference_is_explained_with_its_json_figure(
    built: tuple[Report, AlertTimeline],
) -> None:
    """When the on-sale mode counts requests no on-sale row counts (at an on-sale's first
    instant, or after its grace), the card says how many (onsale_outside_windows) and why;
    when they agree it says nothing."""
    report, timeline = built
    assert "the very instant the on-sale began" not in render_html(report, timeline)
    first = report.slos[0]
    onsale = first.modes["onsale"]
    more = dataclasses.replace(onsale, total=onsale.total + 7, good=onsale.good + 7)
    shifted = dataclasses.replace(first, modes={**first.modes, "onsale": more})
    page = render_html(dataclasses.replace(report, slos=(shifted, *report.slos[1:])), timeline)
    assert shifted.onsale_outside_windows == 7
    card = page[page.index('<section id="onsales">') : page.index('<div id="slos">')]
    assert '<span data-json="slos.0.onsale_outside_windows">7</span>' in card
    assert "the very instant the on-sale began" in card


def test_nothing_is_loaded_from_the_network(built: tuple[Report, AlertTimeline]) -> None:
    """No external resource: only the SVG namespace and the runbook link mention http(s)."""
    report, timeline = built
    page = render_html(report, timeline)
    elements = parse(page)
    [csp] = [a for t, a in elements.tags if t == "meta" and a.get("http-equiv")]
    assert "default-src 'none'" in (csp.get("content") or "")
    fetching = {"script", "link", "iframe", "object", "embed", "img", "video", "audio", "base"}
    links = []
    for tag, attrs in elements.tags:
        assert tag not in fetching
        for name in ("src", "srcset", "data", "poster", "action", "background"):
            assert name not in attrs, (tag, attrs)
        if "href" in attrs:
            assert tag == "a"
            links.append(attrs["href"] or "")
        assert "url(" not in (attrs.get("style") or "")
    assert "url(" not in page
    assert "@import" not in page
    assert all(h.startswith("#") or h.startswith("https://runbooks.example.com/") for h in links)
    mentions = re.findall(r"https?://[^\s\"'<>]+", page)
    allowed = {"http://www.w3.org/2000/svg", "https://runbooks.example.com/checkout-availability"}
    assert set(mentions) <= allowed


def test_moments_cover_each_onsale_every_minute_and_the_report_time(
    built: tuple[Report, AlertTimeline],
) -> None:
    """Every minute from the on-sale's start to its end + grace, plus now; capped."""
    report, _ = built
    times, step = timeline_moments(report, 300.0)
    assert step == 60.0
    assert times[-1] == AT
    inside = [t for t in times if t != AT]
    assert inside[0] == ONSALE_START + 60
    assert inside[-1] == ONSALE_END + 300
    assert len(inside) == 65
    few, wide = timeline_moments(report, 300.0, cap=20)
    assert wide == 240.0
    assert len(few) <= 20 + 2


def test_no_onsale_means_only_the_report_moment(built: tuple[Report, AlertTimeline]) -> None:
    """Without on-sales the rules are evaluated at the report moment only."""
    report, _ = built
    quiet = dataclasses.replace(
        report, slos=tuple(dataclasses.replace(s, onsales=()) for s in report.slos)
    )
    assert timeline_moments(quiet, 300.0) == ((AT,), 60.0)
    assert "No on-sale in the window" in render_html(quiet)


def test_an_episode_never_spans_two_onsales(built: tuple[Report, AlertTimeline]) -> None:
    """Firing at the end of one on-sale and the start of the next is two episodes."""
    report, _ = built
    first, later = ONSALE_START + 600, ONSALE_START + 5 * DAY
    times = (first, first + 60, later, later + 60)
    fired = tuple(
        Firing(t, "checkout-availability", "onsale", "fast", "P1", 20.0, 30.0)
        for t in (first + 60, later)
    )
    page = render_html(report, AlertTimeline(times, fired, 60.0, 300.0))
    assert len(episodes(section(page, 0))) == 2


def test_narrow_segments_keep_a_readable_width() -> None:
    """A one-moment segment (now) still gets room for its label next to a long on-sale."""
    widths = segment_widths([300, 1], 800.0)
    assert widths[1] == 40.0
    assert sum(widths) == pytest.approx(800.0)


# ----------------------------------------------------------------------------------- CLI


def write_log(path: Path) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r.line()) for r in records()) + b"\n")
    return path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def html_report(tmp_path: Path, *extra: str | Path) -> Result:
    log = write_log(tmp_path / "access.log")
    return invoke(
        "slo", "report", "--spec", SPEC, "--logs", log, "--at", AT_ISO, "--format", "html", *extra
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONSALE_OBS_BACKEND", "ONSALE_OBS_SLO_SPEC", "ONSALE_OBS_PROMETHEUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich boxes error messages: keep them on one line


def test_cli_writes_the_file_and_says_so(tmp_path: Path) -> None:
    """``--format html -o FILE`` writes FILE, says ``wrote FILE`` on stderr, exits 1 (P1)."""
    out = tmp_path / "report.html"
    result = html_report(tmp_path, "-o", out)
    assert result.exit_code == 1, result.output  # the outage burns: scripts can gate on it
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    kinds = [c.get("data-chart") for c in parse(page).charts]
    assert kinds.count("burn-down") + kinds.count("alert-timeline") == 3 * 4
    # the on-sale's retrospective: traffic, errors, latency and the budget in requests
    assert {"requests", "errors", "latency", "burn"} <= set(kinds)
    assert "found in access logs" in page  # windows found in the data, without a history


def test_cli_html_without_output_is_exit_2_naming_the_option(tmp_path: Path) -> None:
    """HTML is a file: without -o the command refuses before reading anything."""
    result = html_report(tmp_path)
    assert result.exit_code == 2
    assert "--output" in result.output
    assert "Traceback" not in result.output


def test_cli_output_into_a_missing_folder_is_exit_2(tmp_path: Path) -> None:
    """A folder that does not exist is bad input, named in the message."""
    result = html_report(tmp_path, "-o", tmp_path / "nowhere" / "r.html")
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


def test_cli_dash_writes_html_to_stdout(tmp_path: Path) -> None:
    """``-o -`` is stdout, for pipes."""
    result = html_report(tmp_path, "-o", "-")
    assert result.stdout.startswith("<!doctype html>")
    assert "wrote" not in result.stderr


def test_cli_json_and_markdown_can_go_to_a_file_too(tmp_path: Path) -> None:
    """``-o`` works for the other formats; stdout stays empty."""
    log = write_log(tmp_path / "access.log")
    base = ("slo", "report", "--spec", SPEC, "--logs", log, "--at", AT_ISO)
    direct = invoke(*base, "--format", "json")
    to_file = invoke(*base, "--format", "json", "-o", tmp_path / "r.json")
    assert to_file.stdout == ""
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == direct.stdout
    md = invoke(*base, "--format", "markdown", "--output", tmp_path / "r.md")
    assert "| SLO | normal requests |" in (tmp_path / "r.md").read_text(encoding="utf-8")
    assert md.exit_code == direct.exit_code == 1


PLANTED_SPEC = """\
slos:
  - name: checkout-availability
    service: checkout
    sli: {type: availability, routes: ["/events/{event_id}/checkout"], methods: [POST]}
    objectives: {normal: 99.9, onsale: 99.99}
"""


def test_prometheus_and_logs_time_the_same_onsale_page(
    tmp_path: Path, planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    """The planted checkout burst in the first on-sale pages (P1) in both sources' timelines.

    Prometheus counts on-sale requests only inside known on-sale windows, so the timeline
    must be read with the windows the report found (not none at all).
    """
    spec = tmp_path / "slo.yaml"
    spec.write_text(PLANTED_SPEC)
    logs = planted_traffic.write_access_logs(tmp_path / "logs")
    burst = next(b for b in planted_bursts(PLANTED_AT) if b.service == "checkout")
    base = ("slo", "report", "--spec", spec, "--at", iso(PLANTED_AT), "--format", "html")
    sources = {
        "prometheus": ("--prometheus", planted_prometheus.url),
        "logs": tuple(a for p in logs for a in ("--logs", p)),
    }
    for name, args in sources.items():
        out = tmp_path / f"{name}.html"
        result = invoke(*base, *args, "-o", out)
        assert result.exit_code in (0, 1), result.output
        pages = [
            e for e in episodes(out.read_text(encoding="utf-8")) if e[:2] == ("on-sale", "fast")
        ]
        assert pages, f"{name}: no on-sale P1 in the timeline"
        assert any(iso(burst.start) < e[2] <= iso(burst.end + 300) for e in pages), (name, pages)


# ------------------------------------------------------------------------------- browser


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8, depth
            assert colour in (2, 6), colour  # RGB or RGBA
            assert interlace == 0
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind:
            for x in range(stride):
                left = line[x - channels] if x >= channels else 0
                up, corner = prev[x], prev[x - channels] if x >= channels else 0
                if kind == 1:
                    line[x] = (line[x] + left) & 255
                elif kind == 3:
                    line[x] = (line[x] + (left + up) // 2) & 255
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                    line[x] = (line[x] + best) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with console messages logged to stderr."""
    return subprocess.run(
        [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def console_messages(stderr: str) -> list[str]:
    """Lines Chromium logged for the page's console (the report has no scripts: any is bad)."""
    return [
        line
        for line in stderr.splitlines()
        if re.search(r":CONSOLE[:(]", line) or "Uncaught" in line
    ]


@pytest.fixture
def browser() -> str:
    return require_binary("chromium", "chromium")


def test_the_report_renders_in_a_real_browser(tmp_path: Path, browser: str) -> None:
    """Headless Chromium: a painted page with both modes' charts, every chart in the DOM,
    and not one console message."""
    out = tmp_path / "report.html"
    assert html_report(tmp_path, "-o", out).exit_code == 1
    url = out.as_uri()
    shot = tmp_path / "shot.png"
    painted = chromium(
        browser, tmp_path / "profile", "--window-size=1200,1700", f"--screenshot={shot}", url
    )
    assert shot.exists(), painted.stderr[-2000:]
    dom = chromium(browser, tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(painted.stderr + dom.stderr) == []

    charts = parse(dom.stdout).charts
    kinds = [c.get("data-chart") for c in charts]
    assert kinds.count("burn-down") == 8
    assert kinds.count("alert-timeline") == 4

    width, height, channels, rows = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 1700)
    pixels = [row[x : x + 3] for row in rows[::2] for x in range(0, len(row), channels * 2)]
    luminance = [(p[0] * 299 + p[1] * 587 + p[2] * 114) // 1000 for p in pixels]
    mean = sum(luminance) / len(luminance)
    variance = sum((v - mean) ** 2 for v in luminance) / len(luminance)
    assert variance > 100, "the screenshot is blank"
    assert len(set(pixels)) > 100
    for mode, colour in MODE_COLOUR.items():  # both burn-down lines were painted
        r, g, b = rgb(colour)
        near = sum(1 for p in pixels if abs(p[0] - r) + abs(p[1] - g) + abs(p[2] - b) < 40)
        assert near > 50, f"no {mode} chart painted"


def test_the_console_check_would_catch_a_fetch(tmp_path: Path, browser: str) -> None:
    """The page's CSP blocks an injected remote image, and the console scan sees it."""
    out = tmp_path / "report.html"
    assert html_report(tmp_path, "-o", out).exit_code == 1
    bad = tmp_path / "bad.html"
    page = out.read_text(encoding="utf-8")
    bad.write_text(
        page.replace("<main>", '<main><img src="https://example.invalid/x.png">'), "utf-8"
    )
    run = chromium(browser, tmp_path / "profile", "--dump-dom", bad.as_uri())
    messages = console_messages(run.stderr)
    assert any("Content Security Policy" in m for m in messages), run.stderr[-2000:]


def test_the_onsale_burn_down_drops_at_the_onsale_not_over_its_day(
    built: tuple[Report, AlertTimeline],
) -> None:
    """On-sale requests are only served in on-sale windows: the on-sale mode's burn-down is
    flat up to the on-sale's start and drops by its end + grace, instead of sloping over the
    whole day (one point of 30) that holds it; the on-sale band is wide enough to see."""
    report, timeline = built
    card = mode_card(render_html(report, timeline), 0, "onsale")
    band = re.search(r'<rect class="onsale-band" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', card)
    assert band is not None
    x0, width = float(band.group(1)), float(band.group(2))
    assert width >= 4.0
    line = re.search(r'<polyline points="([^"]+)"', card)
    assert line is not None
    points = [tuple(map(float, p.split(","))) for p in line.group(1).split()]
    top = points[0][1]
    first_drop = next(k for k, (_, y) in enumerate(points) if y > top + 0.5)
    assert points[first_drop - 1][0] == pytest.approx(x0, abs=0.11)  # flat until the start
    # down by the end of the on-sale + grace: 5 minutes of 30 days, well within a pixel
    assert points[first_drop][0] - x0 <= width + 1.0
