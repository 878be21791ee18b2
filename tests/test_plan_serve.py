"""A real ``serve --profile`` scraped by a real Prometheus: the vertical's desired replicas rise
with the queue, every service at once, read through the scalers' own query, and fall back
after the on-sale ends and the cool-down passes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from onsale_obs.modes import Broadcaster, Signer, SqliteBackend, generate_key_pair
from onsale_obs.plan import OnSaleProfile, Profile, ServiceProfile, scaler_query
from onsale_obs.testing import free_port, require_binary
from onsale_obs.testing_prometheus import PrometheusServer

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
QUEUE = 36_000  # users waiting; drained in 30 minutes that is 1,200 users/min


def _service(per_user: float, per_replica: float) -> ServiceProfile:
    return ServiceProfile(
        10_000 * per_user, 5, 4, 4, per_user, {}, per_replica * 4, per_replica, None
    )


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    o = OnSaleProfile(
        "event:past",
        1e9,
        1e9 + 3600,
        {"checkout": _service(1.5, 2.0), "frontend": _service(3.0, 8.0)},
        admitted_users=10_000,
    )
    path = tmp_path / "profile.json"
    path.write_text(Profile((o,), 1e9 + 7200).dumps())
    return path


def _wait_for(what: str, check: Callable[[], bool], limit: float = 45.0) -> None:
    """Poll until ``check`` holds (a bounded wait for the scrape cycle, not a timing test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {limit:.0f} s")


@pytest.fixture
def running(tmp_path: Path, profile: Path) -> Iterator[tuple[PrometheusServer, Broadcaster]]:
    binary = require_binary("prometheus", "prometheus")
    keys = generate_key_pair(tmp_path / "keys")
    db = tmp_path / "modes.db"
    store = SqliteBackend(str(db))
    broadcaster = Broadcaster(store, Signer.from_file(keys.signing_key))
    broadcaster.set("event:final", "onsale", until=time.time() + 3600)
    port = free_port()
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: serve
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSALE_OBS_")}
    with PrometheusServer(binary=binary, config=config) as prometheus:
        args = [
            sys.executable, "-c", "from onsale_obs.cli import main; main()", "serve",
            "--spec", str(SPEC), "--backend", f"sqlite:///{db}", "--verify-key", str(keys.verify_key),
            "--no-publish", "--prometheus", prometheus.url, "--queue-query", f"vector({QUEUE})",
            "--interval", "1s", "--port", str(port), "--initial-rate", "300",
            "--profile", str(profile), "--vertical-cooldown", "2s", "--vertical-drain-target", "30m",
            "--duration", "120s",
        ]  # fmt: skip
        log = (tmp_path / "serve.log").open("wb")
        serve = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield prometheus, broadcaster
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            log.close()
            store.close()


def _value(prometheus: PrometheusServer, query: str) -> float | None:
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": query}).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_desired_replicas_rise_with_the_queue_and_fall_after(
    running: tuple[PrometheusServer, Broadcaster],
) -> None:
    """The scalers' query on Prometheus gives every service its replicas, then 0 after."""
    prometheus, broadcaster = running
    # 1,200 users/min at 92% of what one replica takes: checkout 2 rps x 60 / 1.5 = 80 users/min
    want = {
        "checkout": math.ceil(1200 / (80 * 0.92)),
        "frontend": math.ceil(1200 / (160 * 0.92)),
    }
    _wait_for(
        "the desired replicas in Prometheus",
        lambda: all(_value(prometheus, scaler_query(s)) == n for s, n in want.items()),
    )
    assert _value(prometheus, 'onsale_queue_length{event="final"}') == QUEUE
    assert _value(prometheus, scaler_query("payments")) == 0.0  # not in the vertical
    broadcaster.set("event:final", "normal")
    _wait_for(
        "the scale-down after the cool-down",
        lambda: all(_value(prometheus, scaler_query(s)) == 0.0 for s in want),
    )


def test_serve_refuses_a_profile_it_cannot_size_from(tmp_path: Path) -> None:
    """A profile without fan-out is exit 2 naming the service, before serve starts anything."""
    from typer.testing import CliRunner

    from onsale_obs.cli import app

    bare = ServiceProfile(100, 1, 1, 2, None, {}, 1.0, 0.5)
    o = OnSaleProfile("event:past", 1e9, 1e9 + 60, {"checkout": bare})
    path = tmp_path / "profile.json"
    path.write_text(Profile((o,), 1e9 + 3600).dumps())
    result = CliRunner().invoke(
        app,
        ["serve", "--spec", str(SPEC), "--backend", f"sqlite:///{tmp_path / 'm.db'}",
         "--no-publish", "--port", "0", "--duration", "1s", "--profile", str(path)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "'checkout' has no requests per admitted user" in result.output
    assert not (tmp_path / "m.db").exists()
