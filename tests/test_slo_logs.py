"""``LogSource``: exact counts from access-log files, on-sale windows, bad lines and bad files."""

from __future__ import annotations

import gzip
import math
import random
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onsale_obs.exceptions import BadInputError
from onsale_obs.instrument import status_class
from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import INF, Aggregate, Collected, CountRequest, Span
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._spec import PromQLSLI

T0 = 1_800_000_000.0
Line = dict[str, Any]


def line(
    ts: float,
    *,
    service: str = "checkout",
    route: str = "/events/{event_id}/checkout",
    method: str = "POST",
    status: int = 200,
    duration: float = 0.1,
    mode: str = "normal",
    event: str | None = None,
    event_onsale: bool = False,
) -> Line:
    """One access-log line, shaped like ``AccessLog`` writes it."""
    return {
        "ts": ts,
        "service": service,
        "route": route,
        "method": method,
        "status": status,
        "duration_s": duration,
        "mode": mode,
        "event": event,
        "event_onsale": event_onsale,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }


def onsale(ts: float, event: str | None = "final", **fields: Any) -> Line:
    """An on-sale line: of ``event``'s own on-sale, or (``event`` None) of a global one."""
    return line(ts, mode="onsale", event=event, event_onsale=event is not None, **fields)


def write(path: Path, lines: Sequence[Line | bytes], *, newline_at_end: bool = True) -> Path:
    """Write ``lines`` (dicts as JSON, bytes as they are) to ``path``, gzipped for ``.gz``."""
    data = b"\n".join(x if isinstance(x, bytes) else orjson.dumps(x) for x in lines)
    data += b"\n" if newline_at_end and lines else b""
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def request(
    spans: Sequence[tuple[float, float]] = ((T0, T0 + 3600),),
    *,
    at: float | None = None,
    windows: Sequence[OnSaleWindow] | None = (),
    thresholds: Sequence[float] = (),
    grace: float = 300.0,
    services: Sequence[str] = (),
) -> CountRequest:
    """A request with spans named ``s0``, ``s1``, ..."""
    return CountRequest(
        at=max(end for _, end in spans) if at is None else at,
        spans=tuple(Span(f"s{i}", start, end) for i, (start, end) in enumerate(spans)),
        thresholds=frozenset(thresholds),
        onsale_windows=None if windows is None else tuple(windows),
        grace=grace,
        services=frozenset(services),
    )


def collect(
    paths: Sequence[Path], req: CountRequest, chunk_size: int = 4 << 20, **kw: Any
) -> Collected:
    """``LogSource(paths).collect(req)``."""
    return LogSource(paths, chunk_size=chunk_size).collect(req, **kw)


def total(aggregate: Aggregate) -> float:
    """All requests of an aggregate."""
    return sum(aggregate.requests.values())


def window(scope: str, start: float, end: float | None) -> OnSaleWindow:
    """A window as the broadcaster's history would give it."""
    return OnSaleWindow(scope, start, end, "manual", "")


# --------------------------------------------------------------------------- a reference


def reference(
    lines: Sequence[Line], req: CountRequest
) -> tuple[dict[str, Aggregate], list[Aggregate]]:
    """The same counts, the obvious way: a Python loop over every line and every range."""
    levels = sorted({*req.thresholds, INF})
    spans = {s.name: Aggregate() for s in req.spans}
    windows = [Aggregate() for _ in req.onsale_windows or ()]
    for x in lines:
        if req.services and x["service"] not in req.services:
            continue
        labels = (x["service"], x["route"], x["method"], x["mode"])
        for span in req.spans:
            if span.start < x["ts"] <= span.end:
                _tally(spans[span.name], labels, x, levels)
        for w, aggregate in zip(req.onsale_windows or (), windows, strict=True):
            high = min((req.at if w.end is None else w.end) + req.grace, req.at)
            own = w.event is None or (x["event"] == w.event and x["event_onsale"])
            if x["mode"] == "onsale" and own and w.start < x["ts"] <= high:
                _tally(aggregate, labels, x, levels)
    return spans, windows


def _tally(
    into: Aggregate, labels: tuple[str, str, str, str], x: Line, levels: list[float]
) -> None:
    key = (*labels, status_class(x["status"]))
    into.requests[key] = into.requests.get(key, 0.0) + 1
    for le in levels:
        if x["duration_s"] <= le:
            into.latency[(*labels, le)] = into.latency.get((*labels, le), 0.0) + 1


