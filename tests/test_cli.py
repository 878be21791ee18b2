"""The ``onsale-obs`` command line: outputs, exit codes and error messages."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.cli._options import duration_seconds, parse_since, parse_time
from onsale_obs.cli._schedule_run import run_schedule
from onsale_obs.exceptions import BackendUnavailableError
from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeState,
    Schedule,
    Signer,
    SqliteBackend,
    Verifier,
)
from onsale_obs.testing import FakeClock, key_pair

#: A time safely in the past, for data published with a fake clock.
PAST = 1_700_000_000.0  # 2023-11-14T22:13:20Z
UNREACHABLE = "redis://127.0.0.1:1/0"


@dataclass(frozen=True)
class Site:
    """A store and a key pair made by ``keys generate``, as a user would have them."""

    db: Path
    signing: Path
    verify: Path
    opened: list[SqliteBackend] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def publisher(
        self,
        clock: FakeClock | None = None,
        signer: Signer | None = None,
        verifier: Verifier | None = None,
    ) -> Broadcaster:
        """A broadcaster on the same store (its own connection), optionally with a fake clock."""
        backend = SqliteBackend(str(self.db))
        self.opened.append(backend)
        return Broadcaster(
            backend,
            signer or Signer.from_file(self.signing),
            clock=clock or FakeClock(PAST),
            verifier=verifier,
        )


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Text with rich's panel borders removed and whitespace collapsed, for message checks."""
    for border in "│╭╮╰╯─":
        text = text.replace(border, " ")
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ONSALE_OBS_BACKEND",
        "ONSALE_OBS_SIGNING_KEY",
        "ONSALE_OBS_VERIFY_KEY",
        "ONSALE_OBS_SCHEDULE",
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    result = invoke("keys", "generate", "--out", tmp_path / "keys")
    assert result.exit_code == 0, result.output
    keys = tmp_path / "keys"
    made = Site(tmp_path / "modes.db", keys / "onsale-signing.pem", keys / "onsale-verify.pem")
    yield made
    for backend in made.opened:
        backend.close()


def get_json(site: Site, *args: str) -> dict[str, Any]:
    result = invoke(
        "mode",
        "get",
        "--backend",
        site.url,
        "--verify-key",
        site.verify,
        "--format",
        "json",
        *args,
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def set_mode(site: Site, *args: str) -> Result:
    return invoke("mode", "set", *args, "--backend", site.url, "--signing-key", site.signing)


# -- keys ---------------------------------------------------------------------------------


def test_keys_generate_prints_paths_key_id_and_exports(tmp_path: Path) -> None:
    """keys generate writes both PEM files and prints their paths, the key id and export lines."""
    result = invoke("keys", "generate", "--out", tmp_path, "--name", "ops")
    assert result.exit_code == 0, result.output
    signing, verify = tmp_path / "ops-signing.pem", tmp_path / "ops-verify.pem"
    assert signing.stat().st_mode & 0o777 == 0o600
    assert f"export ONSALE_OBS_SIGNING_KEY={signing}" in result.stdout
    assert f"export ONSALE_OBS_VERIFY_KEY={verify}" in result.stdout
    assert Signer.from_file(signing).kid in result.stdout


def test_keys_generate_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """An existing key is never replaced silently: exit 2 naming the file, --force replaces it."""
    assert invoke("keys", "generate", "--out", tmp_path).exit_code == 0
    again = invoke("keys", "generate", "--out", tmp_path)
    assert again.exit_code == 2
    assert "onsale-signing.pem" in again.stderr
    assert "--force" in again.stderr
    assert invoke("keys", "generate", "--out", tmp_path, "--force").exit_code == 0


# -- mode set / get / clear ----------------------------------------------------------------


def test_set_get_clear_round_trip_in_tables(site: Site) -> None:
    """set puts a scope on sale with a revision, get shows it highlighted, clear ends it."""
    made = set_mode(
        site, "onsale", "--scope", "event:final-2026", "--for", "2h", "--reason", "general sale"
    )
    assert made.exit_code == 0, made.output
    assert "event:final-2026" in made.stdout
    assert "onsale" in made.stdout
    shown = invoke("mode", "get", "--backend", site.url, "--verify-key", site.verify)
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "event:final-2026" in line)
    assert "onsale" in row
    assert "general sale" in row
    assert " 1 " in row
    cleared = invoke(
        "mode",
        "clear",
        "--scope",
        "event:final-2026",
        "--backend",
        site.url,
        "--signing-key",
        site.signing,
    )
    assert cleared.exit_code == 0, cleared.output
    assert "override cleared" in cleared.stdout
    row = next(
        line
        for line in invoke(
            "mode", "get", "--backend", site.url, "--verify-key", site.verify
        ).stdout.splitlines()
        if "event:final-2026" in line
    )
    assert "normal" in row
    assert "onsale" not in row


