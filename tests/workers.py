"""Running subscriber worker processes from tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: every worker started, so that a failing test's workers are stopped with it (``reap_workers``)
_started: list[subprocess.Popen[str]] = []


def start_worker(
    url: str, verify_key: Path, last_revision: int, timeout: float = 60
) -> subprocess.Popen[str]:
    """Start a subscriber process and wait until it has synced (prints READY)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests._subscriber_worker",
            url,
            str(verify_key),
            str(last_revision),
            str(timeout),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _started.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "READY":
        proc.kill()
        raise AssertionError(
            f"worker did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )
    return proc


def finish_worker(proc: subprocess.Popen[str], timeout: float = 60) -> list[tuple[int, str, str]]:
    """Wait for a worker to exit and return the transitions it printed, in order."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, f"worker exit {proc.returncode}: {err[-2000:]}"
    seen = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            seen.append((int(parts[0]), parts[1], parts[2]))
    return seen


def reap_workers() -> None:
    """Kill the workers a test left running (it failed before finishing them) and close their
    pipes, so a failure stays in its own test instead of warning in a later one."""
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
