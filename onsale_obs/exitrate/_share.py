"""Several events on one backend: each event's share of the backend's utilisation.

Every event's controller reads the shared backend's utilisation and takes its own rate over
it as the capacity, so together they fill the backend, but in the split of their *starting*
rates: an event that started low keeps a small share and is left with users waiting when the
others have drained (mixed-events family: worst drain 1.54 T* on the tuning seeds). Scaling
the utilisation each event reads by its share of the requests over its share of the users
waiting makes each controller see the capacity split by demand: an event with more of the
load than of the queue reads a busier backend and gives way, one with less reads room.

The live loop (``_live.py``) and the mixed-events simulation (``_mixed.py``) both call
:func:`utilisation_by_demand`, so the rule has one implementation.
"""

from __future__ import annotations


def utilisation_by_demand(
    utilisation: float | None,
    own_requests: float | None,
    all_requests: float | None,
    own_queue: float | None,
    all_waiting: float,
) -> float | None:
    """``utilisation`` x (this event's share of the requests) / (its share of the users
    waiting), or ``utilisation`` unchanged when a share is not known or this event has no
    one waiting (it is not demand-limited: the controller holds on an empty queue anyway).

    Args:
        utilisation: the shared backend's busy share, 0..1 (``None``: not known).
        own_requests: this event's requests over the utilisation's window.
        all_requests: every event's requests over the same window.
        own_queue: users waiting in this event's room.
        all_waiting: users waiting in every room of the backend.
    """
    if utilisation is None or own_requests is None or all_requests is None or own_queue is None:
        return utilisation
    if own_queue <= 0 or all_waiting <= 0 or all_requests <= 0 or own_requests < 0:
        return utilisation
    return utilisation * (own_requests / all_requests) / (own_queue / all_waiting)
