"""Real HTTP servers in background threads: uvicorn for ASGI apps, werkzeug for WSGI apps.

Both bind when started (port 0 picks a free port; ``port`` then tells which), serve until
``stop``, and never touch signal handlers or the logging configuration.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from onsale_obs.types import ASGIApp


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No werkzeug access lines: each service writes its own access log."""


class UvicornServer:
    """An ASGI app served by uvicorn on ``host:port`` from a thread (lifespan included)."""

    def __init__(self, app: ASGIApp, *, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            ws="none",
            log_config=None,  # leave the process' logging alone
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def start(self, timeout: float = 30.0) -> UvicornServer:
        """Start serving; return once the socket listens (raise if it does not in ``timeout`` s)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            # uvicorn exits its thread when it cannot bind or the app's startup fails
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on {self.host}.")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        """The port it listens on."""
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        """False once the server thread has ended."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish open requests, run the app's shutdown, and end the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)


class WerkzeugServer:
    """A WSGI app served by werkzeug's threaded server on ``host:port`` from a thread."""

    def __init__(self, app: Any, *, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=name,
            daemon=True,
        )

    def start(self) -> WerkzeugServer:
        """Start serving (the socket already listens)."""
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._server.server_port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        """False once the server thread has ended."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting requests and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
