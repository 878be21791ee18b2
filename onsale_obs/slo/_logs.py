"""Counting requests from access logs (JSON lines): the SLO engine's embedded source.

:class:`LogSource` reads the files written by :class:`onsale_obs.instrument.AccessLog` (plain,
or gzip when the name ends in ``.gz``) and answers a :class:`CountRequest` exactly: every line
is one request, so spans and on-sale windows get whole counts, never estimates.

How it stays fast and small
---------------------------
Files are read in chunks of ``chunk_size`` bytes into one reused buffer, cut after the last
newline (the rest is carried into the next chunk), so memory does not grow with the file. Each
chunk is decoded by msgspec in batches of about 64 KiB (so that a batch's structs stay in the
CPU cache), and the per-line work never runs in a Python loop: timestamps become a *segment*
number with ``bisect_left`` over the sorted span and window boundaries ("edges", so each line
falls in exactly one segment and every span or window is a union of segments), durations
become a latency *bucket* (the first threshold the request met), and ``Counter`` counts
``(segment, labels, bucket)`` keys, all through ``map``/``zip``/``attrgetter`` at C speed.
The counters are bounded by the label cardinality (the same as the metrics'), not by the number
of lines; at the end they are folded into span and window aggregates.

On-sale lines (``mode == "onsale"``) are also counted by ``(segment, minute, event, labels,
bucket)`` for the on-sale windows and their per-minute rates: bounded by on-sale minutes. A
byte search skips this for the batches with no ``"onsale"`` in them (most of a log).

On-sale windows found in the logs
---------------------------------
Without windows from the broadcaster (``onsale_windows`` None) the windows are derived from the
lines, in two passes. The first pass counts the spans and keeps, per scope and per on-sale
second, the earliest and latest on-sale timestamp (memory bounded by on-sale time, not by line
count); runs of lines with gaps of at most ``grace`` form the windows, from their first to their
last timestamp (gaps are compared between seconds, so with ``grace`` under a second two lines in
the same second never split a run). The second pass re-reads the same bytes (no more than the
first pass read, should the log have grown) but decodes only the batches whose bytes contain
``"onsale"`` (or a backslash, with which JSON could escape it), and counts their on-sale lines
into the windows now known: exact counts at a fraction of the first pass's cost, since
on-sale traffic comes in bursts. A derived window includes its own first line, although
windows are otherwise open on the left (``start < ts``): its lower bound is one float step
before ``start``. Windows are found from the on-sale lines of every service in the files, and
only within the longest span. Reading twice needs regular files; a pipe is refused with a
message.

Lines that cannot be used are skipped and counted by reason in ``Collected.skipped``:
``malformed`` (not JSON, truncated, a missing field, a wrong type, an unknown mode) and
``too_long`` (no newline within ``max(chunk_size, 1 MiB)`` bytes). Blank lines are ignored.
"""

from __future__ import annotations

import gzip
import math
import stat
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate, compress, repeat
from operator import attrgetter, floordiv
from pathlib import Path
from typing import Annotated, Final, Literal, Protocol

import msgspec

from onsale_obs.exceptions import BadInputError
from onsale_obs.instrument._metrics import status_class
from onsale_obs.modes._model import EVENT_PREFIX, GLOBAL_SCOPE, OnSaleWindow
from onsale_obs.slo._data import (
    INF,
    Aggregate,
    Collected,
    CountRequest,
    LatencyKey,
    OnSaleCounts,
    Progress,
    RequestKey,
    RouteKey,
    Span,
)

DEFAULT_CHUNK_SIZE: Final = 4 << 20
#: a line without a newline within this many bytes (or ``chunk_size``, if larger) is skipped
MAX_LINE: Final = 1 << 20
#: bytes decoded and counted at a time (see ``_batches``)
BATCH: Final = 64 << 10
ONSALE: Final = "onsale"
_READ_ERRORS: Final = (OSError, zlib.error, EOFError)
_EXPECTED: Final = (
    "expected an access-log file of JSON lines (gzip-compressed when the name ends in .gz)"
)


