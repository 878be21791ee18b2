"""Sending the demo's users through the gateway, a step of simulated time at a time."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx


@dataclass
class Driver:
    """Posts ``/events/{event}/enter`` for each user and tallies the answers."""

    gateway_url: str
    checkout_url: str
    workers: int = 8
    statuses: Counter[int] = field(default_factory=Counter)
    #: seconds each request took, as the waiting room saw it (appended from the workers)
    durations: list[float] = field(default_factory=list)
    _users: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.gateway_url, timeout=10.0)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="demo-user")

    def _enter(self, event: str) -> int:
        user = f"user-{next(self._users)}"
        began = time.perf_counter()
        try:
            return self._client.post(f"/events/{event}/enter", json={"user": user}).status_code
        except httpx.HTTPError:
            return 599
        finally:
            self.durations.append(time.perf_counter() - began)

    def send(self, events: list[str]) -> Counter[int]:
        """One request per entry of ``events``, concurrently; waits for every answer."""
        step = Counter(self._pool.map(self._enter, events))
        self.statuses.update(step)
        return step

    def fail_checkout(self, rate: float) -> None:
        """Make a share ``rate`` of checkouts fail (the example's /admin/fail switch)."""
        httpx.post(
            f"{self.checkout_url}/admin/fail", json={"rate": rate}, timeout=5.0
        ).raise_for_status()

    def close(self) -> None:
        """Stop the workers and the connection pool."""
        self._pool.shutdown(wait=True)
        self._client.close()
