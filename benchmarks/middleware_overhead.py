"""Per-request cost of the on-sale tagging in every deployment shape, against OTel ASGI's own cost.

Stacks over the same Starlette handler, called in-process (no network, so the figures are the
middleware's CPU cost). Two OpenTelemetry set-ups, each measured on its own: ``full`` is
opentelemetry-instrumentation-asgi as it comes (receive and send spans, a simple processor);
``lean`` is what a cost-aware team runs (``exclude_spans=["receive", "send"]``, a batch
processor). Over each, the tagging (``OnsaleMiddleware`` with ``OnsaleSpanProcessor`` wrapping
the exporting processor as the README recommends, baggage, structlog context, both metrics) in
four deployment shapes:

- ``edge``: OTel outside the tagging, requests without baggage (an edge service);
- ``inside``: OTel inside the tagging (``OnsaleMiddleware(OpenTelemetryMiddleware(app))``);
- ``hop``: OTel outside, every request carrying the ``traceparent`` and the ``onsale.*``
  baggage an upstream service sends (every request past the edge);
- ``hop-inside``: the same requests with OTel inside.

Each shape's cost is its stack minus the same OTel stack without the tagging, serving the same
requests (``hop`` shapes: OTel alone also receives, and parses, the inbound headers). Half the
requests are to an event on sale. Printed per shape: instructions (or time) added per request,
the ratio to the ``edge`` shape of the same OTel set-up, and the share of lean and of full
OTel's own cost (OTel minus the bare app), all from the same run.

Targets (DESIGN.md, issue 24): every shape <= 5% of lean OTel's own cost, counted in CPU
instructions; ``inside`` and ``hop`` shapes <= 1.5x ``edge``. Timing is printed, not judged.

``--instructions`` counts CPU instructions with valgrind's callgrind: one process per stack
(two at a time, ``--jobs``), which serves 200 requests to warm up, sets what start-up left
aside from the garbage collector (see ``worker``), and then serves ``--requests`` (default
2,000) between two callgrind dumps, so start-up is excluded exactly. Only the thread serving
the requests is counted: the batch span processor's export thread wakes on wall-clock time
(every 5 s, or when 512 spans wait), which callgrind stretches by how busy the machine is, so
its share moved a stack's figure by 6.6k instructions per request between two runs of the same
code; it exports the same spans with and without the tagging. With ``--all-threads`` every
thread is counted, as before. The figure does not depend on how busy the machine is, which
timing on 2 noisy cores does; runs of the same code still differ by up to about 3k
instructions per request at 500 requests. Without it, the default times: many short
rounds interleave the stacks so machine noise hits all of them; each stack's cost over its
baseline is the median over rounds of the difference of their mean per-request CPU time.
``--floors`` adds reference layers over each OTel set-up (printed, not judged): one that only
awaits the app, one that also wraps ``send`` to read the status (the least any middleware
recording the status can do), and the tagging with its processor added beside the exporting
one instead of wrapping it.

    .venv/bin/python benchmarks/middleware_overhead.py --instructions   # callgrind, ~6 minutes
    .venv/bin/python benchmarks/middleware_overhead.py [--requests 500] [--rounds 60] [--floors]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
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


#: The two OpenTelemetry set-ups: extra keyword arguments of the OTel middleware, and the
#: exporting processor.
OTEL: dict[str, tuple[dict[str, Any], Callable[[], SpanProcessor]]] = {
    "full": ({}, lambda: SimpleSpanProcessor(_DropExporter())),
    "lean": ({"exclude_spans": ["receive", "send"]}, lambda: BatchSpanProcessor(_DropExporter())),
}
#: Deployment shapes: (OTel inside the tagging, requests carry upstream headers).
SHAPES: dict[str, tuple[bool, bool]] = {
    "edge": (False, False),
    "inside": (True, False),
    "hop": (False, True),
    "hop-inside": (True, True),
}
#: Reference layers and set-ups over each OTel set-up (``--floors``): printed, not judged.
FLOORS = ("pass-through", "send-wrapper", "beside")
PATHS = ["/events/final/checkout", "/events/other/checkout"]  # one on-sale event, one normal
#: What an upstream service sends for each path (its own view of the scope and the mode).
HOP_BAGGAGE = {
    "/events/final/checkout": b"onsale.event=final,onsale.mode=onsale",
    "/events/other/checkout": b"onsale.event=other,onsale.mode=normal",
}
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def stack_names(floors: bool) -> list[str]:
    """Every stack a run measures: ``bare``; per OTel set-up its baselines, shapes and floors."""
    names = ["bare"]
    for otel in OTEL:
        names += [otel, f"{otel}/hop"]
        names += [f"{otel}+{shape}" for shape in SHAPES]
        if floors:
            names += [f"{otel}+{floor}" for floor in FLOORS]
    return names


def is_hop(name: str) -> bool:
    """True for a stack served the downstream hop's requests (upstream headers)."""
    return name.endswith("/hop") or name.split("+")[-1] in ("hop", "hop-inside")


