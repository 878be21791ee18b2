"""``onsale-obs mode``: read, change and follow which scopes are on sale, and their history."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from onsale_obs.cli._app import Lazy, LazyGroup
from onsale_obs.cli._context import (
    load_signer,
    load_verifier,
    opened_backend,
    optional_verifier,
)
from onsale_obs.cli._options import (
    DEFAULT_SCHEDULE_FILE,
    SCHEDULE_ENV,
    BackendOption,
    EventOption,
    FormatOption,
    ForOption,
    ReasonOption,
    ScopeFilterOption,
    ScopeOption,
    SigningKeyOption,
    UntilOption,
    VerifyKeyOption,
    When,
    mode_value,
    parse_since,
    parse_time,
    seconds_or_duration,
)
from onsale_obs.cli._output import (
    ONSALE_STYLE,
    fmt_duration,
    fmt_time,
    print_json,
    report_skipped,
    state_record,
    states_table,
    stdout,
    warn,
    window_duration,
    windows_table,
)
from onsale_obs.exceptions import BackendUnavailableError, StoreIntegrityError
from onsale_obs.modes import DEFAULT_BACKEND_URL, GLOBAL_SCOPE, event_scope
from onsale_obs.modes._model import iso
from onsale_obs.redact import redact_url
from onsale_obs.types import Mode

if TYPE_CHECKING:
    from onsale_obs.modes import Head, ModeBackend, ModeState, VerifiedStates, Verifier

# What only changing or listing modes needs (the publisher and the history, which load the
# schedule and repair code) is imported inside those commands; 'mode get' reads and verifies.


class _ModeCommands(LazyGroup):
    """``mode``'s commands; the last three, whose modules load the subscriber (prometheus_client),
    the surge detector (OpenTelemetry, httpx) and the schedule runner (structlog), on first use."""

    lazy_commands = (
        Lazy(
            "watch",
            "onsale_obs.cli._watch:watch",
            "Print the current verified states, then every transition as it arrives.",
        ),
        Lazy(
            "auto",
            "onsale_obs.cli._auto:auto",
            "Watch per-event request rates and put a surging event on sale by itself "
            "(source=auto).",
        ),
        Lazy(
            "schedule",
            "onsale_obs.cli._schedule:schedule_app",
            "Planned on-sale windows (a YAML file) and applying them to the mode store.",
        ),
    )


mode_app = typer.Typer(
    name="mode",
    cls=_ModeCommands,
    help="Which scopes (global, event:ID) are on sale: read, change, follow, history, schedule.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def current_states(backend: ModeBackend, verifier: Verifier) -> VerifiedStates:
    """``onsale_obs.modes.current_states``, imported when 'mode get' runs: it loads the key
    code (cryptography), which the commands' --help does not need."""
    from onsale_obs.modes import current_states as verified

    return verified(backend, verifier)


