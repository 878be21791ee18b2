"""On-sales that straddle the SLO window's start, counted inside the window only.

The on-sale mode's total counts the requests inside the SLO window; an on-sale that began
before it would otherwise be counted whole in its row, and the rows would no longer add up to
the mode total. Such an on-sale is counted again from the window's start, and its row keeps
the whole on-sale's figures beside it (``OnSaleResult.whole``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from onsale_obs.modes._model import OnSaleWindow
from onsale_obs.slo._data import Progress, Source
from onsale_obs.slo._report import OnSaleResult, Report, SLOResult
from onsale_obs.slo._run import run_report
from onsale_obs.slo._spec import SLO, SLOSpec


def straddling(s: SLOResult) -> list[OnSaleResult]:
    """The on-sales of ``s`` that began before its window did."""
    return [o for o in s.onsales if o.window.start < s.window_start]


def run_clipped_report(
    spec: SLOSpec,
    source: Source,
    at: float,
    *,
    slos: Iterable[SLO] | None = None,
    window: float | None = None,
    onsale_windows: Iterable[OnSaleWindow] | None = None,
    progress: Progress | None = None,
    bins: int = 0,
) -> Report:
    """Like :func:`run_report`, with straddling on-sales clipped to each SLO's window.

    Costs a second count only when some on-sale straddles a window's start.
    """
    chosen = tuple(spec.slos if slos is None else slos)
    given = None if onsale_windows is None else tuple(onsale_windows)
    first = run_report(
        spec,
        source,
        at,
        slos=chosen,
        window=window,
        onsale_windows=given,
        progress=progress,
        bins=bins,
    )
    wanted = {
        (o.window, s.window_start): dataclasses.replace(o.window, start=s.window_start)
        for s in first.slos
        for o in straddling(s)
    }
    if not wanted:
        return first
    # only the clipped copies are counted again: the first count stands for every whole
    # on-sale (a window the source found itself counts from its very first request, which a
    # re-count of the same window, half-open on the left, would leave out)
    again = run_report(
        spec,
        source,
        at,
        slos=chosen,
        window=window,
        onsale_windows=tuple(dict.fromkeys(wanted.values())),
        progress=progress,
    )
    pairs = zip(first.slos, again.slos, strict=True)
    return dataclasses.replace(first, slos=tuple(_pair(s, t, wanted) for s, t in pairs))


def _pair(
    s: SLOResult, again: SLOResult, wanted: dict[tuple[OnSaleWindow, float], OnSaleWindow]
) -> SLOResult:
    """``s`` with each straddling on-sale replaced by its clipped count (whole one beside)."""
    counted = {o.window: o for o in again.onsales}
    out: list[OnSaleResult] = []
    for o in s.onsales:
        clip = wanted.get((o.window, s.window_start))
        if clip is not None and clip in counted:
            out.append(dataclasses.replace(counted[clip], whole=o))
        else:
            out.append(o)
    return dataclasses.replace(s, onsales=tuple(out))
