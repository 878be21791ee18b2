"""A writer of the sqlite file without the key cannot change, hide or roll back a mode.

Real sqlite files, edited with the sqlite3 module as a clumsy operator or an attacker would.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.exceptions import StoreIntegrityError
from onsale_obs.modes import (
    Broadcaster,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    Verifier,
    current_states,
    generate_key_pair,
)
from onsale_obs.modes._model import MAX_REVISION
from onsale_obs.testing import ListLogger


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Signer, Verifier, Path]:
    pair = generate_key_pair(tmp_path / "keys")
    return (
        tmp_path / "modes.db",
        Signer.from_file(pair.signing_key),
        Verifier.from_files([pair.verify_key]),
        pair.verify_key,
    )


def store(db: Path) -> SqliteBackend:
    return SqliteBackend(str(db), poll_interval=0.005)


def subscriber(db: Path, verifier: Verifier, logger: object = None) -> ModeSubscriber:
    sub = ModeSubscriber(store(db), verifier, registry=None, logger=logger)
    assert sub.sync()
    return sub


def mode_get(db: Path, verify: Path) -> Result:
    return CliRunner().invoke(
        app, ["mode", "get", "--backend", f"sqlite:///{db}", "--verify-key", str(verify)]
    )


def test_deleting_the_top_transition_revives_nothing(
    site: tuple[Path, Signer, Verifier, Path],
) -> None:
    """Item 2 (sqlite): the state before the deleted one is not taken as current by anyone, and
    no publisher reuses the revision."""
    db, signer, verifier, verify = site
    publisher = Broadcaster(store(db), signer)
    publisher.set("event:a", "onsale")
    publisher.set("event:a", "normal", reason="sale over")
    running = subscriber(db, verifier)
    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM transitions WHERE revision = 2")
    assert running.sync()
    assert running.mode_for("a") == "normal"  # it had applied revision 2
    newcomer = subscriber(db, verifier)
    assert newcomer.mode_for("a") == "normal"  # not the revived on-sale
    assert newcomer.stale
    result = mode_get(db, verify)
    assert result.exit_code == 3
    assert "do not match its signed head" in result.stderr
    with pytest.raises(StoreIntegrityError):
        Broadcaster(store(db), signer).set("event:b", "onsale")  # would reuse revision 2


@pytest.mark.parametrize("value", ["some text", 3.25, 7])
def test_a_row_of_the_wrong_type_stops_nobody(
    site: tuple[Path, Signer, Verifier, Path], value: object
) -> None:
    """Item 3 (sqlite): a row whose message is TEXT, REAL or INTEGER is counted and skipped."""
    db, signer, verifier, _verify = site
    publisher = Broadcaster(store(db), signer)
    publisher.set("event:final", "onsale")
    running = subscriber(db, verifier)
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO transitions VALUES (2, 'event:final', ?, 0)", (value,))
    publisher.set("event:final", "normal")
    assert running.sync()
    assert running.mode_for("final") == "normal"
    assert running.rejected()["malformed"] == 1  # the head above it came with revision 3
    assert subscriber(db, verifier).mode_for("final") == "normal"


def test_a_file_restored_from_a_backup_is_noticed_by_running_services(
    site: tuple[Path, Signer, Verifier, Path], tmp_path: Path
) -> None:
    """Item 4 (sqlite): the file replaced by an older copy: the running service notices on its
    next read (no reconnect needed), keeps its on-sale, then follows the new changes."""
    db, signer, verifier, _verify = site
    publisher = Broadcaster(store(db), signer)
    publisher.set("event:a", "normal")
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    publisher.set("event:a", "onsale")
    log = ListLogger()
    running = subscriber(db, verifier, logger=log)
    assert running.mode_for("a") == "onsale"
    shutil.copy(backup, tmp_path / "restoring.db")
    (tmp_path / "restoring.db").replace(db)  # a restore: the file replaced, its WAL dropped
    for leftover in tmp_path.glob("modes.db-*"):
        leftover.unlink()
    assert running.sync()
    assert running.store_resets == 1
    assert any("went back in time" in event for _, event in log.events)
    assert running.mode_for("a") == "onsale"
    Broadcaster(store(db), signer).set("event:a", "normal", reason="after the restore")
    assert running.sync()
    assert running.sync()
    assert running.mode_for("a") == "normal"


def test_a_revision_out_of_range_is_refused_with_a_reason(
    site: tuple[Path, Signer, Verifier, Path],
) -> None:
    """Item 6 (sqlite): a row at revision 2**63-1 breaks no reader and no publisher crashes."""
    db, signer, verifier, _verify = site
    publisher = Broadcaster(store(db), signer)
    publisher.set("event:final", "onsale")
    running = subscriber(db, verifier)
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO transitions VALUES (?, 'event:final', x'00', 0)", (2**63 - 1,))
    assert running.sync()
    assert running.rejected()["malformed"] == 1
    assert running.mode_for("final") == "onsale"
    assert running.revision > MAX_REVISION
    assert running.sync()  # and it keeps reading
    with pytest.raises(StoreIntegrityError, match="beyond"):
        publisher.set("event:final", "normal")


def test_mode_get_agrees_with_services_on_a_foreign_key_state(
    site: tuple[Path, Signer, Verifier, Path],
) -> None:
    """Item 2, last case: a state signed by another key on top of a scope: ``mode get`` shows what
    services use (the vouched state), not "no stored state: it is normal"."""
    db, signer, verifier, verify = site
    state = Broadcaster(store(db), signer).set("event:final", "onsale")
    pair = generate_key_pair(db.parent / "other")
    with sqlite3.connect(db) as raw:
        raw.execute(
            "INSERT INTO transitions VALUES (2, 'event:final', ?, 0)",
            (Signer.from_file(pair.signing_key).seal(state),),
        )
    assert subscriber(db, verifier).mode_for("final") == "onsale"
    assert current_states(store(db), verifier).states["event:final"] == state
    result = mode_get(db, verify)
    assert result.exit_code == 0, result.output
    assert "event:final" in result.stdout
    assert "no stored state" not in result.stdout
