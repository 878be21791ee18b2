"""Properties of ``ExitRateController`` over arbitrary reading sequences (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from onsale_obs.exitrate import ExitRateConfig, ExitRateController, Signals

CONFIG = ExitRateConfig(
    min_rate=100,
    max_rate=10_000,
    safe_rate=400,
    admission_lag=30,
    admission_lag_spread=0.5,
    signal_lag=30,
    utilisation_window=30,
)
REQUIRED = ("burn_short", "burn_long", "latency_p95", "latency_threshold", "queue_length")

#: Any float a broken source could send, as well as plausible ones.
anything = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1e4),
)
burns = st.one_of(st.none(), st.floats(min_value=0, max_value=1e4), st.just(math.nan))
latencies = st.one_of(st.none(), st.floats(min_value=0, max_value=30))
shares = st.one_of(st.none(), st.floats(min_value=0, max_value=1.5))


@st.composite
def readings(draw: st.DrawFn) -> list[dict[str, float | None]]:
    """A sequence of readings 1..60 s apart (fields may be missing or nonsense)."""
    count = draw(st.integers(min_value=1, max_value=25))
    out = []
    t = 0.0
    for _ in range(count):
        t += draw(st.floats(min_value=1, max_value=60))
        out.append(
            {
                "time": t,
                "burn_short": draw(burns),
                "burn_long": draw(burns),
                "latency_p95": draw(latencies),
                "latency_threshold": draw(st.one_of(st.none(), st.just(1.0))),
                "queue_length": draw(st.one_of(st.none(), st.floats(min_value=0, max_value=1e6))),
                "utilisation": draw(shares),
                "arrivals": draw(anything),
                "observed_at": draw(st.one_of(st.none(), st.just(t - 30), st.just(t - 600))),
                "shared_burn": draw(burns),
            }
        )
    return out


def _signals(values: dict[str, float | None], rate: float) -> Signals:
    time = values["time"]
    assert time is not None
    return Signals(
        time=time,
        current_rate=rate,
        burn_short=values["burn_short"],
        burn_long=values["burn_long"],
        latency_p95=values["latency_p95"],
        latency_threshold=values["latency_threshold"],
        queue_length=values["queue_length"],
        utilisation=values["utilisation"],
        arrivals=values["arrivals"],
        observed_at=values["observed_at"],
        shared_burn=values.get("shared_burn"),
    )


@settings(max_examples=80, deadline=None)
@given(readings(), st.floats(min_value=-1e6, max_value=1e6) | st.just(math.nan))
def test_the_rate_always_stays_within_bounds(
    seq: list[dict[str, float | None]], start: float
) -> None:
    """Whatever the readings and the starting rate, every answer is within [min, max]."""
    controller = ExitRateController(CONFIG)
    rate = start
    for values in seq:
        rec = controller.recommend(_signals(values, rate))
        assert CONFIG.min_rate <= rec.rate <= CONFIG.max_rate
        assert rec.reason
        rate = rec.rate


@settings(max_examples=80, deadline=None)
@given(readings(), st.floats(min_value=100, max_value=10_000), st.data())
def test_a_reading_with_a_missing_signal_never_increases(
    seq: list[dict[str, float | None]], start: float, data: st.DataObject
) -> None:
    """A reading lacking any required signal never raises the rate, whatever came before."""
    controller = ExitRateController(CONFIG)
    rate = start
    for values in seq:
        blank = data.draw(st.sampled_from(REQUIRED))
        rec = controller.recommend(_signals({**values, blank: None}, rate))
        assert rec.rate <= rate
        assert rec.action != "increase"
        rate = rec.rate


@settings(max_examples=60, deadline=None)
@given(readings(), st.floats(min_value=100, max_value=10_000))
def test_mixed_readings_increase_only_on_complete_ones(
    seq: list[dict[str, float | None]], start: float
) -> None:
    """Every increase came from a reading with all required signals present and fresh."""
    controller = ExitRateController(CONFIG)
    rate = start
    for values in seq:
        signals = _signals(values, rate)
        rec = controller.recommend(signals)
        if rec.rate > rate:
            assert all(values[name] is not None for name in REQUIRED)
            assert signals.observed_at is None or signals.time - signals.observed_at <= 120
        rate = rec.rate


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=400, max_value=10_000), st.integers(min_value=25, max_value=200))
def test_a_blackout_only_ever_decays_to_the_safe_rate(start: float, ticks: int) -> None:
    """With no signals at all the rate never rises, and never goes below the safe rate."""
    controller = ExitRateController(CONFIG)
    rate = start
    for i in range(ticks):
        rec = controller.recommend(Signals(time=15.0 * i, current_rate=rate))
        assert CONFIG.safe <= rec.rate <= rate
        rate = rec.rate


#: Every optional field of a reading.
OPTIONAL = (*REQUIRED, "utilisation", "arrivals", "observed_at", "shared_burn")
#: How a field can be missing: absent, not a number, infinite or negative.
BROKEN = st.sampled_from([None, math.nan, math.inf, -math.inf, -1.0])


def _healthy(t: float, rate: float, **changes: float | None) -> Signals:
    values: dict[str, float | None] = {
        "burn_short": 0.0,
        "burn_long": 0.0,
        "latency_p95": 0.3,
        "latency_threshold": 1.0,
        "queue_length": 100_000.0,
        "utilisation": 0.3,
        "arrivals": 500.0,
        "observed_at": t - 30,
        "shared_burn": 0.0,
    }
    values.update(changes)
    return _signals({"time": t, **values}, rate)


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.sampled_from(OPTIONAL), min_size=1),
    BROKEN,
    st.sampled_from([None, 121.0, 180.0, 600.0]),
    st.sampled_from(["healthy", "fault", "cut"]),
    st.integers(min_value=4, max_value=30),
    st.floats(min_value=100, max_value=5_000),
)
def test_missing_nan_or_stale_fields_never_raise_the_rate(
    broken: set[str],
    value: float | None,
    stale: float | None,
    story: str,
    ticks: int,
    start: float,
) -> None:
    """Over every subset of fields, each absent, NaN, infinite or negative, or the whole
    reading stale: after any story (healthy and ready to probe, a software fault whose burn
    is clearing, a cut) a reading lacking a required signal, or utilisation once it was
    known, never raises the rate."""
    controller = ExitRateController(CONFIG)
    rate = start
    t = 0.0
    for i in range(ticks):
        extra: dict[str, float | None] = {}
        if story == "fault" and i >= ticks // 2:
            extra = {"burn_short": 900.0, "burn_long": 300.0}
        if story == "cut" and i == ticks - 2:
            extra = {"burn_short": 900.0, "burn_long": 300.0, "latency_p95": 3.0}
        rate = controller.recommend(_healthy(t, rate, **extra)).rate
        if story == "fault" and i == ticks // 2:
            rate = max(CONFIG.min_rate, rate / 2)  # cut from outside during the fault
        t += 15
    changes: dict[str, float | None] = dict.fromkeys(broken, value)
    changes["burn_short"] = 0.0 if "burn_short" not in broken else value  # the burn cleared
    if stale is not None:  # older than stale_after (120 s) by a little or a lot
        changes["observed_at"] = t - stale
    rec = controller.recommend(_healthy(t, rate, **changes))
    lacking = bool(broken & {*REQUIRED, "utilisation"}) or stale is not None
    if lacking:
        assert rec.rate <= rate, rec.reason
        assert rec.action != "increase", rec.reason
