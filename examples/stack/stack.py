"""The production path on one machine: Redis, the three services, Prometheus, Alertmanager, load.

``Stack(StackConfig(folder))`` starts, on 127.0.0.1, everything in the order it is needed and
stops it in reverse (also when starting fails half-way)::

    redis-server            the mode store (redis:// broadcaster), AOF data in FOLDER/redis
    webhook sink            what Alertmanager posts: /page, /ticket, /info, /default
    alertmanager            the generated routing, receivers pointed at the sink
    gateway, checkout,      the ticketing example through the real middleware, each with its own
    inventory               Redis subscriber, registry and access log (FOLDER/logs)
    prometheus              scrapes the services, loads the rules generated from the SLO spec
    load generator          users entering sales through the gateway, at a bounded rate

The signing key pair (FOLDER/keys) is created on first use and kept, so the mode history in
Redis stays verifiable across runs of the same folder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from examples.stack._config import alertmanager_yaml, prometheus_yaml
from examples.stack.loadgen import LoadGenerator
from examples.ticketing.servers import UvicornServer, WerkzeugServer
from examples.ticketing.stack import SERVICES, Running, start_services
from onsale_obs.generate._alertmanager import HOLD_FILE, render_hold_rules
from onsale_obs.generate._rules_files import rule_files
from onsale_obs.instrument import AccessLog, OnsaleSpanProcessor
from onsale_obs.modes import ModeSubscriber, Verifier, generate_key_pair, open_backend
from onsale_obs.slo import load_spec
from onsale_obs.testing import RedisServer, free_port
from onsale_obs.testing_alertmanager import AlertmanagerServer, WebhookSink
from onsale_obs.testing_prometheus import PrometheusServer
from onsale_obs.types import Mode

EXAMPLES: Final = Path(__file__).resolve().parent.parent
SPEC: Final = EXAMPLES / "ticketing" / "slo.yaml"
RECEIVERS: Final = EXAMPLES / "alertmanager" / "receivers.yaml"
RULES_NAME: Final = "onsale-slo"


@dataclass(frozen=True)
class StackConfig:
    """What to start and how fast it reacts.

    ``business_hours`` and ``notify_timing`` replace the receivers file's (see
    ``examples.stack.ALWAYS`` and ``QUICK``); ``None`` keeps the file's. Ports of 0
    are picked free. ``rate`` 0 leaves the load generator idle until its rate is set.
    """

    folder: Path
    scrape_interval: float = 5.0
    evaluation_interval: float | None = None  # default: the scrape interval
    rate: float = 30.0
    events: tuple[str, ...] = ("final", "concert")
    spec: Path = SPEC
    receivers: Path = RECEIVERS
    business_hours: Mapping[str, Any] | None = None
    notify_timing: Mapping[str, str] | None = None
    ports: tuple[int, int, int] = (0, 0, 0)  # gateway, checkout, inventory
    prometheus_port: int = 0
    alertmanager_port: int = 0
    seed: int = 0
    redis_binary: str = "redis-server"
    prometheus_binary: str = "prometheus"
    alertmanager_binary: str = "prometheus-alertmanager"
    stale_after: float = field(default=5.0, repr=False)


@dataclass(frozen=True)
class Keys:
    """The Ed25519 pair that signs (CLI) and verifies (services, reports) mode changes."""

    signing_key: Path
    verify_key: Path


class Stack:
    """Every server of the production path, started together; a context manager.

    After ``start()``: ``redis``, ``sink``, ``alertmanager``, ``services`` (gateway, checkout,
    inventory), ``subscribers``, ``prometheus``, ``load``, ``keys``, ``rules`` and
    ``access_logs`` (service -> path).
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.folder = config.folder.resolve()
        self._exit: ExitStack | None = None
        self._logs: dict[str, AccessLog] = {}
        self.subscribers: dict[str, ModeSubscriber] = {}

    # ---- starting and stopping ---------------------------------------------------------

    def start(self) -> Stack:
        """Start everything (see the module docstring); on any failure stop what started."""
        if self._exit is not None:
            return self
        exit_stack = ExitStack()
        try:
            self._start(exit_stack)
        except BaseException:
            exit_stack.close()
            raise
        self._exit = exit_stack
        return self

    def stop(self) -> None:
        """Stop everything, last started first. Idempotent."""
        exit_stack, self._exit = self._exit, None
        if exit_stack is not None:
            exit_stack.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, stack: ExitStack) -> None:
        config = self.config
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keys = _keys(self.folder / "keys")
        self.rules, self.hold_rules = self._write_rules()

        (self.folder / "redis").mkdir(exist_ok=True)
        self.redis = RedisServer(binary=config.redis_binary, directory=self.folder / "redis")
        stack.callback(self.redis.stop)  # before start: a failed start leaves files behind
        self.redis.start()

        self.sink = WebhookSink().start()
        stack.callback(self.sink.stop)
        self.alertmanager = AlertmanagerServer(
            alertmanager_yaml(
                config.receivers,
                self.sink.url,
                business_hours=config.business_hours,
                timing=config.notify_timing,
            ),
            binary=config.alertmanager_binary,
            port=config.alertmanager_port or free_port(),
        )
        stack.callback(self.alertmanager.stop)
        self.alertmanager.start()

        self.services = self._start_services(stack)

        evaluation = config.evaluation_interval or config.scrape_interval
        self.prometheus = PrometheusServer(
            binary=config.prometheus_binary,
            port=config.prometheus_port or free_port(),
            tsdb_path=self.folder / "prometheus",
            config=prometheus_yaml(
                targets=list(self.targets().values()),
                rule_files=[self.rules, self.hold_rules],
                alertmanager=f"127.0.0.1:{self.alertmanager.port}",
                scrape_interval=config.scrape_interval,
                evaluation_interval=evaluation,
            ),
        )
        stack.callback(self.prometheus.stop)
        self.prometheus.start()
        # Prometheus hands targets to its scrapers up to 5 s after it is ready. Load sent before
        # the first scrape would land in series whose first sample is already large, and
        # increase() cannot count a first sample (the normal-time counts would come up short).
        self.wait_scraped_after(0.0)

        self.load = LoadGenerator(
            self.services.gateway.url, rate=config.rate, events=config.events
        ).start()
        stack.callback(self.load.stop)

    def _write_rules(self) -> tuple[Path, Path]:
        """Generate the rule files from the SLO spec into FOLDER/rules: the SLO rules (as
        ``rules render`` does) and the hold rule of the routing (as ``alertmanager render``
        does: it keeps an on-sale P2 from paging once its P1 resolved)."""
        folder = self.folder / "rules"
        folder.mkdir(exist_ok=True)
        spec = load_spec(self.config.spec)
        files = rule_files(spec, folder, name=RULES_NAME)
        hold = folder / HOLD_FILE
        files[hold] = render_hold_rules(spec, spec_source=str(self.config.spec))
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
        return folder / f"{RULES_NAME}.rules.yml", hold

    def _start_services(self, stack: ExitStack) -> Running:
        verifier = Verifier.from_files([self.keys.verify_key])
        provider = TracerProvider()  # spans are not exported: trace ids reach logs and exemplars
        provider.add_span_processor(OnsaleSpanProcessor())
        stack.callback(provider.shutdown)
        registries = {name: CollectorRegistry() for name in SERVICES}
        for name in SERVICES:
            backend = open_backend(self.redis.url)  # one connection each, as 3 processes would
            stack.callback(backend.close)
            subscriber = ModeSubscriber(
                backend,
                verifier,
                registry=registries[name],
                stale_after=self.config.stale_after,
            ).start()
            stack.callback(subscriber.stop)
            if not subscriber.wait_synced(10.0):
                raise RuntimeError(f"{name} could not read the mode store at {self.redis.url}.")
            self.subscribers[name] = subscriber
        for name in SERVICES:
            log = AccessLog(self.access_logs[name], service=name)
            stack.callback(log.close)  # after the servers stop: registered before them
            self._logs[name] = log
        return start_services(
            stack,
            subscribers=self.subscribers,
            registries=registries,
            access_logs=self._logs,
            tracer_provider=provider,
            ports=self.config.ports,
            seed=self.config.seed,
        )

    def _servers(self) -> tuple[UvicornServer | WerkzeugServer, ...]:
        return (self.services.gateway, self.services.checkout, self.services.inventory)

    # ---- what the pieces are -----------------------------------------------------------

    @property
    def access_logs(self) -> dict[str, Path]:
        """Each service's access log (JSON lines), for ``slo report --logs``."""
        return {name: self.folder / "logs" / f"{name}.access.jsonl" for name in SERVICES}

    @property
    def backend_url(self) -> str:
        """The Redis mode store, for ``--backend``."""
        return self.redis.url

    def urls(self) -> dict[str, str]:
        """Every server's URL, by name."""
        return {
            "gateway": self.services.gateway.url,
            "checkout": self.services.checkout.url,
            "inventory": self.services.inventory.url,
            "prometheus": self.prometheus.url,
            "alertmanager": self.alertmanager.url,
            "webhook sink": self.sink.url,
            "redis": self.redis.url,
        }

    def cli_env(self) -> dict[str, str]:
        """The environment under which ``onsale-obs`` talks to this stack.

        Not ``ONSALE_OBS_PROMETHEUS``: ``slo report`` takes exactly one source, and with it set
        ``--logs`` would be refused; give ``--prometheus`` on the command line.
        """
        return {
            "ONSALE_OBS_BACKEND": self.backend_url,
            "ONSALE_OBS_SIGNING_KEY": str(self.keys.signing_key),
            "ONSALE_OBS_VERIFY_KEY": str(self.keys.verify_key),
            "ONSALE_OBS_SLO_SPEC": str(self.config.spec.resolve()),
        }

    # ---- acting on it ------------------------------------------------------------------

    def set_fail_rate(self, rate: float) -> None:
        """Make that share of checkouts fail (``POST /admin/fail``); 0 heals checkout."""
        answer = httpx.post(
            f"{self.services.checkout.url}/admin/fail", json={"rate": rate}, timeout=5.0
        )
        answer.raise_for_status()

    def flush_logs(self) -> None:
        """Write out every access log's buffered lines."""
        for log in self._logs.values():
            log.flush()

    def wait_mode(self, event: str, mode: Mode, timeout: float = 10.0) -> bool:
        """Wait until every service's subscriber serves ``event`` in ``mode``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.mode_for(event) == mode for s in self.subscribers.values()):
                return True
            time.sleep(0.01)
        return False

    def targets(self) -> dict[str, str]:
        """Each service's Prometheus target (its ``instance`` label), by service."""
        return {s.name: f"127.0.0.1:{s.port}" for s in self._servers()}

    def last_scrapes(self) -> dict[str, float]:
        """When Prometheus last scraped each service (epoch seconds, by service)."""
        answer = httpx.get(
            f"{self.prometheus.url}/api/v1/query",
            # on a bare selector, timestamp() is the sample's time (on an expression, "now")
            params={"query": 'timestamp(up{job="ticketing"})'},
            timeout=5.0,
        ).json()
        by_instance = {
            r["metric"]["instance"]: float(r["value"][1]) for r in answer["data"]["result"]
        }
        return {
            name: by_instance[target]
            for name, target in self.targets().items()
            if target in by_instance
        }

    def wait_scraped_after(self, moment: float, timeout: float = 30.0) -> dict[str, float]:
        """Wait until every service has been scraped after ``moment``; the scrape times."""
        deadline = time.monotonic() + timeout
        while True:
            scrapes = self.last_scrapes()
            if len(scrapes) == len(SERVICES) and min(scrapes.values()) > moment:
                return scrapes
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Prometheus did not scrape every service within {timeout:.0f}s "
                    f"(last scrapes: {scrapes})."
                )
            time.sleep(0.1)


def _keys(folder: Path) -> Keys:
    """The folder's key pair, generated the first time."""
    keys = Keys(folder / "onsale-signing.pem", folder / "onsale-verify.pem")
    if not (keys.signing_key.exists() and keys.verify_key.exists()):
        generate_key_pair(folder, overwrite=True)
    return keys
