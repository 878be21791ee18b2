"""One subscriber process for ``broadcast_latency.py`` (not meant to be run by hand).

``--kind product``: a ``ModeSubscriber`` on ``--url`` (any backend URL) whose listener records
``time.time()`` when each revision is accepted (after signature verification).
``--kind raw``: a plain redis-py ``XREAD BLOCK`` loop on ``--stream`` that records
``time.time()`` when each entry arrives, keyed by the entry's ``seq`` field.
``--kind raw-conn``: the same loop driven on a redis-py connection directly (no client
machinery per command), the way ``RedisBackend.read`` reads.

Both read in a background thread while the main thread waits on stdin. Protocol with the parent:
the worker creates ``<dir>/ready/<id>`` once it is listening, and when stdin reaches EOF (the
parent closed it, or died) it writes ``<dir>/result/<id>.json`` and exits. A hard lifetime cap
(``--max-lifetime``) ends it in any case.
"""

from __future__ import annotations

import time

STARTED = time.time()  # before the heavy imports, so start-up cost is visible

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _product(args: argparse.Namespace, seen: dict[int, float]) -> tuple[Callable[[], None], Any]:
    from onsale_obs.modes import ModeState, ModeSubscriber, Verifier, open_backend

    verifier = Verifier.from_files([args.verify_key])
    subscriber = ModeSubscriber(
        open_backend(args.url), verifier, registry=None, poll_timeout=args.poll_timeout
    )

    def listener(state: ModeState) -> None:
        now = time.time()
        seen.setdefault(state.revision, now)

    subscriber.add_listener(listener)
    subscriber.start()
    if not subscriber.wait_synced(timeout=args.sync_timeout):
        raise SystemExit(f"subscriber did not sync within {args.sync_timeout}s")

    def stop() -> None:
        subscriber.stop(timeout=args.poll_timeout + 1.0)

    def extra() -> dict[str, Any]:
        return {"rejected": dict(subscriber.rejected()), "revision": subscriber.revision}

    return stop, extra


def _raw(args: argparse.Namespace, seen: dict[int, float]) -> tuple[Callable[[], None], Any]:
    import redis

    client = redis.Redis.from_url(args.url, socket_connect_timeout=1.0, socket_timeout=11.0)
    stream = args.stream
    top: Any = client.xrevrange(stream, "+", "-", count=1)
    last: Any = top[0][0] if top else "0-0"
    stop_event = threading.Event()
    errors: list[str] = []
    block_ms = max(1, int(args.poll_timeout * 1000))

    def xread_client() -> Any:
        return client.xread({stream: last}, count=1000, block=block_ms)

    conn: Any = client.connection_pool.make_connection()

    def xread_conn() -> Any:
        conn.send_command("XREAD", "COUNT", 1000, "BLOCK", block_ms, "STREAMS", stream, last)
        reply = conn.read_response()
        if isinstance(reply, dict):  # RESP3
            return list(reply.items())
        return reply

    xread = xread_conn if args.kind == "raw-conn" else xread_client

    def loop() -> None:
        nonlocal last
        while not stop_event.is_set():
            try:
                reply: Any = xread()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                errors.append(str(exc))
                stop_event.wait(0.5)
                continue
            now = time.time()
            for _key, items in reply or []:
                for entry_id, fields in items:
                    if isinstance(fields, list):  # raw connection: [k, v, k, v]
                        fields = dict(zip(fields[::2], fields[1::2], strict=True))
                    seen.setdefault(int(fields[b"seq"]), now)
                    last = entry_id

    thread = threading.Thread(target=loop, name="raw-xread", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(args.poll_timeout + 1.0)

    def extra() -> dict[str, Any]:
        return {"errors": errors[:5], "error_count": len(errors)}

    return stop, extra


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("product", "raw", "raw-conn"), required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--verify-key", default="")
    parser.add_argument("--stream", default="")
    parser.add_argument("--poll-timeout", type=float, default=1.0)
    parser.add_argument("--sync-timeout", type=float, default=120.0)
    parser.add_argument("--max-lifetime", type=float, default=1800.0)
    args = parser.parse_args()

    # Never outlive the parent's run, whatever happens to the stdin pipe.
    killer = threading.Timer(args.max_lifetime, lambda: os._exit(3))
    killer.daemon = True
    killer.start()

    seen: dict[int, float] = {}
    if args.kind == "product":
        stop, extra = _product(args, seen)
    else:
        stop, extra = _raw(args, seen)

    ready_at = time.time()
    cpu_at_ready = time.process_time()
    (args.dir / "ready" / args.id).write_text(f"{ready_at - STARTED:.6f}\n")

    sys.stdin.buffer.read()  # blocks until the parent closes the pipe

    stopped_at = time.time()
    cpu_at_stop = time.process_time()
    snapshot = dict(seen)
    stop()
    _write_atomic(
        args.dir / "result" / f"{args.id}.json",
        {
            "seen": {str(k): v for k, v in snapshot.items()},
            "startup_s": ready_at - STARTED,
            "startup_cpu_s": cpu_at_ready,
            "listen_wall_s": stopped_at - ready_at,
            "listen_cpu_s": cpu_at_stop - cpu_at_ready,
            **extra(),
        },
    )


if __name__ == "__main__":
    main()
