"""A real uvicorn service writing an access log, for the kill -9 test: ``PORT LOG INTERVAL``."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from onsale_obs.instrument import AccessLog, OnsaleMiddleware
from onsale_obs.modes import MemoryBackend, ModeSubscriber
from onsale_obs.testing import key_pair


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def checkout(request: Request) -> Response:
    return PlainTextResponse("ok", status_code=503 if "fail" in request.query_params else 200)


def main() -> None:
    port, log_path, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    _, verifier = key_pair()
    app = OnsaleMiddleware(
        Starlette(
            routes=[
                Route("/events/{event_id}/checkout", checkout, methods=["POST"]),
                Route("/health", health),
            ]
        ),
        subscriber=ModeSubscriber(MemoryBackend(), verifier, registry=None),
        service="checkout",
        exclude_paths=("/health",),
        access_log=AccessLog(log_path, service="checkout", flush_interval=interval),
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