class _Line(msgspec.Struct, gc=False):
    """The fields of one access-log line that counting needs (others are ignored)."""

    ts: Annotated[float, msgspec.Meta(ge=0.0, le=1e11)]
    service: str
    route: str
    method: str
    status: int
    duration_s: float
    mode: Literal["normal", "onsale"]
    event: str | None = None
    event_onsale: bool = False


_DECODER: Final = msgspec.json.Decoder(_Line)
_TS: Final = attrgetter("ts")
_DURATION: Final = attrgetter("duration_s")
_MODE: Final = attrgetter("mode")
_LABELS: Final = attrgetter("service", "route", "method", "mode", "status")
_ONSALE_LABELS: Final = attrgetter("event", "event_onsale", "service", "route", "method", "status")
_TAG: Final = attrgetter("event_onsale", "event")
_IS_ONSALE: Final = ONSALE.__eq__

# (segment, (service, route, method, mode, status), latency bucket)
_RequestCell = tuple[int, tuple[str, str, str, str, int], int]
# (event, event_onsale, service, route, method, status)
_OnSaleLabels = tuple[str | None, bool, str, str, str, int]
# (segment, minute index, labels, latency bucket)
_OnSaleCell = tuple[int, float, _OnSaleLabels, int]
# ((event_onsale, event), segment, epoch second)
_RunCell = tuple[tuple[bool, str | None], int, int]


# --------------------------------------------------------------------------- reading