def build_stack(name: str, access_log: bool) -> ASGI:
    """One stack, built alone (a worker under callgrind builds only what it measures)."""

    async def checkout(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/events/{event_id}/checkout", checkout, methods=["POST"])])
    if name == "bare":
        return app
    otel, _, layer = name.partition("+")
    otel = otel.removesuffix("/hop")
    options, exporting = OTEL[otel]
    provider = TracerProvider()

    def instrumented(inner: ASGI) -> ASGI:
        return OpenTelemetryMiddleware(inner, tracer_provider=provider, **options)

    if layer in ("", "pass-through", "send-wrapper"):
        provider.add_span_processor(exporting())
        if layer == "pass-through":
            return instrumented(_PassThrough(app))
        if layer == "send-wrapper":
            return instrumented(_SendWrapper(app))
        return instrumented(app)
    if layer == "beside":
        provider.add_span_processor(OnsaleSpanProcessor())
        provider.add_span_processor(exporting())
    else:  # the recommended set-up: the on-sale processor wraps the exporting one
        provider.add_span_processor(OnsaleSpanProcessor(exporting()))
    inside = SHAPES[layer][0] if layer in SHAPES else False

    signer, verifier = key_pair()
    backend = MemoryBackend()
    Broadcaster(backend, signer).set("event:final", "onsale")
    subscriber = ModeSubscriber(backend, verifier, registry=None)
    subscriber.sync()
    configure_logging(stream=io.StringIO())

    def tagged(inner: ASGI) -> ASGI:
        return OnsaleMiddleware(
            inner,
            subscriber=subscriber,
            service="checkout",
            event=[PathParam("event_id")],
            metrics=RequestMetrics("checkout", registry=CollectorRegistry()),
            access_log=AccessLog(io.BytesIO(), service="checkout") if access_log else None,
            route_app=app,
        )

    return tagged(instrumented(app)) if inside else instrumented(tagged(app))


def scope_for(path: str, hop: bool) -> dict[str, Any]:
    headers = [(b"host", b"checkout"), (b"user-agent", b"bench"), (b"content-length", b"0")]
    if hop:
        headers += [(b"traceparent", TRACEPARENT), (b"baggage", HOP_BAGGAGE[path])]
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
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def run(app: ASGI, requests: int, hop: bool) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    # CPU time of this process: time the hypervisor or other processes take is not counted
    started = time.process_time()
    for i in range(requests):
        await app(scope_for(PATHS[i % len(PATHS)], hop), receive, send)
    return (time.process_time() - started) / requests


def baseline(name: str) -> str:
    """The stack a shape or floor is measured against: the same OTel, the same requests."""
    otel, _, layer = name.partition("+")
    return f"{otel}/hop" if layer in ("hop", "hop-inside") else otel


def report(per_request: dict[str, float], unit: str, json_path: str | None) -> bool:
    """Print every stack, then each shape's added cost and its ratios; True if targets are met."""
    print(f"{'stack':<24}{unit:>16}")
    for name, value in per_request.items():
        print(f"{name:<24}{value:>16.1f}")
    own = {otel: per_request[otel] - per_request["bare"] for otel in OTEL}
    hop_own = {otel: per_request[f"{otel}/hop"] - per_request["bare"] for otel in OTEL}
    print()
    for otel in OTEL:
        print(
            f"{otel} OTel's own cost: {own[otel]:,.1f} {unit} "
            f"({hop_own[otel]:,.1f} serving the hop's requests)"
        )
    print(
        f"\n{'shape':<20}{'added ' + unit:>22}{'x edge':>9}{'% lean OTel':>13}{'% full OTel':>13}"
    )
    met = True
    rows: dict[str, dict[str, float]] = {}
    for otel in OTEL:
        edge = per_request[f"{otel}+edge"] - per_request[otel]
        for name in per_request:
            if not name.startswith(f"{otel}+"):
                continue
            layer = name.partition("+")[2]
            added = per_request[name] - per_request[baseline(name)]
            x_edge = added / edge if edge > 0 else float("inf")
            of_lean = added / own["lean"]
            of_full = added / own["full"]
            judged = layer in SHAPES
            if judged:
                met = met and of_lean <= 0.05 and (layer == "edge" or x_edge <= 1.5)
            rows[name] = {"added": added, "x_edge": x_edge, "of_lean": of_lean, "of_full": of_full}
            note = "" if judged else "  (reference, not judged)"
            print(f"{name:<20}{added:>22,.1f}{x_edge:>9.2f}{of_lean:>13.1%}{of_full:>13.1%}{note}")
    print(
        "\ntargets: every shape <= 5% of lean OTel's own cost; inside and hop shapes "
        "<= 1.5x edge (of the same OTel set-up)"
    )
    print("MEETS TARGETS" if met else "MISSES TARGETS")
    if json_path:
        Path(json_path).write_text(
            json.dumps(
                {"per_request": per_request, "unit": unit, "shapes": rows, "met": met}, indent=2
            )
        )
    return met


def timed(args: argparse.Namespace) -> dict[str, float]:
    """Per-request CPU time in microseconds, from interleaved rounds.

    Each stack's cost is built from medians of differences taken within a round (stack minus
    its baseline): the stacks of one round ran within seconds of each other, so the machine's
    slow drifts cancel, which they do not between separate medians.
    """
    names = stack_names(args.floors)
    stacks = {name: build_stack(name, args.access_log) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in stacks}

    async def bench() -> None:
        for name, app in stacks.items():  # warm caches and code paths
            await run(app, 200, is_hop(name))
        for r in range(args.rounds):
            order = list(stacks.items())
            if r % 2:
                order.reverse()
            for name, app in order:
                samples[name].append(await run(app, args.requests, is_hop(name)))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, end="\r")

    asyncio.run(bench())
    structlog.reset_defaults()
    print(file=sys.stderr)

    def paired(stack: str, base: str) -> float:
        return statistics.median(a - b for a, b in zip(samples[stack], samples[base], strict=True))

    out = {"bare": statistics.median(samples["bare"])}
    for name in names[1:]:
        if "+" not in name:  # an OTel baseline, over the bare app
            out[name] = out["bare"] + paired(name, "bare")
    for name in names[1:]:
        if "+" in name:
            out[name] = out[baseline(name)] + paired(name, baseline(name))
    return {name: out[name] * 1e6 for name in names}


