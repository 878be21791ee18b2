"""Choosing a backend from its URL (``--backend`` or ``ONSALE_OBS_BACKEND``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from onsale_obs.exceptions import BadInputError
from onsale_obs.modes._backend import ModeBackend
from onsale_obs.redact import redact_url

DEFAULT_BACKEND_URL = "sqlite:///onsale-obs.db"
BACKEND_ENV = "ONSALE_OBS_BACKEND"


def open_backend(url: str) -> ModeBackend:
    """Open ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``redis://host:port/db``."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        from onsale_obs.modes._memory import MemoryBackend

        return MemoryBackend(url)
    if scheme == "sqlite":
        from onsale_obs.modes._sqlite import SqliteBackend

        try:
            parts = urlsplit(url)
        except ValueError:
            raise BadInputError(
                f"{redact_url(url)!r} is not a sqlite URL; expected sqlite:///relative/path.db.",
                field="backend",
            ) from None
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc or not path:
            raise BadInputError(
                f"{redact_url(url)!r} is not a sqlite URL; expected sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db.",
                field="backend",
            )
        poll = parse_qs(parts.query).get("poll")
        try:
            interval = float(poll[0]) if poll else 0.02
        except ValueError:
            raise BadInputError(
                f"poll={poll[0] if poll else ''!r} in {redact_url(url)!r} is not a number of seconds.",
                field="backend",
            ) from None
        return SqliteBackend(path, url=url, poll_interval=interval)
    if scheme in ("redis", "rediss", "redis+sentinel"):
        from onsale_obs.modes._redis import RedisBackend

        return RedisBackend(url)
    raise BadInputError(
        f"backend URL {redact_url(url)!r} is not supported; expected memory://, sqlite:///path.db or "
        "redis://host:port/db or redis+sentinel://host:port[,host:port]/service.",
        field="backend",
    )