class _Stream(Protocol):
    """A binary file: plain or gzip."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def tell(self) -> int: ...


#: whole lines: ``buffer[start:end]``
_Piece = tuple[bytearray, int, int]


@dataclass(slots=True)
class _FileReader:
    """Yields one file's bytes in pieces of whole lines (the last one may lack its newline).

    Reads ``chunk_size`` bytes at a time into one reused buffer (a fresh 4 MiB ``bytes`` per
    read costs page faults), after the carried start of the last, unfinished line. A piece
    is only valid until the next one is asked for. ``limit`` stops after that many
    (uncompressed) bytes: the second pass reads exactly what the first one read, even if the
    log grew in between.
    """

    path: Path
    chunk_size: int
    limit: int | None = None
    #: uncompressed bytes read so far
    consumed: int = 0
    #: position in the file on disk (compressed bytes for gzip), for progress
    position: int = 0
    too_long: int = 0
    truncated: bool = False

    def __iter__(self) -> Iterator[_Piece]:
        try:
            with self.path.open("rb", buffering=0) as raw:
                if self.path.name.endswith(".gz"):
                    with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                        yield from self._pieces(_GzipStream(unzipped, self), raw)
                else:
                    yield from self._pieces(raw, raw)
        except EOFError:
            self.truncated = True  # a gzip file cut short (still being written or copied)
        except _READ_ERRORS as exc:
            raise BadInputError(
                f"could not be read ({_reason(exc)}); {_EXPECTED}.", file=str(self.path)
            ) from None

    def _pieces(self, stream: _Stream, raw: _Stream) -> Iterator[_Piece]:
        max_line = max(self.chunk_size, MAX_LINE)
        buffer = bytearray(max_line + self.chunk_size)
        kept = 0  # buffer[:kept] is the start of an unfinished line (never above max_line)
        dropping = False  # inside a line that was too long: skip to its newline
        while (end := self._read(stream, buffer, kept)) > kept:
            self.position = raw.tell()
            cut = buffer.rfind(b"\n", kept, end)
            if cut < 0:
                kept = 0 if dropping else end
                if kept > max_line:
                    kept, dropping = 0, True
                    self.too_long += 1
                continue
            start = 0
            if dropping:
                start, dropping = buffer.find(b"\n", 0, end) + 1, False
            if cut + 1 > start:
                yield buffer, start, cut + 1
            kept = end - cut - 1
            buffer[:kept] = buffer[cut + 1 : end]
        if kept and not dropping:
            yield buffer, 0, kept

    def _read(self, stream: _Stream, buffer: bytearray, kept: int) -> int:
        """Read up to ``chunk_size`` bytes after ``buffer[:kept]``; return where data ends."""
        size = self.chunk_size
        if self.limit is not None:
            size = min(size, self.limit - self.consumed)
            if size <= 0:
                return kept
        with memoryview(buffer) as view:
            read = stream.readinto(view[kept : kept + size]) or 0
        self.consumed += read
        return kept + read


class _GzipStream:
    """A gzip file read so that a file cut short loses nothing before the cut.

    ``GzipFile.readinto`` fills a large buffer from many decompressed blocks and, when it
    meets the cut, raises ``EOFError`` with the blocks already copied unaccounted for (up to a
    whole chunk of lines). ``read1`` returns one block at a time, so only the cut is lost.
    """

    def __init__(self, unzipped: gzip.GzipFile, reader: _FileReader) -> None:
        self._unzipped = unzipped
        self._reader = reader
        self._ended = False

    def readinto(self, buffer: memoryview, /) -> int:
        filled = 0
        wanted = len(buffer)
        read1 = self._unzipped.read1
        while filled < wanted and not self._ended:
            try:
                block = read1(wanted - filled)
            except EOFError:  # the file ends inside the stream: still being written or copied
                self._reader.truncated = self._ended = True
                break
            if not block:
                self._ended = True
                break
            buffer[filled : filled + len(block)] = block
            filled += len(block)
        return filled

    def tell(self) -> int:
        return self._unzipped.tell()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"not valid gzip: {exc}"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _batches(data: bytearray, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """Cut ``data[start:end]`` into ranges of about ``size`` bytes that end after a newline.

    Decoding and counting a few hundred lines at a time keeps their structs in the CPU cache;
    the structs of a whole 4 MiB chunk do not fit, and every pass over them would miss.
    """
    while start < end:
        cut = data.rfind(b"\n", start, min(start + size, end))
        if cut < 0:
            cut = data.find(b"\n", start + size, end)
            cut = end - 1 if cut < 0 else cut
        yield start, cut + 1
        start = cut + 1


def _decode(batch: memoryview, skipped: Counter[str]) -> list[_Line]:
    """All lines of ``batch``; when some are bad, decode line by line and count the bad ones."""
    try:
        return _DECODER.decode_lines(batch)
    except msgspec.DecodeError:
        pass
    lines: list[_Line] = []
    for raw in bytes(batch).split(b"\n"):
        if raw.strip():
            try:
                lines.append(_DECODER.decode(raw))
            except msgspec.DecodeError:
                skipped["malformed"] += 1
    return lines


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True, slots=True)
class _Range:
    """A time range ``(low, high]`` to count: a span or an on-sale window."""

    low: float
    high: float


class _Segments:
    """The sorted boundaries of every range; segment ``i`` is ``(edges[i-1], edges[i]]``."""

    def __init__(self, ranges: Sequence[_Range]) -> None:
        self.edges = sorted({x for r in ranges if r.low < r.high for x in (r.low, r.high)})
        self.of: Callable[[float], int] = partial(bisect_left, self.edges)

    def covering(self, ranges: Sequence[_Range]) -> list[tuple[int, ...]]:
        """Per segment, the indexes of the ``ranges`` that contain it."""
        cover: list[list[int]] = [[] for _ in range(len(self.edges) + 1)]
        for index, r in enumerate(ranges):
            if r.low < r.high:
                for seg in range(self.of(r.low) + 1, self.of(r.high) + 1):
                    cover[seg].append(index)
        return [tuple(c) for c in cover]


@dataclass(slots=True)
class _Tally:
    """Counts of decoded lines, keyed by segment, labels and latency bucket (see module doc)."""

    segments: _Segments
    thresholds: list[float]
    count_requests: bool
    count_onsale: bool
    track_runs: bool
    requests: Counter[_RequestCell] = field(default_factory=Counter)
    onsale: Counter[_OnSaleCell] = field(default_factory=Counter)
    first: dict[_RunCell, float] = field(default_factory=dict)
    last: dict[_RunCell, float] = field(default_factory=dict)

    def add(self, lines: list[_Line], *, maybe_onsale: bool = True) -> None:
        """Count ``lines`` (all the per-line work runs in C); ``maybe_onsale=False`` tells
        that none of them is an on-sale line (the batch's bytes do not contain ``"onsale"``)."""
        mask: list[bool] | None = None
        if maybe_onsale and (self.count_onsale or self.track_runs):
            mask = list(map(_IS_ONSALE, map(_MODE, lines)))
        if mask is None or not any(mask):
            if self.count_requests:
                segs = map(self.segments.of, map(_TS, lines))
                cells = zip(segs, map(_LABELS, lines), self._buckets(lines), strict=True)
                self.requests.update(cells)
            return
        segs_list = list(map(self.segments.of, map(_TS, lines)))
        buckets = list(self._buckets(lines))
        if self.count_requests:
            self.requests.update(zip(segs_list, map(_LABELS, lines), buckets, strict=True))
        onsale = list(compress(lines, mask))
        onsale_segs = list(compress(segs_list, mask))
        if self.count_onsale:
            minutes = map(floordiv, map(_TS, onsale), repeat(60.0))
            labels = map(_ONSALE_LABELS, onsale)
            self.onsale.update(
                zip(onsale_segs, minutes, labels, compress(buckets, mask), strict=True)
            )
        if self.track_runs:
            self._track(onsale, onsale_segs)

    def _buckets(self, lines: list[_Line]) -> Iterator[int]:
        """Per line, the index of the first threshold its duration met (``len``: none)."""
        if not self.thresholds:
            return repeat(0, len(lines))
        return map(partial(bisect_left, self.thresholds), map(_DURATION, lines))

    def _track(self, onsale: list[_Line], segs: list[int]) -> None:
        """Keep the earliest and latest timestamp per (scope tag, segment, second)."""
        stamps = list(map(_TS, onsale))
        cells: list[_RunCell] = list(
            zip(map(_TAG, onsale), segs, map(math.floor, stamps), strict=True)
        )
        order = sorted(range(len(stamps)), key=stamps.__getitem__)
        stamps = list(map(stamps.__getitem__, order))
        cells = list(map(cells.__getitem__, order))
        for cell, ts in dict(zip(reversed(cells), reversed(stamps), strict=True)).items():
            if ts < self.first.get(cell, INF):
                self.first[cell] = ts
        for cell, ts in dict(zip(cells, stamps, strict=True)).items():
            if ts > self.last.get(cell, -INF):
                self.last[cell] = ts


# --------------------------------------------------------------------------- folding


def _levels(thresholds: list[float]) -> list[float]:
    """Latency bucket ``b`` met every level from ``levels[b]`` on (INF last)."""
    return [*thresholds, INF]


def _fold_spans(
    tally: _Tally, spans: Sequence[Span], services: frozenset[str]
) -> dict[str, Aggregate]:
    aggregates = {span.name: Aggregate() for span in spans}
    cover = tally.segments.covering([_Range(s.start, s.end) for s in spans])
    targets = [tuple(aggregates[spans[i].name] for i in c) for c in cover]
    levels = _levels(tally.thresholds)
    for (seg, (service, route, method, mode, status), bucket), n in tally.requests.items():
        if not targets[seg] or (services and service not in services):
            continue
        request = (service, route, method, mode, status_class(status))
        latency = [(service, route, method, mode, le) for le in levels[bucket:]]
        for aggregate in targets[seg]:
            _add_counts(aggregate, request, latency, n)
    return aggregates


def _add_counts(
    aggregate: Aggregate,
    request: tuple[str, str, str, str, str],
    latency: list[tuple[str, str, str, str, float]],
    n: int,
) -> None:
    aggregate.requests[request] = aggregate.requests.get(request, 0.0) + n
    for key in latency:
        aggregate.latency[key] = aggregate.latency.get(key, 0.0) + n


def _fold_onsales(
    tally: _Tally,
    windows: Sequence[OnSaleWindow],
    ranges: Sequence[_Range],
    services: frozenset[str],
) -> list[OnSaleCounts]:
    results = [OnSaleCounts(window=w, counts=Aggregate()) for w in windows]
    by_event: dict[str | None, _Stabber] = {}
    for index, (window, r) in enumerate(zip(windows, ranges, strict=True)):
        if r.low < r.high:
            first, last = tally.segments.of(r.low) + 1, tally.segments.of(r.high)
            by_event.setdefault(window.event, _Stabber()).add(first, last, index)
    for stabber in by_event.values():
        stabber.freeze()
    everyone = by_event.pop(None, None)
    levels = _levels(tally.thresholds)
    # few label sets and segments, many cells: each one's keys and windows are found once
    made: dict[tuple[_OnSaleLabels, int], tuple[RequestKey, list[LatencyKey], RouteKey]] = {}
    covered: dict[tuple[str | None, int], list[int]] = {}
    for (seg, minute, labels, bucket), n in tally.onsale.items():
        event, event_onsale, service, route, method, status = labels
        if services and service not in services:
            continue
        # a global window counts every on-sale line; an event's window only its event's
        scope = event if event_onsale else None
        targets = covered.get((scope, seg))
        if targets is None:
            own = by_event.get(scope) if scope is not None else None
            targets = covered[scope, seg] = [
                *(() if everyone is None else everyone.covering(seg)),
                *(() if own is None else own.covering(seg)),
            ]
        if not targets:
            continue
        keys = made.get((labels, bucket))
        if keys is None:
            request = (service, route, method, ONSALE, status_class(status))
            latency = [(service, route, method, ONSALE, le) for le in levels[bucket:]]
            keys = made[labels, bucket] = (request, latency, (service, route, method))
        request, latency, route_key = keys
        start = int(minute) * 60
        for index in targets:
            result = results[index]
            into = result.counts.requests
            into[request] = into.get(request, 0.0) + n
            into_latency = result.counts.latency
            for key in latency:
                into_latency[key] = into_latency.get(key, 0.0) + n
            per_minute = result.minutes.get(route_key)
            if per_minute is None:
                per_minute = result.minutes[route_key] = {}
            per_minute[start] = per_minute.get(start, 0.0) + n
    return results


class _Stabber:
    """The windows (of one scope) covering a segment: segments ``first..last`` per window.

    Sorted by first segment, with the running maximum of last segments, so a lookup is a
    bisection and a walk back over the windows that can still reach the segment: with
    thousands of events on sale within minutes of each other, a line meets only its own
    event's windows, never every window of the moment.
    """

    __slots__ = ("firsts", "index", "lasts", "reach", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int]] = []

    def add(self, first: int, last: int, index: int) -> None:
        self.rows.append((first, last, index))

    def freeze(self) -> None:
        self.rows.sort()
        self.firsts = [first for first, _, _ in self.rows]
        self.lasts = [last for _, last, _ in self.rows]
        self.index = [index for _, _, index in self.rows]
        self.reach = list(accumulate(self.lasts, max))

    def covering(self, seg: int) -> list[int]:
        """Indexes of the windows covering ``seg``."""
        found = []
        k = bisect_right(self.firsts, seg) - 1
        while k >= 0 and self.reach[k] >= seg:
            if self.lasts[k] >= seg:
                found.append(self.index[k])
            k -= 1
        return found


