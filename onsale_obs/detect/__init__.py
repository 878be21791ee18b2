"""Unannounced surges: events that flip themselves on sale from their own traffic (``source=auto``).

The detector itself is plain arithmetic; its loop (``AutoMode``) and rate sources import
prometheus_client and the middleware, so they load on first use: ``onsale-obs mode ...``
commands read ``DetectorConfig``'s defaults for their help without paying for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from onsale_obs.detect._baseline import DiurnalBaseline
from onsale_obs.detect._detector import Action, DetectorConfig, SurgeDetector

if TYPE_CHECKING:
    from onsale_obs.detect._run import AutoMode
    from onsale_obs.detect._sources import (
        DEFAULT_QUERY,
        IN_PROCESS_INTERVAL,
        PrometheusRates,
        RateSource,
        SketchRates,
    )

_LAZY = {
    "AutoMode": "onsale_obs.detect._run",
    "DEFAULT_QUERY": "onsale_obs.detect._sources",
    "IN_PROCESS_INTERVAL": "onsale_obs.detect._sources",
    "PrometheusRates": "onsale_obs.detect._sources",
    "RateSource": "onsale_obs.detect._sources",
    "SketchRates": "onsale_obs.detect._sources",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_QUERY",
    "IN_PROCESS_INTERVAL",
    "Action",
    "AutoMode",
    "DetectorConfig",
    "DiurnalBaseline",
    "PrometheusRates",
    "RateSource",
    "SketchRates",
    "SurgeDetector",
]
