"""The loop behind ``mode schedule run``: apply the schedule until told to stop."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from onsale_obs.cli._output import warn
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.modes import Broadcaster, ModeState
from onsale_obs.modes._schedule import ScheduleFile


def run_schedule(
    broadcaster: Broadcaster,
    file: Path,
    stop: threading.Event,
    interval: float,
    emit: Callable[[ModeState], None],
) -> None:
    """``Broadcaster.run_schedule``, but reporting each change and reloading a changed file.

    A version of the file that is missing, unreadable, empty or invalid is refused: the last
    good schedule stays in force, and stderr and the log say so (with the count). The first
    pass raises (a store unreachable at start exits with code 3); later failures are
    reported on stderr and retried on the next pass.
    """
    # the log goes to stderr: stdout carries the published changes (JSON lines with --format json)
    followed = ScheduleFile(file, logger=structlog.wrap_logger(structlog.PrintLogger(sys.stderr)))
    first = True
    while not stop.is_set():
        refused = followed.refresh()
        if refused is not None:
            warn(
                f"{refused} Keeping the last good schedule ({len(followed.schedule)} windows); "
                f"{followed.refused} version(s) of the file refused so far."
            )
        try:
            for state in broadcaster.apply_schedule(followed.schedule):
                emit(state)
        except OnsaleObsError as exc:
            if first:
                raise
            warn(f"{exc} Retrying in {interval:g}s.")
        first = False
        stop.wait(interval)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM (main thread only), restoring the old handlers after."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:
        pass  # not the main thread: Ctrl-C arrives as KeyboardInterrupt instead
    try:
        yield
    except KeyboardInterrupt:
        stop.set()
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
