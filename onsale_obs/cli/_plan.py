"""``onsale-obs plan``: learn from past on-sales, plan the next one, render the vertical's scalers."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.table import Table

from onsale_obs.cli._options import TimeoutOption, duration_seconds, http_url, parse_time
from onsale_obs.cli._output import fmt_duration, fmt_time, print_json, stdout, warn, write_output
from onsale_obs.cli._slo import (
    AtOption,
    HistoryOption,
    LogsOption,
    PrometheusOption,
    SigningOption,
    SpecOption,
    VerifyOption,
    WindowOption,
    open_inputs,
)
from onsale_obs.exceptions import BadInputError
from onsale_obs.plan import (
    ONE_ONSALE,
    GivenNumbers,
    NextPlan,
    Profile,
    PrometheusTimeline,
    Timeline,
    adapter_rule,
    backtest,
    backtest_summary,
    learn,
    load_profile,
    plan_next,
    render,
    targets,
)
from onsale_obs.plan._vertical import VerticalScaler, scaler_for

Format = Literal["table", "json"]
DEFAULT_PROFILE = Path("onsale-profile.json")
DEFAULT_ADMITTED_QUERY = 'sum(onsale_exit_rate_recommended{event="$event"})'
DEFAULT_REPLICAS_QUERY = 'sum(kube_deployment_status_replicas{deployment="$service"})'

plan_app = typer.Typer(
    help="Plan on-sales: learn from past ones, plan the next, scale the whole vertical from "
    "the queue.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

FormatOption = Annotated[
    Format, typer.Option("--format", help="table for people, json for scripts.")
]
ProfileOption = Annotated[
    Path,
    typer.Option(
        "--profile",
        metavar="FILE",
        help="Profile JSON written by 'plan learn --out FILE'.",
    ),
]
ServicesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--service",
        metavar="NAME",
        help="A service of the vertical (repeat; default: every service in the profile).",
        show_default=False,
    ),
]


def _pairs(values: Sequence[str] | None, option: str, what: str) -> dict[str, float]:
    """``KEY=NUMBER`` options as a mapping; anything else is bad input naming the option."""
    out: dict[str, float] = {}
    for text in values or ():
        key, sep, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not key.strip() or not (math.isfinite(value) and value >= 0):
            raise typer.BadParameter(f"{text!r}: expected {what}.", param_hint=f"'{option}'")
        out[key.strip()] = value
    return out


# --------------------------------------------------------------------------- learn


@plan_app.command("learn")
def learn_command(
    spec: SpecOption = Path("slo.yaml"),
    prometheus: PrometheusOption = None,
    logs: LogsOption = None,
    window: WindowOption = None,
    at: AtOption = None,
    backend: HistoryOption = None,
    verify_key: VerifyOption = None,
    signing_key: SigningOption = None,
    timeout: TimeoutOption = 10.0,
    service: ServicesOption = None,
    admitted: Annotated[
        list[str] | None,
        typer.Option(
            "--admitted",
            metavar="EVENT=USERS",
            help="Users the waiting room admitted during EVENT's on-sale (repeat).",
            show_default=False,
        ),
    ] = None,
    admitted_query: Annotated[
        str | None,
        typer.Option(
            "--admitted-query",
            metavar="PROMQL",
            help="Admitted users/min ($event replaced); with --prometheus the default is "
            f"{DEFAULT_ADMITTED_QUERY} (what serve exported).",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        list[str] | None,
        typer.Option(
            "--replicas",
            metavar="SERVICE=N",
            help="Replicas of SERVICE (or EVENT/SERVICE=N for one on-sale; repeat).",
            show_default=False,
        ),
    ] = None,
    replicas_query: Annotated[
        str | None,
        typer.Option(
            "--replicas-query",
            metavar="PROMQL",
            help="Replicas per service ($service and $event replaced); with --prometheus the "
            f"default is {DEFAULT_REPLICAS_QUERY}.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="FILE", help="Write the profile JSON here.", show_default=False
        ),
    ] = None,
    output: FormatOption = "table",
) -> None:
    """Learn a profile from past on-sales (the windows and sources of 'slo onsales').

    Per on-sale and service: requests per admitted user (per route too), peak and sustained
    request rates, the highest rate (per replica) served with the service's SLOs met and
    where it broke (errors or latency), and the highest exit rate held with every SLO met.
    Admitted users come from --admitted or a Prometheus query, replicas from --replicas or a
    kube_deployment_status_replicas-style query. Without them those numbers are left out,
    never guessed.

    Examples:

        onsale-obs plan learn --spec slo.yaml --prometheus http://127.0.0.1:9090 --window 90d --out onsale-profile.json

        onsale-obs plan learn --spec slo.yaml --logs access.log --admitted cup-final=42000 --replicas checkout=6 --replicas frontend=10 --out onsale-profile.json
    """
    if out is not None and out.is_dir():
        raise typer.BadParameter(
            f"{out} is a folder; expected a file such as {out / 'onsale-profile.json'}.",
            param_hint="'--out'",
        )
    given_admitted = _pairs(admitted, "--admitted", "EVENT=USERS with a number of users")
    given_replicas = _pairs(replicas, "--replicas", "SERVICE=N or EVENT/SERVICE=N")
    read = open_inputs(spec, prometheus, logs, at, None, backend, verify_key, signing_key, timeout)
    client = None
    if prometheus is not None:
        from onsale_obs.slo._prom_client import PrometheusClient

        client = PrometheusClient(prometheus, timeout=timeout)
    try:
        admitted_t = _timeline(
            given_admitted, admitted_query, client, DEFAULT_ADMITTED_QUERY, "$event", "admitted"
        )
        replicas_t = _timeline(
            given_replicas, replicas_query, client, DEFAULT_REPLICAS_QUERY, "$service", "given"
        )
        if client is None and (admitted_query or replicas_query):
            raise typer.BadParameter(
                "--admitted-query and --replicas-query need --prometheus.",
                param_hint="'--admitted-query' / '--replicas-query'",
            )
        profile = learn(
            read.spec,
            read.source,
            read.at,
            window=window,
            onsale_windows=read.windows,
            admitted=admitted_t,
            replicas=replicas_t,
            services=tuple(service or ()),
        )
    finally:
        if client is not None:
            client.close()
    _check_named(profile, given_admitted, given_replicas, service)
    if out is not None:
        write_output(out, profile.dumps())
        typer.echo(f"wrote {out}", err=True)
    if output == "json":
        print_json(profile.to_json())
    else:
        _learn_table(profile)


def _timeline(
    given: dict[str, float],
    query: str | None,
    client: object,
    default: str,
    placeholder: str,
    what: str,
) -> Timeline | None:
    if given:
        return GivenNumbers(given, what)
    if client is None:
        return None
    from onsale_obs.slo._prom_client import PrometheusClient

    assert isinstance(client, PrometheusClient)

    def points(promql: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        return [p for s in client.query_range(promql, start, end, step) for p in s.points]

    return PrometheusTimeline(points, query or default, placeholder)


def _check_named(
    profile: Profile,
    admitted: dict[str, float],
    replicas: dict[str, float],
    services: list[str] | None,
) -> None:
    """Names given on the command line that match nothing learnt are typos: say so."""
    events = set(profile.events())
    learnt = set(profile.services)
    unknown = sorted(set(admitted) - events)
    if unknown:
        raise BadInputError(
            f"no on-sale of {', '.join(map(repr, unknown))} was found; the on-sales are "
            f"{', '.join(map(repr, profile.events())) or 'none'}.",
            field="--admitted",
        )
    for key in replicas:
        event, _, name = key.rpartition("/")
        if name not in learnt or (event and event not in events):
            raise BadInputError(
                f"{key!r} names no service (or on-sale) that was learnt; services: "
                f"{', '.join(sorted(learnt)) or 'none'}.",
                field="--replicas",
            )
    missing = [s for s in services or () if s not in learnt]
    if missing:
        raise BadInputError(
            f"service {', '.join(map(repr, missing))} served no on-sale request in the window; "
            f"services seen: {', '.join(sorted(learnt)) or 'none'}.",
            field="--service",
        )


def _num(x: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def _learn_table(profile: Profile) -> None:
    console = stdout()
    if not profile.onsales:
        console.print("no on-sale in the window")
    for o in profile.onsales:
        table = Table(
            title=f"{o.scope}  {fmt_time(o.start)} - {fmt_time(o.end)}  admitted "
            f"{_num(o.admitted_users, '{:,.0f}')} (peak {_num(o.admitted_peak_per_minute, '{:,.0f}')}"
            f"/min)  best exit rate with the SLO met {_num(o.max_good_exit_rate, '{:,.0f}')}/min",
            title_justify="left",
        )
        for head in (
            "service", "requests", "per user", "peak rps", "sustained rps", "replicas",
            "good rps", "per replica", "broke",
        ):  # fmt: skip
            table.add_column(head, justify="left" if head in ("service", "broke") else "right")
        for name, s in sorted(o.services.items()):
            b = s.broke
            broke = (
                "-"
                if b is None
                else f"{b.kind} at {fmt_time(b.at)}, {b.rps:,.1f} rps"
                + ("" if b.rps_per_replica is None else f" ({b.rps_per_replica:,.2f}/replica)")
            )
            table.add_row(
                name, f"{s.requests:,.0f}", _num(s.requests_per_user, "{:,.3f}"),
                _num(s.peak_rps), _num(s.sustained_rps), _num(s.replicas, "{:,.0f}"),
                _num(s.good_rps), _num(s.good_rps_per_replica, "{:,.2f}"), broke,
            )  # fmt: skip
        console.print(table)
        for note in o.notes:
            console.print(f"  note: {note}")
    for w in profile.warnings:
        warn(w)


# --------------------------------------------------------------------------- next


@plan_app.command("next")
def next_command(
    demand: Annotated[
        float,
        typer.Option("--demand", metavar="USERS", help="Users expected in the queue."),
    ],
    start: Annotated[
        str,
        typer.Option(
            "--start", metavar="TIME", help="When the on-sale starts (ISO-8601 with a zone)."
        ),
    ],
    profile: ProfileOption = DEFAULT_PROFILE,
    like: Annotated[
        list[str] | None,
        typer.Option(
            "--like",
            metavar="EVENT",
            help="Plan from these past on-sales only (repeat; default: all).",
            show_default=False,
        ),
    ] = None,
    service: ServicesOption = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            metavar="USERS_PER_MIN",
            min=1.0,
            help="Size the vertical for this exit rate.",
            show_default=False,
        ),
    ] = None,
    drain_within: Annotated[
        float | None,
        typer.Option(
            "--drain-within",
            parser=duration_seconds,
            metavar="DURATION",
            help="Size the vertical to drain the demand within this time (45m, 1h).",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        list[str] | None,
        typer.Option(
            "--replicas",
            metavar="SERVICE=N",
            help="Keep SERVICE at N replicas instead of sizing it (repeat).",
            show_default=False,
        ),
    ] = None,
    output: FormatOption = "table",
) -> None:
    """Plan an upcoming on-sale from the profile: warm start, replicas, drain time.

    Recommends the exit-rate controller's starting rate and capacity prior (serve
    --initial-rate / --capacity-prior), the replicas each service of the vertical needs
    before the start, the expected drain time and the service that saturates first. Every
    number shows its range over the past on-sales used (the safe end is recommended); one
    past on-sale gives no range. By default the vertical is sized for the highest exit
    rate the past on-sales held with the SLO met.

    Examples:

        onsale-obs plan next --profile onsale-profile.json --demand 250000 --start 2027-06-01T10:00:00Z

        onsale-obs plan next --demand 80000 --start 2027-06-01T10:00:00Z --like cup-final --like derby --drain-within 45m --format json

        onsale-obs plan next --demand 80000 --start now --replicas checkout=6 --replicas frontend=10
    """
    if rate is not None and drain_within is not None:
        raise typer.BadParameter(
            "give --rate or --drain-within, not both.", param_hint="'--rate' / '--drain-within'"
        )
    if not (demand > 0 and math.isfinite(demand)):
        raise typer.BadParameter("expected a number of users above 0.", param_hint="'--demand'")
    fixed = {}
    for key, number in _pairs(replicas, "--replicas", "SERVICE=N").items():
        if not number.is_integer() or number < 1:
            raise typer.BadParameter(
                f"{key}={number:g}: expected a whole number of replicas, 1 or more.",
                param_hint="'--replicas'",
            )
        fixed[key] = int(number)
    when = parse_time(start).resolve(time.time())
    plan = plan_next(
        load_profile(profile),
        demand=demand,
        start=when,
        like=tuple(like or ()),
        services=tuple(service or ()),
        rate=rate,
        drain_within=drain_within,
        replicas=fixed,
    )
    if output == "json":
        print_json(plan.to_json())
    else:
        _next_table(plan)


def _next_table(plan: NextPlan) -> None:
    console = stdout()
    console.print(
        f"on-sale at {fmt_time(plan.start)}, {plan.demand:,.0f} users; vertical sized for "
        f"{plan.rate:,.0f} users/min ({plan.rate_basis})"
    )
    if plan.prior_is_lower_bound:
        console.print(
            f"warm start: --initial-rate {plan.starting_rate:,.0f} (no --capacity-prior: "
            f"{plan.first_to_saturate} never reached its limit, so {plan.capacity_prior:,.0f} "
            "users/min is a lower bound and as a prior would stop the ramp there)"
        )
    else:
        console.print(
            f"warm start: --initial-rate {plan.starting_rate:,.0f} --capacity-prior "
            f"{plan.capacity_prior:,.0f}"
        )
    console.print(f"vertical capacity (users/min): {plan.capacity.text()}")
    d = plan.drain_seconds
    if d.low is None or d.high is None:
        spread = f" ({ONE_ONSALE})"
    elif math.isclose(d.low, d.high):
        spread = f" (at {plan.starting_rate:,.0f} users/min whatever the capacity in the range)"
    else:
        spread = f" ({fmt_duration(d.low)}-{fmt_duration(d.high)})"
    console.print(f"expected drain time: {fmt_duration(d.value)}{spread}")
    console.print(f"saturates first: {plan.first_to_saturate}")
    table = Table(title="replicas before the start", title_justify="left")
    for head in ("service", "replicas", "requests/user", "rps/replica (SLO met)", "users/min"):
        table.add_column(head, justify="left" if head == "service" else "right")
    for s in plan.services:
        table.add_row(
            s.name,
            str(s.replicas),
            s.requests_per_user.text("{:,.3f}"),
            s.rps_per_replica.text("{:,.2f}")
            + (" (lower bound)" if s.limit_is_lower_bound else ""),
            s.capacity.text(),
        )
    console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}")


# --------------------------------------------------------------------------- backtest


@plan_app.command("backtest")
def backtest_command(
    profile: ProfileOption = DEFAULT_PROFILE, output: FormatOption = "table"
) -> None:
    """Predict each past on-sale from the ones before it only, and show the errors.

    Peak rps per service is predicted from the earlier on-sales' fan-out and this
    on-sale's admitted peak; the sustainable rate is the rps per replica the SLO held at
    (compared only where the on-sale reached the service's limit, else marked as a bound).

    Examples:

        onsale-obs plan backtest --profile onsale-profile.json

        onsale-obs plan backtest --profile onsale-profile.json --format json
    """
    loaded = load_profile(profile)
    rows = backtest(loaded)
    summary = backtest_summary(rows)
    if output == "json":
        print_json({"rows": [r.to_json() for r in rows], "summary": summary})
        return
    table = Table(
        title="back-test: each on-sale predicted from the earlier ones", title_justify="left"
    )
    for head in (
        "on-sale", "earlier", "service", "peak rps pred.", "actual", "error",
        "rps/replica pred.", "actual", "error",
    ):  # fmt: skip
        table.add_column(head, justify="left" if head in ("on-sale", "service") else "right")
    for r in rows:
        bound = " (bound)" if r.actual_is_lower_bound and r.sustainable_actual is not None else ""
        table.add_row(
            r.event, str(r.earlier), r.service, _num(r.peak_rps_predicted, "{:,.2f}"),
            _num(r.peak_rps_actual, "{:,.2f}"), _pct(r.peak_error),
            _num(r.sustainable_predicted, "{:,.2f}"), _num(r.sustainable_actual, "{:,.2f}") + bound,
            _pct(r.sustainable_error),
        )  # fmt: skip
    console = stdout()
    console.print(table)
    for name, s in summary.items():
        console.print(
            f"{name}: mean |error| peak rps {_abs(s['peak_rps_mean_abs_error'])}, sustainable "
            f"{_abs(s['sustainable_mean_abs_error'])} (limits reached only)"
        )


def _abs(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


# --------------------------------------------------------------------------- render-scalers


@plan_app.command("render-scalers")
def render_scalers_command(
    profile: ProfileOption = DEFAULT_PROFILE,
    service: ServicesOption = None,
    kind: Annotated[
        Literal["keda", "hpa"],
        typer.Option(
            "--kind", help="keda: ScaledObjects (Prometheus scaler); hpa: autoscaling/v2."
        ),
    ] = "keda",
    prometheus: Annotated[
        str,
        typer.Option(
            "--prometheus",
            parser=http_url,
            metavar="URL",
            help="The Prometheus KEDA queries (its serverAddress).",
        ),
    ] = "http://prometheus.monitoring.svc:9090",
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", metavar="NS", help="Namespace of the manifests.", show_default=False
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            metavar="SERVICE=NAME",
            help="The Deployment that runs SERVICE (default: the service's name; repeat).",
            show_default=False,
        ),
    ] = None,
    min_replicas: Annotated[
        list[str] | None,
        typer.Option(
            "--min-replicas",
            metavar="SERVICE=N",
            help="Replicas outside on-sales (default 1; repeat).",
            show_default=False,
        ),
    ] = None,
    max_replicas: Annotated[
        int, typer.Option("--max-replicas", min=1, help="Upper bound per service.")
    ] = 100,
    cooldown: Annotated[
        float,
        typer.Option(
            "--cooldown",
            parser=duration_seconds,
            metavar="DURATION",
            help="Scale-down stabilisation after the desired replicas fall.",
        ),
    ] = 600.0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write one file per service here (default: stdout).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Render the vertical's autoscalers: one per service, all reading the same query.

    Every manifest reads max(onsale_vertical_desired_replicas{service="S"}) or vector(0),
    which `serve --profile` exports from the queue, so the whole vertical scales together
    and falls back to --min-replicas when the on-sale is over. --kind hpa also writes the
    prometheus-adapter rule that serves the External metric.

    Examples:

        onsale-obs plan render-scalers --profile onsale-profile.json --namespace shop --out k8s/

        onsale-obs plan render-scalers --kind hpa --deployment checkout=checkout-api --min-replicas checkout=3
    """
    loaded = load_profile(profile)
    known = loaded.services
    names = list(service or known)
    deployments: dict[str, str] = {}
    for text in deployment or ():
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(
                f"{text!r}: expected SERVICE=NAME.", param_hint="'--deployment'"
            )
        deployments[key] = value
    mins: dict[str, int] = {}
    for key, number in _pairs(min_replicas, "--min-replicas", "SERVICE=N").items():
        if not number.is_integer():
            raise typer.BadParameter(
                f"{key}={number:g}: expected a whole number of replicas.",
                param_hint="'--min-replicas'",
            )
        mins[key] = int(number)
    chosen = targets(
        names, deployments=deployments, min_replicas=mins, max_replicas=max_replicas, known=known
    )
    docs = render(kind, chosen, prometheus=prometheus, namespace=namespace, cooldown=int(cooldown))
    files = [
        (f"{t.deployment}-{kind}.yaml", yaml.safe_dump(d, sort_keys=False))
        for t, d in zip(chosen, docs, strict=True)
    ]
    if kind == "hpa":
        files.append(
            ("prometheus-adapter-rules.yaml", yaml.safe_dump(adapter_rule(), sort_keys=False))
        )
    if out is None:
        typer.echo("---\n".join(text for _, text in files), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files:
        write_output(out / name, text)
        typer.echo(f"wrote {out / name}", err=True)


# --------------------------------------------------------------------------- serve's hook


def vertical_scaler(
    profile: Path | None, cooldown: float, drain_target: float, max_rate: float
) -> VerticalScaler | None:
    """``serve --profile``: the scaler behind onsale_vertical_desired_replicas (None without)."""
    if profile is None:
        return None
    return scaler_for(
        load_profile(profile), drain_target=drain_target, cooldown=cooldown, max_rate=max_rate
    )


ServeProfileOption = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        metavar="FILE",
        help="On-sale profile (plan learn): export onsale_vertical_desired_replicas{event,"
        "service} and onsale_queue_length{event} for the vertical's scalers.",
        show_default=False,
    ),
]
ServeCooldownOption = Annotated[
    float,
    typer.Option(
        "--vertical-cooldown",
        parser=duration_seconds,
        metavar="DURATION",
        help="Hold the desired replicas this long after the on-sale ends and its queue empties.",
    ),
]
ServeDrainOption = Annotated[
    float,
    typer.Option(
        "--vertical-drain-target",
        parser=duration_seconds,
        metavar="DURATION",
        help="Size the vertical to drain the queue within this time.",
    ),
]
