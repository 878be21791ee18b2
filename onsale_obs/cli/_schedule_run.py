"""The loop behind ``mode schedule run``: apply the schedule until told to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from onsale_obs.cli._output import warn
from onsale_obs.exceptions import OnsaleObsError, ScheduleError
from onsale_obs.modes import Broadcaster, ModeState, Schedule


def run_schedule(
    broadcaster: Broadcaster,
    file: Path,
    stop: threading.Event,
    interval: float,
    emit: Callable[[ModeState], None],
) -> None:
    """``Broadcaster.run_schedule``, but reporting each change and reloading a changed file.

    The first pass raises (a store unreachable at start exits with code 3); later failures
    are reported on stderr and retried on the next pass.
    """
    planned, seen = Schedule.load(file), _mtime(file)
    first = True
    while not stop.is_set():
        if _mtime(file) != seen:
            seen = _mtime(file)
            try:
                planned = Schedule.load(file)
            except ScheduleError as exc:
                warn(f"{exc} Keeping the previous schedule.")
        try:
            for state in broadcaster.apply_schedule(planned):
                emit(state)
        except OnsaleObsError as exc:
            if first:
                raise
            warn(f"{exc} Retrying in {interval:g}s.")
        first = False
        stop.wait(interval)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


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