def random_lines(seed: int, n: int, start: float, seconds: float) -> list[Line]:
    """``n`` lines of mixed services, statuses, modes and events, in time order."""
    rng = random.Random(seed)
    lines = []
    for ts in sorted(round(rng.uniform(start, start + seconds), 3) for _ in range(n)):
        kind = rng.random()
        fields: dict[str, Any] = {
            "service": rng.choice(("checkout", "gateway", "inventory")),
            "route": rng.choice(("/a", "/events/{event_id}", "/b")),
            "method": rng.choice(("GET", "POST")),
            "status": rng.choice((200, 200, 200, 201, 302, 404, 500, 503)),
            "duration": round(rng.expovariate(4.0), 4),
        }
        if kind < 0.2:
            lines.append(onsale(ts, rng.choice(("final", "cup")), **fields))
        elif kind < 0.3:
            lines.append(onsale(ts, None, **fields))
        else:
            lines.append(line(ts, event=rng.choice((None, "final")), **fields))
    return lines


# --------------------------------------------------------------------------- spans


def test_span_is_open_on_the_left_and_closed_on_the_right(tmp_path: Path) -> None:
    """A line at exactly ``start`` is out, at exactly ``end`` in; each span counts on its own."""
    path = write(
        tmp_path / "a.log",
        [line(T0), line(T0 + 0.001), line(T0 + 60), line(T0 + 120), line(T0 + 120.001)],
    )
    result = collect([path], request([(T0, T0 + 120), (T0 + 60, T0 + 120), (T0 - 1, T0)]))
    key = ("checkout", "/events/{event_id}/checkout", "POST", "normal", "2xx")
    assert result.spans["s0"].requests == {key: 3.0}
    assert result.spans["s1"].requests == {key: 1.0}
    assert result.spans["s2"].requests == {key: 1.0}


def test_latency_counts_every_threshold_and_inf(tmp_path: Path) -> None:
    """``latency[le]`` counts requests with ``duration_s <= le``; INF counts all of them."""
    durations = (0.1, 0.25, 0.2500001, 0.5, 1.0, 2.0, 30.0)
    path = write(tmp_path / "a.log", [line(T0 + 1, duration=d) for d in durations])
    result = collect([path], request(thresholds=(0.25, 1.0)))
    labels = ("checkout", "/events/{event_id}/checkout", "POST", "normal")
    assert result.spans["s0"].latency == {
        (*labels, 0.25): 2.0,
        (*labels, 1.0): 5.0,
        (*labels, INF): 7.0,
    }


def test_status_classes_and_labels(tmp_path: Path) -> None:
    """Status codes become classes like the metrics' (out of range: ``5xx``); routes as written."""
    statuses = (200, 204, 301, 404, 429, 503, 99, 700)
    lines = [line(T0 + 1, status=s, route="/r/{id}", method="GET") for s in statuses]
    lines.append(line(T0 + 2, service="gateway", route="/", mode="onsale", status=500))
    result = collect([write(tmp_path / "a.log", lines)], request())
    base = ("checkout", "/r/{id}", "GET", "normal")
    assert result.spans["s0"].requests == {
        (*base, "2xx"): 2.0,
        (*base, "3xx"): 1.0,
        (*base, "4xx"): 2.0,
        (*base, "5xx"): 3.0,
        ("gateway", "/", "POST", "onsale", "5xx"): 1.0,
    }
    assert result.spans["s0"].custom == {}


def test_services_filter(tmp_path: Path) -> None:
    """Only the services the spec names are counted; no services named counts everything."""
    lines = [line(T0 + 1, service=s) for s in ("checkout", "gateway", "gateway", "inventory")]
    path = write(tmp_path / "a.log", lines)
    only = collect([path], request(services=("gateway",)))
    assert {k[0] for k in only.spans["s0"].requests} == {"gateway"}
    assert total(only.spans["s0"]) == 2
    assert total(collect([path], request()).spans["s0"]) == 4