def test_set_get_clear_round_trip_in_json(site: Site) -> None:
    """JSON output has the documented keys, ISO-8601 Z times and the new revision."""
    made = set_mode(site, "onsale", "--scope", "global", "--for", "1h30m", "--format", "json")
    assert made.exit_code == 0, made.output
    state = json.loads(made.stdout)["state"]
    assert state["revision"] == 1
    assert state["effective_mode"] == "onsale"
    since = datetime.fromisoformat(state["since"])
    until = datetime.fromisoformat(state["until"])
    assert state["until"].endswith("Z")
    assert (until - since).total_seconds() == 5400
    data = get_json(site, "--event", "final-2026")
    assert data["backend"] == site.url
    assert data["revision"] == 1
    assert [s["scope"] for s in data["scopes"]] == ["global"]
    assert set(data["scopes"][0]) == {
        "scope",
        "event",
        "mode",
        "revision",
        "since",
        "until",
        "source",
        "reason",
        "effective_mode",
    }
    assert data["event"] == {"event": "final-2026", "mode": "onsale", "because": "global"}
    cleared = invoke(
        "mode",
        "clear",
        "--scope",
        "global",
        "--backend",
        site.url,
        "--signing-key",
        site.signing,
        "--format",
        "json",
    )
    assert json.loads(cleared.stdout)["state"]["revision"] == 2
    data = get_json(site, "--event", "final-2026")
    assert data["event"] == {"event": "final-2026", "mode": "normal", "because": None}
    assert "event" not in get_json(site)


def test_get_event_is_onsale_because_of_its_own_scope(site: Site) -> None:
    """--event answers onsale because of the event's own scope, and --scope filters the list."""
    set_mode(site, "onsale", "--scope", "event:final-2026")
    set_mode(site, "normal", "--scope", "global")
    data = get_json(site, "--event", "final-2026", "--scope", "global")
    assert data["event"]["because"] == "event:final-2026"
    assert [s["scope"] for s in data["scopes"]] == ["global"]


def test_reasons_are_printed_verbatim_not_as_markup(site: Site) -> None:
    """A reason that looks like rich markup is shown as typed, never parsed (nor a crash)."""
    made = set_mode(site, "onsale", "--scope", "global", "--reason", "fix [/oops] [bold]now")
    assert made.exit_code == 0, made.output
    assert "fix [/oops] [bold]now" in made.stdout


def test_version_is_printed() -> None:
    """--version prints the package version and exits 0."""
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("onsale-obs 0.")


def test_expired_onsale_is_shown_as_normal(site: Site) -> None:
    """An on-sale whose until has passed is reported with effective mode normal."""
    site.publisher().set("event:old", "onsale", until=PAST + 60)
    (state,) = get_json(site)["scopes"]
    assert state["mode"] == "onsale"
    assert state["effective_mode"] == "normal"
    table = invoke("mode", "get", "--backend", site.url, "--verify-key", site.verify)
    assert "normal (expired)" in table.stdout


def test_set_until_in_the_past_is_bad_input(site: Site) -> None:
    """A backdated --until would expire at once: exit 2 naming --until."""
    result = set_mode(site, "onsale", "--scope", "global", "--until", "2020-01-01T00:00:00Z")
    assert result.exit_code == 2
    assert "'--until'" in flat(result.stderr)
    assert "not in the future" in flat(result.stderr)


