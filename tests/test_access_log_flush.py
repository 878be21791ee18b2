"""The access log reaches disk without waiting for traffic: kill -9, SIGTERM, stalled disks."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from onsale_obs.instrument import AccessLog
from onsale_obs.instrument._context import RequestMode
from onsale_obs.testing import free_port, launch, wait_http_ready
from tests.workers import ROOT

RM = RequestMode("onsale", "final", "final", None, "/events/{event_id}/checkout", "POST")


def on_disk(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def wait_for_lines(path: Path, count: int, deadline_s: float = 30.0) -> int:
    """Poll (generous deadline, no speed asserted) until ``count`` lines are on disk."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = len(path.read_bytes().splitlines()) if path.exists() else 0
        if found >= count:
            return found
        time.sleep(0.05)
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_kill_9_of_a_real_uvicorn_service_loses_no_line_older_than_the_interval(
    tmp_path: Path,
) -> None:
    """150 requests then quiet: all 150 lines reach disk with no further request, and survive kill -9."""
    port, path = free_port(), tmp_path / "checkout.access.jsonl"
    server = launch(
        [sys.executable, "-m", "tests._access_log_server", str(port), str(path), "0.2"],
        tmp_path / "server.log",
    )
    try:
        wait_http_ready(
            f"http://127.0.0.1:{port}/health", server, timeout=30, log=tmp_path / "server.log"
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(150):
                query = "?fail=1" if i % 10 == 0 else ""
                client.post(f"/events/final/checkout{query}")
        # the documented bound: lines are written within the flush interval, no request needed
        assert wait_for_lines(path, 150) == 150
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        written = on_disk(path)
        assert len(written) == 150
        assert sum(1 for x in written if x["status"] == 503) == 15
    finally:
        server.kill()
        server.wait(timeout=30)


def test_sigterm_writes_the_buffer_out(tmp_path: Path) -> None:
    """A service stopped with SIGTERM (no server handler) still writes its buffered lines."""
    path = tmp_path / "access.log"
    code = (
        "import sys, time\n"
        "from onsale_obs.instrument import AccessLog\n"
        "from onsale_obs.instrument._context import RequestMode\n"
        "rm = RequestMode('normal', None, None, None, '/x', 'GET')\n"
        f"log = AccessLog({str(path)!r}, service='s', flush_interval=3600)\n"
        "for _ in range(7): log.write(rm, 200, 0.01)\n"
        "print('READY', flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"READY"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    assert len(on_disk(path)) == 7


class StalledDisk(io.BytesIO):
    """A stream whose first write hangs until released, as a disk stuck on I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.entered.set()
        assert self.release.wait(60)
        return super().write(data)


def test_a_stalled_disk_never_blocks_a_request_and_drops_are_counted() -> None:
    """While the writer is stuck, requests go on; past the buffer bound, lines are dropped and counted."""
    disk = StalledDisk()
    log = AccessLog(disk, service="checkout", flush_interval=3600.0, max_buffered=4)
    log.write(RM, 200, 0.01)
    writer = threading.Thread(target=log.flush)
    writer.start()
    assert disk.entered.wait(30)  # the writer now hangs inside the disk write
    for _ in range(7):
        log.write(RM, 200, 0.01)  # returns at once: would hang the test if it waited on the disk
    assert log.dropped == 3
    disk.release.set()
    writer.join(30)
    log.close()
    assert len(disk.getvalue().splitlines()) == 1 + 4


def test_a_failing_disk_is_counted_not_raised() -> None:
    """/dev/full: the write fails in the writer, the request path never sees it, the loss is counted."""
    log = AccessLog("/dev/full", service="checkout", flush_interval=3600.0)
    for _ in range(3):
        log.write(RM, 200, 0.01)
    log.close()
    assert log.dropped == 3


def test_fsync_policy_syncs_each_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync=True: every write is followed by an fsync of the file (host-crash durability)."""
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    log = AccessLog(tmp_path / "a.log", service="s", flush_interval=3600.0, fsync=True)
    log.write(RM, 200, 0.01)
    log.flush()
    log.close()
    assert len(synced) == 1


def test_sigterm_while_the_main_thread_writes_does_not_hang(tmp_path: Path) -> None:
    """SIGTERM landing while the main thread holds the log's lock: the process still ends."""
    code = (
        "import time\n"
        "from onsale_obs.instrument import AccessLog\n"
        f"log = AccessLog({str(tmp_path / 'a.log')!r}, service='s', flush_interval=3600)\n"
        "log._io_lock.acquire()  # as if interrupted inside a flush\n"
        "print('READY', flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"READY"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM


def test_a_process_that_exits_without_close_still_writes_its_lines(tmp_path: Path) -> None:
    """Interpreter exit flushes every open access log (nobody called close())."""
    path = tmp_path / "access.log"
    code = (
        "from onsale_obs.instrument import AccessLog\n"
        "from onsale_obs.instrument._context import RequestMode\n"
        "rm = RequestMode('normal', None, None, None, '/x', 'GET')\n"
        f"log = AccessLog({str(path)!r}, service='s', flush_interval=3600)\n"
        "for _ in range(5): log.write(rm, 200, 0.01)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    assert len(on_disk(path)) == 5
