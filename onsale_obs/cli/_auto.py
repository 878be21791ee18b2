"""``onsale-obs mode auto``: flip an event on sale by itself when its traffic surges (source=auto)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from onsale_obs.cli._context import opened_backend, optional_verifier
from onsale_obs.cli._options import (
    BackendOption,
    FormatOption,
    VerifyKeyOption,
    http_url,
    seconds_or_duration,
)
from onsale_obs.cli._output import fmt_time, print_json_line, stdout
from onsale_obs.cli._schedule_run import stop_on_signals
from onsale_obs.cli._watch import _StderrLog
from onsale_obs.detect import DetectorConfig
from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.modes import DEFAULT_BACKEND_URL, Broadcaster, Signer

if TYPE_CHECKING:
    from onsale_obs.detect import Action
    from onsale_obs.modes import ModeState

#: The detector's own key: revoked without touching the operators' (ONSALE_OBS_SIGNING_KEY).
AUTO_SIGNING_KEY_ENV = "ONSALE_OBS_AUTO_SIGNING_KEY"


def auto(
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            parser=http_url,
            metavar="URL",
            help="Prometheus that scrapes the services' onsale_event_requests_top. Required "
            "here; inside 'serve' the detector reads the services' summaries in-process.",
            show_default=False,
        ),
    ] = None,
    signing_key: Annotated[
        str | None,
        typer.Option(
            "--signing-key",
            envvar=AUTO_SIGNING_KEY_ENV,
            metavar="PATH",
            help="The detector's own PEM Ed25519 private key (not the operators'): subscribers "
            "trust it by listing its public half in their --verify-key.",
            show_default=False,
        ),
    ] = None,
    verify_key: VerifyKeyOption = None,
    backend: BackendOption = DEFAULT_BACKEND_URL,
    factor: Annotated[
        float,
        typer.Option("--factor", min=1.0, help="Surge: this many times the event's usual rate."),
    ] = DetectorConfig.factor,
    floor: Annotated[
        float,
        typer.Option("--floor", min=0.0, help="...and at least this many requests per second."),
    ] = DetectorConfig.floor,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="...for this long (seconds, or 6s, 1m).",
        ),
    ] = DetectorConfig.window,
    high: Annotated[
        float,
        typer.Option(
            "--high",
            min=0.0,
            help="Steep rule: above this many req/s (and the threshold) for --high-window "
            "is a surge sooner (0: off).",
        ),
    ] = DetectorConfig.high,
    high_window: Annotated[
        float,
        typer.Option(
            "--high-window",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="How long the rate must stay above --high.",
        ),
    ] = DetectorConfig.high_window,
    high_evidence: Annotated[
        float,
        typer.Option(
            "--high-evidence",
            min=0.0,
            metavar="NATS",
            help="Steep rule, sooner: confirm once the counts give this much evidence "
            "(log-likelihood, nats) that the rate is above --high (0: off).",
        ),
    ] = DetectorConfig.high_evidence,
    growth_evidence: Annotated[
        float,
        typer.Option(
            "--growth-evidence",
            min=0.0,
            metavar="NATS",
            help="Growth rule: confirm when a growing rate explains the last --growth-window "
            "of counts better than a flat bot burst, by this many nats (0: off).",
        ),
    ] = DetectorConfig.growth_evidence,
    growth_window: Annotated[
        float,
        typer.Option(
            "--growth-window",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Growth rule: how far back it looks.",
        ),
    ] = DetectorConfig.growth_window,
    rise_window: Annotated[
        float,
        typer.Option(
            "--rise-window",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Rising rule: a rate that grows over this span (in thirds, from at least "
            "--rise-level to above the threshold and --rise-factor times more) is a surge "
            "before a whole --window (0: off).",
        ),
    ] = DetectorConfig.rise_window,
    rise_level: Annotated[
        float,
        typer.Option("--rise-level", min=0.0, help="Rising rule: req/s of its first third."),
    ] = DetectorConfig.rise_level,
    rise_factor: Annotated[
        float,
        typer.Option("--rise-factor", min=1.0, help="Rising rule: last third / first third."),
    ] = DetectorConfig.rise_factor,
    lag: Annotated[
        float,
        typer.Option(
            "--lag",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="How old Prometheus' newest data can be (two scrape intervals): the quiet "
            "period counts from then, so the end is not published late.",
        ),
    ] = 30.0,
    quiet: Annotated[
        float,
        typer.Option(
            "--quiet",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Back to normal after this long below the threshold.",
        ),
    ] = DetectorConfig.quiet,
    max_auto: Annotated[
        int,
        typer.Option("--max-auto", min=1, help="At most this many events on sale by the detector."),
    ] = DetectorConfig.max_auto,
    max_flips: Annotated[
        int,
        typer.Option("--max-flips", min=1, help="At most this many flips per event per hour."),
    ] = DetectorConfig.max_flips_per_hour,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Publish nothing: only print what would be published."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Read the rates this often.",
        ),
    ] = 2.0,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            parser=seconds_or_duration,
            metavar="DURATION",
            help="Stop after this long (default: run until Ctrl-C or SIGTERM).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help="Serve onsale_auto_surging{event} on this port's /metrics (0: none).",
        ),
    ] = 0,
    host: Annotated[str, typer.Option("--host", help="Address of /metrics.")] = "127.0.0.1",
    output: FormatOption = "table",
) -> None:
    """Watch per-event request rates and put a surging event on sale by itself (source=auto).

    A surge is an event's rate above --factor times its usual rate at this hour of the day
    (learnt as it runs) and above --floor requests per second, for --window; sooner when it
    is above --high for --high-window (or by --high-evidence), grows over --growth-window
    unlike a flat bot burst, or has been rising over --rise-window. The event is
    published on sale with source=auto, a reason naming the rates and an until it extends
    while the surge lasts; after --quiet below the threshold it is published normal again.
    A manual state or a scheduled window is never overridden. States are signed with the
    detector's own key (ONSALE_OBS_AUTO_SIGNING_KEY): services trust it by adding its
    public half to their --verify-key list, and revoke it by removing it. One line per
    action (JSON lines with --format json); problems on stderr. With --port, /metrics serves
    onsale_auto_surging{event}: 1 while the detector holds an event on sale (or, with
    --dry-run, would).

    Examples:

        onsale-obs mode auto --prometheus http://127.0.0.1:9090 --signing-key auto.pem --verify-key ops.pub

        onsale-obs mode auto --prometheus http://prom:9090 --dry-run --format json
    """
    if not signing_key:
        raise SigningKeyError(
            f"the surge detector signs what it publishes with its own key; pass --signing-key "
            f"PATH or set {AUTO_SIGNING_KEY_ENV} (make a pair with 'onsale-obs keys generate')."
        )
    if prometheus is None:
        raise typer.BadParameter(
            "a URL is required (for example http://127.0.0.1:9090): the detector reads "
            "onsale_event_requests_top from Prometheus when run as its own command.",
            param_hint="'--prometheus'",
        )
    for name, value in (
        ("--window", window),
        ("--quiet", quiet),
        ("--interval", interval),
        ("--growth-window", growth_window),
    ):
        if not value > 0:
            raise typer.BadParameter(
                f"expected a duration above 0, got {value:g}.", param_hint=f"'{name}'"
            )
    for name, value in (
        ("--high-window", high_window),
        ("--rise-window", rise_window),
        ("--lag", lag),
    ):
        if not value >= 0:
            raise typer.BadParameter(
                f"expected a duration of 0 or more, got {value:g}.", param_hint=f"'{name}'"
            )
    if lag >= quiet:
        raise typer.BadParameter(
            f"expected less than --quiet ({quiet:g}s), got {lag:g}.", param_hint="'--lag'"
        )
    try:
        config = DetectorConfig(
            factor=factor,
            floor=floor,
            window=window,
            high=high,
            high_window=high_window,
            high_evidence=high_evidence,
            growth_evidence=growth_evidence,
            growth_window=growth_window,
            rise_window=rise_window,
            rise_level=rise_level,
            rise_factor=rise_factor,
            quiet=quiet,
            lag=lag,
            max_auto=max_auto,
            max_flips_per_hour=max_flips,
            dry_run=dry_run,
        )
    except BadInputError as exc:  # pragma: no cover - the options' bounds come first
        raise typer.BadParameter(str(exc)) from None
    # the loop, Prometheus' client and the exporter: loaded only when the detector runs
    from prometheus_client import CollectorRegistry, start_http_server

    from onsale_obs.detect import AutoMode, PrometheusRates, SurgeDetector
    from onsale_obs.slo._prom_client import PrometheusClient

    signer = Signer.from_file(signing_key)
    log = _StderrLog()
    stop = threading.Event()
    deadline = time.monotonic() + timeout if timeout is not None else None

    def emit(action: Action, state: ModeState | None) -> None:
        if output == "json":
            record = action.to_json()
            record["dry_run"] = dry_run
            record["revision"] = state.revision if state is not None else None
            print_json_line(record)
        else:
            until = f" until {fmt_time(action.until)}" if action.until is not None else ""
            prefix = "would " if dry_run and action.kind != "skip" else ""
            stdout().print(
                f"{prefix}{action.kind} {action.scope}{until}: {action.reason}", soft_wrap=True
            )

    with opened_backend(backend) as store, PrometheusClient(prometheus, retries=0) as client:
        broadcaster = Broadcaster(store, signer, verifier=optional_verifier(verify_key))
        registry = CollectorRegistry()
        runner = AutoMode(
            SurgeDetector(config),
            PrometheusRates(client),
            broadcaster,
            emit=emit,
            logger=log,
            registry=registry,
        )
        if port:
            start_http_server(port, addr=host, registry=registry)
        with stop_on_signals(stop):
            while not stop.is_set():
                runner.tick()
                wait = interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                stop.wait(wait)