def test_forged_state_is_skipped_by_get(site: Site) -> None:
    """A state written without the key is not shown; stderr says it was skipped, stdout stays JSON."""
    site.publisher().set("event:real", "onsale")
    forger, _ = key_pair()
    forged = ModeState(
        "event:forged", "onsale", 2, PAST, None, prev_revision=1, prev_digest="0" * 64
    )
    with sqlite3.connect(site.db) as raw:
        raw.execute(
            "INSERT INTO transitions VALUES (2, 'event:forged', ?, 0)", (forger.seal(forged),)
        )
    result = invoke(
        "mode", "get", "--backend", site.url, "--verify-key", site.verify, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["scope"] for s in data["scopes"]] == ["event:real"]
    assert data["revision"] == 1
    assert "skipped 1 stored state" in result.stderr
    assert "forged: 1" in result.stderr  # signed by a key not trusted, above the head


def test_verify_key_list_trusts_every_key_during_rotation(site: Site, tmp_path: Path) -> None:
    """--verify-key takes a comma-separated list, so states from old and new keys both verify."""
    assert invoke("keys", "generate", "--out", tmp_path / "new").exit_code == 0
    site.publisher().set("event:old-key", "onsale")
    new = Signer.from_file(tmp_path / "new" / "onsale-signing.pem")
    old = Verifier.from_files([site.verify])  # the new key's publisher trusts the old history
    site.publisher(signer=new, verifier=old).set("event:new-key", "onsale")
    both = f"{site.verify},{tmp_path / 'new' / 'onsale-verify.pem'}"
    result = invoke("mode", "get", "--backend", site.url, "--verify-key", both, "--format", "json")
    assert [s["scope"] for s in json.loads(result.stdout)["scopes"]] == [
        "event:new-key",
        "event:old-key",
    ]
    assert result.stderr == ""


def test_signing_key_alone_is_enough_to_read(site: Site) -> None:
    """Without --verify-key, get trusts the public half of --signing-key."""
    set_mode(site, "onsale", "--scope", "global")
    result = invoke(
        "mode", "get", "--backend", site.url, "--signing-key", site.signing, "--format", "json"
    )
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["scopes"]) == 1


def test_clear_hands_the_scope_back_to_a_running_scheduled_window(
    site: Site, tmp_path: Path
) -> None:
    """clear --schedule FILE keeps the scope on sale when a scheduled window is running."""
    schedule = tmp_path / "s.yaml"
    assert (
        invoke(
            "mode",
            "schedule",
            "add",
            "--file",
            schedule,
            "--event",
            "final",
            "--start",
            "now",
            "--for",
            "1h",
        ).exit_code
        == 0
    )
    set_mode(site, "normal", "--scope", "event:final")
    result = invoke(
        "mode",
        "clear",
        "--scope",
        "event:final",
        "--schedule",
        schedule,
        "--backend",
        site.url,
        "--signing-key",
        site.signing,
        "--format",
        "json",
    )
    state = json.loads(result.stdout)["state"]
    assert state["mode"] == "onsale"
    assert state["source"] == "schedule"


# -- watch --------------------------------------------------------------------------------


def test_watch_prints_current_states_then_a_published_transition(site: Site) -> None:
    """watch --count 1 prints the current states, then stops after one transition from another thread."""
    site.publisher().set("event:before", "onsale", until=PAST + 60)
    stop = threading.Event()

    def publish() -> None:
        publisher = Broadcaster(SqliteBackend(str(site.db)), Signer.from_file(site.signing))
        try:
            while not stop.wait(0.1):
                publisher.set("global", "onsale", reason="from a thread")
        finally:
            publisher.backend.close()

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        result = invoke(
            "mode",
            "watch",
            "--count",
            "1",
            "--timeout",
            "30",
            "--backend",
            site.url,
            "--verify-key",
            site.verify,
            "--format",
            "json",
        )
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["kind"] == "current"
    assert lines[0]["scope"] == "event:before"
    assert [line["kind"] for line in lines[1:]].count("transition") == 1
    assert lines[-1]["kind"] == "transition"
    assert lines[-1]["reason"] == "from a thread"


