"""Rendering results: rich tables for people, JSON (stdout only, stable keys) for scripts."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onsale_obs.durations import format_duration
from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._files import write_atomic
from onsale_obs.types import Mode

if TYPE_CHECKING:
    from onsale_obs.modes import ModeState, OnSaleWindow, ScheduledWindow

ONSALE_STYLE = "bold red"
EXPIRED_STYLE = "dim"


def stdout() -> Console:
    """A console on the current stdout (made per call, so test runners can capture it).

    Markup is off: reasons, paths and titles are user text and are printed as they are.
    """
    console = Console(highlight=False, markup=False)
    if not console.is_terminal:
        # piped or captured: rich would assume 80 columns and cut times and scopes short
        console.width = 200
    return console


def print_json(data: Any) -> None:
    """Write one JSON document to stdout; nothing else may go there in JSON mode."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_json_line(data: Any) -> None:
    """Write one compact JSON document on its own line (for streams such as ``mode watch``)."""
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _is_stdout(st: os.stat_result) -> bool:
    try:
        out = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a test runner's stdout has no descriptor
        return False
    return (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino)


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` without destroying what the path is.

    ``-``, or a path that is this process' stdout (``/dev/stdout``, a symlink to it): stdout.
    A character device or FIFO (``/dev/null``, ``/dev/full``, a named pipe): written straight
    to, never replaced by a regular file. A regular file, or a new one: replaced atomically
    (through a symlink, its target is replaced). A folder: refused. Errors are bad input
    naming the file.
    """
    if str(path) == "-":
        typer.echo(text, nl=False)
        return
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BadInputError(f"cannot be written ({exc.strerror or exc}).", file=str(path)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise BadInputError("is a folder; expected a file name.", file=str(path))
    if st is not None and _is_stdout(st):
        typer.echo(text, nl=False)
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            # no truncation or replacement: a device or a pipe is written as it is
            with path.open("a", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise BadInputError(
                f"cannot be written ({exc.strerror or exc}).", file=str(path)
            ) from None
        return
    write_atomic(Path(os.path.realpath(path)), text)


def replaceable(path: Path) -> bool:
    """True when writing ``path`` may replace it with a new file: it does not exist or is a
    regular file, not a symlink (whose target ``write_output`` replaces), device or FIFO."""
    if path.is_symlink():
        return False
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def command_name() -> str:
    """How to run this CLI again from where the user is: ``onsale-obs`` when that is on PATH
    and is this one, else the full path of the running script (a venv not activated)."""
    running = Path(sys.argv[0])
    if running.name != "onsale-obs":
        return "onsale-obs"
    found = shutil.which("onsale-obs")
    if found is not None and Path(found).resolve() == running.resolve():
        return "onsale-obs"
    return shlex.quote(str(running.absolute()))


def warn(message: str) -> None:
    """A warning for people, on stderr."""
    typer.echo(f"warning: {message}", err=True)


def report_skipped(count: int, detail: str) -> None:
    """Tell on stderr how many stored states failed verification, and why."""
    if count:
        noun = "state" if count == 1 else "states"
        warn(f"skipped {count} stored {noun} that failed verification ({detail}).")


def effective_mode(state: ModeState, now: float) -> Mode:
    """The mode the scope is in at ``now``: an expired on-sale is normal."""
    return "onsale" if state.is_onsale_at(now) else "normal"


def state_record(state: ModeState, now: float) -> dict[str, Any]:
    """The documented JSON of a state plus ``effective_mode`` (expiry honoured)."""
    return {**state.to_json(), "effective_mode": effective_mode(state, now)}


def fmt_time(ts: float | None, empty: str = "-") -> str:
    """A time for a table: ISO-8601 UTC to the second."""
    if ts is None:
        return empty
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_duration(seconds: float | None, empty: str = "-") -> str:
    """``5400`` -> ``1h30m``; the same units the options accept."""
    if seconds is None:
        return empty
    return "0s" if round(seconds) <= 0 else format_duration(round(seconds))


def _is_highlighted(state: ModeState, now: float | None) -> bool:
    return state.mode == "onsale" if now is None else state.is_onsale_at(now)


def _mode_cell(state: ModeState, now: float | None) -> Text:
    """The effective mode at ``now``, or the mode as published when ``now`` is None."""
    if _is_highlighted(state, now):
        return Text("onsale", style=ONSALE_STYLE)
    if state.mode == "onsale":
        return Text("normal (expired)", style=EXPIRED_STYLE)
    return Text("normal")


def states_table(states: Iterable[ModeState], now: float | None, title: str | None = None) -> Table:
    """One row per state; on-sale rows highlighted (``now`` None: modes as published)."""
    table = Table(title=title, title_justify="left")
    for name in ("scope", "mode", "revision", "since", "until", "source", "reason"):
        table.add_column(
            name, no_wrap=name != "reason", justify="right" if name == "revision" else "left"
        )
    for state in states:
        table.add_row(
            state.scope,
            _mode_cell(state, now),
            str(state.revision),
            fmt_time(state.since),
            fmt_time(state.until),
            state.source,
            state.reason,
            style=ONSALE_STYLE if _is_highlighted(state, now) else None,
        )
    return table


def state_line(state: ModeState, now: float, prefix: str = "") -> Text:
    """One line per state, for ``mode watch``."""
    line = Text(prefix)
    line.append(f"rev {state.revision}  {fmt_time(state.since)}  {state.scope}  ")
    line.append_text(_mode_cell(state, now))
    if state.until is not None:
        line.append(f"  until {fmt_time(state.until)}")
    line.append(f"  ({state.source})")
    if state.reason:
        line.append(f"  {state.reason}")
    return line


def window_duration(window: OnSaleWindow) -> float | None:
    """Seconds the on-sale lasted (None while it is still running)."""
    return None if window.end is None else window.end - window.start


def windows_table(windows: Iterable[OnSaleWindow]) -> Table:
    """On-sale windows from the history, with their duration."""
    table = Table(title="on-sale windows", title_justify="left")
    for name in ("scope", "start", "end", "duration", "source", "reason", "revisions"):
        table.add_column(name, no_wrap=name not in ("reason", "revisions"))
    for w in windows:
        table.add_row(
            w.scope,
            fmt_time(w.start),
            fmt_time(w.end, empty="ongoing"),
            fmt_duration(window_duration(w), empty="ongoing"),
            w.source,
            w.reason,
            ",".join(str(r) for r in w.revisions),
            style=ONSALE_STYLE if w.end is None else None,
        )
    return table


def schedule_status(window: ScheduledWindow, now: float) -> str:
    """``upcoming``, ``active`` or ``past``."""
    if window.contains(now):
        return "active"
    return "upcoming" if now < window.start else "past"


def schedule_table(windows: Iterable[ScheduledWindow], now: float, title: str) -> Table:
    """Planned on-sale windows; the ones active now highlighted."""
    table = Table(title=title, title_justify="left")
    for name in ("scope", "start", "end", "duration", "status", "reason"):
        table.add_column(name, no_wrap=name != "reason")
    for w in windows:
        status = schedule_status(w, now)
        table.add_row(
            w.scope,
            fmt_time(w.start),
            fmt_time(w.end),
            fmt_duration(w.end - w.start),
            status,
            w.reason,
            style=ONSALE_STYLE if status == "active" else None,
        )
    return table
