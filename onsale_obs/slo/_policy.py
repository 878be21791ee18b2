"""Default multiwindow, multi-burn-rate alert policies, one per mode.

Burn rate = error ratio / (1 - objective): at 1x a mode's budget lasts exactly its SLO window.
A rule fires when the long *and* the short window burn at ``burn_rate`` or more (the long
window proves it matters, the short one that it is still happening, so the alert resets
quickly) and the long window holds at least ``min_bad_events`` bad events (one stray error
in a quiet minute is not an incident).

Normal time uses the SRE Workbook's table for a 30-day SLO unchanged: 2% of the budget in
1 hour (14.4x, checked against 5 minutes), 5% in 6 hours (6x, against 30 minutes), 10% in
3 days (1x, against 6 hours). Priorities P3, P3, P4: a ticket for the morning.

On-sales last minutes to hours, so a window the Workbook measures in hours would span the
whole on-sale and fire after it is over. The on-sale rules keep the Workbook's factors and
shrink its windows twelvefold (1 h -> 5 min, 6 h -> 30 min), short windows one fifth of
the long (1 min, 5 min). A full checkout outage at 99.99% burns at 10,000x: the 5-minute
window crosses 14.4x within a second of errors, so detection waits only for the 1-minute
short window to see errors in two scrapes: well under the 2 minutes asked for with 15-second
scrape and evaluation intervals. The guard (5 bad events in the long window) keeps one
stray error from paging at 3 a.m. during a quiet pre-sale. Priorities P1 (page now) for
the fast rule and P2 (page in business hours) for the slow one.
"""

from __future__ import annotations

from typing import Final

from onsale_obs.slo._spec import AlertRule
from onsale_obs.types import Mode

_M: Final = 60.0
_H: Final = 3600.0

DEFAULT_POLICY: Final[dict[Mode, tuple[AlertRule, ...]]] = {
    "onsale": (
        AlertRule(
            "fast", long=5 * _M, short=1 * _M, burn_rate=14.4, priority="P1", min_bad_events=5
        ),
        AlertRule(
            "slow", long=30 * _M, short=5 * _M, burn_rate=6.0, priority="P2", min_bad_events=5
        ),
    ),
    "normal": (
        AlertRule(
            "fast", long=1 * _H, short=5 * _M, burn_rate=14.4, priority="P3", min_bad_events=10
        ),
        AlertRule(
            "medium", long=6 * _H, short=30 * _M, burn_rate=6.0, priority="P3", min_bad_events=10
        ),
        AlertRule(
            "slow", long=72 * _H, short=6 * _H, burn_rate=1.0, priority="P4", min_bad_events=10
        ),
    ),
}
