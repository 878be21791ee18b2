"""Run the production path on one machine until Ctrl-C: ``python -m examples.stack``.

Starts Redis, the three ticketing services, Prometheus (with the generated rules), Alertmanager
(with the generated routing, receivers on a local webhook sink) and a load generator on
127.0.0.1, prints the URLs and the commands to try, prints every notification Alertmanager
sends, and stops everything on Ctrl-C, SIGTERM or after ``--duration``. See README.md here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from examples.stack._config import ALWAYS, QUICK
from examples.stack.stack import RECEIVERS, SPEC, Stack, StackConfig
from onsale_obs.exceptions import OnsaleObsError
from onsale_obs.instrument import configure_logging
from onsale_obs.testing import find_binary

_BINARIES = {
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 3600.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 3600].")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1000.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate between 0 and 1000 requests/s.")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 picks a free one).")
    return int(text)


def _ports(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 65535 for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not three ports; expected GATEWAY,CHECKOUT,INVENTORY such as "
            "8001,8002,8003 (0 picks a free one)."
        )
    return int(parts[0]), int(parts[1]), int(parts[2])


def _events(text: str) -> tuple[str, ...]:
    events = tuple(e.strip() for e in text.split(",") if e.strip())
    if not events:
        raise argparse.ArgumentTypeError(
            "expected event ids separated by commas, e.g. final,concert."
        )
    return events


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.stack",
        description="Run Redis, the ticketing services, Prometheus, Alertmanager and a load "
        "generator on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path("stack-run"),
        help="run folder: keys, generated rules, access logs, Redis and Prometheus data, "
        "notifications (default: stack-run)",
    )
    parser.add_argument(
        "--spec",
        type=Path,
        default=SPEC,
        help="SLO spec the Prometheus rules are generated from (default: examples/ticketing/slo.yaml)",
    )
    parser.add_argument(
        "--receivers",
        type=Path,
        default=RECEIVERS,
        help="Alertmanager receivers file whose routing is generated; its receivers are "
        "replaced by the local webhook sink (default: examples/alertmanager/receivers.yaml)",
    )
    parser.add_argument(
        "--scrape-interval",
        type=_positive,
        default=5.0,
        help="Prometheus scrape interval in seconds (default: 5)",
    )
    parser.add_argument(
        "--evaluation-interval",
        type=_positive,
        help="rule evaluation interval in seconds (default: the scrape interval)",
    )
    parser.add_argument(
        "--rate", type=_rate, default=30.0, help="requests/s through the gateway (default: 30)"
    )
    parser.add_argument(
        "--events",
        type=_events,
        default=("final", "concert"),
        help="event ids the users enter, in turn (default: final,concert)",
    )
    parser.add_argument(
        "--ports",
        type=_ports,
        default=(0, 0, 0),
        help="gateway,checkout,inventory ports (default: free ones)",
    )
    parser.add_argument("--prometheus-port", type=_port, default=0, help="(default: a free one)")
    parser.add_argument("--alertmanager-port", type=_port, default=0, help="(default: a free one)")
    parser.add_argument(
        "--quick-notify",
        action="store_true",
        help="Alertmanager notifies within a second (group_wait 1s) instead of the receivers "
        "file's timings (pages after 10s, tickets after 5m)",
    )
    parser.add_argument(
        "--always-business-hours",
        action="store_true",
        help="deliver tickets (P3/P4) at any hour instead of Monday-Friday 09:00-17:00 UTC",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of checkout's failure draws")
    parser.add_argument(
        "--duration", type=_positive, help="stop after this many seconds (default: Ctrl-C)"
    )
    return parser


def _config(args: argparse.Namespace) -> StackConfig:
    binaries = {}
    for name, package in _BINARIES.items():
        path = find_binary(name)
        if path is None:
            raise FileNotFoundError(f"{name} not found; install the Debian package {package}.")
        binaries[name] = path
    return StackConfig(
        folder=args.folder,
        spec=args.spec,
        receivers=args.receivers,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        rate=args.rate,
        events=args.events,
        business_hours=ALWAYS if args.always_business_hours else None,
        notify_timing=QUICK if args.quick_notify else None,
        ports=args.ports,
        prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port,
        seed=args.seed,
        redis_binary=binaries["redis-server"],
        prometheus_binary=binaries["prometheus"],
        alertmanager_binary=binaries["prometheus-alertmanager"],
    )


def _banner(stack: Stack, out: IO[str]) -> None:
    urls = stack.urls()
    env = stack.cli_env()
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    logs = " ".join(f"--logs {shlex.quote(str(p))}" for p in stack.access_logs.values())
    event = stack.config.events[0]
    lines = [
        "onsale-obs stack running on 127.0.0.1 (Ctrl-C stops it)",
        *(f"  {name:<13} {url}" for name, url in urls.items()),
        f"  run folder    {stack.folder}",
        f"  load          {stack.config.rate:g} requests/s to events {', '.join(stack.config.events)}",
        "",
        "In another terminal:",
        f"  export {exports}",
        f"  .venv/bin/onsale-obs mode set onsale --scope event:{event} --for 30m   # an on-sale",
        f"  curl -s -X POST {urls['checkout']}/admin/fail -d '{{\"rate\": 1}}'     # checkout fails",
        f"  curl -s -X POST {urls['checkout']}/admin/fail -d '{{\"rate\": 0}}'     # and heals",
        f"  .venv/bin/onsale-obs mode clear --scope event:{event}                 # on-sale over",
        f"  .venv/bin/onsale-obs slo report --prometheus {urls['prometheus']}",
        f"  .venv/bin/onsale-obs slo report {logs} --backend {env['ONSALE_OBS_BACKEND']}",
        f"  open {urls['prometheus']}/alerts and {urls['alertmanager']}",
        "",
        f"Notifications (also in {stack.folder / 'notifications.jsonl'}):",
    ]
    print("\n".join(lines), file=out, flush=True)


def _notification_lines(path: str, body: dict[str, Any]) -> list[str]:
    clock = time.strftime("%H:%M:%S")
    out = []
    for alert in body.get("alerts", []):
        labels = alert.get("labels", {})
        details = " ".join(
            f"{k}={labels[k]}" for k in ("mode", "priority", "slo", "event") if labels.get(k)
        )
        out.append(
            f"  [{clock}] {path.strip('/').upper():<7} {alert.get('status', '?'):<8} "
            f"{labels.get('alertname', '?')}  {details}"
        )
    return out


def _watch(stack: Stack, stop: threading.Event, duration: float | None, out: IO[str]) -> None:
    """Print notifications as they arrive until ``stop``, ``duration`` or a dead server."""
    seen = 0
    started = time.monotonic()
    with (stack.folder / "notifications.jsonl").open("a", encoding="utf-8") as saved:
        while not stop.wait(0.5):
            with stack.sink.lock:
                fresh = stack.sink.received[seen:]
            seen += len(fresh)
            for path, body, _ in fresh:
                saved.write(json.dumps({"path": path, **body}) + "\n")
                print("\n".join(_notification_lines(path, body)), file=out, flush=True)
            saved.flush()
            if duration is not None and time.monotonic() - started >= duration:
                return
            dead = _dead(stack)
            if dead:
                print(f"{dead} stopped unexpectedly; stopping the others.", file=sys.stderr)
                return


def _dead(stack: Stack) -> str | None:
    for server in (stack.services.gateway, stack.services.checkout, stack.services.inventory):
        if not server.alive:
            return server.name
    for name, process in (
        ("redis-server", stack.redis.process),
        ("prometheus", stack.prometheus.process),
        ("alertmanager", stack.alertmanager.process),
    ):
        if process is None or process.poll() is not None:
            return name
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a server could not start, 2 bad input)."""
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        config = _config(args)
        config.folder.mkdir(parents=True, exist_ok=True)
        with (config.folder / "services.jsonl").open("a", encoding="utf-8") as service_log:
            configure_logging(stream=service_log)  # the services' structlog lines, not stdout
            with Stack(config) as stack:
                _banner(stack, sys.stdout)
                _watch(stack, stop, args.duration, sys.stdout)
                print("stopping", file=sys.stderr)
    except OnsaleObsError as exc:  # a bad spec or receivers file: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:  # a missing binary, a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
