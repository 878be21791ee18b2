"""Helpers for testing code that uses onsale-obs: a fake clock, key pairs, real local servers.

``RedisServer`` starts a real ``redis-server`` (Debian package ``redis-server``) on a free
loopback port with append-only persistence in a temporary folder, and can kill and restart it
on the same port and data, the way an outage looks to subscribers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale_obs.modes import Signer, Verifier


class ListLogger:
    """A stand-in structlog logger that keeps (level, event) of every call, for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **_fields: object) -> None:
            self.events.append((level, event))

        return log


@dataclass
class FakeClock:
    """A clock for tests: call it for the time, ``advance`` it by hand."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward and return the new time."""
        self.now += seconds
        return self.now


def key_pair() -> tuple[Signer, Verifier]:
    """A fresh Ed25519 signer and the verifier that trusts it."""
    private = Ed25519PrivateKey.generate()
    return Signer(private), Verifier([private.public_key()])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str | None:
    """Locate a server binary on PATH or in the Debian sbin folders."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


@dataclass
class RedisServer:
    """A real redis-server on loopback with AOF persistence (``appendfsync always``)."""

    binary: str = "redis-server"
    port: int = field(default_factory=free_port)
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _owned_dir: bool = False

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (or restart) the server on the same port and data folder; wait until it answers."""
        path = find_binary(self.binary)
        if path is None:
            raise FileNotFoundError(
                f"{self.binary} not found; install the Debian package redis-server."
            )
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="onsale-redis-"))
            self._owned_dir = True
        args = [
            path,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--maxclients", "4096",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def stop(self) -> None:
        """Stop the server and remove the data folder this object created."""
        stop_process(self.process)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if self._owned_dir and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Terminate ``process`` and wait; kill it if it does not stop within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def launch(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server process with stdout and stderr going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def log_tail(log: Path | None, lines: int = 20) -> str:
    """The last ``lines`` a server wrote to ``log`` (for error messages)."""
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def wait_http_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float, log: Path | None = None
) -> None:
    """Poll ``url`` until it answers 200; RuntimeError if the process dies or time runs out."""
    import httpx  # only the HTTP servers need it

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited at start: {log_tail(log)}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {log_tail(log)}")


def require_binary(name: str, package: str) -> str:
    """Path of a server binary; under ``CI=true`` its absence is an error, else a pytest skip."""
    path = find_binary(name)
    if path is not None:
        return path
    message = f"{name} not found; install the Debian package {package}."
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(message)
    import pytest

    pytest.skip(message)
    raise AssertionError("unreachable")