def test_two_files_give_the_sum_of_each(tmp_path: Path) -> None:
    """Counting two files at once is counting each and adding."""
    a = write(tmp_path / "a.log", random_lines(1, 300, T0, 3600))
    b = write(tmp_path / "b.log.gz", random_lines(2, 200, T0, 3600))
    req = request([(T0, T0 + 3600), (T0 + 1800, T0 + 3600)], thresholds=(0.25,))
    both = collect([a, b], req)
    for name in ("s0", "s1"):
        expected = Aggregate()
        expected.add(collect([a], req).spans[name])
        expected.add(collect([b], req).spans[name])
        assert both.spans[name] == expected
    assert both.origin == "logs: 2 files, 500 lines"


def test_matches_a_plain_python_count(tmp_path: Path) -> None:
    """Spans, thresholds, windows and services on random lines agree with the obvious loop."""
    lines = random_lines(3, 2000, T0, 7200)
    path = write(tmp_path / "a.log", lines)
    windows = [
        window("event:final", T0 + 600, T0 + 1200),
        window("global", T0 + 3000, T0 + 3300),
        window("event:cup", T0 + 6000, None),
    ]
    req = request(
        [(T0, T0 + 7200), (T0 + 3600, T0 + 7200), (T0 + 7000, T0 + 7200)],
        at=T0 + 7100,
        windows=windows,
        thresholds=(0.1, 0.25, 1.0),
        services=("checkout", "inventory"),
    )
    spans, onsales = reference(lines, req)
    result = collect([path], req, chunk_size=4096)
    assert result.spans == spans
    assert [o.counts for o in result.onsales] == onsales
    assert all(total(a) > 0 for a in [*spans.values(), *onsales])


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("chunk_size", [7, 100, 4096])
@pytest.mark.parametrize("derived", [False, True])
def test_chunk_size_never_changes_the_counts(
    tmp_path: Path, chunk_size: int, derived: bool
) -> None:
    """Tiny chunks cut lines everywhere: no line may be lost or counted twice."""
    lines = random_lines(4, 400, T0, 3600)
    path = write(tmp_path / "a.log", lines, newline_at_end=False)
    windows = None if derived else [window("event:final", T0 + 100, T0 + 2000)]
    req = request(windows=windows, thresholds=(0.25,))
    small = collect([path], req, chunk_size=chunk_size)
    default = collect([path], req)
    assert small == default
    assert total(default.spans["s0"]) == 400
    assert sum(total(o.counts) for o in default.onsales) > 0


def test_gzip_files_count_like_plain_ones(tmp_path: Path) -> None:
    """A ``.gz`` file is decompressed as it is read."""
    lines = random_lines(5, 500, T0, 3600)
    plain = write(tmp_path / "a.log", lines)
    zipped = write(tmp_path / "a.log.gz", lines)
    req = request(windows=None, thresholds=(0.5,))
    assert collect([zipped], req, chunk_size=100) == collect([plain], req)
    assert total(collect([zipped], req).spans["s0"]) == 500


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    """Every kind of bad line is skipped as ``malformed``; blank lines are ignored; good lines
    around them still count, whatever the chunk size."""
    good = orjson.dumps(line(T0 + 5))
    bad: list[Line | bytes] = [
        good[:40],  # truncated
        b"not json at all",
        orjson.dumps(line(T0 + 5) | {"status": "200"}),  # wrong type
        orjson.dumps(line(T0 + 5) | {"mode": "panic"}),  # unknown mode
        orjson.dumps({k: v for k, v in line(T0 + 5).items() if k != "route"}),  # missing field
        b"[1, 2, 3]",
        b"\xff\xfe\x00",
    ]
    lines: list[Line | bytes] = [good, b"", *bad, b"   ", good, b"\t", good]
    path = write(tmp_path / "a.log", lines, newline_at_end=False)
    for chunk_size in (7, 64, 4 << 20):
        result = collect([path], request(), chunk_size=chunk_size)
        assert total(result.spans["s0"]) == 3
        assert result.skipped == {"malformed": 7}
        assert result.origin == "logs: 1 file, 10 lines"


def test_a_line_without_newline_for_too_long_is_skipped(tmp_path: Path) -> None:
    """A line longer than the line limit is dropped without holding it in memory."""
    huge = b'{"ts": ' + b" " * (2 << 20) + b"1}"
    path = write(tmp_path / "a.log", [line(T0 + 1), huge, line(T0 + 2), huge])
    result = collect([path], request(), chunk_size=64 << 10)
    assert total(result.spans["s0"]) == 2
    assert result.skipped == {"too_long": 2}


