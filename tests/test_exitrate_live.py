"""The live loop against a real Prometheus scraping the middleware's metrics: an overloaded
on-sale lowers the recommendation, a healthy one raises it, a software fault holds it,
Prometheus down holds it; every event is judged on its own requests; the rate is exported
and published through the mode store."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import StaleWriteError
from onsale_obs.exitrate import ExitRateConfig
from onsale_obs.exitrate._live import ExitRateLoop, SignalReader
from onsale_obs.modes import Broadcaster, Signer, SqliteBackend, Verifier, generate_key_pair
from onsale_obs.modes._current import current_states
from onsale_obs.slo import load_spec
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.testing import ListLogger, free_port, require_binary
from onsale_obs.testing_prometheus import PrometheusServer
from tests.live_exporter import Exporter

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
CHECKOUT = "/events/{event_id}/checkout"
EVENT = "final"
OTHER = "concert"
#: Failed checkouts of an overload wait for the queue timeout; a software fault fails fast.
TIMEOUT, FAST = 5.0, 0.05


@dataclass
class Live:
    prometheus: PrometheusServer
    checkout: Exporter
    db: Path
    signing: Path
    verify: Path

    recorded: int = 0
    opened: list[ExitRateLoop] = field(default_factory=list)

    def record(
        self, ok: int, failed: int, *, event: str = EVENT, failing_after: float = TIMEOUT
    ) -> None:
        self.recorded += ok + failed
        for _ in range(ok):
            self.checkout.metrics.record(CHECKOUT, "POST", 200, "onsale", event, 0.05)
        for _ in range(failed):
            self.checkout.metrics.record(CHECKOUT, "POST", 503, "onsale", event, failing_after)

    def scraped(self) -> None:
        """Wait until Prometheus has scraped everything recorded so far (bounded wait)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = httpx.get(
                f"{self.prometheus.url}/api/v1/query",
                params={"query": "sum(onsale_requests_total)"},
            ).json()["data"]["result"]
            if answer and float(answer[0]["value"][1]) >= self.recorded:
                time.sleep(1.1)  # and one more evaluation tick for the rates
                return
            time.sleep(0.2)
        raise AssertionError("Prometheus did not scrape the exporter within 30 s")

    def loop(
        self,
        *,
        publish: bool = False,
        client: PrometheusClient | None = None,
        utilisation_query: str | None = None,
    ) -> ExitRateLoop:
        spec = load_spec(SPEC)
        reader = SignalReader(
            spec, spec.get("checkout-availability"), client or PrometheusClient(self.prometheus.url),
            spec.get("checkout-latency"), queue_query="vector(5000)",
            utilisation_query=utilisation_query,
        )  # fmt: skip
        backend = SqliteBackend(str(self.db))
        verifier = Verifier.from_files([self.verify])
        broadcaster = Broadcaster(backend, Signer.from_file(self.signing)) if publish else None
        config = ExitRateConfig(
            min_rate=50, admission_lag=1.0, signal_lag=1.0, decrease_interval=1.0
        )
        loop = ExitRateLoop(reader, backend, verifier, config=config, initial_rate=600.0,
                            broadcaster=broadcaster, registry=CollectorRegistry())  # fmt: skip
        self.opened.append(loop)
        return loop


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    binary = require_binary("prometheus", "prometheus")
    keys = generate_key_pair(tmp_path / "keys")
    db = tmp_path / "modes.db"
    store = SqliteBackend(str(db))
    Broadcaster(store, Signer.from_file(keys.signing_key)).set(
        f"event:{EVENT}", "onsale", until=time.time() + 3600
    )
    store.close()
    checkout = Exporter.start("checkout")
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: services
    static_configs: [{{targets: ["{checkout.target}"]}}]