def _window_range(window: OnSaleWindow, request: CountRequest, *, derived: bool) -> _Range:
    """Where a window's on-sale requests finished: ``(start, min(end + grace, at)]``."""
    end = request.at if window.end is None else window.end
    low = math.nextafter(window.start, -INF) if derived else window.start
    return _Range(low, min(end + request.grace, request.at))


def _scope(tag: tuple[bool, str | None]) -> str:
    event_onsale, event = tag
    return EVENT_PREFIX + event if event_onsale and event is not None else GLOBAL_SCOPE


def _derive_windows(tally: _Tally, longest: _Range, grace: float) -> list[OnSaleWindow]:
    """Runs of on-sale seconds per scope, split where the gap is longer than ``grace``."""
    inside = set(range(tally.segments.of(longest.low) + 1, tally.segments.of(longest.high) + 1))
    seconds: dict[str, dict[int, tuple[float, float]]] = {}
    scopes: dict[tuple[bool, str | None], dict[int, tuple[float, float]]] = {}
    lasts = tally.last
    for cell, first in tally.first.items():
        tag, seg, second = cell
        if seg in inside:
            per_second = scopes.get(tag)
            if per_second is None:  # tags of one scope share its seconds (merged below)
                per_second = scopes[tag] = seconds.setdefault(_scope(tag), {})
            last = lasts[cell]
            known = per_second.get(second)
            if known is not None:
                low, high = known
                first, last = (first if first < low else low), (last if last > high else high)
            per_second[second] = (first, last)
    windows: list[OnSaleWindow] = []
    for scope, per_second in seconds.items():
        start = end = -INF
        for second in sorted(per_second):
            first, last = per_second[second]
            if first - end > grace:
                if end > -INF:
                    windows.append(_found(scope, start, end))
                start = first
            if last > end:
                end = last
        windows.append(_found(scope, start, end))
    return windows


