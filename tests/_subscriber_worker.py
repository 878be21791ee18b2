"""A service-like process for tests: subscribes to a backend and prints every accepted transition.

Usage: python -m tests._subscriber_worker URL VERIFY_KEY LAST_REVISION TIMEOUT
Prints READY once synced, then ``<revision> <scope> <mode>`` per transition, and exits when it
has seen LAST_REVISION (or after TIMEOUT seconds, with exit code 1).
"""

from __future__ import annotations

import sys
import threading
import time

from onsale_obs.modes import ModeState, ModeSubscriber, Verifier, open_backend


def main() -> int:
    url, key, last, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    done = threading.Event()

    def seen(state: ModeState) -> None:
        print(state.revision, state.scope, state.mode, flush=True)
        if state.revision >= last:
            done.set()

    sub = ModeSubscriber(
        open_backend(url),
        Verifier.from_files([key]),
        registry=None,
        poll_timeout=0.2,
        retry_interval=0.05,
        stale_after=0.5,
    )
    sub.add_listener(seen)
    sub.start()
    if not sub.wait_synced(10):
        return 2
    print("READY", flush=True)
    deadline = time.monotonic() + timeout
    while not done.wait(0.05) and time.monotonic() < deadline:
        pass
    sub.stop()
    print("STALE-SEEN" if sub.stale else "END", flush=True)
    return 0 if done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
