"""Run gateway, checkout and inventory on loopback until Ctrl-C.

    python -m examples.ticketing.run --backend sqlite:///onsale-obs.db \\
        --verify-key keys/onsale-verify.pem --ports 8001,8002,8003 --logs ticketing-logs

Each service gets its own mode subscriber (started), Prometheus registry and access log
(``LOGS/<service>.access.jsonl``); structlog writes JSON lines to stdout. Spans are recorded
with the on-sale attributes and, with ``--spans FILE``, written there as JSON lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import IO

import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_client import CollectorRegistry

from examples.ticketing.stack import SERVICES, start_services
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.instrument import AccessLog, OnsaleSpanProcessor, configure_logging
from onsale_obs.modes import BACKEND_ENV, ModeSubscriber, Verifier, open_backend

VERIFY_KEY_ENV = "ONSALE_OBS_VERIFY_KEY"


def _ports(text: str) -> tuple[int, int, int]:
    try:
        ports = tuple(int(p) for p in text.split(","))
    except ValueError:
        ports = ()
    if len(ports) != 3 or not all(0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not three ports; expected GATEWAY,CHECKOUT,INVENTORY such as 8001,8002,8003."
        )
    return ports[0], ports[1], ports[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.ticketing.run",
        description="Run the three ticketing example services on loopback until Ctrl-C.",
    )
    parser.add_argument(
        "--backend",
        default=os.environ.get(BACKEND_ENV),
        help=f"mode store URL, such as sqlite:///onsale-obs.db (default: ${BACKEND_ENV})",
    )
    parser.add_argument(
        "--verify-key",
        default=os.environ.get(VERIFY_KEY_ENV),
        help=f"PEM Ed25519 public key that mode changes are checked with (default: ${VERIFY_KEY_ENV})",
    )
    parser.add_argument(
        "--ports",
        type=_ports,
        default=(8001, 8002, 8003),
        help="gateway,checkout,inventory ports (default: 8001,8002,8003)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--logs",
        type=Path,
        default=Path("ticketing-logs"),
        help="folder for the access logs, one per service (default: ticketing-logs)",
    )
    parser.add_argument("--spans", type=Path, help="also write finished spans to this file")
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        help="share of checkouts that fail on purpose, 0..1 (default: 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure draws")
    parser.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    return parser


def _span_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + os.linesep


def _tracer_provider(stack: ExitStack, spans: Path | None) -> TracerProvider:
    provider = TracerProvider()
    if spans is None:
        provider.add_span_processor(OnsaleSpanProcessor())
    else:
        out: IO[str] = stack.enter_context(spans.open("a", encoding="utf-8"))
        exporting = BatchSpanProcessor(ConsoleSpanExporter(out=out, formatter=_span_line))
        # tag every span, then hand it to the exporting processor
        provider.add_span_processor(OnsaleSpanProcessor(exporting))
    stack.callback(provider.shutdown)
    return provider


def _subscriber(
    stack: ExitStack, url: str, verifier: Verifier, registry: CollectorRegistry
) -> ModeSubscriber:
    backend = open_backend(url)  # one connection per service, as separate processes would have
    stack.callback(backend.close)
    subscriber = ModeSubscriber(backend, verifier, registry=registry).start()
    stack.callback(subscriber.stop)
    return subscriber


def serve(args: argparse.Namespace, stop: threading.Event) -> None:
    """Start the three services, wait for ``stop`` (or ``--duration``), stop them in order."""
    log = structlog.get_logger().bind(service="run")
    verifier = Verifier.from_files([args.verify_key])
    with ExitStack() as stack:
        provider = _tracer_provider(stack, args.spans)
        registries = {name: CollectorRegistry() for name in SERVICES}
        subscribers = {
            name: _subscriber(stack, args.backend, verifier, registries[name]) for name in SERVICES
        }
        for name, subscriber in subscribers.items():
            if not subscriber.wait_synced(5.0):
                log.warning("mode store not reached yet; serving normal mode", subscriber=name)
        access = {}
        for name in SERVICES:
            access[name] = AccessLog(args.logs / f"{name}.access.jsonl", service=name)
            stack.callback(access[name].close)

        # started downstream first, stopped upstream first (ExitStack unwinds in reverse)
        running = start_services(
            stack,
            subscribers=subscribers,
            registries=registries,
            access_logs=access,
            tracer_provider=provider,
            host=args.host,
            ports=args.ports,
            fail_rate=args.fail_rate,
            seed=args.seed,
        )
        front, till, stock = running.gateway, running.checkout, running.inventory
        log.info(
            "ticketing example running; Ctrl-C stops it",
            gateway=front.url,
            checkout=till.url,
            inventory=stock.url,
            access_logs=str(args.logs),
        )
        servers = (front, till, stock)
        waited = 0.0
        while not stop.wait(0.2):
            waited += 0.2
            if args.duration is not None and waited >= args.duration:
                break
            if not all(s.alive for s in servers):
                log.error("a server stopped unexpectedly; stopping the others")
                break
        log.info("stopping")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a server could not start, 2 bad input)."""
    args = _parser().parse_args(argv)
    configure_logging(stream=sys.stdout)
    if not args.backend or not args.verify_key:
        print(
            f"--backend and --verify-key are required (or ${BACKEND_ENV} and ${VERIFY_KEY_ENV}).",
            file=sys.stderr,
        )
        return 2
    if not 0.0 <= args.fail_rate <= 1.0:
        print(f"--fail-rate {args.fail_rate} is not between 0 and 1.", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve(args, stop)
    except OnsaleObsError as exc:  # a bad backend URL or key file: the error says which
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, RuntimeError) as exc:  # a port in use, an unwritable log folder
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
