"""``onsale-obs mode watch``: follow mode transitions as a subscribing service sees them."""

from __future__ import annotations

import queue
import time
from typing import Annotated, Any, Literal

import typer

from onsale_obs.cli._context import load_verifier, opened_backend
from onsale_obs.cli._options import (
    BackendOption,
    FormatOption,
    ScopeFilterOption,
    SigningKeyOption,
    VerifyKeyOption,
    seconds_or_duration,
)
from onsale_obs.cli._output import print_json_line, state_line, state_record, stdout
from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes import DEFAULT_BACKEND_URL, ModeState, ModeSubscriber

Kind = Literal["current", "transition"]
#: How long the subscriber waits for news per round; bounds how long stopping takes.
_POLL_SECONDS = 0.25


class _StderrLog:
    """The subscriber's log lines (rejected states, outages) go to stderr, never stdout."""

    def _emit(self, level: str, event: str, **fields: Any) -> None:
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
        typer.echo(f"{level}: {event}" + (f" ({detail})" if detail else ""), err=True)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, **fields)


def watch(
    scope: ScopeFilterOption = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            min=1,
            metavar="N",
            help="Stop after N transitions (the current states printed first do not count).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Stop after this long (seconds, or 30s, 5m).",
            show_default=False,
        ),
    ] = None,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    verify_key: VerifyKeyOption = None,
    signing_key: SigningKeyOption = None,
    output: FormatOption = "table",
) -> None:
    """Print the current verified states, then every transition as it arrives.

    Subscribes exactly as a service does: states are verified with --verify-key (or the
    public half of --signing-key) and rejected ones are reported on stderr. One line per
    state; with --format json one JSON object per line, with "kind" set to "current" or
    "transition". Stops after --count transitions, after --timeout seconds, or on Ctrl-C
    (exit code 0). Exit code 3 if the store cannot be reached at start.

    Example:

        onsale-obs mode watch --scope event:final-2026 --format json | jq .effective_mode
    """
    verifier = load_verifier(verify_key, signing_key)
    deadline = time.monotonic() + timeout if timeout is not None else None
    with opened_backend(backend, reading=True) as store:
        store.snapshot()  # an unreachable store fails here, with its own message (exit 3)
        arrived: queue.SimpleQueue[ModeState] = queue.SimpleQueue()
        subscriber = ModeSubscriber(
            store, verifier, registry=None, poll_timeout=_POLL_SECONDS, logger=_StderrLog()
        )
        subscriber.add_listener(arrived.put)
        if not subscriber.sync(0.0):
            raise BackendUnavailableError("the mode store stopped answering.", url=store.url)
        initial: list[ModeState] = []
        while not arrived.empty():
            initial.append(arrived.get())
        for state in sorted(initial, key=lambda s: s.scope):
            if scope in (None, state.scope):
                _emit(state, "current", output)
        subscriber.start()
        try:
            _follow(arrived, scope, count, deadline, output)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how people stop watching: not an error
        finally:
            subscriber.stop()


def _follow(
    arrived: queue.SimpleQueue[ModeState],
    scope: str | None,
    count: int | None,
    deadline: float | None,
    output: str,
) -> None:
    seen = 0
    while count is None or seen < count:
        wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if wait <= 0:
            return
        try:
            state = arrived.get(timeout=wait)
        except queue.Empty:
            continue
        if scope in (None, state.scope):
            _emit(state, "transition", output)
            seen += 1


def _emit(state: ModeState, kind: Kind, output: str) -> None:
    now = time.time()
    if output == "json":
        print_json_line({"kind": kind, **state_record(state, now)})
    else:
        label = "current    " if kind == "current" else "transition "
        stdout().print(state_line(state, now, prefix=label), soft_wrap=True)
