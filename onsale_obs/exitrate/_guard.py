"""The shared-backend guard: events on one service hold each other's probes, never cut them.

Each on-sale event has its own controller fed its own signals, so one event's failure never
cuts another's rate. Where events share a service, one guard joins them: while the on-sale
requests of the whole service (every event together) burn at the alert threshold and this
event's own requests do not, this event's increase is turned into a hold (its probe could be
what the shared backend cannot take). Unless this event's own readings show the backend has
room: utilisation under saturation and p95 under the hold band, so the other event's errors
are a software fault, not a lack of capacity (the controller's own test for a fault); held
probes there kept innocent events at 63% of their rate for minutes in the mixed-events
family. A decrease, a hold or a decay always passes, and so does an increase of the event
that is itself burning (its own controller already knows).

The live loop (``_live.py``) and the mixed-events simulation (``_mixed.py``) both call
:func:`shared_guard`, so the rule has one implementation.
"""

from __future__ import annotations

from dataclasses import replace

from onsale_obs.exitrate._signals import Recommendation


def shared_guard(
    recommendation: Recommendation,
    shared_burn: float | None,
    *,
    threshold: float,
    service: str,
    window: float,
    saturation: float,
    latency_margin: float,
    utilisation: float | None = None,
) -> Recommendation:
    """``recommendation`` with an increase held while the shared service burns.

    Args:
        recommendation: what this event's own controller answered.
        shared_burn: the short-window burn rate of every on-sale request of the service,
            all events together (``None``: not known, or a single event: nothing to guard).
        threshold: the alert threshold the burn is compared with (the controller's
            ``burn_threshold``).
        service: the shared service's name, for the reason.
        window: the short window in seconds, for the reason.
        saturation: utilisation at or over which the backend has no room (the controller's
            ``saturation``).
        latency_margin: share of the latency threshold where the hold band starts (the
            controller's ``latency_margin``).
        utilisation: the backend's own busy share, as read (``None``: the one in the
            recommendation's signals); the controller may have read it split by demand
            (``_share``), which says nothing of the room the backend has.
    """
    s = recommendation.signals
    own = s.burn_short
    if (
        recommendation.action != "increase"
        or shared_burn is None
        or shared_burn < threshold
        or (own is not None and own >= threshold)
    ):
        return recommendation
    busy = s.utilisation if utilisation is None else utilisation
    room = (
        busy is not None
        and busy < saturation
        and s.latency_p95 is not None
        and s.latency_threshold is not None
        and s.latency_p95 <= latency_margin * s.latency_threshold
    )
    if room:
        return recommendation
    return replace(
        recommendation,
        rate=recommendation.previous_rate,
        action="hold",
        reason=f"another event on the shared {service} service burns {shared_burn:.3g}x over "
        f"{int(window)}s: no increase until it clears "
        f"(this event's own: {recommendation.reason})",
    )
