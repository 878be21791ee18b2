"""AutoMode over a memory store: what it publishes, and how it lives with serve's exit-rate copies."""

from __future__ import annotations

from onsale_obs.detect import AutoMode, DetectorConfig, SurgeDetector
from onsale_obs.modes import Broadcaster, MemoryBackend, Verifier
from onsale_obs.testing import FakeClock, key_pair


class Scripted:
    def __init__(self, rates: dict[str, float]) -> None:
        self.rates = rates

    def read(self) -> dict[str, float]:
        return self.rates


def test_an_extension_keeps_the_exit_rate_serve_published() -> None:
    """serve copies the auto state with an exit rate; the detector's extension keeps that rate."""
    ops, ops_verifier = key_pair()
    auto, _ = key_pair()
    backend = MemoryBackend()
    clock = FakeClock()
    detector_side = Broadcaster(backend, auto, clock=clock, verifier=ops_verifier)
    serve_side = Broadcaster(
        backend, ops, clock=clock, verifier=Verifier([auto.private_key.public_key()])
    )
    runner = AutoMode(
        SurgeDetector(DetectorConfig(quiet=60.0)), Scripted({"a": 100.0}), detector_side
    )
    kinds: list[str] = []
    for _ in range(5):
        clock.advance(2.0)
        kinds += [a.kind for a in runner.tick()]
    assert kinds == ["onsale"]
    held = serve_side.current()["event:a"]
    serve_side.set("event:a", "onsale", until=held.until, source="auto", reason=held.reason,
                   exit_rate=600.0)  # fmt: skip
    for _ in range(40):
        clock.advance(2.0)
        kinds += [a.kind for a in runner.tick()]
    assert "extend" in kinds
    state = serve_side.current()["event:a"]
    assert state.source == "auto"
    assert state.exit_rate == 600.0
    assert state.until is not None
    assert state.until > held.until  # type: ignore[operator]