def test_optional_fields_default(tmp_path: Path) -> None:
    """``event`` and ``event_onsale`` may be missing (unknown fields are ignored)."""
    bare = {k: v for k, v in line(T0 + 1, mode="onsale").items() if not k.startswith("event")}
    path = write(tmp_path / "a.log", [bare | {"extra": {"nested": [1]}}])
    result = collect([path], request(windows=[window("global", T0, T0 + 10)]))
    assert total(result.spans["s0"]) == 1
    assert total(result.onsales[0].counts) == 1
    assert result.skipped == {}


def test_missing_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    """A missing file fails before anything is read, with the file and what was expected."""
    good = write(tmp_path / "a.log", [line(T0 + 1)])
    missing = tmp_path / "nope.log"
    with pytest.raises(BadInputError) as info:
        collect([good, missing], request())
    assert info.value.file == str(missing)
    assert "no such file" in str(info.value)
    assert "expected an access-log file of JSON lines" in str(info.value)


def test_directory_and_broken_gzip_are_bad_input(tmp_path: Path) -> None:
    """A directory, or a ``.gz`` file that is not gzip, is refused with its name."""
    with pytest.raises(BadInputError, match="directory") as info:
        collect([tmp_path], request())
    assert info.value.file == str(tmp_path)
    fake = tmp_path / "a.log.gz"
    fake.write_bytes(orjson.dumps(line(T0 + 1)) + b"\n")
    with pytest.raises(BadInputError, match="gzip") as info:
        collect([fake], request())
    assert info.value.file == str(fake)


def test_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path: Path) -> None:
    """A gzip file cut short (still being written) counts what it has, with a warning."""
    lines = random_lines(6, 3000, T0, 3600)
    data = gzip.compress(b"\n".join(map(orjson.dumps, lines)) + b"\n")
    path = tmp_path / "a.log.gz"
    cut = data[: len(data) * 2 // 3]
    path.write_bytes(cut)
    # what zlib alone recovers from the cut file: every whole line in it must be counted
    recoverable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    assert 0 < recoverable < 3000
    for chunk_size in (1024, 4 << 20):  # small pieces, and the default 4 MiB read
        result = collect([path], request(), chunk_size=chunk_size)
        assert total(result.spans["s0"]) == recoverable
        assert any("ends early" in w and str(path) in w for w in result.warnings)


@pytest.mark.parametrize(("windows", "passes"), [((), 1), (None, 2)])
def test_progress_reports_bytes_on_disk(
    tmp_path: Path, windows: Sequence[OnSaleWindow] | None, passes: int
) -> None:
    """``progress(done, total)`` rises to the total size of the files (twice when deriving)."""
    a = write(tmp_path / "a.log", random_lines(7, 200, T0, 3600))
    b = write(tmp_path / "b.log.gz", random_lines(8, 200, T0, 3600))
    size = a.stat().st_size + b.stat().st_size
    calls: list[tuple[float, float | None]] = []
    collect(
        [a, b],
        request(windows=windows),
        chunk_size=512,
        progress=lambda done, of: calls.append((done, of)),
    )
    assert len(calls) > 4 * passes
    assert {of for _, of in calls} == {passes * size}
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1][0] == passes * size


def test_custom_slis_get_one_warning(tmp_path: Path) -> None:
    """Raw-PromQL SLIs cannot be counted from logs: one warning names those SLOs."""
    path = write(tmp_path / "a.log", [line(T0 + 1)])
    sli = PromQLSLI(good="good_total", total="all_total")
    req = CountRequest(at=T0 + 10, spans=(Span("s", T0, T0 + 10),), custom=(("a", sli), ("b", sli)))
    result = collect([path], req)
    assert len(result.warnings) == 1
    assert "a, b" in result.warnings[0]
    assert result.spans["s"].custom == {}
    assert collect([path], request()).warnings == []


# --------------------------------------------------------------------------- on-sale windows