def test_watch_stops_at_timeout_with_exit_0(site: Site) -> None:
    """watch --timeout ends quietly (exit 0) when nothing happens; table lines name the scope."""
    site.publisher().set("global", "normal")
    result = invoke(
        "mode", "watch", "--timeout", "0.3", "--backend", site.url, "--verify-key", site.verify
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("current")
    assert "global" in result.stdout


# -- history ------------------------------------------------------------------------------


def _publish_past_onsale(site: Site) -> None:
    clock = FakeClock(PAST)
    publisher = site.publisher(clock)
    publisher.set("event:final", "onsale", reason="final sale")
    clock.advance(3600)
    publisher.set("event:final", "normal")
    clock.advance(60)
    publisher.set("global", "onsale", until=clock() + 600)


def test_history_lists_verified_transitions_oldest_first(site: Site) -> None:
    """history --format json lists every transition in revision order with ISO times."""
    _publish_past_onsale(site)
    result = invoke(
        "mode", "history", "--backend", site.url, "--verify-key", site.verify, "--format", "json"
    )
    transitions = json.loads(result.stdout)["transitions"]
    assert [t["revision"] for t in transitions] == [1, 2, 3]
    assert transitions[0]["since"] == "2023-11-14T22:13:20Z"
    scoped = invoke(
        "mode",
        "history",
        "--scope",
        "global",
        "--since",
        "2023-11-14T23:00:00Z",
        "--backend",
        site.url,
        "--verify-key",
        site.verify,
        "--format",
        "json",
    )
    assert [t["revision"] for t in json.loads(scoped.stdout)["transitions"]] == [3]
    recent = invoke(
        "mode",
        "history",
        "--since",
        "1h",
        "--backend",
        site.url,
        "--verify-key",
        site.verify,
        "--format",
        "json",
    )
    assert json.loads(recent.stdout)["transitions"] == []


def test_history_windows_have_start_end_and_duration(site: Site) -> None:
    """history --windows folds transitions into on-sale windows with their duration."""
    _publish_past_onsale(site)
    result = invoke(
        "mode",
        "history",
        "--windows",
        "--backend",
        site.url,
        "--verify-key",
        site.verify,
        "--format",
        "json",
    )
    windows = json.loads(result.stdout)["windows"]
    assert [(w["scope"], w["duration_seconds"]) for w in windows] == [
        ("event:final", 3600),
        ("global", 600),
    ]
    assert windows[0]["end"] == "2023-11-14T23:13:20Z"
    table = invoke(
        "mode", "history", "--windows", "--backend", site.url, "--verify-key", site.verify
    )
    assert "1h" in table.stdout
    assert "10m" in table.stdout


# -- schedule -----------------------------------------------------------------------------


def test_schedule_add_list_apply_remove(site: Site, tmp_path: Path) -> None:
    """Windows added to the YAML file are listed, applied to the store, and removed again."""
    file = tmp_path / "onsale-schedule.yaml"
    store = ("--backend", site.url, "--signing-key", site.signing)
    added = invoke(
        "mode",
        "schedule",
        "add",
        "--file",
        file,
        "--event",
        "final",
        "--start",
        "2030-01-01T11:00:00+01:00",
        "--for",
        "2h",
        "--reason",
        "Cup final",
    )
    assert added.exit_code == 0, added.output
    assert (
        invoke(
            "mode",
            "schedule",
            "add",
            "--file",
            file,
            "--scope",
            "global",
            "--start",
            "now",
            "--for",
            "1h",
        ).exit_code
        == 0
    )
    (later,) = [w for w in Schedule.load(file).windows if w.scope == "event:final"]
    assert (later.start, later.end - later.start, later.reason) == (
        1_893_492_000.0,
        7200.0,
        "Cup final",
    )
    listed = json.loads(
        invoke("mode", "schedule", "list", "--file", file, "--format", "json").stdout
    )
    assert [(w["scope"], w["active"]) for w in listed["windows"]] == [
        ("global", True),
        ("event:final", False),
    ]
    applied = json.loads(
        invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json").stdout
    )
    assert [(c["scope"], c["mode"], c["source"]) for c in applied["changes"]] == [
        ("global", "onsale", "schedule")
    ]
    assert (
        json.loads(
            invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json").stdout
        )["changes"]
        == []
    )
    assert invoke("mode", "schedule", "remove", "--file", file, "--scope", "global").exit_code == 0
    ended = json.loads(
        invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json").stdout
    )
    assert [(c["scope"], c["mode"]) for c in ended["changes"]] == [("global", "normal")]
    assert [w.scope for w in Schedule.load(file).windows] == ["event:final"]


def test_schedule_remove_of_an_unplanned_window_is_bad_input(tmp_path: Path) -> None:
    """Removing a window the file does not plan exits 2 and names the file."""
    file = tmp_path / "s.yaml"
    result = invoke("mode", "schedule", "remove", "--file", file, "--event", "nope")
    assert result.exit_code == 2
    assert str(file) in result.stderr
    assert "event:nope" in result.stderr


def test_bad_schedule_yaml_names_the_file_and_field(tmp_path: Path) -> None:
    """An invalid window in the YAML exits 2 with the file and the field path in the message."""
    file = tmp_path / "s.yaml"
    file.write_text("onsales:\n  - event: final\n    start: 2030-01-01T10:00:00Z\n    end: soon\n")
    result = invoke("mode", "schedule", "list", "--file", file)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {file}, field 'onsales.0.end'")
    file.write_text("onsales: [\n")
    broken = invoke("mode", "schedule", "list", "--file", file)
    assert broken.exit_code == 2
    assert str(file) in broken.stderr
    assert "line" in broken.stderr


def test_run_schedule_reports_each_change_until_stopped(tmp_path: Path) -> None:
    """The schedule run loop publishes due windows, reports each change and stops on the event."""
    file = tmp_path / "s.yaml"
    invoke(
        "mode",
        "schedule",
        "add",
        "--file",
        file,
        "--event",
        "final",
        "--start",
        "now",
        "--for",
        "1h",
    )
    signer, _ = key_pair()
    broadcaster = Broadcaster(MemoryBackend(), signer)
    stop = threading.Event()
    changes: list[ModeState] = []

    def emit(state: ModeState) -> None:
        changes.append(state)
        if len(changes) == 1:  # a window added while it runs: the file is read again
            added = invoke("mode", "schedule", "add", "--file", file, "--event", "semi",
                           "--start", "now", "--for", "1h")  # fmt: skip
            assert added.exit_code == 0, added.output
        else:
            stop.set()

    safety = threading.Timer(20.0, stop.set)  # a broken loop fails the test, not hang it
    safety.start()
    try:
        run_schedule(broadcaster, file, stop, 0.01, emit)
    finally:
        safety.cancel()
    assert [(s.scope, s.mode) for s in changes] == [
        ("event:final", "onsale"),
        ("event:semi", "onsale"),
    ]


def test_run_schedule_fails_when_the_store_is_unreachable_at_start(tmp_path: Path) -> None:
    """An unreachable store on the first pass is an error, not a silent retry loop."""
    signer, _ = key_pair()
    backend = MemoryBackend()
    backend.unavailable = True
    (tmp_path / "s.yaml").write_text("onsales: []\n")
    with pytest.raises(BackendUnavailableError):
        run_schedule(
            Broadcaster(backend, signer), tmp_path / "s.yaml", threading.Event(), 0.01, print
        )


# -- bad input and exit codes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["mode", "set", "onsale", "--scope", "evt"], "'--scope'"),
        (["mode", "set", "sideways", "--scope", "global"], "'MODE'"),
        (["mode", "set", "onsale", "--scope", "global", "--for", "10"], "'--for'"),
        (
            ["mode", "set", "onsale", "--scope", "global", "--for", "1h", "--until", "now"],
            "'--for'",
        ),
        (["mode", "get", "--event", "bad id!"], "'--event'"),
        (["mode", "history", "--since", "yesterday"], "'--since'"),
        (["mode", "history", "--until", "2026-12-01T10:00:00"], "'--until'"),
        (["mode", "get", "--backend", "ftp://x"], "'--backend'"),
        (["mode", "get", "--format", "xml"], "'--format'"),
        (["mode", "schedule", "add", "--event", "x", "--start", "now"], "'--end'"),
    ],
)
def test_bad_values_exit_2_naming_the_option(args: list[str], names: str, site: Site) -> None:
    """Bad arguments exit 2 with a message that names the argument or option."""
    result = (
        invoke(*args, "--signing-key", site.signing) if args[1] in ("set", "get") else invoke(*args)
    )
    assert result.exit_code == 2, result.output
    assert names in flat(result.stderr)
    assert "Traceback" not in result.output