def _found(scope: str, start: float, end: float) -> OnSaleWindow:
    return OnSaleWindow(scope, start, end, "auto", "found in access logs")


# --------------------------------------------------------------------------- the source


@dataclass(slots=True)
class _Pass:
    """What one read of the files saw."""

    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    consumed: list[int] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


class LogSource:
    """Counts requests from access-log files (see the module docstring for how).

    ``paths`` are read in order; a missing or unreadable file raises :class:`BadInputError`
    naming it. ``chunk_size`` bounds the memory per read (default 4 MiB).
    """

    def __init__(
        self, paths: Sequence[str | Path], *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        if chunk_size < 1:
            raise BadInputError(
                f"chunk_size is {chunk_size}; expected a positive number of bytes.",
                field="chunk_size",
            )
        self.paths = [Path(p) for p in paths]
        self.chunk_size = chunk_size

    def collect(self, request: CountRequest, progress: Progress | None = None) -> Collected:
        """Read every file and count what ``request`` asks for."""
        sizes = self._sizes(derive=request.onsale_windows is None)
        passes = 2 if request.onsale_windows is None else 1
        total = None if None in sizes else passes * sum(s or 0 for s in sizes)
        meter = _Meter(progress, total)
        thresholds = sorted(t for t in request.thresholds if t != INF)
        span_ranges = [_Range(s.start, s.end) for s in request.spans]
        derived = request.onsale_windows is None
        windows = [] if derived else list(request.onsale_windows or ())
        window_ranges = [_window_range(w, request, derived=False) for w in windows]
        first = _Tally(
            _Segments(span_ranges + window_ranges),
            thresholds,
            count_requests=True,
            count_onsale=not derived,
            track_runs=derived,
        )
        seen = self._read(first, meter, sizes)
        tally = first
        if derived:
            windows = self._derive(first, request)
            window_ranges = [_window_range(w, request, derived=True) for w in windows]
            tally = _Tally(
                _Segments(window_ranges),
                thresholds,
                count_requests=False,
                count_onsale=True,
                track_runs=False,
            )
            self._read(tally, meter, sizes, limits=seen.consumed, only_onsale=True)
        onsales = _fold_onsales(tally, windows, window_ranges, request.services)
        onsales.sort(key=lambda o: (o.window.start, o.window.scope))
        return Collected(
            spans=_fold_spans(first, request.spans, request.services),
            onsales=onsales,
            origin=self._origin(seen.lines + seen.skipped.total()),
            exact_onsale=True,
            skipped=dict(sorted(seen.skipped.items())),
            warnings=_warnings(request, seen),
        )

    def _sizes(self, *, derive: bool) -> list[int | None]:
        """Each file's size on disk (None for a pipe); missing files fail before any read."""
        sizes: list[int | None] = []
        for path in self.paths:
            try:
                info = path.stat()
            except OSError as exc:
                raise BadInputError(f"{_reason(exc)}; {_EXPECTED}.", file=str(path)) from None
            if stat.S_ISDIR(info.st_mode):
                raise BadInputError(f"it is a directory; {_EXPECTED}.", file=str(path))
            regular = stat.S_ISREG(info.st_mode)
            if derive and not regular:
                raise BadInputError(
                    "is not a regular file, and finding on-sale windows in the logs reads them "
                    "twice; expected a file (or pass the on-sale windows from the broadcaster).",
                    file=str(path),
                )
            sizes.append(info.st_size if regular else None)
        return sizes

    def _read(
        self,
        tally: _Tally,
        meter: _Meter,
        sizes: list[int | None],
        *,
        limits: list[int] | None = None,
        only_onsale: bool = False,
    ) -> _Pass:
        """One pass over every file into ``tally``."""
        seen = _Pass()
        for index, path in enumerate(self.paths):
            limit = None if limits is None else limits[index]
            reader = _FileReader(path, self.chunk_size, limit)
            for buffer, start, end in reader:
                _count(tally, seen, buffer, start, end, only_onsale=only_onsale)
                meter.at(reader.position)
            meter.file_done(sizes[index])
            if reader.too_long:
                seen.skipped["too_long"] += reader.too_long
            if reader.truncated:
                seen.truncated.append(str(path))
            seen.consumed.append(reader.consumed)
        return seen

    def _derive(self, tally: _Tally, request: CountRequest) -> list[OnSaleWindow]:
        if not request.spans:
            return []
        longest = max(request.spans, key=lambda s: (s.end - s.start, -s.start))
        return _derive_windows(tally, _Range(longest.start, longest.end), request.grace)

    def _origin(self, lines: int) -> str:
        files = len(self.paths)
        return f"logs: {files:,} file{'' if files == 1 else 's'}, {lines:,} lines"


def _count(
    tally: _Tally, seen: _Pass, data: bytearray, start: int, end: int, *, only_onsale: bool
) -> None:
    """Decode and count the lines of ``data[start:end]``, a batch at a time.

    A byte search tells the batches without an on-sale line: no ``"onsale"`` in their bytes
    (the quotes tell the mode's value from the ``event_onsale`` key), nor a backslash, with
    which a JSON escape could spell it. That is most batches of a log; with ``only_onsale``
    they are not even decoded.
    """
    with memoryview(data) as view:
        for low, high in _batches(data, start, end, BATCH):
            maybe = data.find(b'"onsale"', low, high) >= 0 or data.find(b"\\", low, high) >= 0
            if only_onsale and not maybe:
                continue
            lines = _decode(view[low:high], seen.skipped)
            seen.lines += len(lines)
            tally.add(lines, maybe_onsale=maybe)


def _warnings(request: CountRequest, seen: _Pass) -> list[str]:
    warnings: list[str] = []
    if request.custom:
        names = ", ".join(name for name, _ in request.custom)
        warnings.append(
            f"raw-PromQL SLIs cannot be counted from access logs, so these SLOs have no "
            f"counts: {names} (use the Prometheus source for them)."
        )
    for path in seen.truncated:
        warnings.append(
            f"{path}: the gzip stream ends early (a file still being written or cut short); "
            "the lines before the cut were counted."
        )
    return warnings


class _Meter:
    """Turns per-file positions into ``progress(done, total)`` calls across files and passes."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.progress = progress
        self.total = total
        self.base = 0

    def at(self, position: int) -> None:
        """Report ``position`` bytes into the current file (a file that grew stops at total)."""
        if self.progress is not None:
            done = self.base + position
            self.progress(done if self.total is None else min(done, self.total), self.total)

    def file_done(self, size: int | None) -> None:
        """The current file is read: the next one starts after its size on disk."""
        if size is not None:
            self.base += size
        self.at(0)


__all__ = ["DEFAULT_CHUNK_SIZE", "LogSource"]