def test_event_and_global_windows_take_their_own_lines(tmp_path: Path) -> None:
    """An event window counts its event's own on-sale lines; a global one every on-sale line."""
    lines = [
        onsale(T0 + 10, "final"),
        onsale(T0 + 11, "final", status=503),
        onsale(T0 + 12, "cup"),
        onsale(T0 + 13, None),  # on sale through the global scope
        onsale(T0 + 14, None) | {"event": "final"},  # event final, but not its own on-sale
        line(T0 + 15, event="final"),  # normal mode
    ]
    path = write(tmp_path / "a.log", lines)
    windows = [window("event:final", T0, T0 + 60), window("global", T0, T0 + 60)]
    result = collect([path], request(windows=windows))
    by_scope = {o.window.scope: o for o in result.onsales}
    assert by_scope["event:final"].window == windows[0]
    labels = ("checkout", "/events/{event_id}/checkout", "POST", "onsale")
    assert by_scope["event:final"].counts.requests == {(*labels, "2xx"): 1, (*labels, "5xx"): 1}
    assert total(by_scope["global"].counts) == 5


def test_window_grace_and_clipping_at_at(tmp_path: Path) -> None:
    """A window counts ``(start, min(end + grace, at)]``; an open window runs to ``at``."""
    lines = [
        onsale(T0 + 100),  # == start: out
        onsale(T0 + 100.5),
        onsale(T0 + 200),  # == end
        onsale(T0 + 260),  # == end + grace
        onsale(T0 + 260.5),  # past grace
        onsale(T0 + 900),
        onsale(T0 + 1000),  # == at
        onsale(T0 + 1000.5),  # after at
    ]
    path = write(tmp_path / "a.log", lines)
    windows = [
        window("event:final", T0 + 100, T0 + 200),
        window("event:final", T0 + 800, T0 + 990),  # grace clipped at `at`
        window("event:final", T0 + 850, None),  # still on sale
    ]
    req = request([(T0, T0 + 2000)], at=T0 + 1000, windows=windows, grace=60)
    counts = [total(o.counts) for o in collect([path], req).onsales]
    assert counts == [3, 2, 2]


def test_minutes_count_requests_per_route_and_minute(tmp_path: Path) -> None:
    """``minutes`` holds the window's requests per route and minute (keyed by its first second)."""
    start = 1_800_000_000.0  # a whole minute
    lines = [
        onsale(start + 1),
        onsale(start + 59.9),
        onsale(start + 60),  # exactly the next minute's first second
        onsale(start + 61, route="/other"),
        onsale(start + 125),
    ]
    path = write(tmp_path / "a.log", lines)
    req = request([(start, start + 600)], windows=[window("event:final", start, start + 600)])
    (result,) = collect([path], req).onsales
    m = int(start)
    assert result.minutes == {
        ("checkout", "/events/{event_id}/checkout", "POST"): {m: 2.0, m + 60: 1.0, m + 120: 1.0},
        ("checkout", "/other", "POST"): {m + 60: 1.0},
    }


def test_windows_are_sorted_by_start_then_scope(tmp_path: Path) -> None:
    """Given windows come back sorted by (start, scope), each with its own counts."""
    path = write(tmp_path / "a.log", [onsale(T0 + 5)])
    windows = [
        window("global", T0 + 30, T0 + 40),
        window("global", T0, T0 + 9),
        window("event:a", T0, T0 + 9),
    ]
    result = collect([path], request(windows=windows))
    assert [(o.window.start, o.window.scope) for o in result.onsales] == [
        (T0, "event:a"),
        (T0, "global"),
        (T0 + 30, "global"),
    ]
    assert [total(o.counts) for o in result.onsales] == [0, 1, 0]


def test_windows_are_found_in_the_logs(tmp_path: Path) -> None:
    """Without windows, runs of on-sale lines per scope (gaps up to ``grace``) become windows,
    from their first to their last line, counted like given windows (first line included)."""
    lines = [
        line(T0 + 1),
        onsale(T0 + 10.25, "final"),
        onsale(T0 + 40, "final", status=500),
        onsale(T0 + 100, "final"),  # gap 60 == grace: same window
        onsale(T0 + 100.5, "cup"),
        onsale(T0 + 105, None),
        onsale(T0 + 130, None) | {"event": "cup"},  # on sale through the global scope
        onsale(T0 + 160.75, "final"),  # gap 60.75 > grace: a new window
        onsale(T0 + 160, None),
        onsale(T0 + 5000, None),  # outside every span: ignored
    ]
    path = write(tmp_path / "a.log", lines)
    req = request([(T0, T0 + 1000), (T0 + 100, T0 + 1000)], at=T0 + 1000, windows=None, grace=60)
    result = collect([path], req)
    found = [(o.window.scope, o.window.start, o.window.end) for o in result.onsales]
    assert found == [
        ("event:final", T0 + 10.25, T0 + 100),
        ("event:cup", T0 + 100.5, T0 + 100.5),
        ("global", T0 + 105, T0 + 160),
        ("event:final", T0 + 160.75, T0 + 160.75),
    ]
    assert all(o.window.source == "auto" and o.window.reason for o in result.onsales)
    # global: every on-sale line in [105, 220], its first line included
    assert [total(o.counts) for o in result.onsales] == [3, 1, 4, 1]
    assert result.spans["s0"] == collect([path], request(req_spans(req), windows=[])).spans["s0"]


