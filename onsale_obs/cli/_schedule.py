"""``onsale-obs mode schedule``: plan on-sale windows in a YAML file and apply them to the store."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from onsale_obs.cli._context import load_signer, opened_backend, optional_verifier
from onsale_obs.cli._options import (
    DEFAULT_SCHEDULE_FILE,
    BackendOption,
    EventOption,
    FormatOption,
    ReasonOption,
    ScheduleFileOption,
    SigningKeyOption,
    VerifyKeyOption,
    When,
    duration_seconds,
    parse_time,
    scope_value,
    seconds_or_duration,
)
from onsale_obs.cli._output import (
    fmt_time,
    print_json,
    print_json_line,
    schedule_status,
    schedule_table,
    state_line,
    state_record,
    states_table,
    stdout,
)
from onsale_obs.cli._schedule_run import run_schedule, stop_on_signals
from onsale_obs.exceptions import BadInputError, ScheduleError
from onsale_obs.modes import (
    DEFAULT_BACKEND_URL,
    Broadcaster,
    ModeState,
    Schedule,
    ScheduledWindow,
    check_reason,
    event_scope,
)

schedule_app = typer.Typer(
    name="schedule",
    help="Planned on-sale windows (a YAML file) and applying them to the mode store.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ScopeChoiceOption = Annotated[
    str | None,
    typer.Option(
        "--scope",
        parser=scope_value,
        metavar="SCOPE",
        help="Instead of --event: global (every event) or event:ID.",
        show_default=False,
    ),
]
StartOption = Annotated[
    When | None,
    typer.Option(
        "--start",
        parser=parse_time,
        metavar="TIME",
        help="When the window opens (ISO-8601 with a zone, or now).",
        show_default=False,
    ),
]


def _pick_scope(scope: str | None, event: str | None) -> str | None:
    if scope is not None and event is not None:
        raise typer.BadParameter(
            "give --event ID or --scope SCOPE, not both.", param_hint="'--event'"
        )
    return event_scope(event) if event is not None else scope


@schedule_app.command("list")
def list_windows(
    file: ScheduleFileOption = DEFAULT_SCHEDULE_FILE, output: FormatOption = "table"
) -> None:
    """Show the planned on-sale windows and which ones are active now.

    Example:

        onsale-obs mode schedule list --file onsale-schedule.yaml
    """
    planned = Schedule.load(file)
    now = time.time()
    if output == "json":
        records = [
            {**w.to_json(), "active": w.contains(now), "status": schedule_status(w, now)}
            for w in planned.windows
        ]
        print_json({"file": str(file), "windows": records})
    elif planned.windows:
        stdout().print(schedule_table(planned.windows, now, title=f"on-sale schedule {file}"))
    else:
        missing = "" if file.exists() else " (the file does not exist yet)"
        stdout().print(f"{file} plans no on-sale windows{missing}.")


@schedule_app.command("add")
def add(
    event: EventOption = None,
    scope: ScopeChoiceOption = None,
    start: StartOption = None,
    end: Annotated[
        When | None,
        typer.Option(
            "--end", parser=parse_time, metavar="TIME", help="When it closes.", show_default=False
        ),
    ] = None,
    for_: Annotated[
        float | None,
        typer.Option(
            "--for",
            parser=duration_seconds,
            metavar="DURATION",
            help="How long it lasts, instead of --end (2h, 1h30m).",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = "",
    file: ScheduleFileOption = DEFAULT_SCHEDULE_FILE,
    output: FormatOption = "table",
) -> None:
    """Plan an on-sale window for an event (or globally) and save it in the schedule file.

    The broadcaster ('schedule apply' or 'schedule run') puts the scope on sale when the
    window opens, with 'until' set to its end, unless a manual override is in force.

    Example:

        onsale-obs mode schedule add --event final-2026 --start 2026-12-01T10:00:00Z --for 2h --reason "general sale"
    """
    target = _pick_scope(scope, event)
    if target is None:
        raise typer.BadParameter(
            "say what goes on sale: --event ID or --scope SCOPE.", param_hint="'--event'"
        )
    if start is None:
        raise typer.BadParameter("say when the window opens: --start TIME.", param_hint="'--start'")
    if (end is None) == (for_ is None):
        raise typer.BadParameter(
            "give exactly one of --end TIME or --for DURATION.", param_hint="'--end'"
        )
    now = float(int(time.time()))  # whole seconds, so 'now' windows list and remove cleanly
    opens = start.resolve(now)
    closes = end.resolve(now) if end is not None else opens + (for_ or 0.0)
    if closes <= opens:
        raise typer.BadParameter(
            f"{fmt_time(closes)} is not after --start {fmt_time(opens)}.", param_hint="'--end'"
        )
    try:
        window = ScheduledWindow(target, opens, closes, check_reason(reason))
    except BadInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--reason'") from None
    planned = Schedule.load(file)
    if any(w.scope == target and w.start == opens for w in planned.windows):
        raise ScheduleError(
            f"already plans a window for {target} starting at {fmt_time(opens)}; remove it first.",
            file=str(file),
        )
    planned.with_window(window).save(file)
    if output == "json":
        print_json({"file": str(file), "added": window.to_json()})
    else:
        stdout().print(schedule_table([window], now, title=f"added to {file}"))


@schedule_app.command("remove")
def remove(
    event: EventOption = None,
    scope: ScopeChoiceOption = None,
    start: Annotated[
        When | None,
        typer.Option(
            "--start",
            parser=parse_time,
            metavar="TIME",
            help="Only the window that opens at this time.",
            show_default=False,
        ),
    ] = None,
    file: ScheduleFileOption = DEFAULT_SCHEDULE_FILE,
    output: FormatOption = "table",
) -> None:
    """Remove the planned windows of a scope (only the one starting at --start, if given).

    A window that is running keeps its scope on sale until the broadcaster's next pass
    ('schedule apply' or 'schedule run'), which ends it.

    Example:

        onsale-obs mode schedule remove --event final-2026 --start 2026-12-01T10:00:00Z
    """
    target = _pick_scope(scope, event)
    if target is None:
        raise typer.BadParameter(
            "say which windows: --event ID or --scope SCOPE.", param_hint="'--event'"
        )
    opens = start.resolve(time.time()) if start is not None else None
    planned = Schedule.load(file)
    kept = planned.without(target, opens)
    gone = [w for w in planned.windows if w not in kept.windows]
    if not gone:
        at = f" starting at {fmt_time(opens)}" if opens is not None else ""
        raise ScheduleError(f"plans no window for {target}{at}.", file=str(file))
    kept.save(file)
    if output == "json":
        print_json({"file": str(file), "removed": [w.to_json() for w in gone]})
    else:
        stdout().print(schedule_table(gone, time.time(), title=f"removed from {file}"))


@schedule_app.command("apply")
def apply(
    file: ScheduleFileOption = DEFAULT_SCHEDULE_FILE,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Apply the schedule once: open due windows, end removed ones, print the changes.

    Scopes under a manual override ('mode set') are left alone until it expires or is cleared.
    Run it from cron, or use 'schedule run' to keep applying it. A missing, empty or invalid
    file is bad input (exit 2) and changes nothing: to end every scheduled on-sale, apply a
    file that says 'onsales: []'.

    Example:

        onsale-obs mode schedule apply --file onsale-schedule.yaml --signing-key keys/onsale-signing.pem
    """
    signer = load_signer(signing_key)
    verifier = optional_verifier(verify_key)
    planned = Schedule.load(_existing(file), explicit=True)
    with opened_backend(backend) as store:
        changes = Broadcaster(store, signer, verifier=verifier).apply_schedule(planned)
    now = time.time()
    if output == "json":
        print_json({"changes": [state_record(s, now) for s in changes]})
    elif changes:
        stdout().print(states_table(changes, now, title="changes published"))
    else:
        stdout().print("no changes: every scope already follows the schedule.")


