"""One service's real ``RequestMetrics`` on its own /metrics, for a real Prometheus to scrape."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from onsale_obs.instrument._endpoint import metrics_wsgi_app
from onsale_obs.instrument._metrics import RequestMetrics
from onsale_obs.testing import free_port


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Exporter:
    """One service's real RequestMetrics on its own /metrics, as Prometheus scrapes it."""

    service: str
    port: int
    registry: CollectorRegistry
    metrics: RequestMetrics
    server: WSGIServer

    @classmethod
    def start(cls, service: str) -> Exporter:
        registry = CollectorRegistry()
        metrics = RequestMetrics(service, registry=registry)
        server = make_server(
            "127.0.0.1", free_port(), metrics_wsgi_app(registry), handler_class=_Quiet
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(service, server.server_port, registry, metrics, server)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
