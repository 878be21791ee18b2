"""``onsale-obs demo``: the whole journey on the embedded default, compressed into a minute.

The example ticketing services run in this process through the real middleware, on a sqlite
mode store and access logs; a simulated clock drives an hour of normal traffic and a scheduled
on-sale with a surge and a checkout failure; the exit-rate controller sets the waiting room's
rate from the SLO engine every simulated minute; at the end the split SLO report, the alerts
and where they would be routed, and the recommendations are printed and written to a folder.
"""

from onsale_obs.demo._run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
