"""Shared fixtures: fresh keys, clocks, backends and real servers for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from onsale_obs.modes import Broadcaster, MemoryBackend, Signer, SqliteBackend, Verifier
from onsale_obs.testing import FakeClock, RedisServer, key_pair, require_binary


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
