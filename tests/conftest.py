"""Shared fixtures: fresh keys, clocks, backends and real servers for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from prometheus_client import CollectorRegistry

from onsale_obs.modes import Broadcaster, MemoryBackend, Signer, SqliteBackend, Verifier
from onsale_obs.testing import FakeClock, RedisServer, key_pair, require_binary

# Property tests judge behaviour, not speed: no per-example deadline on 2 noisy cores.
settings.register_profile("onsale", deadline=None)
settings.load_profile("onsale")


@pytest.fixture
def clock() -> FakeClock:
    """A fake wall clock starting at a fixed instant."""
    return FakeClock()


@pytest.fixture
def keys() -> tuple[Signer, Verifier]:
    """A fresh signing key and the verifier that trusts it."""
    return key_pair()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry."""
    return CollectorRegistry()


@pytest.fixture
def memory() -> MemoryBackend:
    """An in-memory mode store."""
    return MemoryBackend()


@pytest.fixture
def broadcaster(
    memory: MemoryBackend, keys: tuple[Signer, Verifier], clock: FakeClock
) -> Broadcaster:
    """A broadcaster on the in-memory store with the fake clock."""
    return Broadcaster(memory, keys[0], clock=clock)


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Iterator[SqliteBackend]:
    """A sqlite mode store in a temporary file."""
    backend = SqliteBackend(str(tmp_path / "modes.db"), poll_interval=0.005)
    yield backend
    backend.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port (fails under CI=true if not installed)."""
    binary = require_binary("redis-server", "redis-server")
    server = RedisServer(binary=binary).start()
    yield server
    server.stop()


# Real Prometheus over planted traffic (tests/slo_traffic.py); appended, hence imported here.
from onsale_obs.testing_prometheus import PrometheusServer, backfill  # noqa: E402
from tests.slo_traffic import CI_SCRAPE_INTERVAL, Traffic, generate  # noqa: E402
from tests.workers import reap_workers  # noqa: E402


@pytest.fixture(scope="session")
def planted_traffic() -> Traffic:
    """The planted 32-day request stream (see tests/slo_traffic.py), scraped every 60 s."""
    return generate(scrape_interval=CI_SCRAPE_INTERVAL)


@pytest.fixture(scope="session")
def planted_prometheus(
    planted_traffic: Traffic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A real Prometheus serving the planted traffic, backfilled with promtool."""
    binary = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    folder = tmp_path_factory.mktemp("planted-prometheus")
    text = folder / "planted.om"
    planted_traffic.write_openmetrics(text)
    backfill(text, folder / "tsdb", promtool=promtool)
    text.unlink()  # hundreds of MB, no longer needed
    with PrometheusServer(binary=binary, tsdb_path=folder / "tsdb") as server:
        yield server


@pytest.fixture
def prometheus_server() -> Iterator[PrometheusServer]:
    """A real, empty Prometheus on a free loopback port."""
    binary = require_binary("prometheus", "prometheus")
    with PrometheusServer(binary=binary) as server:
        yield server


@pytest.fixture(autouse=True)
def _reap_workers() -> Iterator[None]:
    """Subscriber worker processes a failing test left running are stopped with that test."""
    yield
    reap_workers()
