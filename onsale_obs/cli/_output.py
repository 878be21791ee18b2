"""Rendering results: rich tables for people, JSON (stdout only, stable keys) for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onsale_obs.durations import format_duration
from onsale_obs.modes import ModeState, OnSaleWindow, ScheduledWindow
from onsale_obs.types import Mode

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
