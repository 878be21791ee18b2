"""A load generator at a bounded rate: users entering sales through the gateway.

Each request is ``POST /events/<event>/enter`` on the gateway, which calls checkout, which
calls inventory, so one request is three hops through the real middleware. The rate is a
ceiling, never a burst: when every worker is busy (a slow or failing stack), a request that is
due is dropped and counted in ``dropped`` rather than queued, so a stall never turns into a
flood afterwards.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

import httpx


class LoadGenerator:
    """Sends ``rate`` requests a second to ``gateway_url``, the events taken in turn."""

    def __init__(
        self,
        gateway_url: str,
        *,
        rate: float = 30.0,
        events: Sequence[str] = ("final", "concert"),
        workers: int = 8,
        timeout: float = 5.0,
    ) -> None:
        if not events:
            raise ValueError("expected at least one event id to send users to.")
        if workers < 1:
            raise ValueError(f"expected at least one worker, got {workers}.")
        self.gateway_url = gateway_url.rstrip("/")
        self.events = tuple(events)
        self.workers = workers
        self.timeout = timeout
        self.rate = rate
        self.dropped = 0
        self._answers: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._due: queue.Queue[tuple[str, int] | None] = queue.Queue(maxsize=workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def rate(self) -> float:
        """Requests a second (0 pauses the load)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0.0 <= value <= 1000.0:
            raise ValueError(f"expected a rate between 0 and 1000 requests/s, got {value!r}.")
        self._rate = value

    def answers(self) -> Counter[tuple[str, int]]:
        """How many answers so far, by (event, HTTP status); status 0 is a transport error."""
        with self._lock:
            return Counter(self._answers)

    def sent(self) -> int:
        """Requests answered so far (any status)."""
        with self._lock:
            return sum(self._answers.values())

    def start(self) -> LoadGenerator:
        """Start the pacing thread and the workers."""
        if self._threads:
            return self
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._work, name=f"loadgen-{i}", daemon=True)
            for i in range(self.workers)
        ]
        self._threads.append(threading.Thread(target=self._pace, name="loadgen", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending and wait for the requests in flight to be answered."""
        if not self._threads:
            return
        self._stop.set()
        pacer = self._threads[-1]
        pacer.join(timeout)
        for _ in range(self.workers):
            try:
                self._due.put(None, timeout=timeout)  # None ends a worker
            except queue.Full:
                break  # a worker is stuck in a request; the join below gives up on it
        for thread in self._threads[:-1]:
            thread.join(timeout)
        self._threads = []

    def _pace(self) -> None:
        users = itertools.count(1)
        events = itertools.cycle(self.events)
        due = time.monotonic()
        while not self._stop.is_set():
            rate = self._rate
            if rate <= 0:
                self._stop.wait(0.1)
                due = time.monotonic()
                continue
            due += 1.0 / rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if delay < -1.0:
                due = time.monotonic()  # fell behind (a paused machine): do not catch up
            try:
                self._due.put_nowait((next(events), next(users)))
            except queue.Full:
                with self._lock:
                    self.dropped += 1

    def _work(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                item = self._due.get()
                if item is None:
                    return
                event, user = item
                try:
                    status = client.post(
                        f"{self.gateway_url}/events/{event}/enter", json={"user": f"user-{user}"}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self._answers[(event, status)] += 1

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