"""
    try:
        with PrometheusServer(binary=binary, config=config) as prometheus:
            made = Live(prometheus, checkout, db, keys.signing_key, keys.verify_key)
            yield made
            for loop in made.opened:
                loop.close()
                loop.backend.close()
    finally:
        checkout.stop()


def test_a_burning_onsale_lowers_the_rate_and_a_healthy_one_raises_it(live: Live) -> None:
    loop = live.loop(publish=True)
    for _ in range(3):  # a healthy minute of traffic
        live.record(ok=50, failed=0)
        live.scraped()
    [(event, first)] = loop.tick()
    assert event == EVENT
    time.sleep(2.1)  # the last change's effect could have shown (lags of 1 s each)
    live.record(ok=50, failed=0)
    live.scraped()
    [(_, healthy)] = loop.tick()
    assert healthy.action == "increase", healthy.reason
    assert healthy.rate > first.rate
    live.record(ok=10, failed=40)  # checkout is overloaded: it fails after the queue timeout
    live.scraped()
    [(_, burning)] = loop.tick()
    assert burning.action == "decrease", burning.reason
    assert "burn" in burning.reason
    assert "latency p95" in burning.reason
    assert burning.rate < healthy.rate
    # exported and published
    assert (
        f'onsale_exit_rate_recommended{{event="{EVENT}"}} {burning.rate}'
        in generate_latest(
            loop.registry  # type: ignore[arg-type]
        ).decode()
    )
    state = current_states(loop.backend, loop.verifier).states[f"event:{EVENT}"]
    assert state.mode == "onsale"
    assert state.exit_rate == round(burning.rate, 1)


def test_two_events_a_fault_in_one_only_its_rate_falls(live: Live) -> None:
    """Two events on sale on one checkout service. Final's checkouts fail fast (a software
    fault): its rate holds and says why; then they fail slowly (an overload of its path):
    its rate falls. Concert, whose own requests are fine, is never cut, and is not probed
    up while final burns (the shared-backend guard)."""
    Broadcaster(SqliteBackend(str(live.db)), Signer.from_file(live.signing)).set(
        f"event:{OTHER}", "onsale", until=time.time() + 3600
    )
    loop = live.loop()
    for _ in range(3):
        live.record(ok=50, failed=0)
        live.record(ok=50, failed=0, event=OTHER)
        live.scraped()
    first = dict(loop.tick())
    assert set(first) == {EVENT, OTHER}
    time.sleep(2.1)  # the first readings' lags (1 s each) have passed
    live.record(ok=10, failed=40, failing_after=FAST)
    live.record(ok=50, failed=0, event=OTHER)
    live.scraped()
    fault = dict(loop.tick())
    assert fault[EVENT].action == "hold", fault[EVENT].reason
    assert "software fault" in fault[EVENT].reason
    assert fault[EVENT].rate == first[EVENT].rate
    assert fault[OTHER].signals.burn_short == 0.0  # its own requests, not final's
    shared = fault[OTHER].signals.shared_burn  # and the whole service's beside them
    assert shared is not None
    assert shared >= ExitRateConfig().burn_threshold
    assert fault[EVENT].signals.shared_burn == shared
    assert fault[OTHER].action == "hold", fault[OTHER].reason
    assert "another event on the shared checkout service burns" in fault[OTHER].reason
    live.record(ok=10, failed=200)  # now final's checkouts wait for the queue timeout
    live.record(ok=50, failed=0, event=OTHER)
    live.scraped()
    overload = dict(loop.tick())
    assert overload[EVENT].action == "decrease", overload[EVENT].reason
    assert "latency p95" in overload[EVENT].reason
    assert overload[EVENT].rate < fault[EVENT].rate
    assert overload[OTHER].action != "decrease", overload[OTHER].reason
    assert overload[OTHER].rate >= first[OTHER].rate
    other_p95 = overload[OTHER].signals.latency_p95
    assert other_p95 is not None
    assert other_p95 < 1.0  # its own latency, not final's


def test_events_on_one_service_read_its_utilisation_split_by_demand(live: Live) -> None:
    """Two events on one checkout service, the service's utilisation 0.6: each event's
    controller reads it scaled by its share of the requests (from Prometheus) over its share
    of the users waiting, so together they split the capacity by demand, not by where their
    rates started; a per-event utilisation query ($event) is read as it is."""
    Broadcaster(SqliteBackend(str(live.db)), Signer.from_file(live.signing)).set(
        f"event:{OTHER}", "onsale", until=time.time() + 3600
    )
    live.record(ok=75, failed=0)
    live.record(ok=25, failed=0, event=OTHER)
    live.scraped()
    queues = {EVENT: 1_000.0, OTHER: 3_000.0}
    split = dict(live.loop(utilisation_query="vector(0.6)").tick(queues))
    assert split[EVENT].signals.utilisation == pytest.approx(0.6 * 0.75 / 0.25, rel=0.02)
    assert split[OTHER].signals.utilisation == pytest.approx(0.6 * 0.25 / 0.75, rel=0.02)
    per_event = 'label_replace(vector(0.6), "event", "$event", "", "")'
    own = dict(live.loop(utilisation_query=per_event).tick(queues))
    assert own[EVENT].signals.utilisation == pytest.approx(0.6)


def test_prometheus_down_holds_the_rate(live: Live) -> None:
    live.record(ok=50, failed=0)
    live.scraped()
    down = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0)
    loop = live.loop(client=down)
    recorder = ListLogger()
    loop.logger = recorder
    logged = recorder.events
    for _ in range(3):
        [(_, recommendation)] = loop.tick()
        # well within the outage's grace (5 minutes): neither raised nor decayed
        assert recommendation.rate == 600.0
        assert recommendation.action == "hold"
        assert "missing" in recommendation.reason
        time.sleep(1.1)
    outage = [event for level, event in logged if level == "warning"]
    assert len(outage) == 1  # once per outage, not once per tick
    assert "Prometheus unreachable" in outage[0]
    loop.reader.client = PrometheusClient(live.prometheus.url)
    loop.tick()
    assert ("info", "exit rate: Prometheus reachable again") in logged


def test_recommend_prints_one_tick_and_exits_3_when_prometheus_is_down(live: Live) -> None:
    live.record(ok=30, failed=30)
    live.scraped()
    args = ["exit-rate", "recommend", "--spec", str(SPEC), "--backend", f"sqlite:///{live.db}",
            "--verify-key", str(live.verify), "--current-rate", "600", "--queue", "8000"]  # fmt: skip
    result = CliRunner().invoke(
        app, [*args, "--prometheus", live.prometheus.url, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    [answer] = json.loads(result.stdout)["recommendations"]
    assert answer["event"] == EVENT
    assert answer["rate"] < 600, (answer["reason"], answer["signals"])
    down = CliRunner().invoke(
        app, [*args, "--prometheus", f"http://127.0.0.1:{free_port()}", "--timeout", "0.5"]
    )
    assert down.exit_code == 3, down.output
    assert "could not be reached" in down.stderr
    down_json = CliRunner().invoke(
        app, [*args, "--prometheus", f"http://127.0.0.1:{free_port()}", "--timeout", "0.5",
              "--format", "json"],
    )  # fmt: skip
    assert down_json.exit_code == 3, down_json.output
    assert "could not be reached" in down_json.stderr  # stdout stays JSON
    assert json.loads(down_json.stdout)["recommendations"][0]["action"] == "hold"


def test_serve_exports_and_publishes(live: Live) -> None:
    live.record(ok=10, failed=40)
    live.scraped()
    port = free_port()
    args = ["serve", "--spec", str(SPEC), "--backend", f"sqlite:///{live.db}", "--signing-key", str(live.signing),
            "--verify-key", str(live.verify), "--prometheus", live.prometheus.url, "--queue-query", "vector(9000)",
            "--interval", "1s", "--duration", "3s", "--port", str(port), "--initial-rate", "800"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert '"onsale_event": "final"' in result.output or '"onsale_event":"final"' in result.output
    store = SqliteBackend(str(live.db))
    try:
        state = current_states(store, Verifier.from_files([live.verify])).states[f"event:{EVENT}"]
    finally:
        store.close()
    assert state.exit_rate is not None
    assert state.exit_rate < 800
    with pytest.raises(httpx.TransportError):  # /metrics stopped with the loop
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)


def test_serve_runs_on_its_defaults_and_a_busy_port_is_bad_input(tmp_path: Path) -> None:
    keys = generate_key_pair(tmp_path / "keys")
    base = ["serve", "--spec", str(SPEC), "--backend", f"sqlite:///{tmp_path / 'modes.db'}",
            "--verify-key", str(keys.verify_key), "--no-publish",
            "--prometheus", f"http://127.0.0.1:{free_port()}", "--timeout", "0.5"]  # fmt: skip
    quiet = CliRunner().invoke(app, [*base, "--duration", "1s", "--port", "0"])
    assert quiet.exit_code == 0, quiet.output  # default --interval; nothing on sale; no Prometheus
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = CliRunner().invoke(app, [*base, "--duration", "1s", "--port", str(port)])
    assert taken.exit_code == 2, taken.output
    assert "--port" in taken.output
    assert "Traceback" not in taken.output


def test_a_queue_query_prometheus_rejects_is_bad_input(live: Live) -> None:
    args = ["exit-rate", "recommend", "--spec", str(SPEC), "--backend", f"sqlite:///{live.db}",
            "--verify-key", str(live.verify), "--prometheus", live.prometheus.url,
            "--queue-query", "waiting_room_queue{event=}"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "waiting_room_queue" in result.output


def test_a_conditional_publish_never_overwrites_a_newer_change(tmp_path: Path) -> None:
    """serve publishes a copy of what it read; if an operator changed the mode meanwhile, the
    copy is not written (an on-sale ended by hand stays ended)."""
    keys = generate_key_pair(tmp_path / "keys")
    store = SqliteBackend(str(tmp_path / "modes.db"))
    try:
        ops = Broadcaster(store, Signer.from_file(keys.signing_key))
        read = ops.set(f"event:{EVENT}", "onsale", until=time.time() + 600)
        ops.set(f"event:{EVENT}", "normal", reason="sold out")  # lands between read and write
        with pytest.raises(StaleWriteError):
            ops.set(
                f"event:{EVENT}",
                "onsale",
                until=read.until,
                exit_rate=300.0,
                if_latest=read.revision,
            )
        latest = current_states(store, Verifier.from_files([keys.verify_key])).states[
            f"event:{EVENT}"
        ]
        assert latest.mode == "normal"
        written = ops.set(f"event:{EVENT}", "onsale", exit_rate=300.0, if_latest=latest.revision)
        assert written.revision == latest.revision + 1
        assert written.exit_rate == 300.0
    finally:
        store.close()


def test_recommend_brings_a_rate_below_the_minimum_up_and_says_why(live: Live) -> None:
    """A waiting room running under --min-rate is told to raise it to the minimum, and why."""
    live.record(ok=50, failed=0)
    live.scraped()
    args = ["exit-rate", "recommend", "--spec", str(SPEC), "--backend", f"sqlite:///{live.db}",
            "--verify-key", str(live.verify), "--prometheus", live.prometheus.url,
            "--current-rate", "50", "--min-rate", "100", "--queue", "8000", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [answer] = json.loads(result.stdout)["recommendations"]
    assert answer["rate"] == 100
    assert answer["action"] == "increase"
    assert "below the minimum" in answer["reason"]
    both = CliRunner().invoke(app, [*args, "--queue-query", "x{"])
    assert both.exit_code == 2, both.output
    assert "--queue" in both.output


def test_a_query_prometheus_starts_refusing_holds_instead_of_crashing_the_loop() -> None:
    """A 422 mid-run (a sample limit hit) is no signal this tick, never an exception in serve."""
    error = {"status": "error", "errorType": "execution", "error": "would load too many samples"}
    transport = httpx.MockTransport(
        lambda _: httpx.Response(422, json=error, headers={"content-type": "application/json"})
    )
    spec = load_spec(SPEC)
    client = PrometheusClient("http://prom.example", transport=transport, retries=0)
    reader = SignalReader(spec, spec.get("checkout-availability"), client)
    signals = reader.read(1_800_000_000.0, EVENT, 600.0, [], queue=100.0)
    assert signals.burn_short is None
    assert signals.burn_long is None
    assert reader.unavailable is not None
    assert "too many samples" in reader.unavailable
