"""The ticketing example: one on-sale request tagged in gateway, checkout and inventory.

The three services run for real on loopback (uvicorn and werkzeug in threads) and share one
in-memory mode store, one tracer provider (with OpenTelemetry's ASGI/WSGI middleware around
each service) and one structlog output; each has its own registry and access log.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from examples.ticketing.checkout import FailureSwitch
from examples.ticketing.stack import start_services
from onsale_obs.instrument import AccessLog, OnsaleSpanProcessor, configure_logging
from onsale_obs.modes import (
    Broadcaster,
    MemoryBackend,
    ModeSubscriber,
    Signer,
    SqliteBackend,
    generate_key_pair,
)
from onsale_obs.testing import free_port, key_pair

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("gateway", "checkout", "inventory")
ROUTES = {
    "gateway": "/events/{event_id}/enter",
    "checkout": "/events/{event_id}/checkout",
    "inventory": "/seats/reserve",
}
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy (the server records after it answers)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Ticketing:
    """The three running services and what they record."""

    broadcaster: Broadcaster
    subscribers: dict[str, ModeSubscriber]
    exporter: InMemorySpanExporter
    urls: dict[str, str]
    logs: io.StringIO
    access_paths: dict[str, Path]
    client: httpx.Client

    def set_mode(self, scope: str, mode: str) -> None:
        """Publish a mode and let every service's subscriber see it."""
        self.broadcaster.set(scope, mode)
        for subscriber in self.subscribers.values():
            assert subscriber.sync()

    def enter(self, event_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """One user entering an event's sale through the gateway."""
        return self.client.post(
            f"{self.urls['gateway']}/events/{event_id}/enter",
            json={"user": "ana"},
            headers=headers,
        )

    def service_of_port(self, port: Any) -> str:
        """Which service listens on ``port``."""
        for name, url in self.urls.items():
            if url.endswith(f":{port}"):
                return name
        raise AssertionError(f"no service on port {port}")

    def trace_of(self, target: str, services: tuple[str, ...]) -> dict[str, list[ReadableSpan]]:
        """The finished spans of the gateway request to ``target``, grouped by service."""

        def gateway_span() -> ReadableSpan | None:
            for span in self.exporter.get_finished_spans():
                attrs = span.attributes or {}
                if span.kind == SpanKind.SERVER and attrs.get("http.target") == target:
                    return span
            return None

        root = eventually(gateway_span, f"the gateway's span of {target}")
        assert root.context is not None
        trace_id = root.context.trace_id

        def grouped() -> dict[str, list[ReadableSpan]] | None:
            spans = [
                s
                for s in self.exporter.get_finished_spans()
                if s.context is not None and s.context.trace_id == trace_id
            ]
            by_id = {s.context.span_id: s for s in spans if s.context is not None}
            groups: dict[str, list[ReadableSpan]] = {}
            for span in spans:
                server: ReadableSpan | None = span
                while server is not None and server.kind != SpanKind.SERVER:
                    server = by_id.get(server.parent.span_id) if server.parent else None
                if server is None:
                    return None  # its server span has not ended yet
                port = (server.attributes or {}).get("net.host.port")
                groups.setdefault(self.service_of_port(port), []).append(span)
            servers = {
                name
                for name, group in groups.items()
                if any(s.kind == SpanKind.SERVER for s in group)
            }
            return groups if servers == set(services) else None

        return eventually(grouped, f"the spans of {', '.join(services)} for {target}")

    def requests_total(self, service: str) -> list[dict[str, str]]:
        """``onsale_requests_total`` samples scraped from the service's ``/metrics``."""
        text = self.client.get(f"{self.urls[service]}/metrics").text
        return [
            {**sample.labels, "value": str(sample.value)}
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "onsale_requests_total"
        ]

    def wait_for_sample(self, service: str, **labels: str) -> dict[str, str]:
        """Scrape until ``onsale_requests_total`` has a sample with these labels."""

        def match() -> dict[str, str] | None:
            for sample in self.requests_total(service):
                if all(sample.get(k) == v for k, v in labels.items()):
                    return sample
            return None

        return eventually(match, f"{service} onsale_requests_total{labels}")

    def log_lines(self, trace_id: str) -> dict[str, list[dict[str, Any]]]:
        """The structlog lines of one trace, by service."""
        lines: dict[str, list[dict[str, Any]]] = {}
        for line in self.logs.getvalue().splitlines():
            entry = orjson.loads(line)
            if entry.get("trace_id") == trace_id:
                lines.setdefault(entry["service"], []).append(entry)
        return lines

    def wait_for_access(
        self, service: str, *, trace_id: str | None = None, route: str | None = None
    ) -> list[dict[str, Any]]:
        """The service's access-log lines (of one trace, of one route), once there are some."""

        def found() -> list[dict[str, Any]]:
            text = self.access_paths[service].read_bytes()
            return [
                entry
                for entry in map(orjson.loads, text.splitlines())
                if (trace_id is None or entry["trace_id"] == trace_id)
                and (route is None or entry["route"] == route)
            ]

        return eventually(found, f"{service}'s access log ({trace_id=}, {route=})")


@pytest.fixture
def ticketing(tmp_path: Path) -> Iterator[Ticketing]:
    """Gateway, checkout and inventory running on free loopback ports, stopped afterwards."""
    signer, verifier = key_pair()
    backend = MemoryBackend()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(OnsaleSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logs = io.StringIO()
    saved_logging = structlog.get_config()
    with ExitStack() as stack:
        stack.callback(lambda: structlog.configure(**saved_logging))
        stack.callback(backend.close)
        configure_logging(stream=logs)
        stack.callback(provider.shutdown)
        registries = {name: CollectorRegistry() for name in SERVICES}
        subscribers = {
            name: ModeSubscriber(backend, verifier, registry=registries[name]) for name in SERVICES
        }
        paths = {name: tmp_path / f"{name}.access.jsonl" for name in SERVICES}
        access = {name: AccessLog(paths[name], service=name, flush_interval=0) for name in SERVICES}
        for log in access.values():
            stack.callback(log.close)

        running = start_services(
            stack,
            subscribers=subscribers,
            registries=registries,
            access_logs=access,
            tracer_provider=provider,
        )
        front, till, stock = running.gateway, running.checkout, running.inventory
        client = stack.enter_context(httpx.Client(timeout=30.0))
        for subscriber in subscribers.values():
            assert subscriber.sync()
        yield Ticketing(
            broadcaster=Broadcaster(backend, signer),
            subscribers=subscribers,
            exporter=exporter,
            urls={"gateway": front.url, "checkout": till.url, "inventory": stock.url},
            logs=logs,
            access_paths=paths,
            client=client,
        )


def _trace_id(spans: dict[str, list[ReadableSpan]]) -> str:
    context = spans["gateway"][0].context
    assert context is not None
    return format(context.trace_id, "032x")


def _server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    return next(s for s in spans if s.kind == SpanKind.SERVER)


def test_onsale_request_spans_are_tagged_in_all_three_services(ticketing: Ticketing) -> None:
    """Every span of an on-sale request's trace, in every service, has mode onsale and its event."""
    ticketing.set_mode("event:final", "onsale")

    answer = ticketing.enter("final")

    assert answer.status_code == 200, answer.text
    assert answer.json()["checkout"]["seat"] == 1
    spans = ticketing.trace_of("/events/final/enter", SERVICES)
    assert set(spans) == set(SERVICES)
    for service, group in spans.items():
        for span in group:
            attrs = span.attributes or {}
            assert attrs.get("onsale.mode") == "onsale", (service, span.name)
            assert attrs.get("onsale.event") == "final", (service, span.name)
    assert {s.kind for s in spans["gateway"]} >= {SpanKind.SERVER, SpanKind.CLIENT}
    assert {s.kind for s in spans["checkout"]} >= {SpanKind.SERVER, SpanKind.CLIENT}
    for service in SERVICES:  # OTel middleware spans are named by template, not raw path
        assert _server_span(spans[service]).name == f"POST {ROUTES[service]}"


def test_inventory_takes_the_event_from_baggage(ticketing: Ticketing) -> None:
    """Inventory's path has no event id; its spans get ``final`` from checkout's baggage."""
    ticketing.set_mode("event:final", "onsale")

    assert ticketing.enter("final").status_code == 200

    spans = ticketing.trace_of("/events/final/enter", SERVICES)
    server = _server_span(spans["inventory"])
    attrs = server.attributes or {}
    assert attrs.get("http.target") == "/seats/reserve"
    assert attrs.get("onsale.event") == "final"
    assert attrs.get("onsale.mode") == "onsale"
    assert attrs.get("onsale.upstream_mode") == "onsale"  # checkout's view, recorded
    assert ticketing.client.get(f"{ticketing.urls['inventory']}/seats/final").json() == {
        "event": "final",
        "remaining": 999,
    }


def test_inventory_refuses_a_reservation_without_a_propagated_event(ticketing: Ticketing) -> None:
    """A reserve call without ``onsale.event`` baggage is a 400; with it, it takes that event's seat."""
    url = f"{ticketing.urls['inventory']}/seats/reserve"

    assert ticketing.client.post(url, json={}).status_code == 400
    answer = ticketing.client.post(url, json={}, headers={"baggage": "onsale.event=final"})
    assert answer.status_code == 200
    assert answer.json() == {"event": "final", "seat": 1}


def test_onsale_request_is_counted_by_route_template_in_every_service(
    ticketing: Ticketing,
) -> None:
    """Each service's scraped ``/metrics`` counts the request as onsale/final under its route template."""
    ticketing.set_mode("event:final", "onsale")

    assert ticketing.enter("final").status_code == 200

    for service in SERVICES:
        sample = ticketing.wait_for_sample(
            service, route=ROUTES[service], method="POST", mode="onsale", event="final"
        )
        assert sample["code"] == "2xx"
        assert sample["service"] == service
        assert sample["value"] == "1.0"
        assert all("final" not in s["route"] for s in ticketing.requests_total(service))


def test_onsale_request_logs_carry_the_mode_in_every_service(ticketing: Ticketing) -> None:
    """Each service's structlog line and access-log line for the request say onsale / final."""
    ticketing.set_mode("event:final", "onsale")

    assert ticketing.enter("final").status_code == 200

    trace_id = _trace_id(ticketing.trace_of("/events/final/enter", SERVICES))
    lines = ticketing.log_lines(trace_id)
    assert set(lines) == set(SERVICES)
    for service, entries in lines.items():
        assert len(entries) == 1, entries  # one business line per request
        assert entries[0]["onsale_mode"] == "onsale", service
        assert entries[0]["onsale_event"] == "final", service
    for service in SERVICES:
        access = ticketing.wait_for_access(service, trace_id=trace_id)
        assert len(access) == 1
        assert access[0]["mode"] == "onsale"
        assert access[0]["event"] == "final"
        assert access[0]["event_onsale"] is True
        assert access[0]["route"] == ROUTES[service]
        assert access[0]["status"] == 200


def test_normal_event_is_tagged_normal_everywhere(ticketing: Ticketing) -> None:
    """While another event is on sale, a request for a normal event is normal in spans, metrics and logs."""
    ticketing.set_mode("event:final", "onsale")

    assert ticketing.enter("concert").status_code == 200

    spans = ticketing.trace_of("/events/concert/enter", SERVICES)
    for group in spans.values():
        for span in group:
            attrs = span.attributes or {}
            assert attrs.get("onsale.mode") == "normal", span.name
            assert attrs.get("onsale.event") == "concert", span.name
    for service in SERVICES:
        sample = ticketing.wait_for_sample(service, route=ROUTES[service], mode="normal")
        assert sample["event"] == ""  # the label is set only while the event is on sale
        assert not [s for s in ticketing.requests_total(service) if s["mode"] == "onsale"]
    trace_id = _trace_id(spans)
    lines = ticketing.log_lines(trace_id)
    assert set(lines) == set(SERVICES)
    for service, entries in lines.items():
        assert [e["onsale_mode"] for e in entries] == ["normal"], service
    for service in SERVICES:
        access = ticketing.wait_for_access(service, trace_id=trace_id)
        assert [(a["mode"], a["event_onsale"]) for a in access] == [("normal", False)]


def test_forged_onsale_mode_baggage_is_recorded_but_not_believed(ticketing: Ticketing) -> None:
    """A client's ``onsale.mode=onsale`` baggage leaves a normal event normal; the gateway records it."""
    ticketing.set_mode("event:final", "onsale")

    answer = ticketing.enter("concert", headers={"baggage": "onsale.mode=onsale,user.tier=gold"})

    assert answer.status_code == 200
    spans = ticketing.trace_of("/events/concert/enter", SERVICES)
    gateway_attrs = _server_span(spans["gateway"]).attributes or {}
    assert gateway_attrs.get("onsale.mode") == "normal"
    assert gateway_attrs.get("onsale.upstream_mode") == "onsale"
    # downstream hears the gateway's own view, not the client's claim
    checkout_attrs = _server_span(spans["checkout"]).attributes or {}
    assert checkout_attrs.get("onsale.upstream_mode") == "normal"
    for group in spans.values():
        assert {(s.attributes or {}).get("onsale.mode") for s in group} == {"normal"}
    sample = ticketing.wait_for_sample("gateway", route=ROUTES["gateway"], method="POST")
    assert sample["mode"] == "normal"


def test_gateway_does_not_take_the_event_from_client_baggage(ticketing: Ticketing) -> None:
    """At the edge, ``onsale.event`` baggage on a route without an event does not make it on-sale."""
    ticketing.set_mode("event:final", "onsale")

    answer = ticketing.client.get(
        f"{ticketing.urls['gateway']}/healthz", headers={"baggage": "onsale.event=final"}
    )

    assert answer.status_code == 200
    sample = ticketing.wait_for_sample("gateway", route="/healthz")
    assert (sample["mode"], sample["event"]) == ("normal", "")
    [access] = ticketing.wait_for_access("gateway")
    assert (access["mode"], access["event"]) == ("normal", None)


def test_checkout_failure_is_a_5xx_onsale_in_checkout_and_gateway(ticketing: Ticketing) -> None:
    """With checkout failing on purpose, checkout and gateway count ``code="5xx"`` with ``mode="onsale"``."""
    ticketing.set_mode("event:final", "onsale")
    switched = ticketing.client.post(f"{ticketing.urls['checkout']}/admin/fail", json={"rate": 1.0})
    assert switched.json() == {"fail_rate": 1.0}

    answer = ticketing.enter("final")

    assert answer.status_code == 502
    for service, status in (("checkout", 503), ("gateway", 502)):
        sample = ticketing.wait_for_sample(
            service, route=ROUTES[service], mode="onsale", event="final"
        )
        assert sample["code"] == "5xx", service
        [access] = ticketing.wait_for_access(service, route=ROUTES[service])
        assert access["status"] == status
    spans = ticketing.trace_of("/events/final/enter", ("gateway", "checkout"))
    assert "inventory" not in spans
    assert not [
        s for s in ticketing.requests_total("inventory") if s["route"] == ROUTES["inventory"]
    ]


def test_admin_fail_rejects_a_rate_outside_0_to_1(ticketing: Ticketing) -> None:
    """``POST /admin/fail`` with a rate above 1 is a 400 and leaves the switch as it was."""
    url = f"{ticketing.urls['checkout']}/admin/fail"

    assert ticketing.client.post(url, json={"rate": 2}).status_code == 400
    assert ticketing.client.post(url, content=b"not json").status_code == 400
    assert ticketing.client.get(url).json() == {"fail_rate": 0.0}


def test_failure_switch_is_repeatable_for_a_seed() -> None:
    """The same seed and rate fail the same checkouts; rate 0 never fails, rate 1 always does."""
    first = FailureSwitch(0.3, seed=7)
    second = FailureSwitch(0.3, seed=7)
    draws = [first.should_fail() for _ in range(200)]

    assert draws == [second.should_fail() for _ in range(200)]
    assert 30 < sum(draws) < 90
    assert not any(FailureSwitch(0.0).should_fail() for _ in range(50))
    assert all(FailureSwitch(1.0).should_fail() for _ in range(50))
    with pytest.raises(ValueError, match="between 0 and 1"):
        FailureSwitch(1.5)


def _publish_onsale(database: Path, signer: Signer, event: str) -> None:
    backend = SqliteBackend(str(database))
    try:
        Broadcaster(backend, signer).set(f"event:{event}", "onsale")
    finally:
        backend.close()


def test_run_serves_all_three_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``python -m examples.ticketing.run`` serves an on-sale request through all three and exits 0 on SIGINT."""
    keys = generate_key_pair(tmp_path / "keys")
    _publish_onsale(tmp_path / "modes.db", Signer.from_file(keys.signing_key), "final")
    ports = [free_port() for _ in SERVICES]
    out = (tmp_path / "stdout.jsonl").open("wb")
    err = (tmp_path / "stderr.txt").open("wb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        sys.executable, "-m", "examples.ticketing.run",
        "--backend", f"sqlite:///{tmp_path / 'modes.db'}",
        "--verify-key", str(keys.verify_key),
        "--ports", ",".join(map(str, ports)),
        "--logs", str(tmp_path / "logs"),
        "--duration", "60",
    ]  # fmt: skip
    with out, err, subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err) as proc:
        try:
            with httpx.Client(timeout=30.0) as client:

                def healthy() -> bool:
                    assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
                    try:
                        return client.get(f"http://127.0.0.1:{ports[0]}/healthz").is_success
                    except httpx.TransportError:
                        return False

                eventually(healthy, "the gateway to answer", timeout=60.0)
                answer = client.post(f"http://127.0.0.1:{ports[0]}/events/final/enter")
                assert answer.status_code == 200, answer.text
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0, (tmp_path / "stderr.txt").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    for service in SERVICES:
        lines = (tmp_path / "logs" / f"{service}.access.jsonl").read_bytes().splitlines()
        [entry] = [e for e in map(orjson.loads, lines) if e["route"] == ROUTES[service]]
        assert (entry["mode"], entry["event"], entry["event_onsale"], entry["status"]) == (
            "onsale",
            "final",
            True,
            200,
        )
    business = [
        orjson.loads(line) for line in (tmp_path / "stdout.jsonl").read_bytes().splitlines()
    ]
    assert {e["service"] for e in business if e.get("onsale_mode") == "onsale"} == set(SERVICES)
