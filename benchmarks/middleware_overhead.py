"""Per-request cost of the on-sale tagging, against what OpenTelemetry's ASGI middleware costs.

Stacks over the same Starlette handler, called in-process (no network, so the figures are the
middleware's CPU cost): bare app; app + opentelemetry-instrumentation-asgi; app + OTel +
OnsaleMiddleware (mode lookup, span attributes via OnsaleSpanProcessor wrapping the exporting
processor as the README recommends, baggage, structlog context, both metrics); and the same with
the processor added beside the exporting one instead (printed, not judged). Timing: many short
rounds interleave the stacks so machine noise hits all of them; each stack's cost over the one
below it is the median over rounds of the difference of their mean per-request CPU time
(process time) in that round. ``--instructions`` counts CPU instructions with valgrind's
callgrind instead: slower, but the same figure on a busy machine, which timing on 2 noisy cores
is not; 3,000 requests per run, with what start-up left frozen out of the garbage collector
(see ``worker``). ``--floors`` adds two reference layers between OTel and the app, printed and
not judged: one that only awaits the app, and one that also wraps ``send`` to read the status
(the least any middleware recording the status can do).

    .venv/bin/python benchmarks/middleware_overhead.py [--requests 500] [--rounds 60] [--floors]
    .venv/bin/python benchmarks/middleware_overhead.py --instructions   # callgrind: noise-free

Target (DESIGN.md): (otel+onsale - otel) / (otel - bare) <= 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
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


class _PassThrough:
    """A reference layer that only awaits the app: what an extra ASGI frame costs."""

    def __init__(self, app: ASGI) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class _SendWrapper(_PassThrough):
    """A reference layer that also wraps ``send`` to read the status, as OnsaleMiddleware does."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = 0

        def sender(message: dict[str, Any]) -> Any:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message.get("status", 0)
            return send(message)

        try:
            await self.app(scope, receive, sender)
        finally:
            self.status = status


def build_stacks(access_log: bool) -> dict[str, ASGI]:
    async def checkout(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/events/{event_id}/checkout", checkout, methods=["POST"])])
    plain_provider = TracerProvider()
    plain_provider.add_span_processor(SimpleSpanProcessor(_DropExporter()))
    tagged_provider = TracerProvider()
    # the recommended set-up: the on-sale processor wraps the exporting one
    tagged_provider.add_span_processor(OnsaleSpanProcessor(SimpleSpanProcessor(_DropExporter())))
    # the other supported set-up: the on-sale processor beside the exporting one
    beside_provider = TracerProvider()
    beside_provider.add_span_processor(OnsaleSpanProcessor())
    beside_provider.add_span_processor(SimpleSpanProcessor(_DropExporter()))

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
        "otel+onsale-beside": OpenTelemetryMiddleware(tagged, tracer_provider=beside_provider),
        "otel+pass-through": OpenTelemetryMiddleware(
            _PassThrough(app), tracer_provider=plain_provider
        ),
        "otel+send-wrapper": OpenTelemetryMiddleware(
            _SendWrapper(app), tracer_provider=plain_provider
        ),
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

    # CPU time of this process: time the hypervisor or other processes take is not counted
    started = time.process_time()
    for i in range(requests):
        await app(scope_for(paths[i % len(paths)]), receive, send)
    return (time.process_time() - started) / requests


PATHS = ["/events/final/checkout", "/events/other/checkout"]  # one on-sale event, one normal
STACKS = ("bare", "otel", "otel+onsale", "otel+onsale-beside")
#: Reference layers over OTel (``--floors``): printed, not judged.
FLOORS = ("otel+pass-through", "otel+send-wrapper")


def report(per_request: dict[str, float], unit: str, json_path: str | None) -> float:
    """Print each stack's cost and the tagging's share of what OTel ASGI adds; return the share."""
    print(f"{'stack':<20}{unit:>16}")
    for name, value in per_request.items():
        print(f"{name:<20}{value:>16.2f}")
    otel_cost = per_request["otel"] - per_request["bare"]
    ours = per_request["otel+onsale"] - per_request["otel"]
    ratio = ours / otel_cost if otel_cost > 0 else float("inf")
    beside = per_request["otel+onsale-beside"] - per_request["otel"]
    print(f"\nOTel ASGI adds       {otel_cost:14.2f} {unit}")
    print(f"on-sale tagging adds {ours:14.2f} {unit}  ({ratio:.1%} of OTel's cost; target <= 5%)")
    print(
        f"  processor beside   {beside:14.2f} {unit}  ({beside / otel_cost:.1%}; "
        "OnsaleSpanProcessor() added beside the exporting processor instead of wrapping it)"
    )
    for name in FLOORS:
        if name in per_request:
            cost = per_request[name] - per_request["otel"]
            print(f"  {name[5:]:<19}{cost:14.2f} {unit}  ({cost / otel_cost:.1%}; reference layer)")
    print("MEETS TARGET" if ratio <= 0.05 else "MISSES TARGET")
    if json_path:
        Path(json_path).write_text(
            json.dumps({"per_request": per_request, "unit": unit, "ratio": ratio}, indent=2)
        )
    return ratio


def timed(args: argparse.Namespace) -> dict[str, float]:
    """Per-request CPU time in microseconds, from interleaved rounds.

    Each stack's cost is built from medians of differences taken within a round (otel - bare,
    otel+onsale - otel, ...): the stacks of one round ran within a second of each other, so the
    machine's slow drifts cancel, which they do not between separate medians.
    """
    stacks = {
        name: app
        for name, app in build_stacks(args.access_log).items()
        if name in STACKS or args.floors
    }
    samples: dict[str, list[float]] = {name: [] for name in stacks}

    async def bench() -> None:
        for app in stacks.values():  # warm caches and code paths
            await run(app, 200, PATHS)
        for r in range(args.rounds):
            order = list(stacks.items())
            if r % 2:
                order.reverse()
            for name, app in order:
                samples[name].append(await run(app, args.requests, PATHS))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, end="\r")

    asyncio.run(bench())
    structlog.reset_defaults()
    print(file=sys.stderr)

    def paired(stack: str, base: str) -> float:
        return statistics.median(a - b for a, b in zip(samples[stack], samples[base], strict=True))

    bare = statistics.median(samples["bare"])
    otel = bare + paired("otel", "bare")
    out = {
        "bare": bare,
        "otel": otel,
        "otel+onsale": otel + paired("otel+onsale", "otel"),
        "otel+onsale-beside": otel + paired("otel+onsale-beside", "otel"),
    }
    for name in FLOORS if args.floors else ():
        out[name] = otel + paired(name, "otel")
    return {name: value * 1e6 for name, value in out.items()}