def _existing(file: Path) -> Path:
    """A schedule to apply must exist: read as empty, it would end every scheduled on-sale."""
    if not file.is_file():
        raise typer.BadParameter(
            f"{file} does not exist; applying no schedule would end every scheduled on-sale. "
            "Check the path, or add a window first with 'onsale-obs mode schedule add'.",
            param_hint="'--file'",
        )
    return file


@schedule_app.command("run")
def run(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Time between passes (seconds, or 500ms, 5s).",
        ),
    ] = 1.0,
    file: ScheduleFileOption = DEFAULT_SCHEDULE_FILE,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Keep applying the schedule every --interval until Ctrl-C or SIGTERM.

    Prints each change as it is published (JSON lines with --format json). The file is
    re-read when it changes, so 'schedule add' takes effect without a restart; a file that
    goes missing, becomes unreadable, empty or invalid is reported on stderr (and counted)
    and the last good schedule stays in force. To end every scheduled on-sale, write
    'onsales: []' (as 'schedule remove' does when it removes the last window).
    If the store stops answering, the error is reported and the next pass retries.

    Example:

        onsale-obs mode schedule run --interval 5 --backend redis://mode-store:6379/0
    """
    signer = load_signer(signing_key)
    verifier = optional_verifier(verify_key)
    Schedule.load(_existing(file), explicit=True)  # a bad file at start is an error
    stop = threading.Event()

    def emit(state: ModeState) -> None:
        if output == "json":
            print_json_line(state_record(state, time.time()))
        else:
            stdout().print(state_line(state, time.time()), soft_wrap=True)

    with opened_backend(backend) as store, stop_on_signals(stop):
        run_schedule(Broadcaster(store, signer, verifier=verifier), file, stop, interval, emit)