def req_spans(req: CountRequest) -> list[tuple[float, float]]:
    """The (start, end) of every span of ``req``."""
    return [(s.start, s.end) for s in req.spans]


def test_found_windows_match_given_ones_on_random_lines(tmp_path: Path) -> None:
    """Counting found windows equals counting the same windows given (first line included)."""
    lines = random_lines(9, 1500, T0, 7200)
    # quiet gaps so that several windows per scope exist
    lines = [
        x for x in lines if not (T0 + 2000 < x["ts"] < T0 + 3000 or T0 + 5000 < x["ts"] < T0 + 5600)
    ]
    path = write(tmp_path / "a.log", lines)
    req = request([(T0 + 500, T0 + 7200)], windows=None, thresholds=(0.25,), grace=120)
    found = collect([path], req, chunk_size=333)
    assert len(found.onsales) >= 6
    given = [
        OnSaleWindow(o.window.scope, math.nextafter(o.window.start, -INF), o.window.end, "auto", "")
        for o in found.onsales
    ]
    again = collect([path], request(req_spans(req), windows=given, thresholds=(0.25,), grace=120))
    assert [o.counts for o in found.onsales] == [o.counts for o in again.onsales]
    assert [o.minutes for o in found.onsales] == [o.minutes for o in again.onsales]
    assert found.spans == again.spans
    starts = [(o.window.start, o.window.scope) for o in found.onsales]
    assert starts == sorted(starts)


def test_chunk_size_must_be_positive() -> None:
    """A chunk of no bytes would never advance: refused as bad input."""
    with pytest.raises(BadInputError, match="positive"):
        LogSource([], chunk_size=0)


def test_no_files_count_nothing() -> None:
    """No files: every span is there, empty, and no window is found."""
    result = LogSource([]).collect(request(windows=None))
    assert result.spans["s0"] == Aggregate()
    assert result.onsales == []
    assert result.origin == "logs: 0 files, 0 lines"


@pytest.mark.parametrize("windows", [None, [window("event:final", T0, T0 + 60)]])
def test_an_escaped_onsale_mode_still_counts(
    tmp_path: Path, windows: Sequence[OnSaleWindow] | None
) -> None:
    """The byte search that skips batches without on-sale lines is not fooled by escapes."""
    escaped = orjson.dumps(onsale(T0 + 10)).replace(b'"onsale"', b'"\\u006fnsale"')
    path = write(tmp_path / "a.log", [line(T0 + 1), escaped, line(T0 + 20)])
    result = collect([path], request(windows=windows))
    assert [total(o.counts) for o in result.onsales] == [1]
    assert result.onsales[0].window.scope == "event:final"


@settings(max_examples=60, deadline=None)
@given(junk=st.lists(st.binary(max_size=80), max_size=12), chunk_size=st.integers(1, 300))
def test_junk_never_raises_and_never_hides_good_lines(junk: list[bytes], chunk_size: int) -> None:
    """Whatever bytes sit between good lines, collecting does not raise and counts them all."""
    good = [orjson.dumps(onsale(T0 + i + 1)) for i in range(len(junk) + 1)]
    mixed = [x for pair in zip(good, [*junk, b""], strict=True) for x in pair]
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "a.log", mixed)
        for windows in (None, [window("global", T0, T0 + 100)]):
            result = collect([path], request(windows=windows), chunk_size=chunk_size)
            assert total(result.spans["s0"]) == len(good)
            assert sum(total(o.counts) for o in result.onsales) == len(good)
