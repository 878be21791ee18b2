"""Per-request cost of the on-sale tagging, against what OpenTelemetry's ASGI middleware costs.

Three stacks over the same Starlette handler, called in-process (no network, so the figures are
the middleware's CPU cost): bare app; app + opentelemetry-instrumentation-asgi; app + OTel +
OnsaleMiddleware (mode lookup, span attributes via OnsaleSpanProcessor, baggage, structlog
context, both metrics). Rounds interleave the stacks so machine noise hits all of them; the
figure per stack is the median over rounds of the mean per-request time.

    .venv/bin/python benchmarks/middleware_overhead.py [--requests 2000] [--rounds 15]

Target (DESIGN.md): (otel+onsale - otel) / (otel - bare) <= 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from onsale_obs.instrument import (
    AccessLog,
    OnsaleMiddleware,
    OnsaleSpanProcessor,
    PathParam,
    RequestMetrics,
    configure_logging,
)
from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import key_pair

ASGI = Any  # Starlette and the OTel middleware are ASGI apps; neither is typed as one


class _DropExporter(SpanExporter):
    """Finishes spans without sending them anywhere: the cost measured is the instrumentation's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def build_stacks(access_log: bool) -> dict[str, ASGI]:
    async def checkout(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/events/{event_id}/checkout", checkout, methods=["POST"])])
    plain_provider = TracerProvider()
    plain_provider.add_span_processor(SimpleSpanProcessor(_DropExporter()))
    tagged_provider = TracerProvider()
    tagged_provider.add_span_processor(OnsaleSpanProcessor())
    tagged_provider.add_span_processor(SimpleSpanProcessor(_DropExporter()))

    signer, verifier = key_pair()
    backend = MemoryBackend()
    Broadcaster(backend, signer).set("event:final", "onsale")
    subscriber = ModeSubscriber(backend, verifier, registry=None)
    subscriber.sync()
    configure_logging(stream=io.StringIO())
    tagged = OnsaleMiddleware(
        app,
        subscriber=subscriber,
        service="checkout",
        event=[PathParam("event_id")],
        metrics=RequestMetrics("checkout", registry=CollectorRegistry()),
        access_log=AccessLog(io.BytesIO(), service="checkout") if access_log else None,
    )
    return {
        "bare": app,
        "otel": OpenTelemetryMiddleware(app, tracer_provider=plain_provider),
        "otel+onsale": OpenTelemetryMiddleware(tagged, tracer_provider=tagged_provider),
    }


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"checkout"), (b"user-agent", b"bench"), (b"content-length", b"0")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def run(app: ASGI, requests: int, paths: list[str]) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for i in range(requests):
        await app(scope_for(paths[i % len(paths)]), receive, send)
    return (time.perf_counter() - started) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per stack per round")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--access-log", action="store_true", help="also write the JSON access log")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    stacks = build_stacks(args.access_log)
    # half the requests are for the on-sale event, half for a normal one
    paths = ["/events/final/checkout", "/events/other/checkout"]
    samples: dict[str, list[float]] = {name: [] for name in stacks}

    async def bench() -> None:
        for app in stacks.values():  # warm caches and code paths
            await run(app, 200, paths)
        for r in range(args.rounds):
            order = list(stacks.items())
            if r % 2:
                order.reverse()
            for name, app in order:
                samples[name].append(await run(app, args.requests, paths))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, end="\r")

    asyncio.run(bench())
    structlog.reset_defaults()
    print(file=sys.stderr)
    med = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    otel_cost = med["otel"] - med["bare"]
    ours = med["otel+onsale"] - med["otel"]
    ratio = ours / otel_cost if otel_cost > 0 else float("inf")
    print(f"{'stack':<14}{'us/request':>12}")
    for name, value in med.items():
        print(f"{name:<14}{value:>12.2f}")
    print(f"\nOTel ASGI adds      {otel_cost:8.2f} us/request")
    print(
        f"on-sale tagging adds {ours:8.2f} us/request  ({ratio:.1%} of OTel's cost; target <= 5%)"
    )
    print("MEETS TARGET" if ratio <= 0.05 else "MISSES TARGET")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "us_per_request": med,
                    "otel_cost_us": otel_cost,
                    "onsale_cost_us": ours,
                    "ratio": ratio,
                },
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
