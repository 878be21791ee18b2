"""One JSON line per request: the SLO engine's embedded data source.

Schema (version 1), one object per line::

    {"ts": 1800000000.123, "service": "checkout", "route": "/events/{event_id}/checkout",
     "method": "POST", "status": 503, "duration_s": 0.0123, "mode": "onsale",
     "event": "final-2026", "event_onsale": true, "trace_id": "4bf9..."}

``ts`` is when the request finished (epoch seconds); ``event`` is the request's event id (null
if none); ``event_onsale`` is true when that event itself was on sale (``mode`` can also be
``onsale`` through a global on-sale); ``trace_id`` is null without tracing.

Requests only append to a bounded in-memory buffer; a background thread writes it out every
``flush_interval`` seconds whether or not more requests arrive, so a ``kill -9`` loses at most
the last interval's lines. The buffer is also written on ``close()``, at interpreter exit and on
SIGTERM (when no other SIGTERM handler is installed).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import time
import weakref
from pathlib import Path
from types import FrameType
from typing import IO, Any

import orjson
import structlog

from onsale_obs.instrument._context import RequestMode
from onsale_obs.types import Clock

# a batch this large wakes the flusher before its interval is up
_BATCH_LINES = 512

_live: weakref.WeakSet[AccessLog] = weakref.WeakSet()
_exit_hooks_installed = False


def _flush_all(wait: float = -1) -> None:
    for log in list(_live):
        log._flush(wait)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # flush, then die of SIGTERM as the process would have without us. The handler runs in the
    # main thread, which may itself hold a log's lock: wait a bounded time, never deadlock.
    _flush_all(wait=2.0)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_hooks() -> None:
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    atexit.register(_flush_all)
    # a server (uvicorn, gunicorn) installs its own handler and exits normally: atexit covers it
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _flush_periodically(ref: weakref.ref[AccessLog], wake: threading.Event, every: float) -> None:
    while True:
        wake.wait(every)
        wake.clear()
        log = ref()
        if log is None or log.closed:
            return
        log.flush()
        del log


class AccessLog:
    """Appends access-log lines to a file (or a binary stream); thread-safe, never blocks a request.

    ``flush_interval``: seconds between background writes (0 writes each line as it comes, in
    the request's thread). ``fsync``: also ``fsync`` the file after each write, so the lines
    survive a host crash, not only a killed process. ``max_buffered``: lines held while the
    disk is slower than the requests; beyond it new lines are dropped and counted in
    ``dropped`` (as are lines whose write failed), and a warning is logged.
    """

    def __init__(
        self,
        target: str | Path | IO[bytes],
        *,
        service: str,
        flush_interval: float = 1.0,
        fsync: bool = False,
        max_buffered: int = 100_000,
        clock: Clock = time.time,
        logger: Any = None,
    ) -> None:
        if isinstance(target, str | Path):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a failed write leaves nothing half-kept in a Python buffer
            self._stream: IO[bytes] = path.open("ab", buffering=0)
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.service = service
        self.flush_interval = flush_interval
        self.fsync = fsync
        self.max_buffered = max_buffered
        self.dropped = 0
        self.closed = False
        self._clock = clock
        self._logger = (
            logger if logger is not None else structlog.get_logger("onsale_obs.access_log")
        )
        self._warned = False
        self._lock = threading.Lock()  # the buffer: held for an append or a swap, never for I/O
        self._io_lock = threading.Lock()  # the stream: one writer at a time
        self._buffer: list[bytes] = []
        self._wake = threading.Event()
        _live.add(self)
        _install_exit_hooks()
        if flush_interval > 0:
            threading.Thread(
                target=_flush_periodically,
                args=(weakref.ref(self), self._wake, flush_interval),
                name=f"onsale-obs-access-log-{service}",
                daemon=True,
            ).start()

    def write(
        self, rm: RequestMode, status: int, seconds: float, trace_id: int | None = None
    ) -> None:
        """Append one request (``trace_id``: the integer id of its trace, if traced)."""
        line = orjson.dumps(
            {
                "ts": self._clock(),
                "service": self.service,
                "route": rm.route,
                "method": rm.method,
                "status": status,
                "duration_s": seconds,
                "mode": rm.mode,
                "event": rm.event,
                "event_onsale": rm.onsale_event is not None,
                "trace_id": None if not trace_id else format(trace_id, "032x"),
            }
        )
        with self._lock:
            if len(self._buffer) >= self.max_buffered or self.closed:
                self.dropped += 1
                full = True
            else:
                self._buffer.append(line)
                full = False
            pending = len(self._buffer)
        if full:
            self._warn("access log closed or its buffer full (disk slower than requests); dropping")
        elif self.flush_interval <= 0:
            self.flush()
        elif pending == _BATCH_LINES:
            self._wake.set()

    def flush(self) -> None:
        """Write out buffered lines now (a failed write is counted in ``dropped``, not raised)."""
        self._flush(-1)

    def _flush(self, wait: float) -> None:
        # ``wait``: seconds to wait for the locks (-1: as long as it takes)
        if not self._io_lock.acquire(timeout=wait):
            return
        try:
            if not self._lock.acquire(timeout=wait):
                return
            batch, self._buffer = self._buffer, []
            self._lock.release()
            if not batch or self._stream.closed:
                return
            try:
                data = memoryview(b"\n".join(batch) + b"\n")
                while data:  # a raw file may take part of it (a signal, a nearly full disk)
                    data = data[self._stream.write(data) or len(data) :]
                self._stream.flush()
                if self.fsync:
                    os.fsync(self._stream.fileno())
                self._warned = False
            except (OSError, ValueError) as exc:
                with self._lock:
                    self.dropped += len(batch)
                self._warn(f"access-log write failed ({exc}); lines dropped")
        finally:
            self._io_lock.release()

    def close(self) -> None:
        """Flush, stop the background writer, and close the file if this object opened it."""
        with self._lock:
            self.closed = True
        self._wake.set()
        self.flush()
        _live.discard(self)
        if self._owned:
            with self._io_lock, contextlib.suppress(OSError):
                self._stream.close()

    def _warn(self, message: str) -> None:
        # once per episode: a stalled disk must not also flood the log
        if not self._warned:
            self._warned = True
            self._logger.warning(message, service=self.service, dropped=self.dropped)