def _callgrind_total(stack: str, count: int, access_log: bool) -> int:
    """Instructions executed by a whole worker run (start-up included) under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            __file__,
            "--worker",
            stack,
            "--requests",
            str(count),
        ]
        if access_log:
            cmd.append("--access-log")
        # a fixed hash seed: dict and set layouts, and so the instruction count, repeat exactly
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=900, check=False, env=env
        )
        match = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or match is None:
            raise RuntimeError(f"callgrind run failed: {done.stderr[-2000:]}")
        return int(match.group(1))


def instructions(args: argparse.Namespace) -> dict[str, float]:
    """Instructions per request: (run with 200 + N requests - run with 200) / N.

    Callgrind counts instructions, not seconds, so the figure is the same on a busy machine;
    subtracting two runs removes start-up, imports and warm-up.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    out = {}
    for stack in STACKS + (FLOORS if args.floors else ()):
        print(f"callgrind: {stack}", file=sys.stderr)
        low = _callgrind_total(stack, 200, args.access_log)
        high = _callgrind_total(stack, 200 + args.requests, args.access_log)
        out[stack] = (high - low) / args.requests
    return out


def worker(stack: str, count: int, access_log: bool) -> None:
    """Serve ``count`` requests through one stack (what callgrind measures)."""
    app = build_stacks(access_log)[stack]
    # What start-up left (imports, the stacks) is set aside from the garbage collector: a full
    # pass over it costs millions of instructions, and where one falls within a run shifts with
    # any change in what a request allocates; the passes over the requests' own objects count.
    gc.collect()
    gc.freeze()
    asyncio.run(run(app, count, PATHS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="requests per stack per round (timing, default 500); per callgrind run "
        "(--instructions, default 3000)",
    )
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (timing)")
    parser.add_argument("--access-log", action="store_true", help="also write the JSON access log")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions per request with valgrind's callgrind instead of timing",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also measure two reference layers over OTel: one that only awaits the app, one "
        "that also wraps send to read the status",
    )
    parser.add_argument("--worker", choices=STACKS + FLOORS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 3000 if args.instructions else 500
    if args.worker:
        worker(args.worker, args.requests, args.access_log)
    elif args.instructions:
        report(instructions(args), "instr/request", args.json)
    else:
        report(timed(args), "us/request", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
