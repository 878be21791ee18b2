"""The whole path: real middleware, a real Prometheus scraping it, ``onsale-obs mode auto`` as its
own process, a real sqlite mode store and the service's own subscriber.

Waits are bounded polls for what a user waits for (Prometheus scraped, the state arrived),
never timing thresholds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onsale_obs.instrument import (
    OnsaleMiddleware,
    PathParam,
    RequestMetrics,
    current_request_mode,
    metrics_wsgi_app,
)
from onsale_obs.modes import (
    Broadcaster,
    KeyPairFiles,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    Verifier,
    generate_key_pair,
)
from onsale_obs.testing import free_port, require_binary
from onsale_obs.testing_prometheus import PrometheusServer
from tests.live_exporter import _Quiet

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from onsale_obs.cli import app; app()"]


@dataclass
class Service:
    app: OnsaleMiddleware
    subscriber: ModeSubscriber
    metrics: RequestMetrics
    server: WSGIServer

    def get(self, event: str, times: int = 1) -> list[str]:
        """``times`` requests to one event; the mode each was served in."""

        async def go() -> list[str]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [
                    (await client.get(f"/events/{event}/seats")).json()["mode"]
                    for _ in range(times)
                ]

        return asyncio.run(go())


@dataclass
class Stack:
    tmp: Path
    ops: KeyPairFiles
    detector: KeyPairFiles
    db: Path
    service: Service
    prometheus: PrometheusServer

    def detector_process(self, *extra: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_OBS_")}
        env["ONSALE_OBS_AUTO_SIGNING_KEY"] = str(self.detector.signing_key)
        return subprocess.Popen(
            [*CLI, "mode", "auto", "--prometheus", self.prometheus.url,
             "--backend", f"sqlite:///{self.db}", "--verify-key", str(self.ops.verify_key),
             "--floor", "5", "--window", "2", "--interval", "0.5", "--quiet", "1m",
             "--format", "json", "--timeout", "120", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


def _service(db: Path, verifier: Verifier) -> Service:
    subscriber = ModeSubscriber(SqliteBackend(str(db)), verifier, registry=None, poll_timeout=0.2)
    registry = CollectorRegistry()
    metrics = RequestMetrics("tickets", registry=registry)

    async def seats(request: Request) -> Response:
        rm = current_request_mode()
        return JSONResponse({"mode": rm.mode if rm else None})

    app = OnsaleMiddleware(
        Starlette(routes=[Route("/events/{event_id}/seats", seats)]),
        subscriber=subscriber,
        service="tickets",
        event=[PathParam("event_id")],
        metrics=metrics,
    )
    server = make_server("127.0.0.1", free_port(), metrics_wsgi_app(registry), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Service(app, subscriber, metrics, server)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    binary = require_binary("prometheus", "prometheus")
    ops = generate_key_pair(tmp_path / "ops", name="ops")
    detector = generate_key_pair(tmp_path / "auto", name="auto")
    db = tmp_path / "modes.db"
    store = SqliteBackend(str(db))
    Broadcaster(store, Signer.from_file(ops.signing_key)).set(
        "event:presale", "onsale", until=time.time() + 3600, reason="announced"
    )
    store.close()
    # the service trusts the operators and the detector (its key on the verify-key list)
    service = _service(db, Verifier.from_files([ops.verify_key, detector.verify_key]))
    service.subscriber.start()
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: services
    static_configs: [{{targets: ["127.0.0.1:{service.server.server_port}"]}}]
"""
    try:
        with PrometheusServer(binary=binary, config=config) as prometheus:
            yield Stack(tmp_path, ops, detector, db, service, prometheus)
    finally:
        service.subscriber.stop()
        service.server.shutdown()
        service.server.server_close()


def _lines(process: subprocess.Popen[str]) -> tuple[list[dict[str, object]], str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_a_surge_on_one_event_flips_only_that_event_and_its_requests_are_onsale(
    stack: Stack,
) -> None:
    """Surge on 'final', a bot burst under the floor on 'resale': only final goes on sale (auto)."""
    service = stack.service
    assert service.get("final") == ["normal"]
    detector = stack.detector_process()
    try:
        deadline = time.monotonic() + 90
        resale_sent = 0.0
        while time.monotonic() < deadline:
            service.get("final", 20)  # far above the 5 req/s floor
            if time.monotonic() - resale_sent >= 0.5:  # a burst of 2 req/s: under the floor
                resale_sent = time.monotonic()
                service.get("resale", 1)
            state = service.subscriber.states().get("event:final")
            if state is not None and state.mode == "onsale":
                break
            time.sleep(0.1)
        else:
            lines, err = _lines(detector)
            raise AssertionError(f"event:final never went on sale: {lines} {err}")
        assert state.source == "auto"
        assert "final" in state.reason
        assert "req/s" in state.reason
        assert state.until is not None
        assert state.until > time.time()
        # requests of that event are tagged onsale from now on; others stay normal
        assert service.get("final", 3) == ["onsale"] * 3
        assert service.get("resale") == ["normal"]
        assert service.get("presale") == ["onsale"]  # the operators' state is untouched
    finally:
        lines, err = _lines(detector)
    published = [(line["action"], line["scope"]) for line in lines]
    assert published == [("onsale", "event:final")], (lines, err)
    states = service.subscriber.states()
    assert "event:resale" not in states
    assert states["event:presale"].source == "manual"
    # a subscriber that does not trust the detector's key rejects its states as forged
    untrusting = ModeSubscriber(
        SqliteBackend(str(stack.db)), Verifier.from_files([stack.ops.verify_key]), registry=None
    )
    untrusting.sync()
    assert untrusting.rejected()["forged"] >= 1
    assert untrusting.resolve("final").mode == "normal"
    # ...and still trusts the store and the operators' states (its own key's head)
    assert untrusting.trouble is None
    assert untrusting.resolve("presale").mode == "onsale"


def test_dry_run_publishes_nothing_and_says_what_it_would_do(stack: Stack) -> None:
    """--dry-run: the would-be flip is printed; the store and the service never see it."""
    service = stack.service
    port = free_port()
    detector = stack.detector_process("--dry-run", "--port", str(port))
    printed: list[str] = []
    assert detector.stdout is not None
    reader = threading.Thread(target=lambda: printed.extend(detector.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not printed and detector.poll() is None:
            service.get("final", 20)
            time.sleep(0.1)
        for _ in range(20):  # a few more of its readings while the surge goes on
            service.get("final", 20)
            time.sleep(0.1)
        exported = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'onsale_auto_surging{event="final"} 1.0' in exported  # exported, not published
    finally:
        detector.send_signal(signal.SIGTERM)
        err = detector.communicate(timeout=30)[1]
        reader.join(timeout=10)
    lines = [json.loads(line) for line in printed if line.strip()]
    assert [(line["action"], line["dry_run"]) for line in lines] == [("onsale", True)], err
    assert lines[0]["revision"] is None
    assert "event:final" not in service.subscriber.states()
