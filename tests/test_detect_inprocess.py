"""The embedded default: the detector reads the middleware's own summary (no Prometheus), publishes
into a real sqlite store, and the service's subscriber tags the event's next requests onsale."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onsale_obs.detect import AutoMode, DetectorConfig, SketchRates, SurgeDetector
from onsale_obs.instrument import (
    OnsaleMiddleware,
    PathParam,
    RequestMetrics,
    current_request_mode,
)
from onsale_obs.modes import (
    Broadcaster,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    Verifier,
    generate_key_pair,
)
from onsale_obs.testing import FakeClock


def test_a_surge_seen_in_process_flips_its_event_and_its_requests_are_tagged(
    tmp_path: Path,
) -> None:
    """Middleware summary -> detector -> sqlite -> subscriber -> the next request is onsale."""
    ops = generate_key_pair(tmp_path / "ops", name="ops")
    auto = generate_key_pair(tmp_path / "auto", name="auto")
    db = tmp_path / "modes.db"
    clock = FakeClock()
    registry = CollectorRegistry()
    metrics = RequestMetrics("tickets", registry=registry)
    assert metrics.heavy_hitters is not None
    metrics.heavy_hitters.clock = clock  # the summary's time, simulated
    subscriber = ModeSubscriber(
        SqliteBackend(str(db)),
        Verifier.from_files([ops.verify_key, auto.verify_key]),
        registry=None,
    )

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

    def get(event: str, times: int) -> list[str]:
        async def go() -> list[str]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [
                    (await client.get(f"/events/{event}/seats")).json()["mode"]
                    for _ in range(times)
                ]

        return asyncio.run(go())

    store = SqliteBackend(str(db))
    runner = AutoMode(
        SurgeDetector(DetectorConfig()),
        SketchRates([metrics.heavy_hitters]),
        Broadcaster(
            store,
            Signer.from_file(auto.signing_key),
            clock=clock,
            verifier=Verifier.from_files([ops.verify_key]),
        ),
        registry=registry,
    )
    flipped: list[str] = []
    for _ in range(8):  # 16 simulated seconds: 'final' at 100 req/s, 'resale' at 2 req/s
        get("final", 200)
        get("resale", 4)
        clock.advance(2.0)
        metrics.series_count()  # count the queued requests, as a scrape would
        flipped += [a.scope for a in runner.tick() if a.kind == "onsale"]
    assert flipped == ["event:final"]
    subscriber.sync()
    assert subscriber.states()["event:final"].source == "auto"
    assert get("final", 2) == ["onsale", "onsale"]
    assert get("resale", 1) == ["normal"]
    assert 'onsale_auto_surging{event="final"} 1.0' in generate_latest(registry).decode()
    store.close()