@mode_app.command("get")
def get(
    scope: ScopeFilterOption = None,
    event: EventOption = None,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    verify_key: VerifyKeyOption = None,
    signing_key: SigningKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Show the verified mode of every scope now.

    Reads the latest state of each scope from the store and keeps only states signed by a
    trusted key (--verify-key, or the public half of --signing-key); the others are skipped
    with a warning on stderr. An on-sale whose 'until' has passed shows as normal.

    With --event ID it also answers the question a service asks for every request: a request
    for that event is on sale if its event scope or the global scope is on sale.

    Example:

        onsale-obs mode get --event final-2026 --verify-key keys/onsale-verify.pem
    """
    verifier = load_verifier(verify_key, signing_key)
    with opened_backend(backend, reading=True) as store:
        current = current_states(store, verifier)
        url = redact_url(store.url)
    if current.problem is not None:
        raise StoreIntegrityError(
            f"{current.problem}. Services that start now serve every scope as normal (and "
            "on-sale where their local schedule says so) and report themselves stale.",
            url=url,
        )
    now = time.time()
    _warn_if_frozen(current.head, now)
    detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(current.rejected.items()))
    report_skipped(sum(current.rejected.values()), detail)
    shown = [s for name, s in sorted(current.states.items()) if scope in (None, name)]
    answer = _event_answer(current.states, event, now) if event is not None else None
    if output == "json":
        data: dict[str, Any] = {
            "backend": url,
            "revision": current.revision,
            "head": _head_record(current.head, now),
            "scopes": [state_record(s, now) for s in shown],
        }
        if answer is not None:
            data["event"] = answer
        print_json(data)
        return
    console = stdout()
    if shown:
        console.print(states_table(shown, now, title=f"modes in {url} at {fmt_time(now)}"))
    elif scope is not None:
        console.print(f"{scope} has no stored state: it is normal.")
    else:
        console.print(f"no scope has a stored state in {url}: everything is normal.")
    if answer is not None:
        because = f" (because {answer['because']} is on sale)" if answer["because"] else ""
        line = Text(f"a request for event {event} is ")
        line.append(answer["mode"], style=ONSALE_STYLE if answer["because"] else "bold")
        console.print(line.append(f"{because}."))


def _head_record(head: Head | None, now: float) -> dict[str, Any] | None:
    if head is None:
        return None
    return {
        "revision": head.revision,
        "issued": iso(head.issued),
        "age_seconds": round(max(0.0, now - head.issued), 3),
        "refresh_seconds": head.refresh,
        "fresh": head.fresh_at(now),
    }


def _warn_if_frozen(head: Head | None, now: float) -> None:
    if head is not None and not head.fresh_at(now):
        warn(
            f"the store's signed head was issued {fmt_duration(now - head.issued)} ago, but its "
            f"publisher promised a new one every {fmt_duration(head.refresh)}: the store may be "
            "frozen (services report themselves stale); is 'onsale-obs mode heartbeat' running?"
        )


def _event_answer(states: dict[str, ModeState], event: str, now: float) -> dict[str, Any]:
    own = states.get(event_scope(event))
    world = states.get(GLOBAL_SCOPE)
    because = None
    if own is not None and own.is_onsale_at(now):
        because = own.scope
    elif world is not None and world.is_onsale_at(now):
        because = GLOBAL_SCOPE
    mode: Mode = "normal" if because is None else "onsale"
    return {"event": event, "mode": mode, "because": because}


@mode_app.command("set")
def set_mode(
    mode: Annotated[
        Mode, typer.Argument(parser=mode_value, metavar="MODE", help="normal or onsale.")
    ],
    scope: ScopeOption,
    for_: ForOption = None,
    until: UntilOption = None,
    reason: ReasonOption = "",
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Put a scope on sale (or back to normal) now, signed with the signing key.

    A change made here is a manual override: the schedule leaves the scope alone until the
    override expires (--for or --until) or is cleared with 'mode clear'. Every subscriber sees
    the new state, with a revision the store assigns, within milliseconds.

    Examples:

        onsale-obs mode set onsale --scope event:final-2026 --for 2h --reason "general sale"

        onsale-obs mode set normal --scope global --reason "incident over"
    """
    if for_ is not None and until is not None:
        raise typer.BadParameter(
            "give either --for DURATION or --until TIME, not both.", param_hint="'--for'"
        )
    signer = load_signer(signing_key)
    now = time.time()
    expires: float | None = None
    if for_ is not None:
        expires = now + for_
    elif until is not None:
        expires = until.resolve(now)
        if expires <= now:
            raise typer.BadParameter(
                f"{fmt_time(expires)} is not in the future; the state would expire at once.",
                param_hint="'--until'",
            )
    from onsale_obs.modes import Broadcaster

    with opened_backend(backend) as store:
        publisher = Broadcaster(
            store, signer, clock=lambda: now, verifier=optional_verifier(verify_key)
        )
        state = publisher.set(scope, mode, until=expires, reason=reason)
        _print_state(state, store.url, output)


@mode_app.command("clear")
def clear(
    scope: ScopeOption,
    reason: ReasonOption = "",
    schedule: Annotated[
        Path | None,
        typer.Option(
            "--schedule",
            envvar=SCHEDULE_ENV,
            metavar="FILE",
            help=f"On-sale schedule YAML to hand the scope back to (default {DEFAULT_SCHEDULE_FILE}, "
            "ignored if that is missing; a file named here must exist and list 'onsales:').",
            show_default=False,
        ),
    ] = None,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """End a manual override: the scope follows the on-sale schedule again.

    If the schedule has a window for the scope running now, the scope stays on sale until
    that window ends; otherwise it goes back to normal.

    Example:

        onsale-obs mode clear --scope event:final-2026 --schedule onsale-schedule.yaml
    """
    from onsale_obs.modes import Broadcaster, Schedule

    signer = load_signer(signing_key)
    # a schedule named on purpose must be there: a typo would end a scheduled on-sale
    planned = Schedule.load(schedule or DEFAULT_SCHEDULE_FILE, explicit=schedule is not None)
    with opened_backend(backend) as store:
        publisher = Broadcaster(store, signer, verifier=optional_verifier(verify_key))
        state = publisher.clear(scope, schedule=planned, reason=reason)
        _print_state(state, store.url, output)


def _print_state(state: ModeState, url: str, output: str) -> None:
    now = time.time()
    url = redact_url(url)
    if output == "json":
        print_json({"backend": url, "state": state_record(state, now)})
    else:
        stdout().print(states_table([state], now, title=f"published to {url}"))


@mode_app.command("history")
def history(
    since: Annotated[
        When | None,
        typer.Option(
            "--since",
            parser=parse_since,
            metavar="TIME|DURATION",
            help="From this time, or this long ago (7d, 12h).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        When | None,
        typer.Option(
            "--until",
            parser=parse_time,
            metavar="TIME",
            help="Up to this time.",
            show_default=False,
        ),
    ] = None,
    scope: ScopeFilterOption = None,
    windows: Annotated[
        bool, typer.Option("--windows", help="Show on-sale windows (start, end, duration).")
    ] = False,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    verify_key: VerifyKeyOption = None,
    signing_key: SigningKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """List verified mode transitions, oldest first, or the on-sale windows they make.

    Every change ever published is kept in the store. Transitions are filtered by when they
    happened; --windows folds them into on-sale windows per scope (a window ends at the next
    normal state or when its 'until' passes) and lists the windows that overlap the range.
    States that fail verification are skipped, with a warning on stderr.

    Examples:

        onsale-obs mode history --since 7d --scope event:final-2026

        onsale-obs mode history --since 2026-12-01T00:00:00Z --windows --format json
    """
    verifier = load_verifier(verify_key, signing_key)
    now = time.time()
    start = since.resolve(now) if since is not None else None
    end = until.resolve(now) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter(
            f"--since {fmt_time(start)} is not before --until {fmt_time(end)}.",
            param_hint="'--since'",
        )
    from onsale_obs.modes import ModeHistory

    with opened_backend(backend, reading=True) as store:
        log = ModeHistory(store, verifier)
        found_windows = log.onsale_windows(start, end, scope) if windows else []
        found_states = [] if windows else log.transitions(start, end, scope)
        url = redact_url(store.url)
    if log.problem is not None and not log.gaps:
        raise StoreIntegrityError(f"{log.problem}.", url=url)
    if log.problem is not None:
        warn(f"{log.problem}.")
    detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(log.rejected.items()))
    report_skipped(sum(log.rejected.values()), detail)
    if output == "json":
        if windows:
            records = [
                {**w.to_json(), "duration_seconds": window_duration(w)} for w in found_windows
            ]
            print_json({"windows": records})
        else:
            print_json({"transitions": [s.to_json() for s in found_states]})
    elif windows:
        stdout().print(windows_table(found_windows))
    else:
        stdout().print(states_table(found_states, None, title="transitions"))


@mode_app.command("heartbeat")
def heartbeat(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Re-sign the head this often; readers go stale after 3 missed intervals.",
        ),
    ] = 10.0,
    once: Annotated[
        bool, typer.Option("--once", help="Re-sign once and exit (for cron, or to check).")
    ] = False,
    stop: Annotated[
        bool,
        typer.Option(
            "--stop",
            help="Sign a head that promises nothing, so services stop expecting heartbeats.",
        ),
    ] = False,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
) -> None:
    """Keep the store's signed head fresh, so services can tell a quiet store from a frozen one.

    Every --interval it re-signs the head (the summary of the verified history) with the time
    and the promise "another within --interval". A service whose newest head is older than 3
    intervals marks itself stale (onsale_mode_stale 1, and on-sale where its local schedule
    says so): a store that someone froze, or whose publishers are all gone, is seen. Run one per
    store, as a service of its own. The promise stays in every head (mode set keeps it) until
    --stop withdraws it. A store that does not verify against its head is refused (exit 3):
    see 'mode repair'.

    Examples:

        onsale-obs mode heartbeat --interval 10s --backend redis://redis:6379/0

        onsale-obs mode heartbeat --once

        onsale-obs mode heartbeat --stop      # no more heartbeats: services stop expecting them
    """
    if not (math.isfinite(interval) and interval > 0):
        raise typer.BadParameter(
            "expected a positive duration such as 10s.", param_hint="'--interval'"
        )
    from onsale_obs.modes import Broadcaster

    signer = load_signer(signing_key)
    with opened_backend(backend) as store:
        broadcaster = Broadcaster(store, signer, verifier=optional_verifier(verify_key))
        url = redact_url(store.url)
        if stop:
            head = broadcaster.heartbeat(withdraw=True)
            typer.echo(
                f"signed the head at revision {head.revision} of {url}, promising nothing", err=True
            )
            return
        broadcaster.refresh = interval
        head = broadcaster.heartbeat()
        typer.echo(
            f"signed the head at revision {head.revision} of {url}"
            + ("" if once else f"; again every {fmt_duration(interval)} (Ctrl-C stops)"),
            err=True,
        )
        if once:
            return
        try:
            while True:
                time.sleep(interval)
                try:
                    broadcaster.heartbeat()
                except BackendUnavailableError as exc:
                    warn(f"could not re-sign the head ({exc}); retrying")
        except KeyboardInterrupt:
            pass  # Ctrl-C is how people stop it


@mode_app.command("repair")
def repair(
    yes: Annotated[
        bool, typer.Option("--yes", help="Write the repair (without it: only show the plan).")
    ] = False,
    empty: Annotated[
        bool,
        typer.Option("--empty", help="Start a new, empty history (every scope normal) instead."),
    ] = False,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    signing_key: SigningKeyOption = None,
    verify_key: VerifyKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Review what a broken mode store still proves, and sign it again (needs the signing key).

    Services trust nothing in a store that does not verify against its signed head (emptied,
    restored without its head, edited, or written by onsale-obs 0.1), and publishers refuse
    to write to it. This command shows what the log still proves — the states a new head would
    vouch for — and with --yes signs them: a head over the log's unbroken signed history, or,
    when the history has a gap, a new chain that re-publishes each scope's latest state.
    It also revokes a publisher's key: run with the keys you still trust (--verify-key), and
    the states signed by the others are left out of the new chain. --empty starts over with
    no state (every scope normal). Without --yes nothing is written.

    Examples:

        onsale-obs mode repair                # show the plan

        onsale-obs mode repair --yes

        onsale-obs mode repair --yes --verify-key ops.pub   # revoke the surge detector's key
    """
    from onsale_obs.modes import Broadcaster

    signer = load_signer(signing_key)
    with opened_backend(backend) as store:
        broadcaster = Broadcaster(store, signer, verifier=optional_verifier(verify_key))
        plan = broadcaster.plan_repair(empty=empty)
        url = redact_url(store.url)
        now = time.time()
        states = sorted(plan.states.values(), key=lambda s: s.scope)
        written = False
        if plan.needed and yes:
            broadcaster.repair(plan)
            written = True
    if output == "json":
        print_json(
            {
                "backend": url,
                "needed": plan.needed,
                "plan": plan.description,
                "written": written,
                "scopes": [state_record(s, now) for s in states],
            }
        )
        return
    console = stdout()
    console.print(f"{url}: {plan.description}.")
    if plan.needed:
        console.print(states_table(states, now, title="the states the repaired store vouches for"))
        if written:
            console.print("repaired: services verify the store again from their next read.")
        else:
            console.print("nothing written; run again with --yes to sign this.")
