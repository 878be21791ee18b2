"""A real ``prometheus-alertmanager`` and a webhook sink on loopback, for tests and the stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from onsale_obs.testing import (
    find_binary,
    free_port,
    launch,
    log_tail,
    stop_process,
    wait_http_ready,
)


class WebhookSink(ThreadingHTTPServer):
    """Collects what Alertmanager posts, by path (``/page``, ``/ticket``), with arrival times."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any], float]] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Collect)

    @property
    def url(self) -> str:
        """Base URL to put in receivers (``{url}/page``)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[tuple[str, str]]:
        """(path, status) of every notification so far."""
        with self.lock:
            return [(path, body["status"]) for path, body, _ in self.received]

    def alerts(self, path: str) -> list[tuple[dict[str, str], float]]:
        """(labels, arrival time) of every alert posted to ``path``."""
        with self.lock:
            return [
                (a["labels"], at)
                for p, body, at in self.received
                if p == path
                for a in body["alerts"]
            ]

    def start(self) -> WebhookSink:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Collect(BaseHTTPRequestHandler):
    server: WebhookSink

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.received.append((self.path, body, time.monotonic()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class AlertmanagerServer:
    """A real Alertmanager with the configuration text ``config``, clustering off."""

    config: str
    binary: str = "prometheus-alertmanager"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _scratch: Path | None = None

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> AlertmanagerServer:
        """Start and wait until ``/-/ready`` answers."""
        path = find_binary(self.binary)
        if path is None:
            raise FileNotFoundError(
                f"{self.binary} not found; install the Debian package prometheus-alertmanager."
            )
        self._scratch = Path(tempfile.mkdtemp(prefix="onsale-alertmanager-"))
        config = self._scratch / "alertmanager.yml"
        config.write_text(self.config)
        self.process = launch(
            [
                path,
                f"--config.file={config}",
                f"--storage.path={self._scratch / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self._scratch / "alertmanager.log",
        )
        try:
            wait_http_ready(f"{self.url}/-/ready", self.process, timeout, self._log)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def _log(self) -> Path | None:
        return None if self._scratch is None else self._scratch / "alertmanager.log"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines it logged."""
        return log_tail(self._log, lines)

    def stop(self) -> None:
        """Terminate (then kill) and remove its folder."""
        stop_process(self.process)
        self.process = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
