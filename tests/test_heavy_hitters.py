"""The bounded per-event signal: space-saving's guarantee, and what the middleware exports."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from onsale_obs.instrument import OnsaleMiddleware, PathParam, RequestMetrics
from onsale_obs.instrument._heavy_hitters import EventHeavyHitters
from onsale_obs.modes import MemoryBackend, ModeSubscriber
from onsale_obs.testing import FakeClock, key_pair

# batches of (seconds elapsed before the batch, the event ids of its requests)
_BATCHES = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=120.0),
        st.lists(st.sampled_from([f"e{i}" for i in range(40)]), min_size=1, max_size=60),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(batches=_BATCHES, slots=st.integers(min_value=1, max_value=12))
def test_every_event_above_the_guarantee_is_tracked(
    batches: list[tuple[float, list[str]]], slots: int
) -> None:
    """Any event whose decayed weight exceeds total/slots holds a slot, never under-counted."""
    clock = FakeClock(0.0)
    sketch = EventHeavyHitters(slots=slots, top=1, half_life=30.0, clock=clock)
    true_weight: Counter[str] = Counter()
    true_requests: Counter[str] = Counter()
    for elapsed, events in batches:
        clock.advance(elapsed)
        # what each request weighs now, relative to the end of the stream (computed below)
        for event, count in Counter(events).items():
            true_weight[event] += count * 2.0 ** (clock.now / 30.0)
        true_requests.update(events)
        sketch.add_events(events)
    now_scale = 2.0 ** (clock.now / 30.0)
    truth = {event: weight / now_scale for event, weight in true_weight.items()}
    tracked = {t.event: t for t in sketch.tracked()}
    assert len(tracked) <= slots
    bound = sketch.guarantee()
    assert bound == pytest.approx(sum(truth.values()) / slots, rel=1e-9)
    for event, weight in truth.items():
        if weight > bound * (1 + 1e-9):
            assert event in tracked, (event, weight, bound)
    for event, t in tracked.items():
        # the estimate over-counts by at most its error, never under-counts
        assert t.weight - t.error <= truth[event] * (1 + 1e-9) + 1e-9
        assert truth[event] <= t.weight * (1 + 1e-9) + 1e-9
        assert t.error <= bound * (1 + 1e-9)
        # counted since it took its slot: never more than it had, all of them if never evicted
        assert t.requests <= true_requests[event]
        if t.error == 0:
            assert t.requests == true_requests[event]


def test_a_recent_surge_outranks_weeks_of_steady_traffic() -> None:
    """Ranking follows the last minutes: a new busy event is exported above old steady ones."""
    clock = FakeClock(0.0)
    sketch = EventHeavyHitters(slots=8, top=3, half_life=60.0, clock=clock)
    for _ in range(14 * 24 * 60):  # two weeks, a minute at a time
        clock.advance(60.0)
        sketch.add_batch({f"steady{i}": 100 for i in range(12)})
    for _ in range(6):
        clock.advance(5.0)
        sketch.add_batch({"drop": 400})
    assert sketch.heaviest()[0].event == "drop"
    assert sketch.heaviest()[0].requests == 2400  # exact since it took its slot


def test_bad_sizes_are_refused() -> None:
    """Slots, top and half-life are checked when the summary is made."""
    with pytest.raises(ValueError, match="slots"):
        EventHeavyHitters(slots=0)
    with pytest.raises(ValueError, match="top"):
        EventHeavyHitters(slots=4, top=5)
    with pytest.raises(ValueError, match="half_life"):
        EventHeavyHitters(half_life=0.0)


def _top_samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "onsale_event_requests_top":
            for sample in family.samples:
                if sample.name == "onsale_event_requests_top_total":
                    assert sample.labels["service"] == "checkout"
                    found[sample.labels["event"]] = sample.value
    return found


def test_requests_top_exports_normal_time_events_up_to_k() -> None:
    """Normal-time requests are counted per event; only the K busiest become series."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("checkout", registry=registry, top_events=3, event_slots=16)
    labels = ("/events/{event_id}", "GET", "normal", "")  # normal time: empty event label
    for event, count in [("a", 50), ("b", 40), ("c", 30), ("d", 20), ("e", 10)]:
        for _ in range(count):
            metrics.observe(labels, 200, 0.01, None, event)
    for _ in range(500):
        metrics.observe(labels, 200, 0.01, None, None)  # requests without an event: not counted
    assert _top_samples(registry) == {"a": 50.0, "b": 40.0, "c": 30.0}


def test_a_flood_of_distinct_events_keeps_the_series_bounded() -> None:
    """100,000 distinct event ids never export more than K series or keep more than the slots."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("checkout", registry=registry, top_events=5, event_slots=32)
    labels = ("/events/{event_id}", "GET", "normal", "")
    for i in range(100_000):
        metrics.observe(labels, 200, 0.01, None, f"bot{i}")
        if i % 7 == 0:
            metrics.observe(labels, 200, 0.01, None, "real")
    assert len(_top_samples(registry)) == 5
    assert metrics.heavy_hitters is not None
    assert len(metrics.heavy_hitters.tracked()) == 32
    assert metrics.heavy_hitters.heaviest()[0].event == "real"


def test_the_middleware_counts_every_request_of_an_event_in_normal_time() -> None:
    """Through the real ASGI middleware: normal-time requests of an event reach the top series."""
    _, verifier = key_pair()
    subscriber = ModeSubscriber(MemoryBackend(), verifier, registry=None)
    registry = CollectorRegistry()
    metrics = RequestMetrics("checkout", registry=registry)

    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = OnsaleMiddleware(
        Starlette(routes=[Route("/events/{event_id}/seats", ok)]),
        subscriber=subscriber,
        service="checkout",
        event=[PathParam("event_id")],
        metrics=metrics,
    )

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for i in range(30):
                await client.get(f"/events/{'final' if i % 3 else 'quiet'}/seats")

    asyncio.run(go())
    assert _top_samples(registry) == {"final": 20.0, "quiet": 10.0}
    assert (
        'event="final"'
        not in generate_latest(registry).decode().split("onsale_event_requests_top")[0]
    )  # the request metrics keep their empty event label in normal time


def test_top_events_zero_turns_the_summary_off() -> None:
    """``top_events=0``: no summary kept, no series exported."""
    registry = CollectorRegistry()
    metrics = RequestMetrics("checkout", registry=registry, top_events=0)
    metrics.observe(("/x", "GET", "normal", ""), 200, 0.01, None, "a")
    assert metrics.heavy_hitters is None
    assert _top_samples(registry) == {}


@pytest.mark.parametrize("jump", [3600.0 * 24 * 365, -3600.0, 64 * 60.0 + 1])
def test_a_clock_jump_never_fails_a_request(jump: float) -> None:
    """A year without requests (or a clock set back): counting goes on, old weight forgotten."""
    clock = FakeClock(0.0)
    sketch = EventHeavyHitters(slots=4, top=2, half_life=60.0, clock=clock)
    sketch.add("old", 1000)
    clock.advance(jump)
    sketch.add("new", 1)
    tracked = {t.event: t for t in sketch.tracked()}
    assert tracked["new"].requests == 1
    assert tracked["old"].requests == 1000  # the exact count is kept
    if jump > 0:
        assert sketch.heaviest()[0].event == "new"  # 1000 requests 64 half-lives ago weigh ~0
