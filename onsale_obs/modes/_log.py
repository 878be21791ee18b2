"""The modes package's default logger, made on first use.

structlog is imported here, when a subscriber, schedule runner or key-file check first needs
to log, not when ``onsale_obs.modes`` is imported: that import costs every CLI command about
50 ms otherwise (README, "CLI start-up").
"""

from __future__ import annotations

from typing import Any


def modes_logger() -> Any:
    """structlog's ``onsale_obs.modes`` logger."""
    import structlog

    return structlog.get_logger("onsale_obs.modes")
