"""The embedded default: several OS processes sharing one sqlite file see each other's changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from onsale_obs.modes import (
    Broadcaster,
    ModeHistory,
    Signer,
    SqliteBackend,
    Verifier,
    generate_key_pair,
    open_backend,
)
from tests.workers import ROOT, finish_worker, start_worker

PUBLISH = """
import sys
from onsale_obs.modes import Broadcaster, Signer, open_backend
b = Broadcaster(open_backend(sys.argv[1]), Signer.from_file(sys.argv[2]))
for i in range(int(sys.argv[3])):
    b.set("event:" + sys.argv[4], "onsale" if i % 2 == 0 else "normal", reason=f"{sys.argv[4]} {i}")
"""


def test_processes_see_each_others_changes(tmp_path: Path) -> None:
    """Two publisher processes and two subscriber processes on one file: unique revisions, all seen in order."""
    keys = generate_key_pair(tmp_path / "keys")
    url = f"sqlite:///{tmp_path}/modes.db?poll=0.01"
    open_backend(url).snapshot()  # create the schema before the race
    workers = [start_worker(url, keys.verify_key, last_revision=40) for _ in range(2)]
    publishers = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISH, url, str(keys.signing_key), "20", name], cwd=ROOT
        )
        for name in ("a", "b")
    ]
    for p in publishers:
        assert p.wait(60) == 0
    expected = [
        (s.revision, s.scope, s.mode)
        for s in ModeHistory(
            open_backend(url), Verifier.from_files([keys.verify_key])
        ).transitions()
    ]
    assert [r for r, _, _ in expected] == list(range(1, 41))
    for worker in workers:
        assert finish_worker(worker) == expected


def test_reopened_file_keeps_state_and_history(
    tmp_path: Path, keys: tuple[Signer, Verifier]
) -> None:
    """Closing and reopening the store (a restart) keeps the modes and the revision counter."""
    path = str(tmp_path / "modes.db")
    first = Broadcaster(SqliteBackend(path), keys[0])
    first.set("event:a", "onsale")
    first.backend.close()
    second = Broadcaster(SqliteBackend(path), keys[0])
    assert second.current()["event:a"].mode == "onsale"
    assert second.set("event:a", "normal").revision == 2


def test_unwritable_location_is_backend_error(tmp_path: Path) -> None:
    """A sqlite path that cannot be created is reported as an unreachable store, not a traceback."""
    import pytest

    from onsale_obs.exceptions import BackendUnavailableError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BackendUnavailableError, match="cannot open the sqlite mode store"):
        SqliteBackend(str(blocker / "sub" / "modes.db")).snapshot()
