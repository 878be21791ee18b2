"""Unannounced surges: events that flip themselves on sale from their own traffic (``source=auto``)."""

from onsale_obs.detect._baseline import DiurnalBaseline
from onsale_obs.detect._detector import Action, DetectorConfig, SurgeDetector
from onsale_obs.detect._run import AutoMode
from onsale_obs.detect._sources import DEFAULT_QUERY, PrometheusRates, RateSource, SketchRates

__all__ = [
    "DEFAULT_QUERY",
    "Action",
    "AutoMode",
    "DetectorConfig",
    "DiurnalBaseline",
    "PrometheusRates",
    "RateSource",
    "SketchRates",
    "SurgeDetector",
]
