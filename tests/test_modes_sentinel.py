"""The broadcaster on Redis Sentinel: a primary killed in the middle of a burst of transitions.

Real servers: a primary, a replica and a Sentinel (``redis-server --sentinel``, what Debian's
``redis-sentinel`` runs), all on loopback with AOF on. Publishers ask for one replica's
acknowledgement of each transition (``wait=1``, the default of ``redis+sentinel://`` URLs), so
every transition a publisher saw succeed must still be there after the failover.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from onsale_obs.exceptions import BadInputError, OnsaleObsError
from onsale_obs.modes import (
    Broadcaster,
    ModeHistory,
    ModeState,
    ModeSubscriber,
    open_backend,
)
from onsale_obs.modes._redis_url import parse_redis_url
from onsale_obs.testing import free_port, key_pair, require_binary


@dataclass
class SentinelCluster:
    """A primary, two replicas and one Sentinel watching them as ``mymaster``.

    Two replicas, so that after a failover the new primary still has one to acknowledge
    transitions (with ``wait=1`` and none left, every publish would report that it is not
    replicated).
    """

    binary: str
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="onsale-sentinel-")))
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return (
            f"redis+sentinel://127.0.0.1:{self.ports['sentinel']}/mymaster/0?wait=1&wait_timeout=2"
        )

    def _server(self, name: str, *extra: str) -> None:
        port = self.ports[name] = free_port()
        (self.folder / name).mkdir()
        args = [
            self.binary, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(self.folder / name), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--daemonize", "no", "--loglevel", "warning",
            "--repl-diskless-sync-delay", "0", *extra,
        ]  # fmt: skip
        self.processes[name] = subprocess.Popen(args, stdout=subprocess.DEVNULL)

    def start(self) -> SentinelCluster:
        self._server("primary")
        for name in ("replica1", "replica2"):
            self._server(name, "--replicaof", "127.0.0.1", str(self.ports["primary"]))
        port = self.ports["sentinel"] = free_port()
        conf = self.folder / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.folder}\n"
            f"sentinel monitor mymaster 127.0.0.1 {self.ports['primary']} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 10000\n"
        )
        self.processes["sentinel"] = subprocess.Popen(
            [self.binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=self.ports["primary"]) as primary:
                    info = primary.info("replication")
                with redis.Redis(port=port) as probe:
                    seen = probe.execute_command("SENTINEL", "REPLICAS", "mymaster")
                online = [info.get(f"slave{i}", {}).get("state") for i in (0, 1)]
                if online == ["online"] * 2 and len(seen) == 2:
                    return self
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the Sentinel never saw both replicas")

    def primary_port(self) -> int:
        with redis.Redis(port=self.ports["sentinel"]) as sentinel:
            host_port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
        return int(host_port[1])

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    binary = require_binary("redis-server", "redis-server")
    running = SentinelCluster(binary).start()
    yield running
    running.stop()


def test_sentinel_urls_are_parsed_and_checked() -> None:
    """Several Sentinels, a service, a database, wait options; errors name what is wrong."""
    target = parse_redis_url("redis+sentinel://:pw@10.0.0.1:26379,[::1]:26380/mymaster/2?wait=2")
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert (target.service, target.db, target.password, target.wait_replicas) == (
        "mymaster",
        2,
        "pw",
        2,
    )
    assert parse_redis_url("redis://127.0.0.1:6379/0").wait_replicas == 0
    for bad, says in (
        ("redis+sentinel://127.0.0.1:26379", "no Sentinel service"),
        ("redis+sentinel://127.0.0.1/mymaster", "not host:port"),
        ("redis+sentinel://:s3cret@h:1/m?wait=x", "wait='x'"),
        ("redis+sentinel://h:1/m?wait_timeout=0", "wait_timeout='0'"),
    ):
        with pytest.raises(BadInputError, match=says) as refused:
            parse_redis_url(bad)
        assert "s3cret" not in str(refused.value)


@pytest.mark.redis
@pytest.mark.slow
def test_acknowledged_transitions_survive_a_failover(cluster: SentinelCluster) -> None:
    """Three publishers, 20 transitions each; the primary is killed after the first 15 acks.

    Every transition a publisher was told succeeded is in the new primary's history, a
    subscriber ends on the last state of every scope, and it notices any history that went
    back. Prints acknowledged vs present and the longest time a publisher waited meanwhile.
    """
    signer, verifier = key_pair()
    acked: list[ModeState] = []
    lock = threading.Lock()
    waits: list[float] = []

    def publish(worker: int) -> None:
        broadcaster = Broadcaster(open_backend(cluster.url), signer)
        try:
            publish_all(worker, broadcaster)
        finally:
            broadcaster.backend.close()

    def publish_all(worker: int, broadcaster: Broadcaster) -> None:
        for i in range(20):
            started = time.monotonic()
            while time.monotonic() - started < 60:
                try:
                    state = broadcaster.set(
                        f"event:w{worker}", "onsale" if i % 2 else "normal", reason=f"{worker}-{i}"
                    )
                except OnsaleObsError:
                    time.sleep(0.1)  # failing over: try the same transition again
                    continue
                with lock:
                    acked.append(state)
                    waits.append(time.monotonic() - started)
                break

    followed = open_backend(cluster.url)
    subscriber = ModeSubscriber(
        followed, verifier, registry=None, poll_timeout=0.2, retry_interval=0.1
    ).start()
    old_primary = cluster.primary_port()
    threads = [threading.Thread(target=publish, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    cluster.kill("primary")
    for thread in threads:
        thread.join(100)
    try:
        assert len(acked) == 60
        assert cluster.primary_port() != old_primary
        store = open_backend(cluster.url)
        present = {(s.scope, s.reason) for s in ModeHistory(store, verifier).transitions()}
        store.close()
        missing = [s for s in acked if (s.scope, s.reason) not in present]
        print(f"acknowledged {len(acked)}, present after failover {len(acked) - len(missing)}")
        print(f"longest publish during the failover: {max(waits):.2f} s")
        assert missing == []
        last = {s.scope: s for s in sorted(acked, key=lambda s: s.revision)}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            held = subscriber.states()
            if all(held.get(scope) == state for scope, state in last.items()):
                break
            time.sleep(0.05)
        assert {scope: s.reason for scope, s in subscriber.states().items()} == {
            scope: s.reason for scope, s in last.items()
        }
    finally:
        subscriber.stop()
        followed.close()