def _callgrind_requests(name: str, count: int, access_log: bool, all_threads: bool = False) -> int:
    """Instructions a worker spends serving ``count`` requests, under callgrind.

    The worker calls ``os.getppid()`` just before and just after the requests, and callgrind
    dumps its counters at every call of ``getppid``: the second dump holds the requests alone.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--separate-threads={'no' if all_threads else 'yes'}",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--worker",
            name,
            "--requests",
            str(count),
        ]
        if access_log:
            cmd.append("--access-log")
        # a fixed hash seed: dict and set layouts, and so the instruction count, repeat exactly
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=1800, check=False, env=env
        )
        # with threads apart, the serving (main) thread's dumps end in -01
        dump = Path(f"{out}.2" if all_threads else f"{out}.2-01")
        if done.returncode != 0 or not dump.exists():
            raise RuntimeError(f"callgrind run of {name} failed: {done.stderr[-2000:]}")
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise RuntimeError(f"no summary in callgrind's dump for {name}")


def instructions(args: argparse.Namespace) -> dict[str, float]:
    """Instructions per request, each stack in its own process under callgrind."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    names = stack_names(args.floors)

    def one(name: str) -> float:
        per_request: float = (
            _callgrind_requests(name, args.requests, args.access_log, args.all_threads)
            / args.requests
        )
        print(f"callgrind: {name}: {per_request:,.0f}", file=sys.stderr)
        return per_request

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def worker(name: str, count: int, access_log: bool) -> None:
    """Serve ``count`` requests through one stack between two ``getppid`` calls (callgrind)."""
    app = build_stack(name, access_log)
    hop = is_hop(name)

    async def serve() -> None:
        await run(app, 200, hop)  # warm caches and code paths
        # What start-up and warm-up left is set aside from the garbage collector: a full pass
        # over it costs millions of instructions, and where one falls within a run shifts with
        # any change in what a request allocates; the passes over the requests' own objects count.
        gc.collect()
        gc.freeze()
        os.getppid()  # callgrind dumps here: start-up and warm-up end
        await run(app, count, hop)
        os.getppid()  # and here: the requests alone

    asyncio.run(serve())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="requests per stack per round (timing, default 500); per callgrind run "
        "(--instructions, default 2000)",
    )
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (timing)")
    parser.add_argument("--access-log", action="store_true", help="also write the JSON access log")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions per request with valgrind's callgrind instead of timing",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="callgrind processes at a time (--instructions)"
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also measure reference layers over each OTel set-up: one that only awaits the "
        "app, one that also wraps send to read the status, and the processor added beside",
    )
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="count every thread's instructions, the span processor's export thread included "
        "(--instructions; by default only the thread serving the requests)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 2000 if args.instructions else 500
    if args.worker:
        worker(args.worker, args.requests, args.access_log)
        return 0
    figures = instructions(args) if args.instructions else timed(args)
    report(figures, "instr/request" if args.instructions else "us/request", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
