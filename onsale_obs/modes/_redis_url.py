"""Redis mode-store URLs: one server, or a Sentinel-watched primary that can fail over.

- ``redis://[[user]:password@]host:port/db`` (``rediss://`` for TLS): one server;
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``: ask these
  Sentinels for the primary of ``service`` (``mymaster`` in Redis's own examples), and again
  after a failover.

Query options, for both: ``prefix`` (key prefix, default ``onsale``); ``wait`` (replicas that must
acknowledge each transition before a publish returns, default 1 with Sentinel, else 0) and
``wait_timeout`` (seconds, default 1); for Sentinel, ``sentinel_password`` when the Sentinels
require one (the URL's password is the data servers').
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from onsale_obs.exceptions import BadInputError
from onsale_obs.redact import redact_url

SENTINEL_SCHEME = "redis+sentinel"
_EXPECTED = "expected redis://host:port/db or redis+sentinel://host:port[,host:port]/service[/db]"


@dataclass(frozen=True)
class RedisTarget:
    """A parsed mode-store URL."""

    url: str
    #: the URL for redis-py (query removed) when not Sentinel
    client_url: str
    sentinels: tuple[tuple[str, int], ...]
    service: str | None
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    prefix: str
    wait_replicas: int
    wait_timeout: float

    @property
    def sentinel(self) -> bool:
        """True when the primary is found through Sentinel."""
        return self.service is not None


def _bad(url: str, why: str) -> BadInputError:
    return BadInputError(f"{redact_url(url)!r} {why}; {_EXPECTED}.", field="backend")


def parse_redis_url(url: str) -> RedisTarget:
    """Parse and check a mode-store URL, naming what is wrong (``BadInputError``)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise _bad(url, "is not a Redis URL") from None
    scheme = parts.scheme
    if scheme not in ("redis", "rediss", SENTINEL_SCHEME):
        raise _bad(url, "is not a Redis URL")
    query = parse_qs(parts.query)
    sentinels: list[tuple[str, int]] = []
    service: str | None = None
    path = [p for p in parts.path.split("/") if p]
    if scheme == SENTINEL_SCHEME:
        netloc = parts.netloc.rpartition("@")[2]
        for item in netloc.split(","):
            host, _, port_text = item.rpartition(":")
            if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise _bad(url, f"names Sentinel {item!r}, not host:port with a port in 1..65535")
            sentinels.append((host.strip("[]"), int(port_text)))
        if not path:
            raise _bad(url, "names no Sentinel service (the primary's name, e.g. mymaster)")
        service, path = path[0], path[1:]
    else:
        if not hostname:
            raise _bad(url, "names no host")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise _bad(url, "has a bad port (expected 1..65535)") from None
    db_text = path[0] if path else "0"
    if len(path) > 1 or not db_text.isdigit():
        raise _bad(url, f"names database {'/'.join(path)!r}; expected a number")
    wait_default = "1" if service is not None else "0"
    wait_text = query.get("wait", [wait_default])[0]
    if not wait_text.isdigit():
        raise _bad(url, f"has wait={wait_text!r}; expected a number of replicas")
    timeout_text = query.get("wait_timeout", ["1"])[0]
    try:
        wait_timeout = float(timeout_text)
    except ValueError:
        wait_timeout = math.nan
    if not (math.isfinite(wait_timeout) and wait_timeout > 0):
        raise _bad(url, f"has wait_timeout={timeout_text!r}; expected seconds > 0")
    password = unquote(parts.password) if parts.password is not None else None
    username = unquote(parts.username) if parts.username else None
    sentinel_password = query.get("sentinel_password", [None])[0]
    return RedisTarget(
        url=url,
        client_url=parts._replace(query="").geturl(),
        sentinels=tuple(sentinels),
        service=service,
        db=int(db_text),
        username=username,
        password=password,
        sentinel_password=sentinel_password,
        prefix=query.get("prefix", ["onsale"])[0],
        wait_replicas=int(wait_text),
        wait_timeout=wait_timeout,
    )
