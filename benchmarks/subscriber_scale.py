"""A service's view of many live scopes: memory per 1,000 scopes and the per-request lookup.

For N live event scopes (all on sale, as a platform with N protected zones at once), a store is
filled by one publisher, then a fresh ``ModeSubscriber`` syncs from it. Reported per N:

- memory the subscriber holds after its first sync (tracemalloc, current, not peak), per 1,000
  scopes: its served states, the verified chain and the request-path view;
- ``resolve()`` time for an on-sale event and for an unknown one, and its ratio to the
  smallest N measured in the same run (a flat lookup stays near 1.0x);
- the first sync's wall time (verifying N signatures and the head).

Usage: .venv/bin/python benchmarks/subscriber_scale.py [--scopes 100,1000,10000] [--json FILE]
Targets (issue 24): memory <= 1 MB per 1,000 scopes at 10,000 live scopes; lookup flat.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import timeit
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import FakeClock, key_pair


def measure(n: int) -> dict[str, Any]:
    signer, verifier = key_pair()
    clock = FakeClock()
    store = MemoryBackend()
    publisher = Broadcaster(store, signer, clock=clock)
    for i in range(n):
        publisher.set(f"event:zone-{i:05d}", "onsale", reason=f"zone {i} on sale")
    publisher.set("global", "normal")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    subscriber = ModeSubscriber(store, verifier, clock=clock, registry=None)
    assert subscriber.sync()
    sync_seconds = time.perf_counter() - started
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert subscriber.mode_for(f"zone-{n // 2:05d}") == "onsale"
    hit = f"zone-{n // 2:05d}"
    rounds = 200_000
    hit_ns = min(timeit.repeat(lambda: subscriber.resolve(hit), number=rounds, repeat=5)) / rounds
    miss_ns = (
        min(timeit.repeat(lambda: subscriber.resolve("no-such-zone"), number=rounds, repeat=5))
        / rounds
    )
    return {
        "scopes": n,
        "memory_bytes": held,
        "memory_mb_per_1000": held / 1e6 / (n / 1000),
        "resolve_hit_ns": hit_ns * 1e9,
        "resolve_miss_ns": miss_ns * 1e9,
        "first_sync_s": sync_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scopes", default="100,1000,10000", help="comma-separated N values")
    parser.add_argument("--json", type=Path, help="also write results to this file")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.scopes.split(","))
    rows = [measure(n) for n in sizes]
    base = rows[0]
    print(f"Subscriber at scale ({len(sizes)} sizes, same run; lookup ratio vs N={base['scopes']})")
    print(f"{'N':>6} {'MB/1000':>8} {'hit ns':>7} {'x':>5} {'miss ns':>8} {'x':>5} {'sync s':>7}")
    for row in rows:
        print(
            f"{row['scopes']:>6} {row['memory_mb_per_1000']:>8.3f} "
            f"{row['resolve_hit_ns']:>7.0f} {row['resolve_hit_ns'] / base['resolve_hit_ns']:>4.2f}x "
            f"{row['resolve_miss_ns']:>8.0f} {row['resolve_miss_ns'] / base['resolve_miss_ns']:>4.2f}x "
            f"{row['first_sync_s']:>7.2f}"
        )
    top = rows[-1]
    verdict = "MET" if top["memory_mb_per_1000"] <= 1.0 else "NOT MET"
    print(f"memory target (<= 1 MB per 1,000 scopes at N={top['scopes']}): {verdict}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
