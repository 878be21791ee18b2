"""Starting the three services together (used by ``run.py``, the tests and, later, the demo)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from examples.ticketing import checkout, gateway, inventory
from examples.ticketing.servers import UvicornServer, WerkzeugServer
from onsale_obs.instrument import AccessLog
from onsale_obs.modes import ModeSubscriber

SERVICES = ("gateway", "checkout", "inventory")


@dataclass(frozen=True)
class Running:
    """The three services, each serving on its own loopback port."""

    gateway: UvicornServer
    checkout: UvicornServer
    inventory: WerkzeugServer


def start_services(
    stack: ExitStack,
    *,
    subscribers: dict[str, ModeSubscriber],
    registries: dict[str, CollectorRegistry],
    access_logs: dict[str, AccessLog],
    tracer_provider: TracerProvider | None,
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] = (0, 0, 0),
    fail_rate: float = 0.0,
    seed: int = 0,
    seats_per_event: int = 1000,
) -> Running:
    """Start inventory, checkout, then gateway; ``stack`` stops them in the reverse order.

    ``ports`` are (gateway, checkout, inventory); 0 picks a free port.
    """
    gateway_port, checkout_port, inventory_port = ports
    stock = WerkzeugServer(
        inventory.create_app(
            subscriber=subscribers["inventory"],
            registry=registries["inventory"],
            tracer_provider=tracer_provider,
            access_log=access_logs["inventory"],
            seats_per_event=seats_per_event,
        ),
        name="inventory",
        host=host,
        port=inventory_port,
    ).start()
    stack.callback(stock.stop)
    till = UvicornServer(
        checkout.create_app(
            subscriber=subscribers["checkout"],
            registry=registries["checkout"],
            inventory_url=stock.url,
            tracer_provider=tracer_provider,
            access_log=access_logs["checkout"],
            fail_rate=fail_rate,
            seed=seed,
        ),
        name="checkout",
        host=host,
        port=checkout_port,
    ).start()
    stack.callback(till.stop)
    front = UvicornServer(
        gateway.create_app(
            subscriber=subscribers["gateway"],
            registry=registries["gateway"],
            checkout_url=till.url,
            tracer_provider=tracer_provider,
            access_log=access_logs["gateway"],
        ),
        name="gateway",
        host=host,
        port=gateway_port,
    ).start()
    stack.callback(front.stop)
    return Running(front, till, stock)