def test_missing_signing_key_exits_2_and_says_how_to_give_one(site: Site) -> None:
    """set without a signing key exits 2 and names --signing-key and its env var."""
    result = invoke("mode", "set", "onsale", "--scope", "global", "--backend", site.url)
    assert result.exit_code == 2
    assert "--signing-key" in result.stderr
    assert "ONSALE_OBS_SIGNING_KEY" in result.stderr


def test_unreadable_key_file_exits_2_naming_the_file(site: Site, tmp_path: Path) -> None:
    """A key path that cannot be read, or is not a key, exits 2 with the path in the message."""
    missing = tmp_path / "nope.pem"
    result = invoke(
        "mode",
        "set",
        "onsale",
        "--scope",
        "global",
        "--backend",
        site.url,
        "--signing-key",
        missing,
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {missing}: cannot open the signing key")
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    result = invoke("mode", "get", "--backend", site.url, "--verify-key", not_a_key)
    assert result.exit_code == 2
    assert str(not_a_key) in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["mode", "get"],
        ["mode", "set", "onsale", "--scope", "global"],
        ["mode", "watch", "--timeout", "1"],
        ["mode", "history"],
        ["mode", "schedule", "run"],
    ],
)
def test_unreachable_store_exits_3(args: list[str], site: Site, tmp_path: Path) -> None:
    """A Redis that cannot be reached exits 3 with one error line naming the URL."""
    if args[1] == "schedule":
        (tmp_path / "s.yaml").write_text("onsales: []\n")
        args = [*args, "--file", str(tmp_path / "s.yaml")]
    result = invoke(*args, "--backend", UNREACHABLE, "--signing-key", site.signing)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"error: {UNREACHABLE}: ")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_unexpected_errors_are_one_line_with_exit_1(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug prints 'error: internal error: <type>: <msg>' and where to report it, exits 1,
    never a traceback (that takes --debug)."""

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    site.publisher().set("global", "normal")
    monkeypatch.setattr("onsale_obs.cli._mode.current_states", broken)
    result = invoke("mode", "get", "--backend", site.url, "--verify-key", site.verify)
    assert result.exit_code == 1
    first, hint = result.stderr.splitlines()
    assert first == "error: internal error: RuntimeError: boom"
    assert "report it" in hint
    assert "--debug" in hint


@pytest.mark.parametrize(
    "command",
    [
        ["mode", "get"],
        ["mode", "history"],
        ["mode", "watch", "--timeout", "1s"],
    ],
)
def test_readers_refuse_a_mistyped_sqlite_path(
    site: Site, tmp_path: Path, command: list[str]
) -> None:
    """Reading a store that was never written is a typo: exit 2, and no file or folder made."""
    site.publisher().set("global", "onsale")
    typo = tmp_path / "typo-dir" / "modes.db"
    result = invoke(*command, "--backend", f"sqlite:///{typo}", "--verify-key", site.verify)
    assert result.exit_code == 2, result.output
    assert "--backend" in result.output
    assert "no mode store" in flat(result.output)
    assert not typo.parent.exists()


def test_times_past_year_9999_are_refused_before_publishing(site: Site) -> None:
    """A huge --for or --until is exit 2 naming the option; nothing is published."""
    base = ["mode", "set", "onsale", "--scope", "global", "--backend", site.url]
    keys = ["--signing-key", str(site.signing)]
    for option in (["--for", "99999999999d"], ["--until", "9999-12-31T23:59:59-01:00"]):
        result = invoke(*base, *option, *keys)
        assert result.exit_code == 2, result.output
        assert option[0] in result.output
    assert not site.db.exists() or SqliteBackend(str(site.db)).snapshot().cursor == 0


@pytest.mark.parametrize(
    "command",
    [
        ["mode", "get"],
        ["mode", "set"],
        ["mode", "clear"],
        ["mode", "watch"],
        ["mode", "history"],
        ["mode", "schedule", "list"],
        ["mode", "schedule", "add"],
        ["mode", "schedule", "remove"],
        ["mode", "schedule", "apply"],
        ["mode", "schedule", "run"],
        ["keys", "generate"],
    ],
)
def test_every_command_help_has_an_example(command: list[str]) -> None:
    """Every command's --help explains itself and shows an example invocation."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "onsale-obs " + " ".join(command) in result.stdout


# -- parsers ------------------------------------------------------------------------------


@given(st.integers(0, 9), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_durations_round_trip(days: int, hours: int, minutes: int, seconds: int) -> None:
    """Any combination of d/h/m/s parses to the total number of seconds."""
    text = "".join(
        f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n
    )
    total = days * 86_400 + hours * 3_600 + minutes * 60 + seconds
    if total == 0:
        with pytest.raises(typer.BadParameter):
            duration_seconds(text or "0s")
    else:
        assert duration_seconds(text) == total
        assert parse_since(text).resolve(10_000_000.0) == 10_000_000.0 - total


def test_times_need_a_zone_and_offsets_are_honoured() -> None:
    """Times are ISO-8601 with Z or an offset, or 'now'; a naive time is refused."""
    expected = datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    assert parse_time("2026-12-01T10:00:00Z").resolve(0.0) == expected
    assert parse_time("2026-12-01T11:00:00+01:00").resolve(0.0) == expected
    assert parse_time("now").resolve(42.0) == 42.0
    with pytest.raises(typer.BadParameter, match="no time zone"):
        parse_time("2026-12-01T10:00:00")


@pytest.mark.parametrize("timeout", ["0.3", "300ms"])
def test_interval_and_timeout_options_take_seconds_or_a_duration(site: Site, timeout: str) -> None:
    """Options whose unit is plainly seconds accept a bare number as well as a duration."""
    site.publisher().set("global", "normal")
    result = invoke(
        "mode", "watch", "--timeout", timeout, "--backend", site.url, "--verify-key", site.verify
    )
    assert result.exit_code == 0, result.output


def test_files_that_cannot_be_written_are_bad_input(tmp_path: Path) -> None:
    """A schedule in a missing folder or keys --out naming a file: exit 2 naming the path."""
    result = invoke(
        "mode", "schedule", "add", "--event", "x", "--start", "now", "--for", "1h",
        "--file", tmp_path / "no-such-folder" / "s.yaml",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "no-such-folder" in result.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = invoke("keys", "generate", "--out", a_file)
    assert result.exit_code == 2, result.output
    assert "a-file" in result.stderr
    assert "expected a folder" in result.stderr


@pytest.mark.parametrize("command", ["apply", "run"])
def test_applying_a_missing_schedule_file_is_refused(
    site: Site, tmp_path: Path, command: str
) -> None:
    """A mistyped --file would read as an empty schedule and end every scheduled on-sale."""
    schedule = tmp_path / "s.yaml"
    schedule.write_text(
        "onsales:\n  - {event: final, start: '2000-01-01T00:00:00Z', end: '2999-01-01T00:00:00Z'}\n"
    )
    applied = invoke("mode", "schedule", "apply", "--file", schedule, "--backend", site.url,
                     "--signing-key", site.signing)  # fmt: skip
    assert applied.exit_code == 0, applied.output
    result = invoke("mode", "schedule", command, "--file", tmp_path / "typo.yaml",
                    "--backend", site.url, "--signing-key", site.signing)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--file" in result.output
    shown = get_json(site, "--scope", "event:final")
    assert shown["scopes"][0]["effective_mode"] == "onsale"  # the on-sale was left running


def test_clear_refuses_a_schedule_file_named_but_missing(site: Site, tmp_path: Path) -> None:
    """A mistyped --schedule must not end a scheduled on-sale: exit 2, nothing published."""
    site.publisher().set("event:final", "onsale")
    result = invoke(
        "mode", "clear", "--scope", "event:final", "--schedule", tmp_path / "typo.yaml",
        "--backend", site.url, "--signing-key", site.signing,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "typo.yaml" in result.stderr
    get = invoke(
        "mode", "get", "--backend", site.url, "--verify-key", site.verify, "--format", "json"
    )
    assert [s["mode"] for s in json.loads(get.stdout)["scopes"]] == ["onsale"]
