"""On-sale windows read from the ``onsale_mode{scope}`` gauge, and their counting ranges."""

from __future__ import annotations

from collections.abc import Iterable

from onsale_obs.modes._model import OnSaleWindow


def windows_from_gauge(
    series: Iterable[tuple[str, list[tuple[float, float]]]], step: float, end: float
) -> list[OnSaleWindow]:
    """On-sale windows from ``max by (scope) (onsale_mode)`` sampled every ``step`` seconds.

    A run of 1s (consecutive points) is a window from one step before its first point to one
    step after its last; a run that reaches ``end`` is still open (``end`` None).
    """
    windows = []
    for scope, points in series:
        run: list[float] = []
        for t, v in sorted(points):
            if v >= 1 and run and t - run[-1] <= step * 1.5:
                run.append(t)
                continue
            if run:
                windows.append(window_of(scope, run, step, end))
            run = [t] if v >= 1 else []
        if run:
            windows.append(window_of(scope, run, step, end))
    return sorted(windows, key=lambda w: (w.start, w.scope))


def extend_runs(runs: list[list[float]], times: list[float], step: float) -> None:
    """Add the sorted points ``times`` to ``runs`` (``[first, last]`` of consecutive points)."""
    for t in times:
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1][1] = t
        else:
            runs.append([t, t])


def window_of(scope: str, run: list[float], step: float, end: float) -> OnSaleWindow:
    still_on = run[-1] >= end - step / 2
    return OnSaleWindow(
        scope=scope,
        start=run[0] - step,
        end=None if still_on else min(run[-1] + step, end),
        source="auto",
        reason="found in onsale_mode",
    )


def merge_with_grace(
    windows: Iterable[OnSaleWindow], grace: float, at: float
) -> list[tuple[float, float]]:
    """The union of the windows' counting ranges ``(start, min(end + grace, at)]``, sorted."""
    ranges = sorted(count_range(w, grace, at) for w in windows)
    merged: list[tuple[float, float]] = []
    for start, end in ranges:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def count_range(w: OnSaleWindow, grace: float, at: float) -> tuple[float, float]:
    end = at if w.end is None else min(w.end + grace, at)
    return w.start, end
