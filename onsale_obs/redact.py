"""Credentials masked out of URLs and messages before they are printed, logged or written to JSON.

``redact_url`` keeps what tells an operator *which* server is meant (scheme, user name, host,
port, path, query) and replaces what would let a reader *use* it with ``***``:

- the password of the userinfo (``redis://user:***@host``, ``redis://:***@host``);
- a userinfo without a password (``https://***@host``), since a token is often passed as the
  user name;
- the value of a query or fragment parameter whose name looks secret (``password``, ``pass``,
  ``pwd``, ``token``, ``secret``, ``auth``, ``apikey``, ``api_key``, ``key``, ``sig``, ...).

It never raises and is idempotent. A URL that does not parse cleanly is masked more, never less:
when an ``@`` comes after the authority (a password with an unencoded ``/``, ``?`` or ``#``, or an
``@`` in the path or query), everything between ``//`` and the last ``@`` is masked.

``redact_text`` does the same to every URL inside a free text, and removes the secrets of the URLs
it is given wherever they appear on their own (an exception text that quotes a password).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote_plus

__all__ = ["MASK", "redact_text", "redact_url"]

MASK: Final = "***"

#: Parameter names (lower case, without ``-`` and ``_``) containing one of these are secret.
_SECRET_PARTS: Final = ("pass", "pwd", "token", "secret", "auth", "apikey", "credential")
_SECRET_NAMES: Final = frozenset({"key", "sig", "signature", "sas"})
#: ``name=value`` after ``?``, ``&``, ``;`` or ``#``.
_PARAM: Final = re.compile(r"(?<=[?&;#])([^=&;#?]*)=([^&;#]*)")
#: A URL with a scheme inside free text: up to whitespace, a quote or an angle bracket.
_URL_IN_TEXT: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*")


def redact_url(url: str) -> str:
    """``url`` with its password, token-like user name and secret parameters replaced by ``***``."""
    start = url.find("//")
    if start < 0:  # no authority: only parameters can hold a secret
        return _redact_params(url)
    head, rest = url[: start + 2], url[start + 2 :]
    last_at = rest.rfind("@")
    if last_at < 0:
        return head + _redact_params(rest)
    end = _authority_end(rest)
    if last_at >= end:  # not a clean URL: mask all that could be the password
        return f"{head}{MASK}@{_redact_params(rest[last_at + 1 :])}"
    user, colon, _ = rest[:last_at].partition(":")
    userinfo = f"{user}:{MASK}" if colon else MASK
    return f"{head}{userinfo}{rest[last_at:end]}{_redact_params(rest[end:])}"


def redact_text(text: str, *urls: str) -> str:
    """``text`` with every URL in it redacted, and the secrets of ``urls`` masked wherever they are.

    Pass the URLs a message may be about (the Redis or Prometheus URL the user gave): a library's
    error text can quote the password alone, decoded, or inside a ``repr``.
    """
    redacted = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    secrets = {s for url in urls for s in _secrets(url)}
    for secret in sorted(secrets, key=len, reverse=True):
        redacted = redacted.replace(secret, MASK)
    return redacted


def _authority_end(rest: str) -> int:
    """Where the authority (``userinfo@host:port``) after ``//`` ends."""
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return min(ends, default=len(rest))


def _is_secret_name(name: str) -> bool:
    plain = unquote_plus(name).lower().replace("-", "").replace("_", "")
    return plain in _SECRET_NAMES or any(part in plain for part in _SECRET_PARTS)


def _redact_params(part: str) -> str:
    def mask(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if value and value != MASK and _is_secret_name(name):
            return f"{name}={MASK}"
        return match.group(0)

    return _PARAM.sub(mask, part)


def _secrets(url: str) -> set[str]:
    """The pieces of ``url`` that ``redact_url`` masks, as written, decoded and repr-escaped."""
    raw: set[str] = set()
    start = url.find("//")
    if start >= 0:
        rest = url[start + 2 :]
        last_at = rest.rfind("@")
        if last_at >= 0:
            userinfo = rest[:last_at]
            if last_at >= _authority_end(rest):
                raw.add(userinfo)
                # the part after the first ':' (the password with its reserved characters)
                raw.add(userinfo.partition(":")[2])
            else:
                user, colon, password = userinfo.partition(":")
                raw.add(password if colon else user)
    for match in _PARAM.finditer(url):
        if _is_secret_name(match.group(1)):
            raw.add(match.group(2))
    forms = set(raw)
    for secret in raw:  # as a library shows it: decoded, or encoded its own way
        decoded = unquote_plus(secret)
        forms |= {decoded, quote(decoded, safe=""), quote(decoded, safe="!$&'()*+,;=:")}
    forms |= {repr(s)[1:-1] for s in forms}
    forms.discard("")
    forms.discard(MASK)
    return forms
