"""The example ticketing services, in this process, on the demo's store and clock."""

from __future__ import annotations

import importlib
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from onsale_obs.exceptions import BadInputError
from onsale_obs.instrument import AccessLog, OnsaleSpanProcessor, configure_logging
from onsale_obs.modes import ModeSubscriber, Verifier, open_backend
from onsale_obs.types import Clock

SERVICES = ("gateway", "checkout", "inventory")


def examples() -> Any:
    """``examples.ticketing.stack``, from the source checkout this package lives in."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "examples" / "ticketing" / "stack.py").exists():
        raise BadInputError(
            "the demo runs the services in examples/ticketing, which only a source checkout "
            "has; run it from a clone of onsale-obs (pip install -e '.[examples]')."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("examples.ticketing.stack")
    except ImportError as exc:
        raise BadInputError(
            f"the example services need the 'examples' extra ({exc}); "
            "install it with pip install -e '.[examples]'."
        ) from None


@dataclass
class Services:
    """The running services and what the demo reads from them."""

    gateway_url: str
    checkout_url: str
    subscribers: dict[str, ModeSubscriber]
    access_logs: dict[str, AccessLog]
    log_paths: list[Path]


def start(
    stack: ExitStack, *, backend_url: str, verify_key: Path, folder: Path, clock: Clock, seats: int
) -> Services:
    """Start inventory, checkout and gateway on loopback; ``stack`` stops them."""
    services_log = stack.enter_context((folder / "services.log").open("w"))
    configure_logging(stream=services_log)
    stack.callback(structlog.reset_defaults)
    verifier = Verifier.from_files([verify_key])
    provider = TracerProvider()
    provider.add_span_processor(OnsaleSpanProcessor())
    stack.callback(provider.shutdown)
    registries = {name: CollectorRegistry() for name in SERVICES}
    subscribers = {}
    for name in SERVICES:
        backend = open_backend(backend_url)
        stack.callback(backend.close)
        subscriber = ModeSubscriber(
            backend, verifier, clock=clock, registry=registries[name], stale_after=86_400.0,
            poll_timeout=0.05, logger=structlog.get_logger("onsale_obs.modes"),
        )  # fmt: skip
        subscribers[name] = subscriber.start()
        stack.callback(subscriber.stop)
        subscriber.wait_synced(5.0)
    logs = {}
    paths = []
    for name in SERVICES:
        path = folder / "logs" / f"{name}.access.jsonl"
        logs[name] = AccessLog(path, service=name, clock=clock, flush_interval=3600.0)
        stack.callback(logs[name].close)
        paths.append(path)
    running = examples().start_services(
        stack,
        subscribers=subscribers,
        registries=registries,
        access_logs=logs,
        tracer_provider=provider,
        seats_per_event=seats,
    )
    return Services(running.gateway.url, running.checkout.url, subscribers, logs, paths)
