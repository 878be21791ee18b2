"""The CLI never clobbers what it did not make: ``demo --out`` and ``-o`` on devices, FIFOs, links."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.demo._run import MARKER, _fresh
from onsale_obs.exceptions import BadInputError

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
AT = "2027-01-15T08:00:00Z"
ONSALE_OBS = Path(sys.executable).parent / "onsale-obs"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A day of checkout requests, all fine."""
    path = tmp_path / "access.log"
    lines = [
        orjson.dumps(
            {
                "ts": 1_800_000_000.0 - 86_400 + i * 60,
                "service": "checkout",
                "route": "/events/{event_id}/checkout",
                "method": "POST",
                "status": 200,
                "duration_s": 0.05,
                "mode": "normal",
                "event": "final",
                "event_onsale": False,
                "trace_id": None,
            }
        )
        for i in range(1440)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def report_to(target: Path | str, log: Path, fmt: str = "json") -> Result:
    return invoke(
        "slo", "report", "--spec", SPEC, "--logs", log, "--at", AT, "--format", fmt, "-o", target
    )


def test_demo_refuses_a_folder_it_did_not_make_and_leaves_the_users_keys(tmp_path: Path) -> None:
    """`demo --out .` in a folder with the user's keys and logs: exit 2, nothing touched."""
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "signing.pem"
    key.write_text("the user's real key")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "checkout.access.jsonl").write_text("{}\n")
    result = invoke("demo", "--out", tmp_path, "--quick")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert str(tmp_path) in message
    assert "--force" in message
    assert key.read_text() == "the user's real key"
    assert (tmp_path / "logs" / "checkout.access.jsonl").read_text() == "{}\n"


def test_demo_cleans_only_a_folder_it_made_or_with_force(tmp_path: Path) -> None:
    """A new or marked folder is cleaned for a new run; an unmarked one only with --force."""
    made = tmp_path / "made"
    _fresh(made, force=False)
    assert (made / MARKER).is_file()
    (made / "logs").mkdir()
    (made / "logs" / "old.jsonl").write_text("{}\n")
    _fresh(made, force=False)  # ours: the old run's logs go
    assert not (made / "logs").exists()
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError):
        _fresh(user, force=False)
    _fresh(user, force=True)
    assert (user / "notes.txt").read_text() == "mine"  # --force replaces only the demo's names


def test_o_dev_null_stays_a_device(log: Path) -> None:
    """-o /dev/null writes to the device; it is never replaced by a regular file."""
    if not os.access("/dev/null", os.W_OK):
        pytest.skip("/dev/null not writable here")
    before = os.stat("/dev/null")
    result = report_to("/dev/null", log)
    assert result.exit_code == 0, result.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert after.st_ino == before.st_ino


def test_o_dev_full_is_an_error_naming_it_and_stays_a_device(log: Path) -> None:
    """-o /dev/full: the write fails, exit 2 naming the device; the device is untouched."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    result = report_to("/dev/full", log, "html")
    assert result.exit_code == 2, result.output
    assert "/dev/full" in result.output
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_o_writes_into_a_fifo(tmp_path: Path, log: Path) -> None:
    """-o to a named pipe streams the report to its reader; the FIFO stays a FIFO."""
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = report_to(fifo, log)
    if reader.is_alive():  # nothing opened the pipe for writing: let the reader see its end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert orjson.loads(received[0])["slos"]


def test_o_symlink_to_dev_stdout_reaches_stdout(tmp_path: Path, log: Path) -> None:
    """A symlink to /dev/stdout: the report comes out on stdout and the link stays a link."""
    link = tmp_path / "out.json"
    link.symlink_to("/dev/stdout")
    args = ["slo", "report", "--spec", str(SPEC), "--logs", str(log), "--at", AT]
    done = subprocess.run(
        [str(ONSALE_OBS), *args, "--format", "json", "-o", str(link)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["slos"]
    assert link.is_symlink()


def test_o_through_a_symlink_to_a_file_replaces_the_target_and_keeps_the_link(
    tmp_path: Path, log: Path
) -> None:
    """A link to a regular file: the file gets the report atomically, the link is kept."""
    real = tmp_path / "reports" / "latest.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    result = report_to(link, log)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert orjson.loads(real.read_bytes())["slos"]
    assert [p.name for p in real.parent.iterdir()] == ["latest.json"]  # no temporary left


def test_o_refuses_a_folder(tmp_path: Path, log: Path) -> None:
    """-o DIR is exit 2 naming the folder; the folder is untouched."""
    result = report_to(tmp_path, log)
    assert result.exit_code == 2, result.output
    assert str(tmp_path) in " ".join(result.output.split())
    assert tmp_path.is_dir()


def test_alertmanager_out_dev_null_stays_a_device() -> None:
    """alertmanager render --out /dev/null checks and writes the config; the device stays."""
    if not os.access("/dev/null", os.W_OK):
        pytest.skip("/dev/null not writable here")
    before = os.stat("/dev/null")
    result = invoke("alertmanager", "render", "--out", "/dev/null")
    assert result.exit_code == 0, result.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert after.st_ino == before.st_ino


def test_alertmanager_out_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    """--out LINK to a regular file: the target gets the configuration, the link is kept."""
    real = tmp_path / "etc" / "alertmanager.yml"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "alertmanager.yml"
    link.symlink_to(real)
    result = invoke("alertmanager", "render", "--out", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert "route:" in real.read_text()


def test_printed_commands_use_the_full_path_when_onsale_obs_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv not activated: the command to paste names .venv/bin/onsale-obs in full."""
    from onsale_obs.cli._output import command_name

    script = tmp_path / ".venv" / "bin" / "onsale-obs"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command_name() == str(script)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin")
    assert command_name() == "onsale-obs"  # activated: the short name runs the same script
