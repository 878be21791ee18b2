"""A schedule file that goes missing, empty or bad never ends a running on-sale by itself."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.exceptions import ScheduleError
from onsale_obs.modes._schedule import ScheduleFile
from onsale_obs.testing import ListLogger

ONSALE_OBS = Path(sys.executable).parent / "onsale-obs"
GOOD = (
    "onsales:\n  - event: final\n    start: 2000-01-01T00:00:00Z\n    end: 2999-01-01T00:00:00Z\n"
)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    made = invoke("keys", "generate", "--out", tmp_path / "keys")
    assert made.exit_code == 0, made.output
    return tmp_path / "keys" / "onsale-signing.pem"


def test_a_followed_file_keeps_the_last_good_schedule_and_counts_each_refusal(
    tmp_path: Path,
) -> None:
    """Missing, unreadable, empty, invalid: each version refused once, logged, counted."""
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    log = ListLogger()
    followed = ScheduleFile(path, logger=log)
    assert len(followed.schedule) == 1
    path.unlink()
    assert isinstance(followed.refresh(), ScheduleError)
    assert followed.refresh() is None  # the same missing file is not reported on every pass
    path.mkdir()  # unreadable as a file
    assert isinstance(followed.refresh(), ScheduleError)
    path.rmdir()
    path.write_text("")
    assert "onsales: []" in str(followed.refresh())
    path.write_text("onsales: [{event: final, start: soon}]\n")
    assert isinstance(followed.refresh(), ScheduleError)
    assert len(followed.schedule) == 1
    assert followed.refused == 4
    assert [level for level, _ in log.events] == ["warning"] * 4
    path.write_text("onsales: []\n")
    assert followed.refresh() is None
    assert len(followed.schedule) == 0  # an explicit empty list is honoured


def test_apply_of_an_empty_file_is_refused_and_an_explicit_empty_list_ends_the_onsale(
    tmp_path: Path, keys: Path
) -> None:
    """`schedule apply --file empty.yaml` is exit 2 and changes nothing; `onsales: []` ends it."""
    store = ["--backend", f"sqlite:///{tmp_path / 'modes.db'}", "--signing-key", str(keys)]
    file = tmp_path / "s.yaml"
    file.write_text(GOOD)
    started = invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json")
    assert [c["mode"] for c in json.loads(started.stdout)["changes"]] == ["onsale"]
    file.write_text("")
    refused = invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json")
    assert refused.exit_code == 2, refused.output
    assert str(file) in refused.output
    assert "onsales: []" in refused.output
    file.write_text("onsales: []\n")
    ended = invoke("mode", "schedule", "apply", "--file", file, *store, "--format", "json")
    assert ended.exit_code == 0, ended.output
    assert [c["mode"] for c in json.loads(ended.stdout)["changes"]] == ["normal"]


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def _until(lines: queue.Queue[str], needle: str, seen: list[str], deadline_s: float = 30) -> str:
    """The next line containing ``needle`` (every line read is kept in ``seen``)."""
    while True:
        line = lines.get(timeout=deadline_s)
        seen.append(line)
        if needle in line:
            return line


def test_the_runner_keeps_the_onsale_through_a_moved_away_and_a_truncated_file(
    tmp_path: Path, keys: Path
) -> None:
    """Real `schedule run`: file moved away, then truncated: on-sale kept, stderr says so and counts."""
    file = tmp_path / "s.yaml"
    file.write_text(GOOD)
    args = [str(ONSALE_OBS), "mode", "schedule", "run", "--interval", "0.05", "--file", str(file),
            "--backend", f"sqlite:///{tmp_path / 'modes.db'}", "--signing-key", str(keys),
            "--format", "json"]  # fmt: skip
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    published: list[str] = []
    warnings: list[str] = []
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as runner:
        readers = [
            threading.Thread(target=_lines, args=(stream, into), daemon=True)
            for stream, into in ((runner.stdout, out), (runner.stderr, err))
        ]
        for reader in readers:
            reader.start()
        try:
            _until(out, '"onsale"', published)
            file.rename(tmp_path / "s.yaml.moved")  # an editor or a deploy moving it away
            _until(err, "Keeping the last good schedule", warnings)
            (tmp_path / "s.yaml.moved").rename(file)
            file.write_text("")  # truncated
            last = _until(err, "Keeping the last good schedule", warnings)
            assert "2 version(s)" in last
            file.write_text("onsales: []\n")  # the explicit way to end every scheduled on-sale
            _until(out, '"normal"', published)
        finally:
            runner.send_signal(signal.SIGTERM)
            runner.wait(timeout=30)
            for reader in readers:
                reader.join(30)
    while not err.empty():
        warnings.append(err.get())
    states = [json.loads(line) for line in published]
    assert [(s["scope"], s["mode"]) for s in states] == [
        ("event:final", "onsale"),
        ("event:final", "normal"),
    ]
    assert any(str(file) in w for w in warnings)
    assert any("schedule file refused" in w for w in warnings)  # the structured log line
