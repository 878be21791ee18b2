"""The vertical's desired replicas: sized together from one queue, held during the on-sale,
withdrawn after it ends, its queue empties and the cool-down passes."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from onsale_obs.exceptions import BadInputError
from onsale_obs.plan import ServiceSizing, VerticalScaler

CHECKOUT = ServiceSizing("checkout", users_per_replica=80.0)  # 2 rps/replica, 1.5 req/user
FRONTEND = ServiceSizing("frontend", users_per_replica=160.0, min_replicas=2)


def scaler(**kwargs: float) -> VerticalScaler:
    return VerticalScaler((CHECKOUT, FRONTEND), **kwargs)


def test_queue_sizes_every_service_at_once() -> None:
    """A long queue asks every service for the replicas that drain it in time, in one tick."""
    v = scaler(drain_target=1800)
    v.observe(0.0, [("final", 300.0, 36_000.0)])  # 36k users in 30 min: 1,200 users/min
    assert v.desired() == {
        ("final", "checkout"): math.ceil(1200 / (80 * 0.92)),
        ("final", "frontend"): math.ceil(1200 / (160 * 0.92)),
    }


def test_without_a_queue_the_exit_rate_sizes_it() -> None:
    """Empty queue or no queue reading: sized for the current exit rate, never below min."""
    v = scaler()
    v.observe(0.0, [("final", 100.0, None)])
    assert v.desired() == {("final", "checkout"): 2, ("final", "frontend"): 2}


def test_never_down_during_the_onsale_then_down_after_cooldown() -> None:
    """During the on-sale desired replicas only rise; after it ends they go after the cool-down."""
    v = scaler(drain_target=1800, cooldown=600)
    v.observe(0.0, [("final", 300.0, 36_000.0)])
    peak = v.desired()
    v.observe(15.0, [("final", 300.0, 0.0)])  # queue drained, still on sale
    assert v.desired() == peak
    v.observe(30.0, [])  # the on-sale ended
    assert v.desired() == peak
    v.observe(30.0 + 599, [])
    assert v.desired() == peak
    v.observe(30.0 + 601, [])
    assert v.desired() == {}


def test_events_are_sized_separately() -> None:
    """Two events on sale: each has its own series; one ending leaves the other."""
    v = scaler(cooldown=0)
    v.observe(0.0, [("a", 100.0, 0.0), ("b", 800.0, 0.0)])
    assert v.desired()[("b", "checkout")] > v.desired()[("a", "checkout")]
    v.observe(15.0, [("b", 800.0, 0.0)])
    assert {e for e, _ in v.desired()} == {"b"}


def test_exported_as_the_contract_metrics() -> None:
    """onsale_vertical_desired_replicas{event,service} and onsale_queue_length{event}."""
    registry = CollectorRegistry()
    v = scaler()
    registry.register(v)
    v.observe(0.0, [("final", 300.0, 9000.0)])
    text = generate_latest(registry).decode()
    assert 'onsale_vertical_desired_replicas{event="final",service="checkout"}' in text
    assert 'onsale_queue_length{event="final"} 9000.0' in text


def test_max_rate_caps_the_size() -> None:
    """A queue of millions asks for no more than max_rate can admit."""
    v = scaler(max_rate=1000)
    v.observe(0.0, [("final", 300.0, 5_000_000.0)])
    assert v.desired()[("final", "checkout")] == math.ceil(1000 / (80 * 0.92))


def test_bad_settings_are_named() -> None:
    """A negative or infinite cool-down is bad input naming it."""
    with pytest.raises(BadInputError, match="cooldown"):
        scaler(cooldown=-1)
    with pytest.raises(BadInputError, match="drain_target"):
        scaler(drain_target=math.inf)


def test_an_empty_queue_does_not_follow_the_exit_rate_up() -> None:
    """Once nobody waits, a rising exit rate admits nobody more: the desired replicas stay
    where the queue put them (and never fall while on sale)."""
    v = scaler(cooldown=0)
    v.observe(0.0, [("final", 300.0, 36_000.0)])
    sized = dict(v.desired())
    v.observe(60.0, [("final", 300.0, 0.0)])
    v.observe(120.0, [("final", 5_000.0, 0.0)])  # the controller kept ramping: no one waits
    assert v.desired() == sized
    v.observe(180.0, [("final", 5_000.0, 40_000.0)])  # users wait again: it follows
    assert all(v.desired()[k] > n for k, n in sized.items())
