"""``onsale-obs exit-rate recommend`` (one tick) and ``onsale-obs serve`` (the live loop)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry, start_http_server

from onsale_obs.cli._context import load_signer, load_verifier, opened_backend
from onsale_obs.cli._options import (
    BackendOption,
    FormatOption,
    SigningKeyOption,
    TimeoutOption,
    VerifyKeyOption,
    duration_seconds,
    seconds_or_duration,
)
from onsale_obs.cli._output import print_json, stdout, warn
from onsale_obs.cli._plan import (  # issue 20: the vertical's desired replicas
    ServeCooldownOption,
    ServeDrainOption,
    ServeProfileOption,
    vertical_scaler,
)
from onsale_obs.cli._slo import PROMETHEUS_ENV, SpecOption
from onsale_obs.cli._slo_render import Grid, print_grids
from onsale_obs.exceptions import BadInputError
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.exitrate._live import ExitRateLoop, SignalReader
from onsale_obs.instrument import configure_logging
from onsale_obs.modes import Broadcaster, ModeBackend
from onsale_obs.plan import observed  # issue 20
from onsale_obs.redact import redact_url
from onsale_obs.slo import SLO, AvailabilitySLI, LatencySLI, SLOSpec, load_spec
from onsale_obs.slo._prom_client import PrometheusClient

PrometheusRequired = Annotated[
    str,
    typer.Option(
        "--prometheus", envvar=PROMETHEUS_ENV, metavar="URL", help="Prometheus-compatible HTTP API."
    ),
]
SLOOption = Annotated[
    str | None,
    typer.Option(
        "--slo",
        metavar="NAME",
        help="Availability SLO whose on-sale burn drives the rate (default: the spec's first "
        "availability SLO); its service's latency SLO, if any, gives the latency threshold.",
        show_default=False,
    ),
]
QueueQueryOption = Annotated[
    str | None,
    typer.Option(
        "--queue-query",
        metavar="PROMQL",
        help='Users waiting, from your waiting room ($event is replaced): waiting_room_queue{event="$event"}. '
        "Without a queue length the rate never goes up.",
        show_default=False,
    ),
]
UtilisationOption = Annotated[
    str | None,
    typer.Option(
        "--utilisation-query",
        metavar="PROMQL",
        help="Busy share 0..1 of the checkout backend ($event is replaced); optional.",
        show_default=False,
    ),
]
InitialRateOption = Annotated[
    float,
    typer.Option(
        "--initial-rate", metavar="USERS_PER_MIN", min=1, help="The rate before any recommendation."
    ),
]
CapacityPriorOption = Annotated[
    float | None,
    typer.Option(
        "--capacity-prior",
        metavar="USERS_PER_MIN",
        min=1,
        help="What the checkout backend took at a past on-sale, as an exit rate (warm "
        "start): a start far above it is cut at once, and a ramp without utilisation stops "
        "at the target utilisation (92%) of it. Readings replace it as soon as they measure the capacity.",
        show_default=False,
    ),
]
MinRateOption = Annotated[
    float, typer.Option("--min-rate", metavar="USERS_PER_MIN", min=1, help="Never below.")
]
MaxRateOption = Annotated[
    float, typer.Option("--max-rate", metavar="USERS_PER_MIN", min=1, help="Never above.")
]


def _slos(spec: SLOSpec, name: str | None) -> tuple[SLO, SLO | None]:
    if name is not None:
        try:
            chosen = spec.get(name)
        except KeyError:
            raise typer.BadParameter(
                f"no SLO called {name!r} in {spec.source}; it has {', '.join(s.name for s in spec.slos)}.",
                param_hint="'--slo'",
            ) from None
    else:
        chosen = next((s for s in spec.slos if isinstance(s.sli, AvailabilitySLI)), None)  # type: ignore[assignment]
        if chosen is None:
            raise BadInputError(
                "has no availability SLO to drive the exit rate; add one or pass --slo.",
                file=spec.source,
            )
    if not isinstance(chosen.sli, AvailabilitySLI):
        raise typer.BadParameter(
            f"{chosen.name!r} is a {chosen.sli.type} SLO; expected an availability SLO.",
            param_hint="'--slo'",
        )
    latency = next(
        (s for s in spec.slos if s.service == chosen.service and isinstance(s.sli, LatencySLI)),
        None,
    )
    return chosen, latency


def _loop(
    spec_path: Path, prometheus: str, slo: str | None, backend: ModeBackend, verify_key: str | None,
    signing_key: str | None, queue_query: str | None, utilisation_query: str | None,
    initial_rate: float, min_rate: float, max_rate: float, timeout: float, publish: bool,
    registry: CollectorRegistry | None = None, capacity_prior: float | None = None,
) -> ExitRateLoop:  # fmt: skip
    spec = load_spec(spec_path)
    availability, latency = _slos(spec, slo)
    if max_rate < min_rate:
        raise typer.BadParameter(
            f"--max-rate {max_rate:g} is below --min-rate {min_rate:g}.", param_hint="'--max-rate'"
        )
    verifier = load_verifier(verify_key, signing_key)
    broadcaster = (
        Broadcaster(backend, load_signer(signing_key), verifier=verifier) if publish else None
    )
    reader = SignalReader(
        spec, availability, PrometheusClient(prometheus, timeout=timeout), latency,
        queue_query=queue_query, utilisation_query=utilisation_query,
    )  # fmt: skip
    try:
        reader.check_queries(time.time())
    except BaseException:
        reader.client.close()
        raise
    return ExitRateLoop(
        reader, backend, verifier,
        config=ExitRateConfig(
            min_rate=min_rate, max_rate=max_rate, capacity_prior=capacity_prior,
            # the burn rates are this SLO's: its objective turns them into a share failing
            objective=availability.objectives["onsale"],
        ),
        initial_rate=min(max(initial_rate, min_rate), max_rate),
        broadcaster=broadcaster, registry=registry,
        # serve logs each decision; recommend prints them, and its stdout may be JSON
        logger=None if publish or registry is not None else _Silent(),
    )  # fmt: skip


class _Silent:
    """A logger that says nothing."""

    def info(self, *args: object, **kwargs: object) -> None:
        pass

    warning = info


def recommend(
    spec: SpecOption = Path("slo.yaml"),
    prometheus: PrometheusRequired = "http://127.0.0.1:9090",
    slo: SLOOption = None,
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            metavar="ID",
            help="Only this event (default: every event on sale now).",
            show_default=False,
        ),
    ] = None,
    current_rate: Annotated[
        float,
        typer.Option(
            "--current-rate",
            metavar="USERS_PER_MIN",
            min=0,
            help="The rate the waiting room applies now.",
        ),
    ] = 1_000.0,
    queue: Annotated[
        float | None,
        typer.Option(
            "--queue",
            metavar="USERS",
            min=0,
            help="Users waiting now (or use --queue-query).",
            show_default=False,
        ),
    ] = None,
    queue_query: QueueQueryOption = None,
    utilisation_query: UtilisationOption = None,
    capacity_prior: CapacityPriorOption = None,
    min_rate: MinRateOption = 100.0,
    max_rate: MaxRateOption = 100_000.0,
    backend: BackendOption = "sqlite:///onsale-obs.db",
    verify_key: VerifyKeyOption = None,
    signing_key: SigningKeyOption = None,
    output: FormatOption = "table",
    timeout: TimeoutOption = 10.0,
) -> None:
    """One recommendation now for each event on sale: the rate and why.

    Reads, for each event on its own (the `event` label), the on-sale burn rates over 1m and
    5m of the availability SLO, checkout p95 latency against the latency SLO's on-sale
    threshold, and the queue from your waiting room. Errors with latency or saturation are
    an overload (cut to what the backend sustains); errors with latency to spare are a
    software fault (hold, and back to the rate before it once the burn clears). Prometheus
    unreachable: the rate holds (exit code 3). The events on sale come from the mode store
    (--backend, verified with --verify-key).

    Examples:

        onsale-obs exit-rate recommend --spec slo.yaml --prometheus http://127.0.0.1:9090 --current-rate 600 --queue 40000

        onsale-obs exit-rate recommend --spec slo.yaml --event final-2026 --queue-query 'waiting_room_queue{event="$event"}' --format json
    """
    if queue is not None and queue_query is not None:
        raise typer.BadParameter(
            "give either --queue (users waiting now) or --queue-query, not both.",
            param_hint="'--queue'",
        )
    with opened_backend(backend, reading=True) as store:
        loop = _loop(spec, prometheus, slo, store, verify_key, signing_key, queue_query, utilisation_query,
                     current_rate, min_rate, max_rate, timeout, publish=False,
                     capacity_prior=capacity_prior)  # fmt: skip
        on = [e for e, _ in loop.onsale_now(loop.clock())]
        if event is not None and event not in on:
            raise BadInputError(
                f"event {event!r} is not on sale now (on sale: {', '.join(on) or 'nothing'}).",
                field="--event",
            )
        loop.rates = dict.fromkeys(on, current_rate)  # out of bounds: the controller says so
        queues = None if queue is None else dict.fromkeys(on, queue)
        try:
            made = [(e, r) for e, r in loop.tick(queues) if event in (None, e)]
            down = bool(made) and (loop.reader.unavailable is not None or not _reachable(loop))
            why = loop.reader.unavailable
        finally:
            loop.close()
    if down:
        warn(
            f"Prometheus could not be reached at {redact_url(prometheus)}, or answered nothing usable; "
            f"the rate holds{f' ({why})' if why else ''}."
        )
    if output == "json":
        print_json({"recommendations": [{"event": e, **r.to_json()} for e, r in made]})
    else:
        grid = Grid("exit-rate recommendations", ["event", "rate", "action", "reason"])
        for e, r in made:
            grid.add(
                [e, f"{r.rate:,.0f}", r.action, r.reason],
                "bold red" if r.action == "decrease" else None,
            )
        notes = [] if made else ["nothing is on sale now"]
        print_grids(stdout(), [grid], markdown=False, notes=notes)
    if down:
        raise typer.Exit(3)


def _reachable(loop: ExitRateLoop) -> bool:
    try:
        loop.reader.client.query("vector(1)", loop.clock())
    except Exception:
        return False
    return True


def serve(
    spec: SpecOption = Path("slo.yaml"),
    prometheus: PrometheusRequired = "http://127.0.0.1:9090",
    slo: SLOOption = None,
    queue_query: QueueQueryOption = None,
    utilisation_query: UtilisationOption = None,
    initial_rate: InitialRateOption = 1_000.0,
    capacity_prior: CapacityPriorOption = None,
    min_rate: MinRateOption = 100.0,
    max_rate: MaxRateOption = 100_000.0,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", parser=seconds_or_duration, metavar="DURATION", help="Time between ticks."
        ),
    ] = 15.0,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port of /metrics (0: none).")
    ] = 9464,
    host: Annotated[str, typer.Option("--host", help="Address of /metrics.")] = "127.0.0.1",
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Publish each new rate through the mode store (needs --signing-key).",
        ),
    ] = True,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            parser=duration_seconds,
            metavar="DURATION",
            help="Stop after this long.",
            show_default=False,
        ),
    ] = None,
    backend: BackendOption = "sqlite:///onsale-obs.db",
    verify_key: VerifyKeyOption = None,
    signing_key: SigningKeyOption = None,
    timeout: TimeoutOption = 5.0,
    profile: ServeProfileOption = None,
    vertical_cooldown: ServeCooldownOption = 600.0,
    vertical_drain_target: ServeDrainOption = 1800.0,
) -> None:
    """Recommend the exit rate of every event on sale, every --interval, until Ctrl-C.

    Each tick reads every on-sale event's own signals from Prometheus (its burn rates and
    p95, by the `event` label: one event's failure never cuts another's rate; while another
    event on the same service burns, increases are held), asks one controller per event,
    exports `onsale_exit_rate_recommended{event}` on /metrics, publishes the rate through
    the mode store (a waiting room subscribed with ModeSubscriber reads `state.exit_rate`)
    and logs each decision with its reason as a JSON line. Prometheus down: the rate holds,
    and after 10 minutes decays to the minimum. --initial-rate and --capacity-prior give a
    warm start from a past on-sale. With --profile (plan learn) it also exports
    `onsale_vertical_desired_replicas{event,service}` and `onsale_queue_length{event}`
    for the scalers of `plan render-scalers`.

    Examples:

        onsale-obs serve --spec slo.yaml --prometheus http://127.0.0.1:9090 --signing-key keys/onsale-signing.pem --queue-query 'waiting_room_queue{event="$event"}'

        onsale-obs serve --spec slo.yaml --no-publish --port 9464 --duration 1h

        onsale-obs serve --spec slo.yaml --initial-rate 800 --capacity-prior 3000 --utilisation-query 'checkout_busy_ratio'
    """
    configure_logging()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # issue 20: one queue signal for the whole vertical (read before any handler is set)
    vertical = vertical_scaler(profile, vertical_cooldown, vertical_drain_target, max_rate)
    previous = signal.signal(signal.SIGTERM, _stop)
    registry = CollectorRegistry()
    if vertical is not None:  # issue 20
        registry.register(vertical)
    try:
        with opened_backend(backend) as store:
            loop = _loop(spec, prometheus, slo, store, verify_key, signing_key, queue_query, utilisation_query,
                         initial_rate, min_rate, max_rate, timeout, publish, registry,
                         capacity_prior)  # fmt: skip
            if port:
                try:
                    server, thread = start_http_server(port, addr=host, registry=registry)
                except OSError as exc:
                    loop.close()
                    raise typer.BadParameter(
                        f"cannot serve /metrics on {host}:{port} ({exc.strerror or exc}).",
                        param_hint="'--port'",
                    ) from None
            ends = None if duration is None else time.monotonic() + duration
            try:
                while not stop.is_set() and (ends is None or time.monotonic() < ends):
                    made = loop.tick()
                    if vertical is not None:  # issue 20
                        vertical.observe(loop.clock(), observed(made))
                    stop.wait(
                        interval
                        if ends is None
                        else max(0.0, min(interval, ends - time.monotonic()))
                    )
            except KeyboardInterrupt:
                pass
            finally:
                loop.close()
                if port:
                    server.shutdown()
                    server.server_close()
                    thread.join(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
