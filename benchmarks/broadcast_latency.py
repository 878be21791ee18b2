"""Propagation latency of a mode change to N subscriber processes, beside a raw Redis fan-out.

For each N (``--subscribers``) and each round (``--rounds``) this runs, one after the other and
with the same layout (N separate OS processes, one publisher in this process):

- ``raw``:    N processes in a plain redis-py ``XREAD BLOCK`` loop on a stream; the publisher
              does a plain ``XADD`` (no signing, no versioning). This is the baseline.
- ``redis``:  N processes each running ``ModeSubscriber`` on ``RedisBackend``; the publisher calls
              ``Broadcaster.set`` (INCR + signed append + snapshot update; subscribers verify).
- ``sqlite``: the same on ``SqliteBackend`` (a temp file, polled every ``--sqlite-poll`` s).
- ``raw-conn``: ``raw`` with each subscriber driving its redis-py connection directly (no client
              machinery per command), as ``RedisBackend.read`` does: a leaner baseline, printed
              for comparison (the target is judged against ``raw``).

Order within a round alternates (raw, redis, sqlite / sqlite, redis, raw) so that slow drifts
of a noisy machine hit the baseline and the product alike. Latency of one (worker, transition)
pair = the worker's ``time.time()`` when it got the change - the publisher's ``time.time()``
just before ``Broadcaster.set`` / ``XADD`` (same host, same clock). Pairs that never arrived are
counted as missing, never dropped.

Run: ``.venv/bin/python benchmarks/broadcast_latency.py [--subscribers 1,50,200]
[--transitions 30] [--backends redis,sqlite] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import redis

from onsale_obs.modes import Broadcaster, Signer, generate_key_pair, open_backend
from onsale_obs.testing import RedisServer

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_bench_subscriber.py"
SCOPE = "event:bench"
TARGET_RATIO = 1.5
BACKENDS = ("redis", "sqlite", "raw-conn")
#: Hard caps so that nothing can run forever.
WORKER_MAX_LIFETIME_S = 1800.0
STOP_TIMEOUT_S = 30.0

_workers: list[subprocess.Popen[bytes]] = []  # every worker ever started, for cleanup


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..1), like numpy's default; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- one layout run -----------------------------------------------------------------------


@dataclass
class RunResult:
    kind: str  # raw | redis | sqlite
    n: int
    round: int
    transitions: int
    spacing_s: float
    expected: int = 0
    missing: int = 0
    workers_reported: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ready_all_s: float = 0.0  # spawn of the first worker -> the last one ready
    worker_startup_s_p50: float = 0.0  # process start -> listening, per worker
    worker_startup_cpu_s_p50: float = 0.0
    listen_cpu_cores: float = 0.0  # CPU of all workers while listening, in cores
    publish_call_ms_p50: float = 0.0  # duration of the Broadcaster.set / XADD call itself
    rejected: dict[str, int] = field(default_factory=dict)
    worker_errors: int = 0
    noisy_logs: list[str] = field(default_factory=list)


@dataclass
class Publisher:
    publish: Callable[[int], int]  # transition index -> key the workers report it under
    worker_args: list[str]
    close: Callable[[], None]


def make_publisher(
    kind: str, tag: str, redis_url: str, run_dir: Path, keys_dir: Path, sqlite_poll: float
) -> Publisher:
    if kind in ("raw", "raw-conn"):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=11.0)
        stream = f"benchraw-{tag}:stream"
        client.xadd(stream, {"seq": "-1"})  # warm-up: connection made, stream exists

        def publish_raw(i: int) -> int:
            client.xadd(stream, {"seq": str(i)})
            return i

        return Publisher(
            publish_raw, ["--kind", kind, "--url", redis_url, "--stream", stream], client.close
        )
    if kind == "redis":
        url = f"{redis_url}?prefix=bench-{tag}"
    elif kind == "sqlite":
        url = f"sqlite:///{run_dir / 'modes.db'}?poll={sqlite_poll}"
    else:
        raise ValueError(kind)
    backend = open_backend(url)
    broadcaster = Broadcaster(backend, Signer.from_file(keys_dir / "bench-signing.pem"))
    # Warm-up: connection made, Lua script loaded / sqlite file and schema created.
    broadcaster.set(SCOPE, "normal", reason="benchmark warm-up")

    def publish_product(i: int) -> int:
        mode = "onsale" if i % 2 == 0 else "normal"
        return broadcaster.set(SCOPE, mode, reason=f"benchmark transition {i}").revision

    return Publisher(
        publish_product,
        ["--kind", "product", "--url", url, "--verify-key", str(keys_dir / "bench-verify.pem")],
        backend.close,
    )


def spawn_workers(
    n: int, run_dir: Path, worker_args: list[str], poll_timeout: float, ready_timeout: float
) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(n):
        with open(run_dir / "log" / f"{i}.log", "wb") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    "--id",
                    str(i),
                    "--dir",
                    str(run_dir),
                    "--poll-timeout",
                    str(poll_timeout),
                    "--sync-timeout",
                    str(ready_timeout),
                    "--max-lifetime",
                    str(WORKER_MAX_LIFETIME_S),
                    *worker_args,
                ],
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to us; we stop the workers ourselves
            )
        _workers.append(proc)
        procs.append(proc)
    return procs


def wait_ready(
    procs: list[subprocess.Popen[bytes]], run_dir: Path, label: str, timeout: float
) -> float:
    started = time.monotonic()
    deadline = started + timeout
    ready_dir = run_dir / "ready"
    next_report = started
    while True:
        ready = len(os.listdir(ready_dir))
        now = time.monotonic()
        if ready >= len(procs):
            log(f"[{label}] {ready}/{len(procs)} ready after {now - started:.1f}s")
            return now - started
        dead = [i for i, p in enumerate(procs) if p.poll() is not None]
        if dead:
            tail = (run_dir / "log" / f"{dead[0]}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"[{label}] {len(dead)} worker(s) exited early; worker {dead[0]}:\n{tail}"
            )
        if now >= deadline:
            raise RuntimeError(
                f"[{label}] only {ready}/{len(procs)} workers ready after {timeout}s"
            )
        if now >= next_report:
            log(f"[{label}] {ready}/{len(procs)} ready")
            next_report = now + 2.0
        time.sleep(0.05)


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Close every worker's stdin (it then writes its result and exits); kill stragglers."""
    for proc in procs:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.01, deadline - time.monotonic()))
    stragglers = [p for p in procs if p.poll() is None]
    if stragglers:
        log(f"  killing {len(stragglers)} worker(s) that did not stop within {timeout}s")
        for proc in stragglers:
            proc.kill()
        for proc in stragglers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def run_layout(
    kind: str,
    n: int,
    round_no: int,
    args: argparse.Namespace,
    redis_url: str,
    work_dir: Path,
    keys_dir: Path,
) -> RunResult:
    tag = f"{kind}-n{n}-r{round_no}"
    label = f"{kind} N={n} round {round_no + 1}/{args.rounds}"
    run_dir = work_dir / tag
    for sub in ("ready", "result", "log"):
        (run_dir / sub).mkdir(parents=True)
    spacing = args.spacing if args.spacing is not None else max(0.15, 0.0015 * n)
    transitions = max(args.transitions, math.ceil(args.min_samples / n))
    result = RunResult(kind, n, round_no, transitions, spacing)

    publisher = make_publisher(kind, tag, redis_url, run_dir, keys_dir, args.sqlite_poll)
    procs: list[subprocess.Popen[bytes]] = []
    published: list[tuple[int, float]] = []  # (key, publish wall time)
    call_ms: list[float] = []
    try:
        log(f"[{label}] starting {n} worker(s)")
        procs = spawn_workers(
            n, run_dir, publisher.worker_args, args.poll_timeout, args.ready_timeout
        )
        result.ready_all_s = wait_ready(procs, run_dir, label, args.ready_timeout)
        time.sleep(args.settle)
        t0 = time.monotonic()
        for i in range(transitions):
            delay = t0 + i * spacing - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            before = time.time()
            key = publisher.publish(i)
            call_ms.append((time.time() - before) * 1000.0)
            published.append((key, before))
        log(f"[{label}] published {transitions} transitions, {spacing * 1000:.0f} ms apart")
        time.sleep(args.drain)
    finally:
        stop_workers(procs, STOP_TIMEOUT_S)
        publisher.close()

    result.publish_call_ms_p50 = percentile(call_ms, 0.5)
    startup: list[float] = []
    startup_cpu: list[float] = []
    listen_cpu = 0.0
    listen_wall = 0.0
    for i in range(n):
        result.expected += len(published)
        path = run_dir / "result" / f"{i}.json"
        try:
            report: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            result.missing += len(published)
            continue
        result.workers_reported += 1
        seen: dict[str, float] = report["seen"]
        for key, when in published:
            got = seen.get(str(key))
            if got is None:
                result.missing += 1
            else:
                result.latencies_ms.append((got - when) * 1000.0)
        startup.append(report["startup_s"])
        startup_cpu.append(report["startup_cpu_s"])
        listen_cpu += report["listen_cpu_s"]
        listen_wall = max(listen_wall, report["listen_wall_s"])
        for reason, count in report.get("rejected", {}).items():
            if count:
                result.rejected[reason] = result.rejected.get(reason, 0) + count
        result.worker_errors += int(report.get("error_count", 0))
        text = (run_dir / "log" / f"{i}.log").read_text(errors="replace").strip()
        if text and len(result.noisy_logs) < 3:
            result.noisy_logs.append(f"worker {i}: {text[:300]}")
    result.worker_startup_s_p50 = percentile(startup, 0.5)
    result.worker_startup_cpu_s_p50 = percentile(startup_cpu, 0.5)
    result.listen_cpu_cores = listen_cpu / listen_wall if listen_wall > 0 else math.nan
    log(
        f"[{label}] {len(result.latencies_ms)} samples, {result.missing} missing, "
        f"p50 {percentile(result.latencies_ms, 0.5):.2f} ms, "
        f"p99 {percentile(result.latencies_ms, 0.99):.2f} ms, "
        f"max {max(result.latencies_ms, default=math.nan):.2f} ms, "
        f"workers' CPU while listening {result.listen_cpu_cores:.2f} cores"
    )
    for line in result.noisy_logs:
        log(f"[{label}] worker output: {line}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


# -- the whole run ------------------------------------------------------------------------


def layout_order(backends: list[str], round_no: int) -> list[str]:
    order = ["raw", *backends]
    return order if round_no % 2 == 0 else order[::-1]


@dataclass
class Row:
    kind: str
    n: int
    samples: int
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    raw_p50_ms: float
    raw_p99_ms: float
    ratio_p99: float
    ready_all_s: float
    worker_startup_cpu_s: float
    listen_cpu_cores: float
    publish_call_ms: float


def summarise(results: list[RunResult], kinds: list[str], ns: list[int]) -> list[Row]:
    def pooled(kind: str, n: int) -> list[RunResult]:
        return [r for r in results if r.kind == kind and r.n == n]

    def stats(runs: list[RunResult]) -> tuple[list[float], int]:
        lat = [x for r in runs for x in r.latencies_ms]
        return lat, sum(r.missing for r in runs)

    rows: list[Row] = []
    for kind in kinds:
        for n in ns:
            runs = pooled(kind, n)
            if not runs:
                continue
            lat, missing = stats(runs)
            raw_lat, _ = stats(pooled("raw", n))
            raw_p99 = percentile(raw_lat, 0.99)
            p99 = percentile(lat, 0.99)
            rows.append(
                Row(
                    kind=kind,
                    n=n,
                    samples=len(lat),
                    missing=missing,
                    p50_ms=percentile(lat, 0.5),
                    p99_ms=p99,
                    max_ms=max(lat, default=math.nan),
                    raw_p50_ms=percentile(raw_lat, 0.5),
                    raw_p99_ms=raw_p99,
                    ratio_p99=p99 / raw_p99 if raw_p99 > 0 else math.nan,
                    ready_all_s=max(r.ready_all_s for r in runs),
                    worker_startup_cpu_s=percentile(
                        [r.worker_startup_cpu_s_p50 for r in runs], 0.5
                    ),
                    listen_cpu_cores=sum(r.listen_cpu_cores for r in runs) / len(runs),
                    publish_call_ms=percentile([r.publish_call_ms_p50 for r in runs], 0.5),
                )
            )
    return rows


def print_tables(rows: list[Row], args: argparse.Namespace) -> None:
    head = (
        "backend",
        "N",
        "p50 ms",
        "p99 ms",
        "raw p50",
        "raw p99",
        "p99/raw p99",
        "samples",
        "missing",
    )
    lines: list[tuple[str, ...]] = [head]
    for r in rows:
        if r.kind == "raw":
            continue
        lines.append(
            (
                r.kind,
                str(r.n),
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.raw_p50_ms:.2f}",
                f"{r.raw_p99_ms:.2f}",
                f"{r.ratio_p99:.2f}x",
                str(r.samples),
                str(r.missing),
            )
        )
    _print_aligned(lines)
    print()
    print("Details (all layouts; raw = plain redis-py XADD -> XREAD BLOCK):")
    head2 = (
        "layout",
        "N",
        "max ms",
        "all ready s",
        "worker start-up CPU s",
        "workers' CPU while listening (cores)",
        "publish call ms",
    )
    lines = [head2]
    for r in sorted(rows, key=lambda r: (r.n, r.kind != "raw", r.kind)):
        lines.append(
            (
                r.kind,
                str(r.n),
                f"{r.max_ms:.2f}",
                f"{r.ready_all_s:.1f}",
                f"{r.worker_startup_cpu_s:.2f}",
                f"{r.listen_cpu_cores:.3f}",
                f"{r.publish_call_ms:.2f}",
            )
        )
    _print_aligned(lines)
    print()
    if "sqlite" in args.backends:
        print(
            f"sqlite has no raw equivalent: its raw columns are the Redis XREAD baseline, for scale "
            f"only (sqlite subscribers poll every {args.sqlite_poll * 1000:.0f} ms)."
        )
    redis_rows = [r for r in rows if r.kind == "redis"]
    if not redis_rows:
        print("Redis target: not measured (redis not in --backends).")
        return
    failed = [r for r in redis_rows if not (r.ratio_p99 <= TARGET_RATIO) or r.missing > 0]
    detail = ", ".join(f"N={r.n} {r.ratio_p99:.2f}x" for r in redis_rows)
    if failed:
        why = "; ".join(
            f"N={r.n}: {r.ratio_p99:.2f}x" + (f", {r.missing} missing" if r.missing else "")
            for r in failed
        )
        print(
            f"Redis target (p99 within {TARGET_RATIO}x of raw p99 at every N): NOT MET ({why}). All: {detail}."
        )
    else:
        print(f"Redis target (p99 within {TARGET_RATIO}x of raw p99 at every N): MET ({detail}).")
    lean = {r.n: r for r in rows if r.kind == "raw-conn"}
    if lean:
        detail = ", ".join(
            f"N={r.n} {r.p99_ms / lean[r.n].p99_ms:.2f}x" for r in redis_rows if r.n in lean
        )
        print(
            "Redis p99 beside the lean raw reader (raw-conn: connection driven directly, as "
            f"RedisBackend.read does): {detail}."
        )


