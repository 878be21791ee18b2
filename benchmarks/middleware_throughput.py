"""Throughput and tail latency under uvicorn with and without the on-sale tagging.

Each stack (bare, otel, otel+onsale; see middleware_overhead.py) runs in its own uvicorn process
on a free loopback port; a closed-loop load generator in this process keeps ``--connections``
keep-alive HTTP/1.1 connections busy for ``--seconds`` and records every request's latency.
Rounds alternate the stacks so machine noise hits all of them.

    .venv/bin/python benchmarks/middleware_throughput.py [--seconds 5] [--rounds 3] [--connections 16]

The server and the load generator share the machine's 2 cores, so absolute figures are low;
compare the stacks with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from onsale_obs.testing import free_port

HERE = Path(__file__).resolve().parent
STACKS = ("bare", "otel", "otel+onsale")
PATHS = (b"/events/final/checkout", b"/events/other/checkout")


def start(stack: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_throughput_app.py"), "--stack", stack, "--port", str(port)]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{stack} did not start on port {port}")


async def connection(port: int, until: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < until:
            path = PATHS[i % 2]
            i += 1
            sent = time.perf_counter()
            writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


async def load(port: int, seconds: float, connections: int) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(connection(port, until, latencies, errors) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p50 * 1000, p99 * 1000, len(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="load per stack per round (bounded)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    servers = {stack: start(stack) for stack in STACKS}
    results: dict[str, list[tuple[float, float, float, int]]] = {s: [] for s in STACKS}
    try:
        for _, port in servers.values():  # warm-up
            asyncio.run(load(port, 1.0, args.connections))
        for r in range(args.rounds):
            order = STACKS if r % 2 == 0 else tuple(reversed(STACKS))
            for stack in order:
                results[stack].append(
                    asyncio.run(load(servers[stack][1], args.seconds, args.connections))
                )
                print(f"round {r + 1}: {stack} done", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    summary = {
        stack: {
            "requests_per_s": statistics.median(x[0] for x in rows),
            "p50_ms": statistics.median(x[1] for x in rows),
            "p99_ms": statistics.median(x[2] for x in rows),
            "errors": sum(x[3] for x in rows),
        }
        for stack, rows in results.items()
    }
    print(f"{'stack':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for stack, row in summary.items():
        print(
            f"{stack:<14}{row['requests_per_s']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['errors']:>8}"
        )
    base = summary["otel"]["requests_per_s"]
    print(f"\notel+onsale / otel throughput: {summary['otel+onsale']['requests_per_s'] / base:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