def _print_aligned(lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", default="1,50,200", help="comma-separated N values")
    parser.add_argument("--transitions", type=int, default=30, help="changes published per run")
    parser.add_argument(
        "--backends",
        default="redis,sqlite,raw-conn",
        help="comma-separated: redis,sqlite,raw-conn (raw is always measured)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results to this file")
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec", "no"),
        default="always",
        help="Redis AOF fsync policy (onsale_obs.testing.RedisServer starts with always)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of every layout per N")
    parser.add_argument("--sqlite-poll", type=float, default=0.02, help="sqlite poll interval, s")
    parser.add_argument(
        "--poll-timeout", type=float, default=1.0, help="XREAD BLOCK / poll_timeout, s"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=None,
        help="s between changes (default max(0.15, 1.5 ms * N))",
    )
    parser.add_argument(
        "--min-samples",
        type=int,
        default=300,
        help="raise transitions per run to ceil(this / N), so p99 at small N is not just the maximum",
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="s to wait after all workers are ready"
    )
    parser.add_argument("--drain", type=float, default=3.0, help="s to wait after the last change")
    parser.add_argument(
        "--ready-timeout", type=float, default=180.0, help="s to wait for N workers"
    )
    args = parser.parse_args(argv)
    try:
        args.subscribers = [int(x) for x in args.subscribers.split(",") if x.strip()]
    except ValueError:
        parser.error("--subscribers must be comma-separated integers, e.g. 1,50,200")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"--backends: unknown {unknown}; expected some of {', '.join(BACKENDS)}")
    if not args.subscribers or any(n < 1 or n > 1000 for n in args.subscribers):
        parser.error("--subscribers: each N must be 1..1000")
    if not 1 <= args.transitions <= 10_000 or not 1 <= args.rounds <= 20:
        parser.error("--transitions must be 1..10000 and --rounds 1..20")
    if args.min_samples < 0 or args.min_samples > 100_000:
        parser.error("--min-samples must be 0..100000")
    return args


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="onsale-bench-"))
    server = RedisServer()
    results: list[RunResult] = []
    try:
        with sigterm_as_interrupt():
            keys_dir = work_dir / "keys"
            generate_key_pair(keys_dir, name="bench")
            server.start()
            if args.appendfsync != "always":
                admin = redis.Redis.from_url(server.url, socket_timeout=5.0)
                admin.config_set("appendfsync", args.appendfsync)
                admin.close()
            log(f"redis-server on {server.url}, appendonly yes, appendfsync {args.appendfsync}")
            for n in args.subscribers:
                for round_no in range(args.rounds):
                    for kind in layout_order(args.backends, round_no):
                        results.append(
                            run_layout(kind, n, round_no, args, server.url, work_dir, keys_dir)
                        )
    except KeyboardInterrupt:
        log("interrupted; stopping workers and Redis")
        return 130
    except (RuntimeError, OSError, redis.RedisError) as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        for proc in _workers:
            if proc.poll() is None:
                proc.kill()
        for proc in _workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    elapsed = time.monotonic() - started
    rows = summarise(results, ["raw", *args.backends], args.subscribers)
    print(
        f"Broadcast latency, mode change -> visible in N subscriber processes "
        f"({args.rounds} round(s) per layout, {os.cpu_count()} CPUs, Redis appendonly yes + "
        f"appendfsync {args.appendfsync}, wall {elapsed:.0f}s)"
    )
    print_tables(rows, args)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "argv": sys.argv,
                    "config": {
                        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    },
                    "wall_s": elapsed,
                    "target_ratio": TARGET_RATIO,
                    "rows": [asdict(r) for r in rows],
                    "runs": [asdict(r) for r in results],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
